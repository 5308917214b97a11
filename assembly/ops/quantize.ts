// Per-token int8 absmax activation quantization (docs/architecture.md#bitlinear):
//   s = 127 / max(max|x|, 1e-5),  q_i = clamp(RNE(x_i · s), −128, 127)
// RNE = round half to even (f64.nearest), as torch.round and bitnet.cpp's nearest_int;
// JS Math.round (half up) would differ on exact .5 cases.
//
// BitLinear inputs are RMSNorm outputs (all four in the BitNet families; the Llama family
// has no sub-norms, so its o and down inputs are quantized as they are), so the norm is
// fused in and computed in f64 from the f32 input: the normed values never round to f32 before
// being scaled. That matters at near-ties: on tiny-dev a layer-0 value has x·s =
// 58.50000000000001 in f64 but exactly 58.5 after f32 rounding, and the int8 that flips
// (59 vs 58) moves a logit by 0.03 — enough to leave golden prompt 4's greedy path at a
// 0.0204 margin. Cost: O(n) scalar work per token and site, next to O(n·m) matvecs.

import { span } from './split'
import { lut_build_i8 } from '../formats/tl'
import { gelu_mul_f32, relu2_mul_f32, silu_mul_f32 } from './elementwise'

/**
 * q[0..np) = quantize(rmsnorm(x[0..n)) ⊙ w), zero-filled beyond n so padded columns
 * contribute nothing; meta: f32 s at +0, i32 Σq at +4. `w = 0` skips the norm
 * (quantizes x itself, for o and down when the model has no sub-norms).
 * `w0 ≠ 0`: x is first normed with w0, x ← rmsnorm(x) ⊙ w0, also in f64 (the BitNet
 * embedding models' per-projection norm applied to the block's input norm).
 * Vectorized with f64x2, 8 elements a step; the normed value of every element is computed as ((x·inv0)·w0·inv)·w
 * in every pass that needs it, so the result equals the scalar f64 definition exactly.
 * A non-finite absmax (NaN or ∞ in the row) gives all zeros, as clamp(RNE(NaN)) would.
 */
export function rmsnorm_quantize_f32_i8(x: usize, w0: usize, w: usize, n: i32, eps: f32, np: i32, q: usize, meta: usize): void {
  // inv0 = 1/sqrt(mean(x²) + eps) when there is a first norm; inv likewise of its output, or 1 with no norm
  const inv0: f64 = w0 != 0 ? invRms(x, 0, 1, n, eps) : 1
  const inv: f64 = w != 0 ? invRms(x, w0, inv0, n, eps) : 1
  const amax = absMax(x, w0, inv0, w, inv, n)
  const s: f64 = 127.0 / max(amax, 1e-5)
  const sum = isFinite(amax) ? quantizeNormed(x, w0, inv0, w, inv, n, s, q) : 0
  if (!isFinite(amax)) memory.fill(q, 0, <usize>n)
  memory.fill(q + <usize>n, 0, <usize>(np - n))
  store<f32>(meta, <f32>s)
  store<i32>(meta, sum, 4)
}

// max |normed| in f64, NaN if any is NaN. Four pmax chains (max is exact in any order; pmax is
// one instruction where max's NaN and ±0 rules cost several) and a NaN flag beside them.
function absMax(x: usize, w0: usize, inv0: f64, w: usize, inv: f64, n: i32): f64 {
  const n8 = n & ~7, vinv = f64x2.splat(inv), vinv0 = f64x2.splat(inv0)
  let m0 = f64x2.splat(0), m1 = m0, m2 = m0, m3 = m0, nan = m0
  for (let i = 0; i < n8; i += 8) {
    const a = normed2(x, w0, vinv0, w, i, vinv), b = normed2(x, w0, vinv0, w, i + 2, vinv)
    const c = normed2(x, w0, vinv0, w, i + 4, vinv), d = normed2(x, w0, vinv0, w, i + 6, vinv)
    m0 = f64x2.pmax(m0, f64x2.abs(a))
    m1 = f64x2.pmax(m1, f64x2.abs(b))
    m2 = f64x2.pmax(m2, f64x2.abs(c))
    m3 = f64x2.pmax(m3, f64x2.abs(d))
    nan = v128.or(nan, v128.or(v128.or(f64x2.ne(a, a), f64x2.ne(b, b)), v128.or(f64x2.ne(c, c), f64x2.ne(d, d))))
  }
  const m = f64x2.pmax(f64x2.pmax(m0, m1), f64x2.pmax(m2, m3))
  let amax = v128.any_true(nan) ? NaN : max(f64x2.extract_lane(m, 0), f64x2.extract_lane(m, 1))
  for (let i = n8; i < n; i++) amax = max(amax, Math.abs(normed(x, w0, inv0, w, i, inv)))
  return amax
}

