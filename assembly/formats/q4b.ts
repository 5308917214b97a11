// Q4B: the 4-bit copy of the output projection (the tied embedding, 128256 × 2560 in
// 2B4T), made at load: 5 bits per weight with its scales, 0.6× the bytes of Q8B. The
// projection is the largest single read of a decode step and DRAM-bound in Q8B, so fewer
// bytes are time saved (bitnet.cpp stores it as Q6_K for the same reason).
//
//   weights  u8  [R/4][KP/32][4][16]   R = rows padded to 4; group g = rows 4g..4g+3,
//            32-column block b: the 4 rows' 16 bytes adjacent, so a 4-row pass is one
//            sequential stream (as Q8B); byte j of a row's block holds
//            ┌──────────────────┬──────────────────┐
//            │ 7:4 w[32b+j+16]+8 │ 3:0 w[32b+j]+8  │   w ∈ [−8, 7] (|w| ≤ 7 from the scale)
//            └──────────────────┴──────────────────┘
//   wscale   f32 [R/4][KP/32][4]  per row and 32-block: ≈ max|w| / 7 (searched,
//            quantize_rows_f16_q4b); a group's 4 scales of a block are one vector load
//   x        i8  [KP]           activations per 128-block, −127..127 (quantize_blocks_f32_i8)
//   xscale   f32 [KP/128]
//   xsum8    i32 [KP/32]        8 · Σ x over each 32-block (the nibbles' +8 offset)
//
//   y[r] = Σ_b (wscale[r][b] · xscale[b/4]) · (Σ_{i∈b} nib[r][i]·x[i] − xsum8[b])
//   summed in f32 in block order; block dots are exact integers. Nibbles 0..15 are the
//   unsigned 7-bit operand of `i16x8.relaxed_dot_i8x16_i7x16_s`.

import { f16ToF32 } from '../ops/half'
import { span } from '../ops/split'
import { dequantize_row_q8b } from './q8b'

const QBLOCK: i32 = 32 // weights per scale
const XBLOCK: i32 = 128 // activations per scale

// Byte offset of row r's block b in the weights (kp/2 bytes per row, 4-row groups).
// @ts-ignore: decorator
@inline function blockAt(r: i32, b: i32, kp: i32): usize {
  return <usize>(r >> 2) * (<usize>kp << 1) + <usize>(b * 64 + (r & 3) * 16)
}

// Byte offset of row r's block-b scale.
// @ts-ignore: decorator
@inline function scaleAt(r: i32, b: i32, nb: i32): usize {
  return ((<usize>(r >> 2) * <usize>nb + <usize>b) << 4) + (<usize>(r & 3) << 2)
}

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

/** Scalar reference of matvec_q4b_i8: 4-row groups split across threads, like the kernel. */
export function matvec_q4b_i8_ref(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                                  rows: i32, kp: i32, first: i32, end: i32): void {
  const nb = kp / QBLOCK
  const range = span((rows + 3) >> 2, first, end)
  for (let r = <i32>(range >> 32) * 4; r < min(rows, <i32>range * 4); r++) {
    let acc: f32 = 0
    for (let b = 0; b < nb; b++) {
      const p = w + blockAt(r, b, kp)
      let dot = 0
      for (let i = 0; i < QBLOCK; i++) dot += nibble(p, i) * <i32>load<i8>(xq + <usize>(b * QBLOCK + i))
      dot -= load<i32>(xsum8 + (<usize>b << 2))
      acc += load<f32>(ws + scaleAt(r, b, nb)) * load<f32>(xs + (<usize>(b >> 2) << 2)) * <f32>dot
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
 * SIMD kernel, one 4-row group per pass (items: groups), read as one stream: the 4 rows share
 * the activation loads, their block dots are reduced together (one transpose) and scaled as
 * one f32x4 with the group's 4 scales of the block, in the _ref's order: bit-exact with it.
 */
export function matvec_q4b_i8(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                              rows: i32, kp: i32, first: i32, end: i32): void {
  const nb = kp / QBLOCK
  const range = span((rows + 3) >> 2, first, end)
  const m15 = i8x16.splat(<i8>((kp >>> 31) | 15)) // runtime-built constant (see matvec_i2s_i8)
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    let acc = f32x4.splat(0)
    let p = w + <usize>g * (<usize>kp << 1), sp = ws + ((<usize>g * <usize>nb) << 4)
    for (let b = 0; b < nb; b++) {
      const xo = xq + <usize>(b * QBLOCK)
      const xlo = v128.load(xo), xhi = v128.load(xo, 16)
      const d0 = blockDot(p, m15, xlo, xhi), d1 = blockDot(p + 16, m15, xlo, xhi)
      const d2 = blockDot(p + 32, m15, xlo, xhi), d3 = blockDot(p + 48, m15, xlo, xhi)
      // [Σd0, Σd1, Σd2, Σd3] − 8·Σx: exact integers
      const t0 = i32x4.add(i32x4.shuffle(d0, d1, 0, 1, 4, 5), i32x4.shuffle(d0, d1, 2, 3, 6, 7))
      const t1 = i32x4.add(i32x4.shuffle(d2, d3, 0, 1, 4, 5), i32x4.shuffle(d2, d3, 2, 3, 6, 7))
      let dots = i32x4.add(i32x4.shuffle(t0, t1, 0, 2, 4, 6), i32x4.shuffle(t0, t1, 1, 3, 5, 7))
      dots = i32x4.sub(dots, v128.load32_splat(xsum8 + (<usize>b << 2)))
      // acc += (ws · xs) · dot, per row
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(v128.load(sp), v128.load32_splat(xs + (<usize>(b >> 2) << 2))), f32x4.convert_i32x4_s(dots)))
      p += 64
      sp += 16
    }
    const r = g * 4
    if (r + 4 <= rows) v128.store(y + (<usize>r << 2), acc)
    else for (let j = 0; j < rows - r; j++) store<f32>(y + (<usize>(r + j) << 2), j == 0 ? f32x4.extract_lane(acc, 0) : j == 1 ? f32x4.extract_lane(acc, 1) : f32x4.extract_lane(acc, 2))
  }
}

