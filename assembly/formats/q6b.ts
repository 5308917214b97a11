// Q6B: the 6-bit copy of the output projection (the tied embedding, 128256 × 2560 in 2B4T),
// made at load: 6.25 bits per weight with its scales, 0.77× the bytes of Q8B (bitnet.cpp
// stores this matrix as Q6_K, 6.56 bits, for the same reason: it is the largest single read
// of a decode step, DRAM-bound in Q8B).
//
// Each weight is a code c = w + 32, w ∈ [−32, 31] (the scale is the block's signed extreme
// / −32, so the extreme is exact, as ggml's Q4_0 does), and c ∈ [0, 63] is the unsigned 7-bit
// operand of `i32x4.relaxed_dot_i8x16_i7x16_add_s`, as Q8B's codes are. Three planes of 16
// bytes hold a unit of 64 codes: the low 6 bits of a plane's byte j are c[16P + j] (plane
// P = 0, 1, 2), and its top 2 bits a third of c[48 + j] (bits 0–1 in plane 0, 2–3 in 1, 4–5
// in 2), so a unit unpacks with 6 ands, 3 shifts and 2 ors, without shuffles.
//
//   weights  u8  [R/4][KP/64][4][48]   R = rows padded to 4, KP = K padded to 128; group
//            g = rows 4g..4g+3, unit u: the 4 rows' 48 bytes adjacent, so the 4-row pass
//            is one sequential stream (as Q8B)
//   wscale   f32 [R/4][KP/SBLOCK][4]   per row and SBLOCK-block: signed max / −32
//   x        i8  [T][KP], xscale f32 [T][KP/128], xsum8 i32 [T][KP/32]   as Q8B reads them
//
//   y[t][r] = Σ_b (wscale[r][b] · xscale[t][b]) · (Σ_{i∈b} c[r][i]·x[t][i] − 32·Σ_{i∈b} x[t][i])
//   summed in f32 in block order; block dots are exact integers. Scale blocks of 128, as
//   Q8B's and the activations': tiny-dev's perplexity +0.19 % against F16 (Q8B: +0.24 %);
//   blocks of 64 measured +0.04 %, for 4 % more bytes and twice the block reductions, which
//   a kernel this close to compute-bound pays for (`bitnet ppl --output-type q6`).

import { f16ToF32 } from '../ops/half'
import { span } from '../ops/split'
import { codes16, dotAdd, halves4, rowSums, storeGroup } from './group4'

// @ts-ignore: decorator
@inline const UNIT: i32 = 64 // codes per 48 bytes
// @ts-ignore: decorator
@inline const SBLOCK: i32 = 128 // weights per scale: a multiple of UNIT dividing 128 (see above)
// @ts-ignore: decorator
@inline const OFFSET: i32 = 32 // c = w + OFFSET, w ∈ [−32, 31]

// Byte offset of row r's unit u in the weights (3·kp/4 bytes per row, 4-row groups).
// @ts-ignore: decorator
@inline function unitAt(r: i32, u: i32, kp: i32): usize {
  return <usize>(r >> 2) * <usize>(kp * 3) + <usize>(u * 192 + (r & 3) * 48)
}

// Byte offset of row r's block-b scale.
// @ts-ignore: decorator
@inline function scaleAt(r: i32, b: i32, nb: i32): usize {
  return ((<usize>(r >> 2) * <usize>nb + <usize>b) << 4) + (<usize>(r & 3) << 2)
}

// Code i (0..63) of the unit at p.
// @ts-ignore: decorator
@inline function code(p: usize, i: i32): i32 {
  if (i < 48) return <i32>load<u8>(p + <usize>i) & 63
  const j = <usize>(i - 48)
  return (<i32>load<u8>(p + j) >> 6) | ((<i32>load<u8>(p + j + 16) >> 6) << 2) | ((<i32>load<u8>(p + j + 32) >> 6) << 4)
}