// 1.5 · 2^52: v + ROUNDER rounds v to an integer, half to even (the f64 spacing there is 1), and
// for |v| < 2^31 the low 32 bits of the sum are that integer in two's complement.
const ROUNDER: f64 = 6755399441055744.0

// q[i] = RNE(normed_i · s) for finite normed values, s = 127 / absmax: |normed · s| ≤ 127 up
// to one rounding (< 127.5), so no clamp is needed and RNE happens in the add. Returns Σq.
function quantizeNormed(x: usize, w0: usize, inv0: f64, w: usize, inv: f64, n: i32, s: f64, q: usize): i32 {
  const n8 = n & ~7, vinv = f64x2.splat(inv), vinv0 = f64x2.splat(inv0)
  const vs = f64x2.splat(s), round = f64x2.splat(ROUNDER)
  let vsum = i32x4.splat(0)
  for (let i = 0; i < n8; i += 8) {
    const a = f64x2.add(f64x2.mul(normed2(x, w0, vinv0, w, i, vinv), vs), round)
    const b = f64x2.add(f64x2.mul(normed2(x, w0, vinv0, w, i + 2, vinv), vs), round)
    const c = f64x2.add(f64x2.mul(normed2(x, w0, vinv0, w, i + 4, vinv), vs), round)
    const d = f64x2.add(f64x2.mul(normed2(x, w0, vinv0, w, i + 6, vinv), vs), round)
    const lo = i32x4.shuffle(a, b, 0, 2, 4, 6), hi = i32x4.shuffle(c, d, 0, 2, 4, 6) // the low words: [q0 q1 q2 q3], [q4 … q7]
    vsum = i32x4.add(vsum, i32x4.add(lo, hi))
    const h = i16x8.narrow_i32x4_s(lo, hi)
    v128.store_lane<i64>(q + <usize>i, i8x16.narrow_i16x8_s(h, h), 0)
  }
  let sum = i32x4.extract_lane(vsum, 0) + i32x4.extract_lane(vsum, 1) + i32x4.extract_lane(vsum, 2) + i32x4.extract_lane(vsum, 3)
  for (let i = n8; i < n; i++) {
    const v = <i32>nearest<f64>(normed(x, w0, inv0, w, i, inv) * s)
    store<i8>(q + <usize>i, <i8>v)
    sum += v
  }
  return sum
}

/**
 * The rows [first, end) of `rows` of a batch: x [rows][n] → q [rows][np], meta [rows] × 8 B, and
 * with `lut` ≠ 0 each row's TL lookup tables into lut [rows][np·16] (assembly/formats/tl.ts).
 * Thread-split by rows, so a batch's norms run on every thread instead of the leader alone.
 */
export function rmsnorm_quantize_rows_f32_i8(x: usize, w0: usize, w: usize, n: i32, eps: f32, np: i32, q: usize, meta: usize,
                                             lut: usize, rows: i32, first: i32, end: i32): void {
  const range = span(rows, first, end)
  for (let t = <i32>(range >> 32); t < <i32>range; t++) quantizeRow(x, w0, w, n, eps, np, q, meta, lut, t)
}

// FFN activations of gated_rmsnorm_quantize_rows_f32_i8 (the host's ACTIVATION_CODE).
const ACT_RELU2: i32 = 0
const ACT_SILU: i32 = 1

/**
 * The FFN's down-projection input, rows [first, end) of `rows`: g_t = act(g_t) ⊙ u_t in place
 * (g, u [rows][n]; act 0: ReLU², 1: SiLU, 2: GELU-tanh, the same bytes as relu2_mul_f32 /
 * silu_mul_f32 / gelu_mul_f32), then g_t normed with w and quantized as rmsnorm_quantize_rows_f32_i8 does.
 * Row by row: each row's activation is still in L1 when it is normed, and a batch's
 * activations run on every thread instead of the leader alone before the round.
 */