/**
 * Builds the Q4B copy from an F16 matrix [rows][k] already in memory (rows split across
 * threads; once at load). Rows are local to this call: a chunk of a larger matrix starts
 * at a multiple of 4 rows (its own groups). Per 32-block the scale is the one, among max|w|/(7 + δ) for a
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
      const p = w + blockAt(r, b, kp)
      for (let j = 0; j < 16; j++) {
        let lo = 0, hi = 0
        if (i0 + j < i1) lo = q4(f16ToF32(load<u16>(row + (<usize>(i0 + j) << 1))) * inv)
        if (i0 + j + 16 < i1) hi = q4(f16ToF32(load<u16>(row + (<usize>(i0 + j + 16) << 1))) * inv)
        store<u8>(p + <usize>j, <u8>((lo + 8) | ((hi + 8) << 4)))
      }
      store<f32>(ws + scaleAt(r, b, nb), best)
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
    const d = load<f32>(ws + scaleAt(r, b, nb))
    store<f32>(dst + (<usize>i << 2), d * <f32>(nibble(w + blockAt(r, b, kp), i % QBLOCK) - 8))
  }
}

/**
 * Per row r of a matrix held both as Q4B (w4, ws4) and Q8B (w8, ws8): e[r] (f32) such that
 * for any activations x̂ (x̂_i = xscale[i/128] · x[i], the int8 blocks both kernels read)
 *
 *   |y8[r] − y4[r]| ≤ e[r] · ‖x̂‖₂      y8: matmul_q8b_i8's f32 result, y4: matvec_q4b_i8's
 *
 * the bound behind the output head that scores every row with the 4-bit copy and rescores
 * exactly, with the 8-bit one, only the rows that can still win (src/model/output-head.ts).
 * In real numbers y8 − y4 = (w8 − w4) · x̂, at most ‖w8 − w4‖₂ · ‖x̂‖₂ (Cauchy–Schwarz). Each
 * kernel sums nb block terms fl(fl(ws · xs) · dot) in f32 (dots are exact integers), which is
 * off by at most γ(nb + 1) · Σ|w_i x̂_i| ≤ γ(nb + 1) · ‖w‖₂ ‖x̂‖₂ with γ(n) = n·2⁻²⁴ / (1 − n·2⁻²⁴);
 * the rows dequantized here to f32 are off by 2⁻²⁴ relatively. Hence, in f64,
 *
 *   e = (‖d8 − d4‖₂ + (nb4 + nb8 + 6) · 2⁻²³ · (‖d8‖₂ + ‖d4‖₂)) · (1 + 2⁻²⁰)
 *
 * (2⁻²³ covers γ's denominator, 1 + 2⁻²⁰ the rounding of e to f32 and of the f64 sums).
 * `tmp`: 8·k bytes of scratch. Rows are local to this call, as in the conversions.
 */
export function bound_rows_q4b_q8b(w4: usize, ws4: usize, w8: usize, ws8: usize, rows: i32, k: i32, kp: i32,
                                   tmp: usize, e: usize, first: i32, end: i32): void {
  const range = span(rows, first, end)
  const d4 = tmp, d8 = tmp + (<usize>k << 2)
  const slack = <f64>(kp / QBLOCK + kp / XBLOCK + 6) * 1.1920928955078125e-7 // · 2⁻²³
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    dequantize_row_q4b(w4, ws4, r, k, kp, d4)
    dequantize_row_q8b(w8, ws8, r, k, kp, d8)
    let diff: f64 = 0, n4: f64 = 0, n8: f64 = 0
    for (let i = 0; i < k; i++) {
      const a = <f64>load<f32>(d4 + (<usize>i << 2)), b = <f64>load<f32>(d8 + (<usize>i << 2))
      diff += (b - a) * (b - a)
      n4 += a * a
      n8 += b * b
    }
    const bound = (Math.sqrt(diff) + slack * (Math.sqrt(n4) + Math.sqrt(n8))) * (1 + 9.5367431640625e-7) // · (1 + 2⁻²⁰)
    store<f32>(e + (<usize>r << 2), <f32>bound)
  }
}
