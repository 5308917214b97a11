// TL ternary weights × int8 activations: lookup-table matrix-vector product (g = 2).
// The baseline-SIMD128 kernel (column-tiled LUT, docs/kernels.md#which-ternary-kernel) for
// engines without relaxed SIMD (Safari, Node 20): it gives bit for bit the outputs of
// the I2_S kernel (i2s.ts) on the same weights and activations.
//
// Host-side packing: src/formats/tl16.ts. K is padded to KP = ⌈K/128⌉·128, rows to
// RP = ⌈M/16⌉·16 (G = RP/16 groups of 16 rows), NP = KP/2 column pairs.
//
// Pair index of weights (w0, w1) of columns 2p, 2p+1:  idx = 3·(w0+1) + (w1+1) ∈ 0..8
// (padding: idx 4 = (0,0)). Its table, built once per activation vector (lut_build_i8):
//
//   T_p[idx] = w0·q[2p] + w1·q[2p+1] ∈ [−256, 256],  split T = 16·hi + lo with
//   hi = min(⌊T/16⌋, 15) ∈ [−16, 15] (i8) and lo = T − 16·hi ∈ [0, 16] (u8)
//   lut, 32 bytes per pair:  ┌──── +0 … +15 ────┬──── +16 … +31 ───┐
//                            │ hi[0..15]  (i8)   │ lo[0..15]  (u8)   │   entries 9..15 = 0
//                            └───────────────────┴───────────────────┘
//
// The split keeps both halves small enough to be summed as bytes: over 8 pairs Σhi ∈
// [−128, 120] fits i8 and Σlo ≤ 128 fits u8, so the kernel adds 8 lookups per byte lane
// before widening once (instead of widening every lookup: fewer shuffles, ~15 % faster
// than a plain low/high-byte table, measured on V8 11.3). Over a tile of 512
// pairs the i16 sums stay within ±512·16 = ±8192.
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
// One `i8x16.swizzle` of a pair's hi table with a vector of 16 row indices looks up 16
// rows at once; the same with the lo table. The tile loop is outermost so that one tile's
// 16 KB of tables stays in L1 while the weights stream past; the partial dot of each row
// is kept in y (as i32) between tiles and turned into f32 by the last tile.
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
//   first, end  the 16-row groups [first, end) this call computes (a chunk of the thread pool).

import { span } from '../ops/split'

const TL_ROWS: i32 = 16 // rows per group = lanes of a swizzle
const TL_TILE_PAIRS: i32 = 512 // column pairs per tile (1024 columns, 16 KB of tables)
const TL_LUT_BYTES: i32 = 32 // table bytes per pair (16 hi + 16 lo)
const BYTE_PAIRS: i32 = 8 // lookups summed in byte lanes before widening (bounds above)

// Constants of lut_build_i8 as read-only static data (below HEAP_BASE): loaded once
// before the loop, where v128 constants would be re-materialised in it
// (docs/kernels.md#v128-constants-in-hot-loops) and
// replace_lane chains from a runtime value were recomputed in every iteration by V8 11.3.
const LUT_CONSTS = memory.data<i16>([
  -1, -1, -1, 0, 0, 0, 1, 1, // w0 of entries 0..7
  -1, 0, 1, -1, 0, 1, -1, 0, // w1 of entries 0..7
  -1, 0, 0, 0, 0, 0, 0, 0, //   lane 0 mask: entry 8 = (1, 1), entries 9..15 = 0
  15, 15, 15, 15, 15, 15, 15, 15,
  0x0f0f, 0x0f0f, 0x0f0f, 0x0f0f, 0x0f0f, 0x0f0f, 0x0f0f, 0x0f0f, // matvec: 4-bit index mask
], 16)

/**
 * Builds the tables of an int8 activation vector q[kp] (kp even): per pair p, 16 hi bytes
 * then 16 lo bytes of T_p[idx] = w0·q[2p] + w1·q[2p+1] = 16·hi + lo, idx = 3(w0+1) + (w1+1).
 * Built once per quantized vector and shared by every matrix that reads it (q/k/v, gate/up).
 */