// 32 · Σ x over SBLOCK-block b, from the 32-block sums 8 · Σ x.
// @ts-ignore: decorator
@inline function offsetSum(xsum8: usize, b: i32): i32 {
  let s = 0
  for (let i = 0; i < SBLOCK / 32; i++) s += load<i32>(xsum8 + (<usize>(b * (SBLOCK / 32) + i) << 2))
  return s << 2
}

// Activations of token t: xq + t·kp (i8), xs + t·KP/128 (f32), xsum8 + t·KP/32 (i32);
// its outputs: y + t·rows (f32).

/** Scalar reference of matmul_q6b_i8: 4-row groups split across threads, like the kernel. */
export function matmul_q6b_i8_ref(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                                  rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  const nb = kp / SBLOCK
  const range = span((rows + 3) >> 2, first, end)
  for (let t = 0; t < ntok; t++) {
    const xt = xq + <usize>(t * kp), st = xs + (<usize>(t * (kp / 128)) << 2), ot = xsum8 + (<usize>(t * (kp / 32)) << 2)
    for (let r = <i32>(range >> 32) * 4; r < min(rows, <i32>range * 4); r++) {
      let acc: f32 = 0
      for (let b = 0; b < nb; b++) {
        let dot = 0
        for (let i = b * SBLOCK; i < (b + 1) * SBLOCK; i++) dot += code(w + unitAt(r, i / UNIT, kp), i % UNIT) * <i32>load<i8>(xt + <usize>i)
        dot -= offsetSum(ot, b)
        acc += load<f32>(ws + scaleAt(r, b, nb)) * load<f32>(st + (<usize>(b * SBLOCK / 128) << 2)) * <f32>dot
      }
      store<f32>(y + (<usize>(t * rows + r) << 2), acc)
    }
  }
}

// The top codes c[48 + j] of a unit from its 3 planes a, b, c. Plane bytes masked to their
// top 2 bits before the 16-bit shifts: no bit crosses a byte.
// @ts-ignore: decorator
@inline function topCodes(a: v128, b: v128, c: v128, top: v128): v128 {
  return v128.or(v128.or(i16x8.shr_u(v128.and(a, top), 6), i16x8.shr_u(v128.and(b, top), 4)), i16x8.shr_u(v128.and(c, top), 2))
}

// acc + the dot of a unit (planes a, b, c; top codes hi) with one token's activations at x (64).
// @ts-ignore: decorator
@inline function unitDot(acc: v128, a: v128, b: v128, c: v128, hi: v128, m63: v128, x: usize): v128 {
  acc = dot16(acc, v128.and(a, m63), v128.load(x))
  acc = dot16(acc, v128.and(b, m63), v128.load(x, 16))
  acc = dot16(acc, v128.and(c, m63), v128.load(x, 32))
  return dot16(acc, hi, v128.load(x, 48))
}

// dotAdd with the baseline build's widened activations made here (relaxed: not needed).
// @ts-ignore: decorator
@inline function dot16(acc: v128, c: v128, x: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return dotAdd(acc, c, x, x, x)
  return dotAdd(acc, c, x, i16x8.extend_low_i8x16_s(x), i16x8.extend_high_i8x16_s(x))
}

/**
 * SIMD kernel: one 4-row group at a time, read as one stream; every token of the batch runs
 * over the group while its 3·KP bytes sit in L1 (one DRAM pass per batch), in tiles of 4
 * tokens, then 3 (as 4), 2 or 1, so a verification pass of n rows unpacks each unit's codes
 * ⌈n/4⌉ or so times, not n (the unpack costs about what the dots do). Per tile the dots are
 * reduced (one transpose per block) and scaled in f32 in the _ref's order: bit-exact with it.
 */
