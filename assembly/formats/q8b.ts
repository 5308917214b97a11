// Q8B: the byte-per-weight copy of the output projection (the tied embedding, 128256 × 2560
// in 2B4T), made at load. Half the bytes of F16 per token: the projection is the largest
// single read of a decode step (docs/architecture.md#output-projection), a third of its
// time before this layout.
//
// Each weight is one byte c = w + 64 with w ∈ [−63, 63] (127 levels, scale max|w|/63 per
// 128-block), so that c ∈ [1, 127] is the unsigned 7-bit operand of
// `i16x8.relaxed_dot_i8x16_i7x16_s` (one pmaddubsw per 16 weights on x64) and the
// activations stay full int8; 8-bit levels would need the i16 multiply, half the rate.
//
//   weights  u8  [R/4][KP/128][4][128]   R = rows padded to 4, KP = K padded to 128;
//            group g = rows 4g..4g+3, block b: the 4 rows' 128 bytes adjacent, so the
//            4-row pass is one sequential stream (four row streams cost DRAM throughput,
//            docs/kernels.md#weight-streams: +25–40 % measured here)
//   wscale   f32 [R/4][KP/128][4]        per row and block: max|w| / 63
//   x        i8  [T][KP]                 activations per 128-block, −127..127, T tokens
//   xscale   f32 [T][KP/128]             (quantize_blocks_f32_i8, shared with Q4B)
//   xsum8    i32 [T][KP/32]              8 · Σ x per 32-block: 64 · Σ x_b = 8 · Σ of 4 of them
//
//   y[t][r] = Σ_b (wscale[r][b] · xscale[t][b]) · (Σ_{i∈b} c[r][i]·x[t][i] − 64·Σ_{i∈b} x[t][i])
//   summed in f32 in block order; block dots are exact integers. Blocks of 128 like ggml's
//   Q8_0 × Q8_0 (blocks of 32; bitnet.cpp's Q8_0 output: +0.06 % PPL on 2B4T): per-block activation scales
//   keep the error far below per-token scaling.

import { f16ToF32 } from '../ops/half'
import { span } from '../ops/split'
import { codes16, dotAdd, halves4, rowSums, storeGroup } from './group4'

// @ts-ignore: decorator
@inline const BLOCK: i32 = 128
// @ts-ignore: decorator
@inline const LEVEL: i32 = 63 // |w| ≤ LEVEL; c = w + OFFSET
// @ts-ignore: decorator
@inline const OFFSET: i32 = 64

// Byte offset of row r's block b in the weights (kp bytes per row, 4-row groups).
// @ts-ignore: decorator
@inline function blockAt(r: i32, b: i32, kp: i32): usize {
  return <usize>(r >> 2) * (<usize>kp << 2) + <usize>(b * 4 * BLOCK + (r & 3) * BLOCK)
}

// Byte offset of row r's block-b scale.
// @ts-ignore: decorator
@inline function scaleAt(r: i32, b: i32, nb: i32): usize {
  return ((<usize>(r >> 2) * <usize>nb + <usize>b) << 4) + (<usize>(r & 3) << 2)
}

// 64 · Σ x over 128-block b, from the four 32-block sums 8 · Σ x.
// @ts-ignore: decorator
@inline function offsetSum(xsum8: usize, b: i32): i32 {
  const p = xsum8 + (<usize>b << 4)
  return (load<i32>(p) + load<i32>(p, 4) + load<i32>(p, 8) + load<i32>(p, 12)) << 3
}

// Activations of token t: xq + t·kp (i8), xs + t·KP/128 (f32), xsum8 + t·KP/32 (i32);
// its outputs: y + t·rows (f32).

/** Scalar reference of matmul_q8b_i8: 4-row groups split across threads, like the kernel. */
export function matmul_q8b_i8_ref(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                                  rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  const nb = kp / BLOCK
  const range = span((rows + 3) >> 2, first, end)
  for (let t = 0; t < ntok; t++) {
    const xt = xq + <usize>(t * kp), st = xs + (<usize>(t * nb) << 2), ot = xsum8 + (<usize>(t * nb) << 4)
    for (let r = <i32>(range >> 32) * 4; r < min(rows, <i32>range * 4); r++) store<f32>(y + (<usize>(t * rows + r) << 2), rowRef(w, ws, xt, st, ot, r, kp))
  }
}

// Row r's logit for one token's activations (xt, st, ot), summed as the kernels sum it.
// @ts-ignore: decorator
@inline function rowRef(w: usize, ws: usize, xt: usize, st: usize, ot: usize, r: i32, kp: i32): f32 {
  const nb = kp / BLOCK
  let acc: f32 = 0
  for (let b = 0; b < nb; b++) {
    const p = w + blockAt(r, b, kp)
    let dot = 0
    for (let i = 0; i < BLOCK; i++) dot += <i32>load<u8>(p + <usize>i) * <i32>load<i8>(xt + <usize>(b * BLOCK + i))
    dot -= offsetSum(ot, b)
    acc += load<f32>(ws + scaleAt(r, b, nb)) * load<f32>(st + (<usize>b << 2)) * <f32>dot
  }
  return acc
}

