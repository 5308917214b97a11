// I2_S ternary weights × int8 activations: matrix-vector product.
//
// Host-side layout, packing and the on-disk format: src/formats/i2s.ts (canonical
// bitnet.cpp 128/32 layout) and src/formats/i2s-c4.ts (this kernel's "c4" layout).
//
// Kernel layout "i2s_c4" (what this file reads), K padded to KP = ⌈K/128⌉·128 and
// rows padded to ⌈M/4⌉·4; zero-padding columns of the activation make padding free:
//
//   group g (rows 4g..4g+3) = KP bytes, byte k = column k of the group's 4 rows:
//   ┌─────┬─────┬─────┬─────┐
//   │ 7:6 │ 5:4 │ 3:2 │ 1:0 │   = codes c = w + 1 ∈ {0,1,2} of rows 4g+3, 4g+2, 4g+1, 4g
//   └─────┴─────┴─────┴─────┘                                      group stride = KP bytes
//
// Each group is one sequential stream, and one activation load serves its 4 rows. A code
// vector v gives the rows by masks alone: v & 0x03, v & 0x0C, v & 0x30 are c, 4c, 16c of rows
// 0, 1, 2 (≤ 32: the 7-bit operand of the relaxed dot), (v >> 6) & 3 is c of row 3: one shift
// and four ands per 64 weights, where the "x4" layout before (each byte 4 columns of one row)
// needed three shifts. Rows 1 and 2 accumulate 4 and 16 × Σ c·q, shifted back exactly at the
// end (|16 · Σ c·q| ≤ 16 · 2 · 128 · KP < 2^31 for every KP below 2^19; 2B4T has 6912).
// y[r] = (Σ c·q − Σ q) / s · γ   (docs/architecture.md#bitlinear: dot of codes, minus Σq, over scale).
//
// Arguments shared by both kernels:
//   w     i2s_c4 weights, (M4/4) · KP bytes
//   q     int8 activations [KP] (zero beyond K)
//   meta  activation meta: f32 s (scale = 127/absmax) at +0, i32 Σq at +4
//   gamma per-tensor weight scale
//   y     f32 output [M]
//   rows  M (output rows; rows ≥ M in the padded group are computed but not stored)
//   kp    padded K (multiple of 128)
//   first, end  the 4-row groups [first, end) this call computes (a chunk of the thread pool).

import { span } from '../ops/split'

const BLOCK_ELEMS: i32 = 128 // weights per 32-byte block of the canonical file
const BLOCK_BYTES: i32 = 32

// The 2-bit field of row j moved from bit 6 − 2s (canonical byte, column group s) to bit 2j
// (c4 byte), other bits cleared: an i16 shift either way, then the byte mask drops what
// crossed over from the lane's other byte.
// @ts-ignore: decorator
@inline function field(v: v128, s: i32, j: i32): v128 {
  const d = 6 - 2 * s - 2 * j
  const moved = d >= 0 ? i16x8.shr_u(v, d) : i16x8.shl(v, -d)
  return v128.and(moved, i8x16.splat(<i8>(<i32>3 << (2 * j))))
}

// The c4 bytes of column group s of 4 rows' canonical bytes r0..r3.
// @ts-ignore: decorator
@inline function columns(r0: v128, r1: v128, r2: v128, r3: v128, s: i32): v128 {
  return v128.or(v128.or(field(r0, s, 0), field(r1, s, 1)), v128.or(field(r2, s, 2), field(r3, s, 3)))
}

/**
 * Canonical I2_S codes (bitnet.cpp's file: row r's 32-byte block b at (r·K/128 + b)·32, K a
 * multiple of 128; byte p holds columns p, p+32, p+64, p+96 in bits 7:6 … 1:0) → i2s_c4 at dst:
 * the load-time repack of official files, exact, 16 bytes of 4 rows at a time (12 GB/s on
 * Node 24 here, CPU time: ~45 ms of a 2B4T load, where moving 32-byte blocks for x4 took
 * ~15). Rows that pad the last group get code 1 (weight 0) everywhere. Items: the 4-row groups
 * [first, end) (a thread-pool round at load: mostly first touches of fresh pages, which threads share).
 */
export function repack_i2s_c4(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const nb = k / BLOCK_ELEMS
  const one = i8x16.splat(0x55)
  const range = span((rows + 3) >> 2, first, end)
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    for (let b = 0; b < nb; b++) {
      const d = dst + <usize>g * <usize>k + <usize>(b * BLOCK_ELEMS)
      for (let h = 0; h < BLOCK_BYTES; h += 16) {
        // the 16 bytes at h of the block of rows 4g .. 4g+3 (padding rows: all code 1)
        const s0 = src + (<usize>(g * 4) * <usize>nb + <usize>b) * BLOCK_BYTES + <usize>h
        const row = <usize>nb * BLOCK_BYTES
        const r0 = v128.load(s0)
        const r1 = g * 4 + 1 < rows ? v128.load(s0 + row) : one
        const r2 = g * 4 + 2 < rows ? v128.load(s0 + 2 * row) : one
        const r3 = g * 4 + 3 < rows ? v128.load(s0 + 3 * row) : one
        // column groups s = 0..3 (bits 7:6 … 1:0 of the canonical byte) → columns 32s + h + p;
        // literal s and j: every shift and mask folds to a constant
        v128.store(d + <usize>h, columns(r0, r1, r2, r3, 0))
        v128.store(d + <usize>h, columns(r0, r1, r2, r3, 1), 32)
        v128.store(d + <usize>h, columns(r0, r1, r2, r3, 2), 64)
        v128.store(d + <usize>h, columns(r0, r1, r2, r3, 3), 96)
      }
    }
  }
}