export function matmul_q6b_i8(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                              rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  const range = span((rows + 3) >> 2, first, end)
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    let t = 0
    for (; t + 4 <= ntok; t += 4) quad(w, ws, xq, xs, xsum8, y, rows, kp, g, t, 4)
    if (ntok - t == 3) quad(w, ws, xq, xs, xsum8, y, rows, kp, g, t, 3) // its 4th lane repeats the 3rd: still cheaper than 2 + 1
    else if (ntok - t == 2) tile(w, ws, xq, xs, xsum8, y, rows, kp, g, t, 2)
    else if (ntok - t == 1) tile(w, ws, xq, xs, xsum8, y, rows, kp, g, t, 1)
  }
}

// Group g × tokens t .. t+T (T = 3 or 4, a literal: lane 3 repeats token t+2 when T = 3), row
// by row: each unit of a row unpacked once for the 4 lanes, whose accumulators are reduced
// together (lanes: tokens), so a row's logits sit in one f32x4 (a0..a3: rows 4g..4g+3) and
// the live vectors fit 16 registers.
// @ts-ignore: decorator
@inline function quad(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                      rows: i32, kp: i32, g: i32, t: i32, T: i32): void {
  const nb = kp / SBLOCK
  // runtime-built constants (see matvec_i2s_i8)
  const m63 = i8x16.splat(<i8>((kp >>> 31) | 63)), top = i8x16.splat(<i8>((kp >>> 31) | 0xc0))
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0
  let p = w + <usize>g * <usize>(kp * 3), sp = ws + ((<usize>g * <usize>nb) << 4)
  for (let b = 0; b < nb; b++) {
    // per token (lanes): 32 · Σx and the activation scale of block b
    const o = xsum8 + (<usize>(t * (kp / 32)) << 2), os = <usize>(kp / 8), l3 = <usize>(T - 1)
    const off = i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(offsetSum(o, b)),
      1, offsetSum(o + os, b)), 2, offsetSum(o + 2 * os, b)), 3, offsetSum(o + l3 * os, b))
    const st = xs + (<usize>(t * (kp / 128) + b * SBLOCK / 128) << 2), ss = <usize>(kp / 32)
    const xsc = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(load<f32>(st)),
      1, load<f32>(st + ss)), 2, load<f32>(st + 2 * ss)), 3, load<f32>(st + l3 * ss))
    const x = xq + <usize>(t * kp + b * SBLOCK)
    a0 = quadRow(a0, p, x, kp, T, m63, top, off, xsc, load<f32>(sp))
    a1 = quadRow(a1, p + 48, x, kp, T, m63, top, off, xsc, load<f32>(sp, 4))
    a2 = quadRow(a2, p + 96, x, kp, T, m63, top, off, xsc, load<f32>(sp, 8))
    a3 = quadRow(a3, p + 144, x, kp, T, m63, top, off, xsc, load<f32>(sp, 12))
    p += (SBLOCK / UNIT) * 192
    sp += 16
  }
  storeTokens(y, rows, g * 4, t, T, a0)
  storeTokens(y, rows, g * 4 + 1, t, T, a1)
  storeTokens(y, rows, g * 4 + 2, t, T, a2)
  storeTokens(y, rows, g * 4 + 3, t, T, a3)
}

// acc + row block b of 4 lanes of tokens: the row's 2 units at p (the next one 192 bytes on),
// the tokens' activations at x, x + kp, … (lane 3: x + (T − 1)·kp); scaled as the _ref does,
// (wscale · xscale) · dot.
// @ts-ignore: decorator
@inline function quadRow(acc: v128, p: usize, x: usize, kp: i32, T: i32, m63: v128, top: v128, off: v128, xsc: v128, wsc: f32): v128 {
  let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0
  const k = <usize>kp
  for (let u = 0; u < SBLOCK / UNIT; u++) {
    const q = p + <usize>(u * 192), xu = x + <usize>(u * UNIT)
    const a = v128.load(q), bb = v128.load(q, 16), c = v128.load(q, 32), hi = topCodes(a, bb, c, top)
    d0 = unitDot(d0, a, bb, c, hi, m63, xu)
    d1 = unitDot(d1, a, bb, c, hi, m63, xu + k)
    d2 = unitDot(d2, a, bb, c, hi, m63, xu + 2 * k)
    d3 = unitDot(d3, a, bb, c, hi, m63, xu + <usize>(T - 1) * k)
  }
  const dots = i32x4.sub(rowSums(d0, d1, d2, d3), off)
  return f32x4.add(acc, f32x4.mul(f32x4.mul(f32x4.splat(wsc), xsc), f32x4.convert_i32x4_s(dots)))
}