/** Scalar reference of rescore_q8b_i8. */
export function rescore_q8b_i8_ref(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                                   rows: i32, kp: i32, groups: usize, count: i32, first: i32, end: i32): void {
  const range = span(count, first, end)
  for (let i = <i32>(range >> 32); i < <i32>range; i++) {
    const g = load<i32>(groups + (<usize>i << 2))
    for (let r = g * 4; r < min(rows, g * 4 + 4); r++) store<f32>(y + (<usize>r << 2), rowRef(w, ws, xq, xs, xsum8, r, kp))
  }
}

/**
 * One token's logits of the listed 4-row groups only (`count` i32 group indices at `groups`,
 * items of the thread split): the exact rescoring of a bounded output head's candidates
 * (src/model/output-head.ts). Each group is the tile matmul_q8b_i8 runs for it, so every
 * logit is bit for bit the one the full pass gives.
 */
export function rescore_q8b_i8(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                               rows: i32, kp: i32, groups: usize, count: i32, first: i32, end: i32): void {
  const range = span(count, first, end)
  for (let i = <i32>(range >> 32); i < <i32>range; i++) tile(w, ws, xq, xs, xsum8, y, rows, kp, load<i32>(groups + (<usize>i << 2)), 0, 1)
}

// Tokens per pass over a group: 2 on the relaxed build (each weight load serves both; 8
// accumulators + 4 weights + 2 activations fit x64's 16 vector registers), 1 on the
// baseline, whose widened activations take 2 more registers per token.
// @ts-ignore: decorator
@inline const PAIR: i32 = ASC_FEATURE_RELAXED_SIMD ? 2 : 1

/**
 * SIMD kernel: one 4-row group at a time, read as one stream; every token of the batch runs
 * over the group while its 4·KP bytes sit in L1 (one DRAM pass per batch: several sessions'
 * decode steps share it), in tiles of PAIR tokens. Per token and block the 4 rows share
 * every activation load, and their dots are reduced together (one transpose) and scaled as
 * one f32x4 in the _ref's order: bit-exact with it.
 */
export function matmul_q8b_i8(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                              rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  const range = span((rows + 3) >> 2, first, end)
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    let t = 0
    for (; t + PAIR <= ntok; t += PAIR) tile(w, ws, xq, xs, xsum8, y, rows, kp, g, t, PAIR)
    if (t < ntok) tile(w, ws, xq, xs, xsum8, y, rows, kp, g, t, 1)
  }
}

// Group g × tokens t .. t+T (T = 1 or 2, a literal at each call: the branches on it fold).
// @ts-ignore: decorator
@inline function tile(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                      rows: i32, kp: i32, g: i32, t: i32, T: i32): void {
  const nb = kp / BLOCK
  const x0 = xq + <usize>(t * kp), x1 = x0 + <usize>kp
  let acc0 = f32x4.splat(0), acc1 = acc0
  let p = w + <usize>g * (<usize>kp << 2), sp = ws + ((<usize>g * <usize>nb) << 4)
  for (let b = 0; b < nb; b++) {
    // d<row> for token t, e<row> for token t + 1
    let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0, e0 = d0, e1 = d0, e2 = d0, e3 = d0
    for (let j: usize = 0; j < <usize>BLOCK; j += 16) {
      const o = <usize>(b * BLOCK) + j
      const x = v128.load(x0 + o), z = T > 1 ? v128.load(x1 + o) : x
      let xl = x, xh = x
      if (!ASC_FEATURE_RELAXED_SIMD) {
        xl = i16x8.extend_low_i8x16_s(x)
        xh = i16x8.extend_high_i8x16_s(x)
      }
      let c = v128.load(p + j)
      d0 = dotAdd(d0, c, x, xl, xh); if (T > 1) e0 = dotAdd(e0, c, z, z, z)
      c = v128.load(p + j, BLOCK)
      d1 = dotAdd(d1, c, x, xl, xh); if (T > 1) e1 = dotAdd(e1, c, z, z, z)
      c = v128.load(p + j, 2 * BLOCK)
      d2 = dotAdd(d2, c, x, xl, xh); if (T > 1) e2 = dotAdd(e2, c, z, z, z)
      c = v128.load(p + j, 3 * BLOCK)
      d3 = dotAdd(d3, c, x, xl, xh); if (T > 1) e3 = dotAdd(e3, c, z, z, z)
    }
    acc0 = scaleBlock(acc0, d0, d1, d2, d3, sp, xs, xsum8, t, nb, b)
    if (T > 1) acc1 = scaleBlock(acc1, e0, e1, e2, e3, sp, xs, xsum8, t + 1, nb, b)
    p += 4 * BLOCK
    sp += 16
  }
  storeGroup(y, rows, g, t, acc0)
  if (T > 1) storeGroup(y, rows, g, t + 1, acc1)
}

