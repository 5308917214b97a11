// TL ternary weights × int8 activations: lookup-table matrix-vector product (g = 2).
// The baseline-SIMD128 kernel ("kernel B", `tlt` in wasm-kernels.md §3, §6.3) for
// engines without relaxed SIMD (Safari, Node 20): it gives bit for bit the outputs of
// the I2_S kernel (i2s.ts) on the same weights and activations.
//
// Host-side packing: src/model/repack-tl.ts. K is padded to KP = ⌈K/128⌉·128, rows to
// RP = ⌈M/16⌉·16 (G = RP/16 groups of 16 rows), NP = KP/2 column pairs.
//
// Pair index of weights (w0, w1) of columns 2p, 2p+1:  idx = 3·(w0+1) + (w1+1) ∈ 0..8
// (padding: idx 4 = (0,0)). Its table, built once per activation vector (lut_build_i8):
//
//   T_p[idx] = w0·q[2p] + w1·q[2p+1] ∈ [−256, 256]    (i16, entries 9..15 = 0)
//   lut, 32 bytes per pair:  ┌──── +0 … +15 ────┬──── +16 … +31 ───┐
//                            │ low bytes T[0..15] │ high bytes T[0..15] │
//                            └───────────────────┴───────────────────┘
//
// Kernel layout "tl16" (what this file reads), 4 bits per pair = 2 bits per weight:
//
//   tile t = pairs [512t, 512t + TP), TP = min(512, NP − 512t) (a multiple of 64)
//   ┌──────────── tile 0 (1024 columns) ────────────┬──── tile 1 ────┬ …
//   │ group 0: TP·8 B │ group 1: TP·8 B │ … │ G−1  │ group 0 │ …      │
//   └─────────────────────────────────────────────────┴────────────────┴ …
//   tile t starts at byte 512·8·G·t, its group g at + g·TP·8
//
//   a group's tile = TP/2 vectors of 16 bytes; vector u, byte i (row 16g + i):
//   ┌───────────── 7:4 ─────────────┬───────────── 3:0 ─────────────┐
//   │ idx(row, pair 512t + 2u + 1)  │ idx(row, pair 512t + 2u)      │
//   └───────────────────────────────┴───────────────────────────────┘
//
// One `i8x16.swizzle` of a pair's low-byte table with a vector of 16 row indices looks up
// 16 rows at once; the same with the high-byte table, then two interleaving shuffles give
// the 16 i16 table values. The tile loop is outermost so that one tile's 16 KB of tables
// stays in L1 while the weights stream past; the partial dot of each row is kept in y
// (as i32) between tiles and turned into f32 by the last tile.
//
// y[r] = Σ_p T_p[idx(r, p)] / s · γ = Σ w·q / s · γ  (the integer of i2s.ts: Σ c·q − Σ q).
//
// Arguments shared by both kernels:
//   w     tl16 weights, RP · KP / 4 bytes
//   lut   tables from lut_build_i8, KP/2 · 32 bytes
//   meta  activation meta: f32 s (scale = 127/absmax) at +0 (Σq at +4 is not needed)
//   gamma per-tensor weight scale
//   y     f32 output [M]; also the i32 partial dots between tiles
//   rows  M (rows ≥ M of the last group are computed but not stored)
//   kp    padded K (multiple of 128)
//   ith, nth  this thread's index and the thread count: 16-row groups are split evenly.

const TL_ROWS: i32 = 16 // rows per group = lanes of a swizzle
const TL_TILE_PAIRS: i32 = 512 // column pairs per tile (1024 columns, 16 KB of tables)
const TL_LUT_BYTES: i32 = 32 // table bytes per pair (16 low + 16 high)
// i16 accumulators are widened every 64 pairs: |T| ≤ 256, 64 · 256 = 16384 < 32767.
// (128 would not be safe: 128 · 256 = 32768 when every q is −128 and every w is −1.)
const FLUSH_PAIRS: i32 = 64

// @ts-ignore: decorator
@inline function groupRange16(rows: i32, ith: i32, nth: i32): u64 {
  const groups = (rows + 15) >> 4
  const per = (groups + nth - 1) / nth
  const g0 = min(groups, ith * per)
  const g1 = min(groups, g0 + per)
  return (<u64>g0 << 32) | <u64>g1
}

/**
 * Builds the tables of an int8 activation vector q[kp] (kp even): lut[p] = 16 low bytes,
 * then 16 high bytes, of T_p[idx] = w0·q[2p] + w1·q[2p+1] for idx = 3(w0+1) + (w1+1).
 * Built once per quantized vector and shared by every matrix that reads it (q/k/v, gate/up).
 */