// y[t + j][r] = lane j of acc (j < T), for a row r < rows.
// @ts-ignore: decorator
@inline function storeTokens(y: usize, rows: i32, r: i32, t: i32, T: i32, acc: v128): void {
  if (r >= rows) return
  const p = y + (<usize>(t * rows + r) << 2), s = <usize>rows << 2
  store<f32>(p, f32x4.extract_lane(acc, 0))
  store<f32>(p + s, f32x4.extract_lane(acc, 1))
  store<f32>(p + 2 * s, f32x4.extract_lane(acc, 2))
  if (T > 3) store<f32>(p + 3 * s, f32x4.extract_lane(acc, 3))
}

// Group g × tokens t .. t+T (T = 1 or 2, a literal at each call: the branches on it fold),
// rows interleaved: per unit, each row's codes unpacked once for the T tokens.
// @ts-ignore: decorator
@inline function tile(w: usize, ws: usize, xq: usize, xs: usize, xsum8: usize, y: usize,
                      rows: i32, kp: i32, g: i32, t: i32, T: i32): void {
  const nb = kp / SBLOCK
  // runtime-built constants (see matvec_i2s_i8)
  const m63 = i8x16.splat(<i8>((kp >>> 31) | 63)), top = i8x16.splat(<i8>((kp >>> 31) | 0xc0))
  const x0 = xq + <usize>(t * kp), x1 = x0 + <usize>kp
  let acc0 = f32x4.splat(0), acc1 = acc0
  let p = w + <usize>g * <usize>(kp * 3), sp = ws + ((<usize>g * <usize>nb) << 4)
  for (let b = 0; b < nb; b++) {
    // d<row> for token t, e<row> for token t + 1
    let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0, e0 = d0, e1 = d0, e2 = d0, e3 = d0
    for (let u = 0; u < SBLOCK / UNIT; u++) {
      const o = <usize>(b * SBLOCK + u * UNIT)
      let a: v128, bb: v128, c: v128, hi: v128
      a = v128.load(p); bb = v128.load(p, 16); c = v128.load(p, 32); hi = topCodes(a, bb, c, top)
      d0 = unitDot(d0, a, bb, c, hi, m63, x0 + o); if (T > 1) e0 = unitDot(e0, a, bb, c, hi, m63, x1 + o)
      a = v128.load(p, 48); bb = v128.load(p, 64); c = v128.load(p, 80); hi = topCodes(a, bb, c, top)
      d1 = unitDot(d1, a, bb, c, hi, m63, x0 + o); if (T > 1) e1 = unitDot(e1, a, bb, c, hi, m63, x1 + o)
      a = v128.load(p, 96); bb = v128.load(p, 112); c = v128.load(p, 128); hi = topCodes(a, bb, c, top)
      d2 = unitDot(d2, a, bb, c, hi, m63, x0 + o); if (T > 1) e2 = unitDot(e2, a, bb, c, hi, m63, x1 + o)
      a = v128.load(p, 144); bb = v128.load(p, 160); c = v128.load(p, 176); hi = topCodes(a, bb, c, top)
      d3 = unitDot(d3, a, bb, c, hi, m63, x0 + o); if (T > 1) e3 = unitDot(e3, a, bb, c, hi, m63, x1 + o)
      p += 192
    }
    acc0 = scaleBlock(acc0, d0, d1, d2, d3, sp, xs, xsum8, t, kp, b)
    if (T > 1) acc1 = scaleBlock(acc1, e0, e1, e2, e3, sp, xs, xsum8, t + 1, kp, b)
    sp += 16
  }
  storeGroup(y, rows, g, t, acc0)
  if (T > 1) storeGroup(y, rows, g, t + 1, acc1)
}

