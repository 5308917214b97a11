// Per-token int8 absmax activation quantization (spec §1.3):
//   s = 127 / max(max|x|, 1e-5),  q_i = clamp(RNE(x_i · s), −128, 127)
// RNE = round half to even (f32.nearest), as torch.round and bitnet.cpp's nearest_int;
// JS Math.round (half up) would differ on exact .5 cases.

/**
 * Quantizes x[0..n) into q[0..np) (zero-filled beyond n so padded columns contribute
 * nothing), writes meta: f32 s at +0, i32 Σq at +4.
 */
export function quantize_f32_i8(x: usize, n: i32, np: i32, q: usize, meta: usize): void {
  let vmax = f32x4.splat(0)
  let i = 0
  for (; i + 4 <= n; i += 4) vmax = f32x4.max(vmax, f32x4.abs(v128.load(x + (<usize>i << 2))))
  let amax = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)),
                 max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)))
  for (; i < n; i++) amax = max(amax, abs(load<f32>(x + (<usize>i << 2))))
  const s: f32 = <f32>127 / max(amax, <f32>1e-5)
  const vs = f32x4.splat(s)
  const lo = f32x4.splat(-128), hi = f32x4.splat(127)
  let vsum = i32x4.splat(0)
  i = 0
  for (; i + 8 <= n; i += 8) {
    const a = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.mul(v128.load(x + (<usize>i << 2)), vs)))))
    const b = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.mul(v128.load(x + (<usize>i << 2), 16), vs)))))
    vsum = i32x4.add(vsum, i32x4.add(a, b))
    const h = i16x8.narrow_i32x4_s(a, b)
    v128.store_lane<i64>(q + <usize>i, i8x16.narrow_i16x8_s(h, h), 0)
  }
  let sum = i32x4.extract_lane(vsum, 0) + i32x4.extract_lane(vsum, 1) + i32x4.extract_lane(vsum, 2) + i32x4.extract_lane(vsum, 3)
  for (; i < n; i++) {
    const v = <i32>min(<f32>127, max(<f32>-128, nearest(load<f32>(x + (<usize>i << 2)) * s)))
    store<i8>(q + <usize>i, <i8>v)
    sum += v
  }
  memory.fill(q + <usize>n, 0, <usize>(np - n))
  store<f32>(meta, s)
  store<i32>(meta, sum, 4)
}
