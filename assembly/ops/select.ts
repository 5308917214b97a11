// The bounded output head's two scans over one row's q4 logits y [n] with per-row bounds
// e [n] (src/model/output-head.ts): every logit8 lies in [y − e·xnorm, y + e·xnorm]. On the
// leader between the q4 pass and the q8 rescoring, so in wasm: one scan of the vocabulary
// (128256 rows) costs ~0.1 ms here, several times that in JavaScript. Greedy sampling's argmax
// (the end of the file) is such a scan too.

/** The k-th largest y[i] − e[i]·xnorm (f64; −∞ when fewer than k are finite), with `heap` (k f64) as scratch: a size-k min-heap. */
export function kth_lower_bound_f32(y: usize, e: usize, n: i32, xnorm: f64, k: i32, heap: usize): f64 {
  for (let i = 0; i < k; i++) store<f64>(heap + (<usize>i << 3), -Infinity)
  for (let j = 0; j < n; j++) {
    const lb = <f64>load<f32>(y + (<usize>j << 2)) - <f64>load<f32>(e + (<usize>j << 2)) * xnorm
    if (!(lb > load<f64>(heap))) continue
    // replace the root (the smallest of the k) and sift it down
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= k) break
      let c = l
      if (l + 1 < k && load<f64>(heap + (<usize>(l + 1) << 3)) < load<f64>(heap + (<usize>l << 3))) c = l + 1
      const hc = load<f64>(heap + (<usize>c << 3))
      if (hc >= lb) break
      store<f64>(heap + (<usize>i << 3), hc)
      i = c
    }
    store<f64>(heap + (<usize>i << 3), lb)
  }
  return load<f64>(heap)
}

/**
 * Lists into `groups` (i32, ascending) the 4-row groups holding a row with y + e·xnorm ≥ t and
 * writes −∞ over the y of every other row; stores the count of such rows at `rowsOut` (i32).
 * Returns the group count, or −1 once more than `maxGroups` would be needed (y then partly
 * overwritten).
 */
export function select_groups_f32(y: usize, e: usize, n: i32, xnorm: f64, t: f64, groups: usize, maxGroups: i32, rowsOut: usize): i32 {
  let count = 0, rows = 0, last = -1
  for (let j = 0; j < n; j++) {
    const p = y + (<usize>j << 2)
    if (<f64>load<f32>(p) + <f64>load<f32>(e + (<usize>j << 2)) * xnorm >= t) {
      rows++
      if (j >> 2 != last) {
        if (count == maxGroups) return -1
        last = j >> 2
        store<i32>(groups + (<usize>count << 2), last)
        count++
      }
    } else store<f32>(p, -Infinity)
  }
  store<i32>(rowsOut, rows)
  return count
}

/**
 * Greedy sampling's pick over logits x [n] (f32): the index of the largest, ties to the lowest
 * index, NaN never wins; −1 when every value is NaN or −∞. Two scans: the max with pmax (v < m ? …
 * never takes a NaN, and −∞ never raises the −∞ start), then the first index equal to it (NaN
 * equals nothing; −0 and +0 are one value, as for the scalar >).
 */
export function argmax_f32(x: usize, n: i32): i32 {
  const n16 = n & ~15
  let m0 = f32x4.splat(-Infinity), m1 = m0, m2 = m0, m3 = m0
  for (let i = 0; i < n16; i += 16) {
    const p = x + (<usize>i << 2)
    m0 = f32x4.pmax(m0, v128.load(p))
    m1 = f32x4.pmax(m1, v128.load(p, 16))
    m2 = f32x4.pmax(m2, v128.load(p, 32))
    m3 = f32x4.pmax(m3, v128.load(p, 48))
  }
  const m4 = f32x4.pmax(f32x4.pmax(m0, m1), f32x4.pmax(m2, m3))
  let m = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)))
  for (let i = n16; i < n; i++) { const v = load<f32>(x + (<usize>i << 2)); if (v > m) m = v }
  if (m == -Infinity) return -1
  const vm = f32x4.splat(m)
  let i = 0
  for (; i < n16; i += 16) { // vectors of 16 until one holds the max, then the scalar loop finds it
    const p = x + (<usize>i << 2)
    const e = v128.or(v128.or(f32x4.eq(v128.load(p), vm), f32x4.eq(v128.load(p, 16), vm)),
      v128.or(f32x4.eq(v128.load(p, 32), vm), f32x4.eq(v128.load(p, 48), vm)))
    if (v128.any_true(e)) break
  }
  while (load<f32>(x + (<usize>i << 2)) != m) i++
  return i
}

/** argmax_f32's scalar twin: the first strictly larger value wins. */
export function argmax_f32_ref(x: usize, n: i32): i32 {
  let best = -1, bestValue = <f32>-Infinity
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2))
    if (v > bestValue) { bestValue = v; best = i }
  }
  return best
}