export function gated_rmsnorm_quantize_rows_f32_i8(act: i32, g: usize, u: usize, w: usize, n: i32, eps: f32, np: i32, q: usize,
                                                   meta: usize, lut: usize, rows: i32, first: i32, end: i32): void {
  const range = span(rows, first, end)
  for (let t = <i32>(range >> 32); t < <i32>range; t++) {
    const o = <usize>(t * n) << 2
    if (act == ACT_RELU2) relu2_mul_f32(g + o, u + o, n)
    else if (act == ACT_SILU) silu_mul_f32(g + o, u + o, n)
    else gelu_mul_f32(g + o, u + o, n)
    quantizeRow(g, 0, w, n, eps, np, q, meta, lut, t)
  }
}

// Row t of a batch: x [.][n] → q [.][np], meta [.] × 8 B, and its TL tables when lut ≠ 0.
// @ts-ignore: decorator
@inline function quantizeRow(x: usize, w0: usize, w: usize, n: i32, eps: f32, np: i32, q: usize, meta: usize, lut: usize, t: i32): void {
  const qt = q + <usize>(t * np)
  rmsnorm_quantize_f32_i8(x + (<usize>(t * n) << 2), w0, w, n, eps, np, qt, meta + (<usize>t << 3))
  if (lut != 0) lut_build_i8(qt, np, lut + (<usize>(t * np) << 4))
}

// 1/sqrt(mean(v²) + eps) of v = x·inv0·w0 (w0 = 0: v = x), in f64. Four f64x2 chains (an add's
// latency each, where one chain waited on it): lane j of chain c sums the elements ≡ 2c + j
// (mod 8), the chains are added (0+1)+(2+3), then the lanes, then the tail: one fixed order, the
// same for a row whichever batch or thread computes it. (Another order than the earlier single
// chain, so a row's inv may differ in its last bit and, rarely, an int8 at a rounding tie with it.)
function invRms(x: usize, w0: usize, inv0: f64, n: i32, eps: f32): f64 {
  const n8 = n & ~7
  const vinv0 = f64x2.splat(inv0), one = f64x2.splat(1)
  let s0 = f64x2.splat(0), s1 = s0, s2 = s0, s3 = s0
  for (let i = 0; i < n8; i += 8) {
    const a = normed2(x, w0, vinv0, 0, i, one), b = normed2(x, w0, vinv0, 0, i + 2, one)
    const c = normed2(x, w0, vinv0, 0, i + 4, one), d = normed2(x, w0, vinv0, 0, i + 6, one)
    s0 = f64x2.add(s0, f64x2.mul(a, a))
    s1 = f64x2.add(s1, f64x2.mul(b, b))
    s2 = f64x2.add(s2, f64x2.mul(c, c))
    s3 = f64x2.add(s3, f64x2.mul(d, d))
  }
  const acc = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3))
  let ss = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1)
  for (let i = n8; i < n; i++) { const v = normed(x, w0, inv0, 0, i, 1); ss += v * v }
  return 1.0 / Math.sqrt(ss / <f64>n + <f64>eps)
}

// ((x[i]·inv0)·w0[i]·inv)·w[i] in f64 (w0 = 0: no first norm; w = 0: no norm weight)
// @ts-ignore: decorator
@inline function normed(x: usize, w0: usize, inv0: f64, w: usize, i: i32, inv: f64): f64 {
  const o = <usize>i << 2
  let v = <f64>load<f32>(x + o)
  if (w0 != 0) v = v * inv0 * <f64>load<f32>(w0 + o)
  v *= inv
  return w != 0 ? v * <f64>load<f32>(w + o) : v
}

// The same for elements i, i+1, as f64x2.
// @ts-ignore: decorator
@inline function normed2(x: usize, w0: usize, vinv0: v128, w: usize, i: i32, vinv: v128): v128 {
  const o = <usize>i << 2
  let v = f64x2.promote_low_f32x4(v128.load64_zero(x + o))
  if (w0 != 0) v = f64x2.mul(f64x2.mul(v, vinv0), f64x2.promote_low_f32x4(v128.load64_zero(w0 + o)))
  v = f64x2.mul(v, vinv)
  return w != 0 ? f64x2.mul(v, f64x2.promote_low_f32x4(v128.load64_zero(w + o))) : v
}
