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