export function lut_build_i8(q: usize, kp: i32, lut: usize): void {
  // w0 and w1 of entries 0..7 (entry 8 = (1, 1) goes in lane 0 of the second vector);
  // built from a runtime zero so no v128 constant sits in the loop (pitfall 6).
  const z = <i16>(kp >>> 31)
  const zero = i16x8.splat(z)
  let c0 = zero, c1 = zero
  c0 = i16x8.replace_lane(c0, 0, z - 1); c1 = i16x8.replace_lane(c1, 0, z - 1)
  c0 = i16x8.replace_lane(c0, 1, z - 1) //                                 c1 lane 1 = 0
  c0 = i16x8.replace_lane(c0, 2, z - 1); c1 = i16x8.replace_lane(c1, 2, z + 1)
  /*                         c0 lane 3 = 0 */ c1 = i16x8.replace_lane(c1, 3, z - 1)
  /*                         c0 lane 4 = 0    c1 lane 4 = 0 */
  /*                         c0 lane 5 = 0 */ c1 = i16x8.replace_lane(c1, 5, z + 1)
  c0 = i16x8.replace_lane(c0, 6, z + 1); c1 = i16x8.replace_lane(c1, 6, z - 1)
  c0 = i16x8.replace_lane(c0, 7, z + 1) //                                 c1 lane 7 = 0
  const np = kp >> 1
  for (let p = 0; p < np; p++) {
    const q0 = <i32>load<i8>(q + (<usize>p << 1))
    const q1 = <i32>load<i8>(q + (<usize>p << 1), 1)
    const a = i16x8.add(i16x8.mul(i16x8.splat(<i16>q0), c0), i16x8.mul(i16x8.splat(<i16>q1), c1))
    const b = i16x8.replace_lane(zero, 0, <i16>(q0 + q1))
    const o = lut + (<usize>p << 5)
    v128.store(o, i8x16.shuffle(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30))
    v128.store(o, i8x16.shuffle(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), 16)
  }
}

/** Scalar reference: the definition the SIMD kernel must equal bit for bit. */
export function matvec_tl_i8_ref(w: usize, lut: usize, meta: usize, gamma: f32, y: usize,
                                 rows: i32, kp: i32, ith: i32, nth: i32): void {
  const s = load<f32>(meta)
  const range = groupRange16(rows, ith, nth)
  const groups = (rows + 15) >> 4
  const np = kp >> 1
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    for (let i = 0; i < TL_ROWS; i++) {
      const r = g * TL_ROWS + i
      if (r >= rows) break
      let dot = 0
      for (let p = 0; p < np; p++) {
        const t = p / TL_TILE_PAIRS, pt = p % TL_TILE_PAIRS
        const tp = min(TL_TILE_PAIRS, np - t * TL_TILE_PAIRS)
        const at = w + <usize>t * TL_TILE_PAIRS * 8 * groups + <usize>g * tp * 8 + <usize>((pt >> 1) * 16 + i)
        const idx = (<i32>load<u8>(at) >> ((pt & 1) << 2)) & 15
        const tab = lut + <usize>p * TL_LUT_BYTES + <usize>idx
        dot += (<i32>load<i8>(tab, 16) << 8) | <i32>load<u8>(tab)
      }
      store<f32>(y + (<usize>r << 2), <f32>dot / s * gamma)
    }
  }
}

