// The 8-bit output projection (Q8B): SIMD kernel == scalar _ref bit for bit, both equal
// the block-scaled integer definition, and the load-time F16 → Q8B conversion is faithful.
import { describe, expect, it } from 'vitest'
import { f32ToF16 } from '../src/formats/float.js'
import { kernelBench, rng, VARIANTS } from './helpers/kernels.js'

describe.each(VARIANTS)('Q8B output projection (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, k] of [[1, 128], [3, 130], [17, 256], [5, 1], [64, 2560], [9, 383]] as const) {
    it(`${rows}×${k}: convert from F16, quantize x, matvec SIMD == _ref == definition`, () => {
      const rand = rng(rows * 31 + k)
      const kp = Math.ceil(k / 128) * 128, nb = kp / 128
      const half = Uint16Array.from({ length: rows * k }, () => f32ToF16((rand() - 0.5) * 4))
      const src = b.alloc(rows * k * 2), w = b.alloc(rows * kp), ws = b.alloc(rows * nb * 4)
      new Uint16Array(b.heap.buffer, src, rows * k).set(half)
      b.k.quantize_rows_f16_q8b(src, rows, k, kp, w, ws, 0, 1)

      const x = Float32Array.from({ length: k }, () => (rand() - 0.5) * 10)
      const xp = b.alloc(k * 4), xq = b.alloc(kp * 2), xs = b.alloc(nb * 4)
      b.f32(xp, k).set(x)
      b.k.quantize_blocks_f32_i16(xp, k, kp, xq, xs)

      const y1 = b.alloc(rows * 4), y2 = b.alloc(rows * 4)
      b.k.matvec_q8b_i16(w, ws, xq, xs, y1, rows, kp, 0, 1)
      b.k.matvec_q8b_i16_ref(w, ws, xq, xs, y2, rows, kp, 0, 1)
      expect(Array.from(b.f32(y1, rows))).toEqual(Array.from(b.f32(y2, rows)))
      for (const nth of [2, 3]) {
        b.f32(y2, rows).fill(NaN)
        for (let ith = 0; ith < nth; ith++) b.k.matvec_q8b_i16(w, ws, xq, xs, y2, rows, kp, ith, nth)
        expect(Array.from(b.f32(y2, rows))).toEqual(Array.from(b.f32(y1, rows)))
      }

      // Close to the exact f32 product: error bounded by the two 8-bit roundings.
      const wq = new Int8Array(b.heap.buffer, w, rows * kp)
      const wsc = b.f32(ws, rows * nb)
      for (let r = 0; r < rows; r++) {
        let exact = 0, norm = 0
        for (let i = 0; i < k; i++) {
          const h = half[r * k + i]
          exact += decodeHalf(h) * x[i]
          norm += Math.abs(decodeHalf(h) * x[i])
          // the stored int8 reproduces the weight within half a quantization step
          expect(Math.abs(wq[r * kp + i] * wsc[r * nb + (i >> 7)] - decodeHalf(h))).toBeLessThanOrEqual(wsc[r * nb + (i >> 7)] / 2 + 1e-6)
        }
        expect(Math.abs(b.f32(y1, rows)[r] - exact)).toBeLessThan(0.02 * norm + 1e-6)
      }
      // padded weights are zero
      for (let r = 0; r < rows; r++) for (let i = k; i < kp; i++) expect(wq[r * kp + i]).toBe(0)
    })
  }
})

function decodeHalf(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15)
}
