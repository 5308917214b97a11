// Q4B: the 4-bit copy of the output projection (the tied embedding, 128256 × 2560 in
// 2B4T), made at load: 5 bits per weight with its scales, 0.6× the bytes of Q8B. The
// projection is the largest single read of a decode step and DRAM-bound in Q8B, so fewer
// bytes are time saved (bitnet.cpp stores it as Q6_K for the same reason).
//
//   weights  u8  [rows][KP/2]   per 32-column block b, 16 bytes; byte j holds
//            ┌──────────────────┬──────────────────┐
//            │ 7:4 w[32b+j+16]+8 │ 3:0 w[32b+j]+8  │   w ∈ [−8, 7] (|w| ≤ 7 from the scale)
//            └──────────────────┴──────────────────┘
//   wscale   f32 [rows][KP/32]  per 32-block: ≈ max|w| / 7 (searched, quantize_rows_f16_q4b)
//   x        i8  [KP]           activations per 128-block, −127..127 (quantize_blocks_f32_i8)
//   xscale   f32 [KP/128]
//   xsum8    i32 [KP/32]        8 · Σ x over each 32-block (the nibbles' +8 offset)
//
//   y[r] = Σ_b (wscale[r][b] · xscale[b/4]) · (Σ_{i∈b} nib[r][i]·x[i] − xsum8[b])
//   summed in f32 in block order; block dots are exact integers. Nibbles 0..15 are the
//   unsigned 7-bit operand of `i16x8.relaxed_dot_i8x16_i7x16_s`.

import { f16ToF32 } from '../ops/half'
import { span } from '../ops/split'

const QBLOCK: i32 = 32 // weights per scale
const XBLOCK: i32 = 128 // activations per scale

/**
 * Quantizes x[0..n) per 128-block into xq (i8, zero beyond n up to kp), xs (f32 per
 * 128-block: max|x|/127, q = RNE(x/s) in f64) and xsum8 (i32 per 32-block: 8·Σq).
 */
export function quantize_blocks_f32_i8(x: usize, n: i32, kp: i32, xq: usize, xs: usize, xsum8: usize): void {
  for (let b = 0; b < kp / XBLOCK; b++) {
    const i0 = b * XBLOCK, i1 = min(n, i0 + XBLOCK)
    let amax: f64 = 0
    for (let i = i0; i < i1; i++) amax = max(amax, <f64>abs(load<f32>(x + (<usize>i << 2))))
    const d = amax / 127
    const inv: f64 = d > 0 ? 1 / d : 0
    for (let i = i0; i < i0 + XBLOCK; i++) {
      store<i8>(xq + <usize>i, i < i1 ? <i8>nearest<f64>(<f64>load<f32>(x + (<usize>i << 2)) * inv) : <i8>0)
    }
    store<f32>(xs + (<usize>b << 2), <f32>d)
  }
  for (let b = 0; b < kp / QBLOCK; b++) {
    let sum = 0
    for (let i = b * QBLOCK; i < (b + 1) * QBLOCK; i++) sum += <i32>load<i8>(xq + <usize>i)
    store<i32>(xsum8 + (<usize>b << 2), sum << 3)
  }
}

// The nibble of column i (0..31) of a block starting at p.
// @ts-ignore: decorator
@inline function nibble(p: usize, i: i32): i32 {
  const byte = <i32>load<u8>(p + <usize>(i & 15))
  return i < 16 ? byte & 15 : byte >> 4
}

/** Scalar reference of matvec_q4b_i8. */
export function matvec_q4b_i8_ref(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                                  rows: i32, kp: i32, first: i32, end: i32): void {
  const nb = kp / QBLOCK
  const range = span(rows, first, end)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    let acc: f32 = 0
    for (let b = 0; b < nb; b++) {
      const p = w + <usize>r * (kp >> 1) + <usize>(b * 16)
      let dot = 0
      for (let i = 0; i < QBLOCK; i++) dot += nibble(p, i) * <i32>load<i8>(xq + <usize>(b * QBLOCK + i))
      dot -= load<i32>(xsum8 + (<usize>b << 2))
      acc += load<f32>(ws + ((<usize>r * nb + b) << 2)) * load<f32>(xs + (<usize>(b >> 2) << 2)) * <f32>dot
    }
    store<f32>(y + (<usize>r << 2), acc)
  }
}

// Σ pairs of x·c into i16 lanes, c = nibbles (0..15): one pmaddubsw (relaxed) or two
// extmuls (baseline). |lane| ≤ 2 · 15 · 128 per call, 2 calls per block: no overflow.
// @ts-ignore: decorator
@inline function dot16(x: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(x, c)
  return i16x8.add(i16x8.extmul_low_i8x16_s(c, x), i16x8.extmul_high_i8x16_s(c, x))
}

// Block dot of one row as 4 i32 lanes (their sum is the exact integer dot of the block).
// @ts-ignore: decorator
@inline function blockDot(p: usize, m15: v128, xlo: v128, xhi: v128): v128 {
  const v = v128.load(p)
  const lo = v128.and(v, m15), hi = v128.and(i16x8.shr_u(v, 4), m15)
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(dot16(xlo, lo), dot16(xhi, hi)))
}

/**
 * SIMD kernel, 4 rows per pass sharing the activation loads; the 4 block dots are reduced
 * together (one transpose) and scaled as one f32x4 in the _ref's order: bit-exact with it.
 */