// 16 looked-up low bytes l and high bytes h → i16 values of rows 0..7 / rows 8..15.
// @ts-ignore: decorator
@inline function rows0to7(l: v128, h: v128): v128 {
  return i8x16.shuffle(l, h, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
}
// @ts-ignore: decorator
@inline function rows8to15(l: v128, h: v128): v128 {
  return i8x16.shuffle(l, h, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
}

// One row's partial dot into y: the first tile stores, later tiles add, the last one scales.
// @ts-ignore: decorator
@inline function emitRow(y: usize, r: i32, rows: i32, dot: i32, first: bool, last: bool, s: f32, gamma: f32): void {
  if (r < rows) {
    const yp = y + (<usize>r << 2)
    if (!first) dot += load<i32>(yp)
    if (last) store<f32>(yp, <f32>dot / s * gamma)
    else store<i32>(yp, dot)
  }
}

// @ts-ignore: decorator
@inline function emitVec(yp: usize, v: v128, first: bool, last: bool, sv: v128, gv: v128): void {
  if (!first) v = i32x4.add(v, v128.load(yp))
  // f32x4 convert/div/mul round exactly like the scalar <f32>dot / s * gamma
  if (last) v = f32x4.mul(f32x4.div(f32x4.convert_i32x4_s(v), sv), gv)
  v128.store(yp, v)
}

/** SIMD128 kernel (baseline `i8x16.swizzle` lookups, 16 rows per pass, 1024-column tiles). */
export function matvec_tl_i8(w: usize, lut: usize, meta: usize, gamma: f32, y: usize,
                             rows: i32, kp: i32, ith: i32, nth: i32): void {
  const s = load<f32>(meta)
  const range = groupRange16(rows, ith, nth)
  const ga = <i32>(range >> 32), gb = <i32>range
  if (ga >= gb) return
  const groups = (rows + 15) >> 4
  const np = kp >> 1
  const ntiles = (np + TL_TILE_PAIRS - 1) / TL_TILE_PAIRS
  const sv = f32x4.splat(s), gv = f32x4.splat(gamma)
  // Built from a runtime value (pitfall 6): 4-bit index mask, and the i16 zero.
  const m15 = i8x16.splat(<i8>((kp >>> 31) | 15))
  const zero = i8x16.splat(<i8>(kp >>> 31))
  for (let t = 0; t < ntiles; t++) {
    const p0 = t * TL_TILE_PAIRS
    const tp = min(TL_TILE_PAIRS, np - p0)
    const first = t == 0, last = t == ntiles - 1
    const tileW = w + <usize>p0 * 8 * groups
    const tileL = lut + <usize>p0 * TL_LUT_BYTES
    for (let g = ga; g < gb; g++) {
      let wp = tileW + <usize>g * tp * 8
      let lp = tileL
      let A0 = zero, A1 = zero, A2 = zero, A3 = zero // i32 sums, rows 0-3, 4-7, 8-11, 12-15
      for (let c = 0; c < tp; c += FLUSH_PAIRS) {
        let a0 = zero, a1 = zero // i16 sums, rows 0-7 and 8-15
        for (let u = 0; u < FLUSH_PAIRS; u += 4) {
          // 4 pairs = 2 weight vectors
          const v0 = v128.load(wp), v1 = v128.load(wp, 16)
          let i = v128.and(v0, m15)
          let l = i8x16.swizzle(v128.load(lp), i), h = i8x16.swizzle(v128.load(lp, 16), i)
          a0 = i16x8.add(a0, rows0to7(l, h)); a1 = i16x8.add(a1, rows8to15(l, h))
          i = v128.and(i16x8.shr_u(v0, 4), m15)
          l = i8x16.swizzle(v128.load(lp, 32), i); h = i8x16.swizzle(v128.load(lp, 48), i)
          a0 = i16x8.add(a0, rows0to7(l, h)); a1 = i16x8.add(a1, rows8to15(l, h))
          i = v128.and(v1, m15)
          l = i8x16.swizzle(v128.load(lp, 64), i); h = i8x16.swizzle(v128.load(lp, 80), i)
          a0 = i16x8.add(a0, rows0to7(l, h)); a1 = i16x8.add(a1, rows8to15(l, h))
          i = v128.and(i16x8.shr_u(v1, 4), m15)
          l = i8x16.swizzle(v128.load(lp, 96), i); h = i8x16.swizzle(v128.load(lp, 112), i)
          a0 = i16x8.add(a0, rows0to7(l, h)); a1 = i16x8.add(a1, rows8to15(l, h))
          wp += 32
          lp += 4 * TL_LUT_BYTES
        }
        A0 = i32x4.add(A0, i32x4.extend_low_i16x8_s(a0)); A1 = i32x4.add(A1, i32x4.extend_high_i16x8_s(a0))
        A2 = i32x4.add(A2, i32x4.extend_low_i16x8_s(a1)); A3 = i32x4.add(A3, i32x4.extend_high_i16x8_s(a1))
      }
      const r = g * TL_ROWS
      if (r + TL_ROWS <= rows) {
        const yp = y + (<usize>r << 2)
        emitVec(yp, A0, first, last, sv, gv)
        emitVec(yp + 16, A1, first, last, sv, gv)
        emitVec(yp + 32, A2, first, last, sv, gv)
        emitVec(yp + 48, A3, first, last, sv, gv)
      } else {
        // the last, partial group: lane by lane, rows ≥ M dropped
        emitRow(y, r, rows, i32x4.extract_lane(A0, 0), first, last, s, gamma)
        emitRow(y, r + 1, rows, i32x4.extract_lane(A0, 1), first, last, s, gamma)
        emitRow(y, r + 2, rows, i32x4.extract_lane(A0, 2), first, last, s, gamma)
        emitRow(y, r + 3, rows, i32x4.extract_lane(A0, 3), first, last, s, gamma)
        emitRow(y, r + 4, rows, i32x4.extract_lane(A1, 0), first, last, s, gamma)
        emitRow(y, r + 5, rows, i32x4.extract_lane(A1, 1), first, last, s, gamma)
        emitRow(y, r + 6, rows, i32x4.extract_lane(A1, 2), first, last, s, gamma)
        emitRow(y, r + 7, rows, i32x4.extract_lane(A1, 3), first, last, s, gamma)
        emitRow(y, r + 8, rows, i32x4.extract_lane(A2, 0), first, last, s, gamma)
        emitRow(y, r + 9, rows, i32x4.extract_lane(A2, 1), first, last, s, gamma)
        emitRow(y, r + 10, rows, i32x4.extract_lane(A2, 2), first, last, s, gamma)
        emitRow(y, r + 11, rows, i32x4.extract_lane(A2, 3), first, last, s, gamma)
        emitRow(y, r + 12, rows, i32x4.extract_lane(A3, 0), first, last, s, gamma)
        emitRow(y, r + 13, rows, i32x4.extract_lane(A3, 1), first, last, s, gamma)
        emitRow(y, r + 14, rows, i32x4.extract_lane(A3, 2), first, last, s, gamma)
        emitRow(y, r + 15, rows, i32x4.extract_lane(A3, 3), first, last, s, gamma)
      }
    }
  }
}