// @ts-ignore: decorator
@inline function storeRow(y: usize, r: i32, rows: i32, dot: i32, sumq: i32, s: f32, gamma: f32): void {
  if (r < rows) store<f32>(y + (<usize>r << 2), <f32>(dot - sumq) / s * gamma)
}

/** Scalar reference: the definition the SIMD kernel must equal bit for bit. */
export function matvec_i2s_i8_ref(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                                  rows: i32, kp: i32, first: i32, end: i32): void {
  const s = load<f32>(meta)
  const sumq = load<i32>(meta, 4)
  const range = span((rows + 3) >> 2, first, end) // 4-row groups
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    const wg = w + <usize>g * kp
    for (let j = 0; j < 4; j++) {
      let dot = 0
      for (let c = 0; c < kp; c++) dot += ((<i32>load<u8>(wg + c) >> (2 * j)) & 3) * <i32>load<i8>(q + c)
      storeRow(y, g * 4 + j, rows, dot, sumq, s, gamma)
    }
  }
}

// @ts-ignore: decorator
@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3)
}

// The three masks of rows 0..2 (row 3's is m0 after a shift), built from a runtime value so
// neither binaryen nor V8 turns them into constants re-materialised at every use
// (docs/kernels.md#v128-constants-in-hot-loops).
// @ts-ignore: decorator
@inline function mask(kp: i32, m: i32): v128 {
  return i8x16.splat(<i8>((kp >>> 31) | m))
}

/**
 * SIMD kernel, 4 rows per pass sharing every activation load (the batched kernel's 4 × 1 tile).
 * Relaxed build: `i32x4.relaxed_dot_i8x16_i7x16_add_s` (the masked codes as its 7-bit operand:
 * one vpdpbusd with AVX-VNNI, one sdot on ARM, pmaddubsw + pmaddwd + add elsewhere, exact: a
 * pair is at most 2·128·32) straight into i32 accumulators. Baseline build: 8 columns a step,
 * widened to i16 as they load, `i32x4.dot_i16x8_s`. Measured against the x4 layout's kernels
 * they replaced, from DRAM (bench/ceiling/kernel.mjs, Zen 5, 1 thread): relaxed 1.32×, baseline
 * 1.55× (that one summed `extmul` products in i16 lanes after three shifts per code vector).
 */
export function matvec_i2s_i8(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                              rows: i32, kp: i32, first: i32, end: i32): void {
  const range = span((rows + 3) >> 2, first, end) // 4-row groups
  for (let g = <i32>(range >> 32); g < <i32>range; g++) rows4x1(w + <usize>g * kp, q, meta, y, gamma, rows, kp, g * 4)
}

// Rows r .. r+3 (their group at wg) × one token (activations x, meta m, output y). Relaxed:
// two chains of 16 columns per row (8 dot-adds in flight: one's latency is several cycles).
// @ts-ignore: decorator
@inline function rows4x1(wg: usize, x: usize, m: usize, y: usize, gamma: f32, rows: i32, kp: i32, r: i32): void {
  const m0 = mask(kp, 0x03), m1 = mask(kp, 0x0c), m2 = mask(kp, 0x30)
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0
  for (let c = 0; c < kp; c += 2 * STEP) {
    let v = loadPacked(wg + c), xv = loadAct(x + c)
    a0 = dotAcc(a0, xv, v128.and(v, m0)); a1 = dotAcc(a1, xv, v128.and(v, m1))
    a2 = dotAcc(a2, xv, v128.and(v, m2)); a3 = dotAcc(a3, xv, v128.and(i16x8.shr_u(v, 6), m0))
    v = loadPacked(wg + c + STEP); xv = loadAct(x + c + STEP)
    e0 = dotAcc(e0, xv, v128.and(v, m0)); e1 = dotAcc(e1, xv, v128.and(v, m1))
    e2 = dotAcc(e2, xv, v128.and(v, m2)); e3 = dotAcc(e3, xv, v128.and(i16x8.shr_u(v, 6), m0))
  }
  store4(y, m, gamma, rows, r, i32x4.add(a0, e0), i32x4.add(a1, e1), i32x4.add(a2, e2), i32x4.add(a3, e3))
}

// The 4 rows' dots of one token (rows 1 and 2 summed 4c and 16c: shifted back exactly).
// @ts-ignore: decorator
@inline function store4(y: usize, m: usize, gamma: f32, rows: i32, r: i32, a0: v128, a1: v128, a2: v128, a3: v128): void {
  const sumq = load<i32>(m, 4), s = load<f32>(m)
  storeRow(y, r, rows, hsum(a0), sumq, s, gamma)
  storeRow(y, r + 1, rows, hsum(a1) >> 2, sumq, s, gamma)
  storeRow(y, r + 2, rows, hsum(a2) >> 4, sumq, s, gamma)
  storeRow(y, r + 3, rows, hsum(a3), sumq, s, gamma)
}

