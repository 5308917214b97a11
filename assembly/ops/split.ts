// How a kernel taking (…, first, end) splits its work: its n items (rows, 4- or 16-row
// groups, heads × position blocks) are cut into chunks by the thread pool, and a call
// computes items [first, end), clamped to n (callers outside the pool pass (0, n)).

/** Items [first, end) of n, clamped to [0, n], packed as first << 32 | end. */
// @ts-ignore: decorator
@inline export function span(n: i32, first: i32, end: i32): u64 {
  const stop = min(n, end)
  return (<u64>min(max(0, first), stop) << 32) | <u64>max(0, stop)
}
