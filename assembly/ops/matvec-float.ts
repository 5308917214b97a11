// Full-precision matrix × f32 vector, for the output projection (logits = E · h with the
// tied embedding E [vocab][n_embd]). Rows [first, end) are one chunk of the thread pool.

import { f16ToF32 } from './half'
import { span } from './split'

/** y[r] = Σ_i f16(w[r·k + i]) · x[i]  (w: IEEE half, row-major [rows][k]). */
export function matvec_f16_f32(w: usize, x: usize, y: usize, rows: i32, k: i32, first: i32, end: i32): void {
  const range = span(rows, first, end)
  // Exact half → float in SIMD, same trick as f16ToF32: magnitude bits << 13, × 2^112.
  const mmag = i32x4.splat(0x7fff | (k >>> 31)), msign = i32x4.splat(0x8000 | (k >>> 31))
  const magic = f32x4.splat(reinterpret<f32>(0x77800000))
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    const row = w + (<usize>r * <usize>k << 1)
    let acc0 = f32x4.splat(0), acc1 = acc0
    let i = 0
    for (; i + 8 <= k; i += 8) {
      const h = v128.load(row + (<usize>i << 1))
      const lo = i32x4.extend_low_i16x8_u(h), hi = i32x4.extend_high_i16x8_u(h)
      const flo = v128.or(f32x4.mul(i32x4.shl(v128.and(lo, mmag), 13), magic), i32x4.shl(v128.and(lo, msign), 16))
      const fhi = v128.or(f32x4.mul(i32x4.shl(v128.and(hi, mmag), 13), magic), i32x4.shl(v128.and(hi, msign), 16))
      acc0 = f32x4.add(acc0, f32x4.mul(flo, v128.load(x + (<usize>i << 2))))
      acc1 = f32x4.add(acc1, f32x4.mul(fhi, v128.load(x + (<usize>i << 2), 16)))
    }
    const acc = f32x4.add(acc0, acc1)
    let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)
    for (; i < k; i++) s += f16ToF32(load<u16>(row + (<usize>i << 1))) * load<f32>(x + (<usize>i << 2))
    store<f32>(y + (<usize>r << 2), s)
  }
}

/** y[r] = Σ_i w[r·k + i] · x[i]  (w: f32, row-major [rows][k]). */
export function matvec_f32_f32(w: usize, x: usize, y: usize, rows: i32, k: i32, first: i32, end: i32): void {
  const range = span(rows, first, end)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    const row = w + (<usize>r * <usize>k << 2)
    let acc = f32x4.splat(0)
    let i = 0
    for (; i + 4 <= k; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(row + (<usize>i << 2)), v128.load(x + (<usize>i << 2))))
    let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)
    for (; i < k; i++) s += load<f32>(row + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2))
    store<f32>(y + (<usize>r << 2), s)
  }
}
