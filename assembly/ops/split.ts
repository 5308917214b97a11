// How a kernel taking (…, ith, nth) splits its work: n items (rows, 4- or 16-row groups,
// heads) in contiguous, nearly equal shares, thread ith taking share ith.

/** Thread ith's share [start, end) of n items, packed as start << 32 | end. */
// @ts-ignore: decorator
@inline export function share(n: i32, ith: i32, nth: i32): u64 {
  const per = (n + nth - 1) / nth
  const start = min(n, ith * per)
  return (<u64>start << 32) | <u64>min(n, start + per)
}