// ── Matrix × matrix: several tokens per pass over the weights (prompt, batched decode) ──
//
// Activations of T tokens: q [T][KP] int8, meta [T] × 8 bytes (f32 s, i32 Σq),
// y [T][M] f32. The kernel walks each 4-row group once and, while its KP bytes sit in
// L1, runs every token of the batch over them: DRAM traffic is one weight pass per
// batch (prompts come in batches of 32 tokens).
//
// Register tile: 4 rows × 2 tokens = 8 i32x4 accumulators, 3 masks, the code vector, 2
// activation vectors and one masked code: 15 of x64's 16 vector registers. Each masked code
// serves 2 tokens and each activation load 4 rows: 3 loads, 1 shift and 4 ands per 8 dots,
// where the x4 layout's 2 × 4 tile needed 4 loads, 4 shifts and 2 ands.
//   relaxed: a step is 16 columns; `i32x4.relaxed_dot_i8x16_i7x16_add_s`, the masked codes
//            (≤ 32) as the 7-bit operand (one vpdpbusd with AVX-VNNI, one sdot on ARM).
//   baseline: a step is 8 columns: `v128.load8x8_u/_s` widen 8 code bytes / 8 activations
//            to i16 as they load, then `i32x4.dot_i16x8_s` (pmaddwd): exact i32 sums.
// Either way rows 1 and 2 sum 4 and 16 × their dot. An odd batch ends with a 4 × 1 tile.

/** Scalar reference: T independent matvecs. */
export function matmul_i2s_i8_ref(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                                  rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  for (let t = 0; t < ntok; t++) {
    matvec_i2s_i8_ref(w, q + <usize>(t * kp), meta + <usize>(t << 3), gamma, y + <usize>(t * rows << 2), rows, kp, first, end)
  }
}

// Columns per step: 16 (relaxed, i8 lanes) or 8 (baseline, i16 lanes).
const STEP: i32 = ASC_FEATURE_RELAXED_SIMD ? 16 : 8

// A step's code bytes: as bytes (relaxed) or widened to i16 lanes (baseline). Either way
// the byte masks and `(v >> 6) & 3` (i16 shift) pick each row's codes.
// @ts-ignore: decorator
@inline function loadPacked(p: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(p) : v128.load8x8_u(p)
}

// The step's activations of one token, in the lanes the codes use.
// @ts-ignore: decorator
@inline function loadAct(p: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(p) : v128.load8x8_s(p)
}

// acc + Σ x·c into i32 lanes (4 products per lane relaxed, 2 baseline).
// @ts-ignore: decorator
@inline function dotAcc(acc: v128, x: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, c, acc)
  return i32x4.add(acc, i32x4.dot_i16x8_s(x, c))
}

/** SIMD kernel, bit-identical to the reference (integer sums, same final expression). */
export function matmul_i2s_i8(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                              rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  const range = span((rows + 3) >> 2, first, end)
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    const wg = w + <usize>g * kp, r = g * 4
    let t = 0
    for (; t + 2 <= ntok; t += 2) rows4x2(wg, q, meta, y, gamma, rows, kp, r, t)
    if (t < ntok) {
      rows4x1(wg, q + <usize>(t * kp), meta + <usize>(t << 3), y + <usize>(t * rows << 2), gamma, rows, kp, r)
    }
  }
}

// Rows r .. r+3 (their group at wg) × tokens t, t+1.
// @ts-ignore: decorator
@inline function rows4x2(wg: usize, q: usize, meta: usize, y: usize, gamma: f32, rows: i32, kp: i32, r: i32, t: i32): void {
  const m0 = mask(kp, 0x03), m1 = mask(kp, 0x0c), m2 = mask(kp, 0x30)
  const x0 = q + <usize>(t * kp), x1 = x0 + <usize>kp
  // a<row><token>
  let a00 = i32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00
  for (let c = 0; c < kp; c += STEP) {
    const v = loadPacked(wg + c), u = loadAct(x0 + c), z = loadAct(x1 + c)
    let k = v128.and(v, m0); a00 = dotAcc(a00, u, k); a01 = dotAcc(a01, z, k)
    k = v128.and(v, m1); a10 = dotAcc(a10, u, k); a11 = dotAcc(a11, z, k)
    k = v128.and(v, m2); a20 = dotAcc(a20, u, k); a21 = dotAcc(a21, z, k)
    k = v128.and(i16x8.shr_u(v, 6), m0); a30 = dotAcc(a30, u, k); a31 = dotAcc(a31, z, k)
  }
  const m = meta + <usize>(t << 3), yt = y + <usize>(t * rows << 2)
  store4(yt, m, gamma, rows, r, a00, a10, a20, a30)
  store4(yt + <usize>(rows << 2), m + 8, gamma, rows, r, a01, a11, a21, a31)
}