export function lut_build_i8(q: usize, kp: i32, lut: usize): void {
  const c0 = v128.load(LUT_CONSTS), c1 = v128.load(LUT_CONSTS, 16)
  const lane0 = v128.load(LUT_CONSTS, 32), m15 = v128.load(LUT_CONSTS, 48)
  const np = kp >> 1
  for (let p = 0; p < np; p++) {
    const v = v128.load16_splat(q + (<usize>p << 1)) // q1:q0 in every i16 lane
    const a = i16x8.shr_s(i16x8.shl(v, 8), 8), b = i16x8.shr_s(v, 8) // q0, q1 splats
    const t0 = i16x8.add(i16x8.mul(a, c0), i16x8.mul(b, c1)) // entries 0..7
    const t1 = v128.and(i16x8.add(a, b), lane0) // entry 8, then zeros
    const h0 = i16x8.min_s(i16x8.shr_s(t0, 4), m15), h1 = i16x8.min_s(i16x8.shr_s(t1, 4), m15)
    const l0 = i16x8.sub(t0, i16x8.shl(h0, 4)), l1 = i16x8.sub(t1, i16x8.shl(h1, 4))
    const o = lut + (<usize>p << 5)
    v128.store(o, i8x16.narrow_i16x8_s(h0, h1)) // hi ∈ [−16, 15], lo ∈ [0, 16]: no saturation
    v128.store(o, i8x16.narrow_i16x8_u(l0, l1), 16)
  }
}

/** Scalar reference: the definition the SIMD kernel must equal bit for bit. */
export function matvec_tl_i8_ref(w: usize, lut: usize, meta: usize, gamma: f32, y: usize,
                                 rows: i32, kp: i32, first: i32, end: i32): void {
  const s = load<f32>(meta)
  const range = span((rows + 15) >> 4, first, end) // 16-row groups
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
        dot += (<i32>load<i8>(tab) << 4) + <i32>load<u8>(tab, 16)
      }
      store<f32>(y + (<usize>r << 2), <f32>dot / s * gamma)
    }
  }
}