// acc + (wscale · xscale) · ([Σd0, Σd1, Σd2, Σd3] − 64·Σx) for block b of token t, scaled per row.
// @ts-ignore: decorator
@inline function scaleBlock(acc: v128, d0: v128, d1: v128, d2: v128, d3: v128, sp: usize,
                            xs: usize, xsum8: usize, t: i32, nb: i32, b: i32): v128 {
  const dots = i32x4.sub(rowSums(d0, d1, d2, d3), i32x4.splat(offsetSum(xsum8 + (<usize>(t * nb) << 4), b)))
  const st = xs + (<usize>(t * nb) << 2)
  return f32x4.add(acc, f32x4.mul(f32x4.mul(v128.load(sp), v128.load32_splat(st + (<usize>b << 2))), f32x4.convert_i32x4_s(dots)))
}

/**
 * Builds the Q8B copy from an F16 matrix [rows][k] already in memory (rows split across
 * threads: this runs once at load, over 328 M weights for 2B4T, so full blocks take a
 * SIMD path with the scalar one's exact arithmetic). Rows are local to this call: a chunk
 * of a larger matrix starts at a multiple of 4 rows (its own groups).
 */
export function quantize_rows_f16_q8b(src: usize, rows: i32, k: i32, kp: i32, w: usize, ws: usize, first: i32, end: i32): void {
  const nb = kp / BLOCK
  const range = span(rows, first, end)
  const m15 = i32x4.splat(0x7fff), sign = i32x4.splat(0x8000), scale = f32x4.splat(reinterpret<f32>(0x77800000)) // 2^112
  const hi = i16x8.splat(<i16>LEVEL), lo = i16x8.splat(<i16>-LEVEL), off = i16x8.splat(<i16>OFFSET)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    const row = src + (<usize>r * k << 1)
    for (let b = 0; b < nb; b++) {
      const i0 = b * BLOCK, i1 = min(k, i0 + BLOCK)
      const p = w + blockAt(r, b, kp)
      let d: f32
      if (i1 - i0 == BLOCK) {
        const hb = row + (<usize>i0 << 1)
        let m = f32x4.splat(0)
        for (let j = 0; j < BLOCK; j += 8) {
          const h = v128.load(hb + (<usize>j << 1))
          m = f32x4.max(m, f32x4.max(f32x4.abs(halves4(h, false, m15, sign, scale)), f32x4.abs(halves4(h, true, m15, sign, scale))))
        }
        const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)))
        d = amax / <f32>LEVEL
        const inv = f32x4.splat(d > 0 ? 1 / d : 0)
        for (let j = 0; j < BLOCK; j += 16) {
          const h0 = v128.load(hb + (<usize>j << 1)), h1 = v128.load(hb + (<usize>j << 1), 16)
          v128.store(p + <usize>j, codes16(halves4(h0, false, m15, sign, scale), halves4(h0, true, m15, sign, scale),
            halves4(h1, false, m15, sign, scale), halves4(h1, true, m15, sign, scale), inv, lo, hi, off))
        }
      } else { // the last, partial block of a row: scalar, zeros beyond k
        let amax: f32 = 0
        for (let i = i0; i < i1; i++) amax = max(amax, abs(f16ToF32(load<u16>(row + (<usize>i << 1)))))
        d = amax / <f32>LEVEL
        const inv: f32 = d > 0 ? 1 / d : 0
        for (let i = i0; i < i0 + BLOCK; i++) {
          const v = i < i1 ? <i32>nearest<f32>(f16ToF32(load<u16>(row + (<usize>i << 1))) * inv) : 0
          store<u8>(p + <usize>(i - i0), <u8>(min(LEVEL, max(-LEVEL, v)) + OFFSET))
        }
      }
      store<f32>(ws + scaleAt(r, b, nb), d)
    }
  }
}

/** dst[0..n) = row r of the Q8B matrix, dequantized (embedding lookup from the copy). */
export function dequantize_row_q8b(w: usize, ws: usize, r: i32, n: i32, kp: i32, dst: usize): void {
  const nb = kp / BLOCK
  for (let i = 0; i < n; i++) {
    const b = i / BLOCK
    const c = <i32>load<u8>(w + blockAt(r, b, kp) + <usize>(i % BLOCK))
    store<f32>(dst + (<usize>i << 2), load<f32>(ws + scaleAt(r, b, nb)) * <f32>(c - OFFSET))
  }
}
