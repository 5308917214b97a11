// The byte-per-weight output projection (Q8B): SIMD kernel == scalar _ref bit for bit (row
// counts around the 4-row group, thread splits, a batch of tokens == each token alone), both equal the block-scaled integer
// definition read back through dequantize_row_q8b, and the load-time F16 → Q8B conversion
// keeps every weight within half a step of 127 levels.
import { describe, expect, it } from 'vitest'
import { f32ToF16 } from '../src/formats/float.js'
import { checkGroupMatmul, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

describe.each(VARIANTS)('Q8B output projection (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, k] of [[1, 128], [3, 130], [17, 256], [5, 1], [64, 2560], [9, 383], [4, 40], [6, 640]] as const) {
    it(`${rows}×${k}: convert from F16, quantize 5 tokens, matmul SIMD == _ref == one token at a time == definition`, () => {
      const rand = rng(rows * 31 + k)
      const kp = Math.ceil(k / 128) * 128, nb = kp / 128, stored = Math.ceil(rows / 4) * 4
      // ±2 with a few exact extremes and zero blocks' worth of tiny values
      const half = Uint16Array.from({ length: rows * k }, (_, i) => f32ToF16(i % 97 === 0 ? -2 : (rand() - 0.5) * 4))
      const src = b.alloc(rows * k * 2), w = b.alloc(stored * kp), ws = b.alloc(stored * nb * 4)
      new Uint16Array(b.heap.buffer, src, rows * k).set(half)
      b.k.quantize_rows_f16_q8b(src, rows, k, kp, w, ws, 0, rows)

      // T tokens' activations, quantized per token; the first is the one checked by definition
      const T = 5
      const xs1 = Array.from({ length: T }, (_, t) => Float32Array.from({ length: k }, (_, i) => (i % 13 === t ? -9.99 : (rand() - 0.5) * 10)))
      const x = xs1[0]
      const xp = b.alloc(k * 4), xq = b.alloc(T * kp), xs = b.alloc(T * nb * 4), xsum = b.alloc(T * kp / 32 * 4)
      for (let t = 0; t < T; t++) {
        b.f32(xp, k).set(xs1[t])
        b.k.quantize_blocks_f32_i8(xp, k, kp, xq + t * kp, xs + t * nb * 4, xsum + t * kp / 8)
      }
      const q = b.i8(xq, kp), xsc = b.f32(xs, nb)

      const all = checkGroupMatmul(b, 'matmul_q8b_i8', w, ws, { xq, xs, xsum }, rows, kp, T, k)
      const got = all.slice(0, rows)

      // The definition, from each row read back and the quantized activations.
      const deq = b.alloc(k * 4)
      let worstLevel = 0, worstStep = 0 // max |level|, max |dequantized − f16| in steps
      for (let r = 0; r < rows; r++) {
        b.k.dequantize_row_q8b(w, ws, r, k, kp, deq)
        const row = b.f32(deq, k)
        let want = 0, exact = 0, norm = 0
        for (let bl = 0; bl < nb; bl++) {
          const i1 = Math.min(k, bl * 128 + 128)
          let amax = 0
          for (let i = bl * 128; i < i1; i++) amax = Math.max(amax, Math.abs(decodeHalf(half[r * k + i])))
          const step = Math.fround(amax / 63)
          let dot = 0
          for (let i = bl * 128; i < i1; i++) {
            const h = decodeHalf(half[r * k + i])
            const level = step > 0 ? Math.round(row[i] / step) : 0
            worstLevel = Math.max(worstLevel, Math.abs(level))
            if (step > 0) worstStep = Math.max(worstStep, Math.abs(row[i] - h) / step)
            dot += level * q[i]
            exact += h * x[i]; norm += Math.abs(h * x[i])
          }
          want = Math.fround(want + Math.fround(Math.fround(step * xsc[bl]) * dot))
        }
        expect(got[r]).toBe(want)
        expect(Math.abs(got[r] - exact)).toBeLessThan(0.03 * norm + 1e-6)
      }
      expect(worstLevel).toBe(63) // the block maximum reaches the top level…
      expect(worstStep).toBeLessThanOrEqual(0.5 + 1e-5) // …and every weight is within half a step
    })
  }
})

function decodeHalf(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15)
}
