// The batched I2_S kernel (several tokens per weight pass) equals its scalar twin and the
// one-token kernel bit for bit, for every batch size (token pairs and an odd last one),
// awkward row counts and thread splits.
import { describe, expect, it } from 'vitest'
import { packC4FromCodes, c4Shape } from '../src/formats/i2s-c4.js'
import { itemRanges, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

const CASES: [rows: number, cols: number, ntok: number][] = [
  [1, 128, 2], [4, 128, 1], [3, 128, 4], [4, 256, 5], [7, 130, 3], [13, 1, 8], [17, 255, 9], [33, 2560, 4], [6, 6912, 7], [64, 1100, 16], [6, 384, 32], [9, 1000, 31],
]

describe.each(VARIANTS)('matmul_i2s_i8 (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, cols, ntok] of CASES) {
    it(`${rows}×${cols} × ${ntok} tokens: SIMD == _ref == matvec per token`, () => {
      const rand = rng(rows * 7919 + cols * 31 + ntok)
      const codes = Int8Array.from({ length: rows * cols }, () => Math.floor(rand() * 3) - 1)
      const { kp, bytes } = c4Shape(rows, cols)
      const w = b.alloc(bytes), q = b.alloc(ntok * kp), meta = b.alloc(ntok * 8)
      const y = [b.alloc(ntok * rows * 4), b.alloc(ntok * rows * 4), b.alloc(ntok * rows * 4)]
      packC4FromCodes(codes, rows, cols, b.heap.subarray(w, w + bytes))
      const dv = new DataView(b.heap.buffer)
      for (let t = 0; t < ntok; t++) {
        // extreme activations in some tokens: the largest sums a lane can hold
        const qt = Int8Array.from({ length: cols }, (_, i) =>
          t % 3 === 0 && i % 5 === 0 ? -127 : t % 3 === 1 ? 127 : Math.floor(rand() * 255) - 127)
        b.i8(q + t * kp, kp).fill(0).set(qt)
        dv.setFloat32(meta + t * 8, 127 / (1 + t), true)
        dv.setInt32(meta + t * 8 + 4, qt.reduce((a, v) => a + v, 0), true)
      }
      const gamma = 0.6875, groups = Math.ceil(rows / 4)
      for (const p of y) b.f32(p, ntok * rows).fill(NaN)
      b.k.matmul_i2s_i8(w, q, meta, gamma, y[0], rows, kp, ntok, 0, groups)
      b.k.matmul_i2s_i8_ref(w, q, meta, gamma, y[1], rows, kp, ntok, 0, groups)
      for (let t = 0; t < ntok; t++) b.k.matvec_i2s_i8(w, q + t * kp, meta + t * 8, gamma, y[2] + t * rows * 4, rows, kp, 0, groups)
      const got = Array.from(b.f32(y[0], ntok * rows))
      expect(got.every(Number.isFinite)).toBe(true)
      expect(got).toEqual(Array.from(b.f32(y[1], ntok * rows)))
      expect(got).toEqual(Array.from(b.f32(y[2], ntok * rows)))

      for (const parts of [2, 3, groups + 1]) {
        b.f32(y[1], ntok * rows).fill(NaN)
        for (const [first, end] of itemRanges(groups, parts, parts + ntok)) b.k.matmul_i2s_i8(w, q, meta, gamma, y[1], rows, kp, ntok, first, end)
        expect(Array.from(b.f32(y[1], ntok * rows))).toEqual(got)
      }
    })
  }
})
