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