// acc + (wscale · xscale) · ([Σd0, Σd1, Σd2, Σd3] − 32·Σx) for block b of token t, scaled per row.
// @ts-ignore: decorator
@inline function scaleBlock(acc: v128, d0: v128, d1: v128, d2: v128, d3: v128, sp: usize,
                            xs: usize, xsum8: usize, t: i32, kp: i32, b: i32): v128 {
  const dots = i32x4.sub(rowSums(d0, d1, d2, d3), i32x4.splat(offsetSum(xsum8 + (<usize>(t * (kp / 32)) << 2), b)))
  const st = xs + (<usize>(t * (kp / 128)) << 2)
  return f32x4.add(acc, f32x4.mul(f32x4.mul(v128.load(sp), v128.load32_splat(st + (<usize>(b * SBLOCK / 128) << 2))), f32x4.convert_i32x4_s(dots)))
}

/**
 * Builds the Q6B copy from an F16 matrix [rows][k] already in memory (rows split across
 * threads; once at load, over 328 M weights for 2B4T, so full blocks take a SIMD path with
 * the scalar one's exact arithmetic). Rows are local to this call: a chunk of a larger
 * matrix starts at a multiple of 4 rows (its own groups). Per block the scale is d = m / −32,
 * m the block's value of largest magnitude (the first of ±m: the positive), and
 * c = clamp(RNE(w · (1/d)), −32, 31) + 32 in f32.
 */
export function quantize_rows_f16_q6b(src: usize, rows: i32, k: i32, kp: i32, w: usize, ws: usize, first: i32, end: i32): void {
  const nb = kp / SBLOCK
  const range = span(rows, first, end)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    const row = src + (<usize>r * k << 1)
    for (let b = 0; b < nb; b++) {
      const i0 = b * SBLOCK
      const d = i0 + SBLOCK <= k ? blockSimd(row + (<usize>i0 << 1), w, r, b, kp) : blockScalar(row, k, w, r, b, kp)
      store<f32>(ws + scaleAt(r, b, nb), d)
    }
  }
}

// The scale of a block from its extremes (mx ≥ 0 ≥ mn): d = m / −32, 0 for a zero block.
// @ts-ignore: decorator
@inline function blockScale(mx: f32, mn: f32): f32 {
  const m = mx >= -mn ? mx : mn
  return m != 0 ? m / <f32>-32 : 0
}

// A whole block (halves at hb): codes of each unit as 4 vectors of 16, packed into planes.
// @ts-ignore: decorator
@inline function blockSimd(hb: usize, w: usize, r: i32, b: i32, kp: i32): f32 {
  const m15 = i32x4.splat(0x7fff), sign = i32x4.splat(0x8000), scale = f32x4.splat(reinterpret<f32>(0x77800000)) // 2^112
  let mx = f32x4.splat(0), mn = mx
  for (let j = 0; j < SBLOCK; j += 8) {
    const h = v128.load(hb + (<usize>j << 1))
    const lo = halves4(h, false, m15, sign, scale), hi = halves4(h, true, m15, sign, scale)
    mx = f32x4.max(mx, f32x4.max(lo, hi))
    mn = f32x4.min(mn, f32x4.min(lo, hi))
  }
  const d = blockScale(max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3))),
    min(min(f32x4.extract_lane(mn, 0), f32x4.extract_lane(mn, 1)), min(f32x4.extract_lane(mn, 2), f32x4.extract_lane(mn, 3))))
  const inv = f32x4.splat(d != 0 ? 1 / d : 0)
  const lo = i16x8.splat(-32), hi = i16x8.splat(31), off = i16x8.splat(<i16>OFFSET)
  for (let u = 0; u < SBLOCK / UNIT; u++) {
    const hu = hb + <usize>(u * UNIT * 2)
    const c0 = quarter(hu, inv, lo, hi, off, m15, sign, scale), c1 = quarter(hu + 32, inv, lo, hi, off, m15, sign, scale)
    const c2 = quarter(hu + 64, inv, lo, hi, off, m15, sign, scale), c3 = quarter(hu + 96, inv, lo, hi, off, m15, sign, scale)
    const p = w + unitAt(r, b * (SBLOCK / UNIT) + u, kp), m3 = i8x16.splat(3)
    v128.store(p, v128.or(c0, i8x16.shl(v128.and(c3, m3), 6)))
    v128.store(p, v128.or(c1, i8x16.shl(v128.and(i8x16.shr_u(c3, 2), m3), 6)), 16)
    v128.store(p, v128.or(c2, i8x16.shl(i8x16.shr_u(c3, 4), 6)), 32)
  }
  return d
}