export function matvec_q4b_i8(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                              rows: i32, kp: i32, first: i32, end: i32): void {
  const nb = kp / QBLOCK
  const rowBytes = <usize>(kp >> 1)
  const range = span(rows, first, end)
  const r1 = <i32>range
  const m15 = i8x16.splat(<i8>((kp >>> 31) | 15)) // runtime-built constant (see matvec_i2s_i8)
  let r = <i32>(range >> 32)
  for (; r + 4 <= r1; r += 4) {
    let acc = f32x4.splat(0)
    const w0 = w + <usize>r * rowBytes
    const s0 = ws + ((<usize>r * nb) << 2), sstride = <usize>nb << 2
    for (let b = 0; b < nb; b++) {
      const xo = xq + <usize>(b * QBLOCK)
      const xlo = v128.load(xo), xhi = v128.load(xo, 16)
      const p = w0 + <usize>(b * 16)
      const d0 = blockDot(p, m15, xlo, xhi), d1 = blockDot(p + rowBytes, m15, xlo, xhi)
      const d2 = blockDot(p + 2 * rowBytes, m15, xlo, xhi), d3 = blockDot(p + 3 * rowBytes, m15, xlo, xhi)
      // [Σd0, Σd1, Σd2, Σd3] − 8·Σx: exact integers
      const t0 = i32x4.add(i32x4.shuffle(d0, d1, 0, 1, 4, 5), i32x4.shuffle(d0, d1, 2, 3, 6, 7))
      const t1 = i32x4.add(i32x4.shuffle(d2, d3, 0, 1, 4, 5), i32x4.shuffle(d2, d3, 2, 3, 6, 7))
      let dots = i32x4.add(i32x4.shuffle(t0, t1, 0, 2, 4, 6), i32x4.shuffle(t0, t1, 1, 3, 5, 7))
      dots = i32x4.sub(dots, v128.load32_splat(xsum8 + (<usize>b << 2)))
      const sb = s0 + (<usize>b << 2)
      let sc = f32x4.splat(load<f32>(sb))
      sc = f32x4.replace_lane(sc, 1, load<f32>(sb + sstride))
      sc = f32x4.replace_lane(sc, 2, load<f32>(sb + 2 * sstride))
      sc = f32x4.replace_lane(sc, 3, load<f32>(sb + 3 * sstride))
      // acc += (ws · xs) · dot, per row
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(sc, v128.load32_splat(xs + (<usize>(b >> 2) << 2))), f32x4.convert_i32x4_s(dots)))
    }
    v128.store(y + (<usize>r << 2), acc)
  }
  // the last < 4 rows of this range, one at a time
  for (; r < r1; r++) matvec_q4b_i8_ref(w, ws, xq, xs, xsum8, y, rows, kp, r, r + 1)
}

/**
 * Builds the Q4B copy from an F16 matrix [rows][k] already in memory (rows split across
 * threads; once at load). Per 32-block the scale is the one, among max|w|/(7 + δ) for a
 * few δ, that minimizes Σ(w − s·q)² with q = clamp(RNE(w/s), −8, 7) (a small version of
 * ggml's make_qx_quants search: plain max|w|/7 costs 3 % more perplexity on tiny-dev).
 */
export function quantize_rows_f16_q4b(src: usize, rows: i32, k: i32, kp: i32, w: usize, ws: usize, first: i32, end: i32): void {
  const nb = kp / QBLOCK
  const range = span(rows, first, end)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    const row = src + (<usize>r * k << 1)
    for (let b = 0; b < nb; b++) {
      const i0 = b * QBLOCK, i1 = min(k, i0 + QBLOCK)
      let amax: f32 = 0
      for (let i = i0; i < i1; i++) amax = max(amax, abs(f16ToF32(load<u16>(row + (<usize>i << 1)))))
      let best: f32 = amax / 7, bestErr: f32 = Infinity
      for (let step = 0; step < SCALE_STEPS; step++) {
        const d: f32 = amax / (<f32>7 + <f32>step * <f32>0.25 - <f32>0.5)
        const inv: f32 = d > 0 ? 1 / d : 0
        let err: f32 = 0
        for (let i = i0; i < i1; i++) {
          const v = f16ToF32(load<u16>(row + (<usize>i << 1)))
          const e = v - d * <f32>q4(v * inv)
          err += e * e
        }
        if (err < bestErr) { bestErr = err; best = d }
      }
      const inv: f32 = best > 0 ? 1 / best : 0
      const p = w + <usize>r * (kp >> 1) + <usize>(b * 16)
      for (let j = 0; j < 16; j++) {
        let lo = 0, hi = 0
        if (i0 + j < i1) lo = q4(f16ToF32(load<u16>(row + (<usize>(i0 + j) << 1))) * inv)
        if (i0 + j + 16 < i1) hi = q4(f16ToF32(load<u16>(row + (<usize>(i0 + j + 16) << 1))) * inv)
        store<u8>(p + <usize>j, <u8>((lo + 8) | ((hi + 8) << 4)))
      }
      store<f32>(ws + ((<usize>r * nb + b) << 2), best)
    }
  }
}

// Candidate scales max|w| / (6.5 + 0.25·step): from "±7 at the edge" to the full −8 reach.
const SCALE_STEPS: i32 = 8

// clamp(RNE(v), −8, 7)
// @ts-ignore: decorator
@inline function q4(v: f32): i32 {
  return <i32>min<f32>(max<f32>(nearest<f32>(v), -8), 7)
}

/** dst[0..n) = row r of the Q4B matrix, dequantized (embedding lookup from the copy). */
export function dequantize_row_q4b(w: usize, ws: usize, r: i32, n: i32, kp: i32, dst: usize): void {
  const nb = kp / QBLOCK
  for (let i = 0; i < n; i++) {
    const b = i / QBLOCK
    const d = load<f32>(ws + ((<usize>r * nb + b) << 2))
    store<f32>(dst + (<usize>i << 2), d * <f32>(nibble(w + <usize>r * (kp >> 1) + <usize>(b * 16), i % QBLOCK) - 8))
  }
}