// Table lookup of 16 rows. Indices are masked to 0..15, so the relaxed swizzle (one pshufb
// on x64, where baseline swizzle adds a saturating fix-up: docs/kernels.md#baseline-swizzle-on-x64)
// is exact here too.
// @ts-ignore: decorator
@inline function look(table: v128, idx: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(table, idx)
  return i8x16.swizzle(table, idx)
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

// Σ over one tile of 4 rows as i32: 16·Σhi + Σlo.
// @ts-ignore: decorator
@inline function tileDot(hi: v128, lo: v128, high: bool): v128 {
  if (high) return i32x4.add(i32x4.shl(i32x4.extend_high_i16x8_s(hi), 4), i32x4.extend_high_i16x8_s(lo))
  return i32x4.add(i32x4.shl(i32x4.extend_low_i16x8_s(hi), 4), i32x4.extend_low_i16x8_s(lo))
}

/**
 * SIMD kernel: 16 rows per pass, 1024-column tiles, 8 lookups summed per byte lane.
 * Baseline build: `i8x16.swizzle`; relaxed build: `i8x16.relaxed_swizzle` (same results).
 */
export function matvec_tl_i8(w: usize, lut: usize, meta: usize, gamma: f32, y: usize,
                             rows: i32, kp: i32, first: i32, end: i32): void {
  const range = span((rows + 15) >> 4, first, end) // 16-row groups
  const ga = <i32>(range >> 32), gb = <i32>range
  if (ga >= gb) return
  const groups = (rows + 15) >> 4
  const np = kp >> 1
  const ntiles = (np + TL_TILE_PAIRS - 1) / TL_TILE_PAIRS
  // Loaded, not a v128 constant (docs/kernels.md#v128-constants-in-hot-loops), nor a splat of a runtime value:
  // V8 11.3 re-materialised that splat in every iteration. Few values live across the
  // loops (s and the f32x4 splats only where used): V8 otherwise spills table vectors.
  const m15 = v128.load(LUT_CONSTS, 64)
  const zero = v128.xor(m15, m15)
  for (let t = 0; t < ntiles; t++) {
    const p0 = t * TL_TILE_PAIRS
    const tp = min(TL_TILE_PAIRS, np - p0)
    const first = t == 0, last = t == ntiles - 1
    const tileW = w + <usize>p0 * 8 * groups
    const tileL = lut + <usize>p0 * TL_LUT_BYTES
    for (let g = ga; g < gb; g++) {
      let wp = tileW + <usize>g * tp * 8
      let lp = tileL
      // i16 sums over the tile: hi and lo parts of rows 0-7 and rows 8-15
      let hi0 = zero, hi1 = zero, lo0 = zero, lo1 = zero
      for (let u = 0; u < tp; u += BYTE_PAIRS) {
        // 8 pairs = 4 weight vectors, each holding two pairs' indices (low, high nibble)
        const v0 = v128.load(wp), v1 = v128.load(wp, 16), v2 = v128.load(wp, 32), v3 = v128.load(wp, 48)
        // byte sums of hi (i8) and lo (u8)
        let i = v128.and(v0, m15)
        let bh = look(v128.load(lp), i), bl = look(v128.load(lp, 16), i)
        i = v128.and(i16x8.shr_u(v0, 4), m15)
        bh = i8x16.add(bh, look(v128.load(lp, 32), i)); bl = i8x16.add(bl, look(v128.load(lp, 48), i))
        i = v128.and(v1, m15)
        bh = i8x16.add(bh, look(v128.load(lp, 64), i)); bl = i8x16.add(bl, look(v128.load(lp, 80), i))
        i = v128.and(i16x8.shr_u(v1, 4), m15)
        bh = i8x16.add(bh, look(v128.load(lp, 96), i)); bl = i8x16.add(bl, look(v128.load(lp, 112), i))
        i = v128.and(v2, m15)
        bh = i8x16.add(bh, look(v128.load(lp, 128), i)); bl = i8x16.add(bl, look(v128.load(lp, 144), i))
        i = v128.and(i16x8.shr_u(v2, 4), m15)
        bh = i8x16.add(bh, look(v128.load(lp, 160), i)); bl = i8x16.add(bl, look(v128.load(lp, 176), i))
        i = v128.and(v3, m15)
        bh = i8x16.add(bh, look(v128.load(lp, 192), i)); bl = i8x16.add(bl, look(v128.load(lp, 208), i))
        i = v128.and(i16x8.shr_u(v3, 4), m15)
        bh = i8x16.add(bh, look(v128.load(lp, 224), i)); bl = i8x16.add(bl, look(v128.load(lp, 240), i))
        // The order here is tuned for V8 11.3 (Node 20): binaryen finishes the hi chain,
        // widens it, then does the lo chain. Other orders (lo first, widening in the
        // reverse order, zero-initialised sums, splats live across the loop) made V8
        // spill table vectors in this loop: 5 times more spill moves and ~25 % slower.
        hi0 = i16x8.add(hi0, i16x8.extend_low_i8x16_s(bh)); hi1 = i16x8.add(hi1, i16x8.extend_high_i8x16_s(bh))
        lo0 = i16x8.add(lo0, i16x8.extend_low_i8x16_u(bl)); lo1 = i16x8.add(lo1, i16x8.extend_high_i8x16_u(bl))
        wp += 4 * 16
        lp += BYTE_PAIRS * TL_LUT_BYTES
      }
      const A0 = tileDot(hi0, lo0, false), A1 = tileDot(hi0, lo0, true) // rows 0-3, 4-7
      const A2 = tileDot(hi1, lo1, false), A3 = tileDot(hi1, lo1, true) // rows 8-11, 12-15
      const r = g * TL_ROWS
      if (r + TL_ROWS <= rows) {
        const yp = y + (<usize>r << 2)
        const sv = f32x4.splat(load<f32>(meta)), gv = f32x4.splat(gamma)
        emitVec(yp, A0, first, last, sv, gv)
        emitVec(yp + 16, A1, first, last, sv, gv)
        emitVec(yp + 32, A2, first, last, sv, gv)
        emitVec(yp + 48, A3, first, last, sv, gv)
      } else {
        // the last, partial group: lane by lane, rows ≥ M dropped
        const s = load<f32>(meta)
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

// ── Load-time repack: canonical I2_S codes → tl16 ──
//
// Byte p of a canonical 128-column block holds columns p + 32f (field f = 0..3, MSB first),
// so bytes 2m and 2m+1 of field f are the pair 16f + m of the block (64 pairs): pairs 2k and
// 2k+1 of the field fill the low and high nibble of the row's byte in tl16 vector
// 32b + 8f + k. Per block and field: 16 pair indices in one vector, 8 output bytes.

// Code of a 2-bit field: 0, 1, 2, and the unused 3 read as 1 (weight 0), as src/formats/i2s.ts.
// @ts-ignore: decorator
@inline function codes2(v: v128, shift: i32, m3: v128, m1: v128): v128 {
  const x = v128.and(i16x8.shr_u(v, shift), m3)
  const three = v128.and(v128.and(i16x8.shr_u(x, 1), x), m1) // 1 where x == 3
  return v128.xor(x, i8x16.add(three, three))
}

/**
 * Canonical I2_S codes (row r's 32-byte block b at (r·K/128 + b)·32, K a multiple of 128) →
 * tl16 at dst, without decoding to one byte per weight: the load-time repack of official
 * files for this kernel. Rows that pad the last group get the index of the pair (0, 0).
 * Items: the 16-row groups [first, end) (a thread-pool round at load).
 */
export function repack_i2s_tl(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const nb = k / 128, np = k >> 1
  const rowsPadded = (rows + TL_ROWS - 1) & ~(TL_ROWS - 1), groups = rowsPadded / TL_ROWS
  const m3 = i8x16.splat(3), m1 = i8x16.splat(1), lo4 = i16x8.splat(0x000f), hi4 = i16x8.splat(0x00f0)
  const range = span(groups, first, end)
  for (let r = <i32>(range >> 32) * TL_ROWS; r < <i32>range * TL_ROWS; r++) {
    const g = r / TL_ROWS, i = r % TL_ROWS
    for (let b = 0; b < nb; b++) {
      // tile of the block's first pair (a block never straddles a tile: 64 | 512)
      const p0 = b * 64, t = p0 / TL_TILE_PAIRS, tp = min(TL_TILE_PAIRS, np - t * TL_TILE_PAIRS)
      const base = dst + <usize>(t * TL_TILE_PAIRS * 8 * groups + g * tp * 8 + ((p0 % TL_TILE_PAIRS) >> 1) * 16 + i)
      if (r >= rows) {
        for (let j = 0; j < 32; j++) store<u8>(base + <usize>(j * 16), 0x44) // idx 4 | idx 4 << 4
        continue
      }
      const s = src + <usize>(r * nb + b) * 32
      const v0 = v128.load(s), v1 = v128.load(s, 16)
      const even = i8x16.shuffle(v0, v1, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
      const odd = i8x16.shuffle(v0, v1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
      for (let f = 0; f < 4; f++) {
        const sh = 6 - 2 * f
        const c0 = codes2(even, sh, m3, m1), c1 = codes2(odd, sh, m3, m1)
        const idx = i8x16.add(i8x16.add(c0, i8x16.add(c0, c0)), c1) // 3·(w0+1) + (w1+1), lane m = pair 16f + m
        // pairs 2k, 2k+1 → one byte: low nibble, high nibble
        const v = i8x16.narrow_i16x8_u(v128.or(v128.and(idx, lo4), v128.and(i16x8.shr_u(idx, 4), hi4)), idx)
        const o = base + <usize>(f * 128)
        store<u8>(o, i8x16.extract_lane_u(v, 0)); store<u8>(o, i8x16.extract_lane_u(v, 1), 16)
        store<u8>(o, i8x16.extract_lane_u(v, 2), 32); store<u8>(o, i8x16.extract_lane_u(v, 3), 48)
        store<u8>(o, i8x16.extract_lane_u(v, 4), 64); store<u8>(o, i8x16.extract_lane_u(v, 5), 80)
        store<u8>(o, i8x16.extract_lane_u(v, 6), 96); store<u8>(o, i8x16.extract_lane_u(v, 7), 112)
      }
    }
  }
}