// 16 halves at h → their 16 codes.
// @ts-ignore: decorator
@inline function quarter(h: usize, inv: v128, lo: v128, hi: v128, off: v128, m15: v128, sign: v128, scale: v128): v128 {
  const h0 = v128.load(h), h1 = v128.load(h, 16)
  return codes16(halves4(h0, false, m15, sign, scale), halves4(h0, true, m15, sign, scale),
    halves4(h1, false, m15, sign, scale), halves4(h1, true, m15, sign, scale), inv, lo, hi, off)
}

// The last, partial block of a row (columns ≥ k are zeros: code 32), scalar.
function blockScalar(row: usize, k: i32, w: usize, r: i32, b: i32, kp: i32): f32 {
  const i0 = b * SBLOCK, i1 = min(k, i0 + SBLOCK)
  let mx: f32 = 0, mn: f32 = 0
  for (let i = i0; i < i1; i++) {
    const v = f16ToF32(load<u16>(row + (<usize>i << 1)))
    mx = max(mx, v)
    mn = min(mn, v)
  }
  const d = blockScale(mx, mn), inv: f32 = d != 0 ? 1 / d : 0
  for (let u = 0; u < SBLOCK / UNIT; u++) {
    const c0 = i0 + u * UNIT, p = w + unitAt(r, b * (SBLOCK / UNIT) + u, kp)
    for (let j = 0; j < 16; j++) {
      const top = codeOf(row, c0 + 48 + j, i1, inv)
      for (let plane = 0; plane < 3; plane++) {
        store<u8>(p + <usize>(plane * 16 + j), <u8>(codeOf(row, c0 + plane * 16 + j, i1, inv) | (((top >> (2 * plane)) & 3) << 6)))
      }
    }
  }
  return d
}

// clamp(RNE(w_i · inv), −32, 31) + 32 for column i of the f16 row (32 beyond `end`).
// @ts-ignore: decorator
@inline function codeOf(row: usize, i: i32, end: i32, inv: f32): i32 {
  if (i >= end) return OFFSET
  return <i32>min<f32>(max<f32>(nearest<f32>(f16ToF32(load<u16>(row + (<usize>i << 1))) * inv), -32), 31) + OFFSET
}

/** dst[0..n) = row r of the Q6B matrix, dequantized (embedding lookup from the copy). */
export function dequantize_row_q6b(w: usize, ws: usize, r: i32, n: i32, kp: i32, dst: usize): void {
  const nb = kp / SBLOCK
  for (let i = 0; i < n; i++) {
    const c = code(w + unitAt(r, i / UNIT, kp), i % UNIT)
    store<f32>(dst + (<usize>i << 2), load<f32>(ws + scaleAt(r, i / SBLOCK, nb)) * <f32>(c - OFFSET))
  }
}
