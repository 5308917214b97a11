// IEEE half-precision helpers shared by kernels (not exported from the module).

// Exact half → float for finite values: shift the 15 magnitude bits into f32 position,
// which gives the value × 2^-112, then rescale. Subnormal halves land on normal (or
// subnormal-free) floats exactly, so no special case is needed. Inf/NaN halves map to
// finite huge values; the loader rejects non-finite weights.
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  const mag = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000) // 2^112
  return (h & 0x8000) ? -mag : mag
}

// float → half, round to nearest even; overflow → ±Inf, NaN → quiet NaN, tiny → subnormal or ±0
// (F. Giesen's float_to_half_fast3_rtne: the rounding is done by the float adder or by a bias).
// @ts-ignore: decorator
@inline export function f32ToF16(f: f32): u16 {
  const bits = reinterpret<u32>(f)
  const sign = bits & 0x80000000
  const a = bits ^ sign
  let o: u32
  if (a >= F16_OVERFLOW) o = a > 0x7f800000 ? 0x7e00 : 0x7c00
  else if (a < F16_MIN_NORMAL) o = reinterpret<u32>(reinterpret<f32>(a) + reinterpret<f32>(DENORM_MAGIC)) - DENORM_MAGIC
  else o = (a + REBIAS + ((a >> 13) & 1)) >> 13
  return <u16>(o | (sign >> 16))
}

/** Bit patterns of f32ToF16: |f| ≥ 2^16 overflows, |f| < 2^-14 is subnormal in half. */
export const F16_OVERFLOW: u32 = (127 + 16) << 23
export const F16_MIN_NORMAL: u32 = 113 << 23
/** 2^-1 · 2^(23-10): adding it aligns a half subnormal's 10 bits at the bottom of the float. */
export const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23
/** Exponent rebias (f32 → f16) plus the rounding bias 0xfff (+1 when the kept mantissa is odd). */
export const REBIAS: u32 = ((15 - 127) << 23) + 0xfff

// f32ToF16 on 4 lanes, each branch computed and selected; results in the low 16 bits of each i32.
// @ts-ignore: decorator
@inline export function half4(x: v128, signBit: v128, one: v128): v128 {
  const sign = v128.and(x, signBit)
  const a = v128.xor(x, sign)
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(REBIAS)), v128.and(i32x4.shr_u(a, 13), one)), 13)
  const sub = i32x4.sub(f32x4.add(a, f32x4.splat(reinterpret<f32>(DENORM_MAGIC))), i32x4.splat(DENORM_MAGIC))
  const special = v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), i32x4.gt_s(a, i32x4.splat(0x7f800000)))
  const finite = v128.bitselect(sub, normal, i32x4.lt_s(a, i32x4.splat(F16_MIN_NORMAL)))
  return v128.or(v128.bitselect(special, finite, i32x4.ge_s(a, i32x4.splat(F16_OVERFLOW))), i32x4.shr_u(sign, 16))
}

// Half → float for a block scale read from a file: f16ToF32, with Inf and NaN kept (f16ToF32
// maps them to huge finite values), so a non-finite scale makes non-finite weights the loader
// rejects, as a dequantizer in f32 would.
// @ts-ignore: decorator
@inline export function f16ScaleToF32(h: u32): f32 {
  if ((h & 0x7c00) != 0x7c00) return f16ToF32(h)
  return reinterpret<f32>(((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13))
}

// 16 int8 weights q (i8x16), |q| ≤ qmax, times a block scale s, rounded to f16, stored as 16
// halves at y: q · s in f32 (exact for an f16 s and |q| ≤ 2^12: 11 + 12 bits), then half4.
// When every nonzero |q · s| is a normal half (|s| ≥ 2^-14, qmax · |s| < 65504: the usual
// case), only half4's normal branch and zero can occur: its other branches are skipped.
// @ts-ignore: decorator
@inline export function storeScaledHalves16(q: v128, s: f32, qmax: f32, y: usize, signBit: v128, one: v128): void {
  const v = f32x4.splat(s), lo = i16x8.extend_low_i8x16_s(q), hi = i16x8.extend_high_i8x16_s(q)
  const f0 = f32x4.mul(v, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo))), f1 = f32x4.mul(v, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)))
  const f2 = f32x4.mul(v, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi))), f3 = f32x4.mul(v, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)))
  if (abs(s) >= reinterpret<f32>(F16_MIN_NORMAL) && abs(s) * qmax < <f32>65504) { // false for NaN
    v128.store(y, i16x8.narrow_i32x4_u(normalHalf4(f0, signBit, one), normalHalf4(f1, signBit, one)))
    v128.store(y, i16x8.narrow_i32x4_u(normalHalf4(f2, signBit, one), normalHalf4(f3, signBit, one)), 16)
  } else {
    v128.store(y, i16x8.narrow_i32x4_u(half4(f0, signBit, one), half4(f1, signBit, one)))
    v128.store(y, i16x8.narrow_i32x4_u(half4(f2, signBit, one), half4(f3, signBit, one)), 16)
  }
}

// half4 for lanes that are ±0 or normal halves once rounded.
// @ts-ignore: decorator
@inline function normalHalf4(x: v128, signBit: v128, one: v128): v128 {
  const sign = v128.and(x, signBit)
  const a = v128.xor(x, sign)
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(REBIAS)), v128.and(i32x4.shr_u(a, 13), one)), 13)
  return v128.or(v128.andnot(normal, i32x4.eq(a, i32x4.splat(0))), i32x4.shr_u(sign, 16))
}
