// The 6-bit output projection (Q6B): SIMD kernel == scalar _ref bit for bit (row counts
// around the 4-row group, partial blocks, thread splits, batches of 2, 6 and 7 tokens: the
// kernel's 4-, 3-, 2- and 1-token tiles, each token == that token alone), both equal the
// block-scaled integer definition read back through dequantize_row_q6b, and the load-time
// F16 → Q6B conversion (SIMD for whole blocks, scalar for a row's last partial one) keeps
// every weight within half a step of its block's scale.
import { describe, expect, it } from 'vitest'
import { f16ToF32, f32ToF16 } from '../src/formats/float.js'
import { checkGroupMatmul, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

const SBLOCK = 128 // weights per scale

describe.each(VARIANTS)('Q6B output projection (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, k] of [[1, 128], [3, 130], [17, 256], [5, 1], [64, 2560], [9, 383], [4, 40], [6, 640]] as const) {
    it(`${rows}×${k}: convert from F16, quantize 7 tokens, matmul SIMD == _ref == one token at a time == definition`, () => {
      const rand = rng(rows * 37 + k)
      const kp = Math.ceil(k / 128) * 128, nb = kp / SBLOCK, stored = Math.ceil(rows / 4) * 4
      // ±2 with exact extremes of both signs, a zero block (the first 128 of row 1)
      const value = (i: number) => (i % 97 === 0 ? -2 : i % 89 === 0 ? 2 : i >= k && i < k + 128 ? 0 : (rand() - 0.5) * 4)
      const half = Uint16Array.from({ length: rows * k }, (_, i) => f32ToF16(value(i)))
      const src = b.alloc(rows * k * 2), w = b.alloc(stored * kp * 3 / 4), ws = b.alloc(stored * nb * 4)
      new Uint16Array(b.heap.buffer, src, rows * k).set(half)
      b.k.quantize_rows_f16_q6b(src, rows, k, kp, w, ws, 0, rows)

      const T = 7 // the kernel's tiles: 4 tokens, then 3 (a 4-lane tile, its last lane repeated)
      const xs1 = Array.from({ length: T }, (_, t) => Float32Array.from({ length: k }, (_, i) => (i % 13 === t ? -9.99 : (rand() - 0.5) * 10)))
      const x = xs1[0]
      const xp = b.alloc(k * 4), xq = b.alloc(T * kp), xs = b.alloc(T * kp / 128 * 4), xsum = b.alloc(T * kp / 32 * 4)
      for (let t = 0; t < T; t++) {
        b.f32(xp, k).set(xs1[t])
        b.k.quantize_blocks_f32_i8(xp, k, kp, xq + t * kp, xs + t * kp / 32, xsum + t * kp / 8)
      }
      const q = b.i8(xq, kp), xsc = b.f32(xs, kp / 128)

      const all = checkGroupMatmul(b, 'matmul_q6b_i8', w, ws, { xq, xs, xsum }, rows, kp, T, k)
      for (const n of [2, 6]) checkGroupMatmul(b, 'matmul_q6b_i8', w, ws, { xq, xs, xsum }, rows, kp, n, k) // a pair; 4 + a pair
      const got = all.slice(0, rows)

      // The definition, from each row read back, its scales and the quantized activations.
      const deq = b.alloc(k * 4), allScales = b.f32(ws, stored * nb)
      const scale = (r: number, bl: number) => allScales[((r >> 2) * nb + bl) * 4 + (r & 3)]
      let lowest = 0, highest = 0, worstStep = 0, worstClamped = 0 // levels; max |dequantized − f16| in steps, elsewhere and at 31
      for (let r = 0; r < rows; r++) {
        b.k.dequantize_row_q6b(w, ws, r, k, kp, deq)
        const row = b.f32(deq, k)
        let want = 0, exact = 0, norm = 0
        for (let bl = 0; bl < nb; bl++) {
          const d = scale(r, bl), i1 = Math.min(k, bl * SBLOCK + SBLOCK)
          let amax = 0
          for (let i = bl * SBLOCK; i < i1; i++) amax = Math.max(amax, Math.abs(f16ToF32(half[r * k + i])))
          if (bl * SBLOCK < k) expect(Math.abs(d)).toBe(Math.fround(amax / 32)) // the extreme is level −32
          let dot = 0
          for (let i = bl * SBLOCK; i < i1; i++) {
            const h = f16ToF32(half[r * k + i])
            const level = d !== 0 ? Math.round(row[i] / d) : 0
            lowest = Math.min(lowest, level)
            highest = Math.max(highest, level)
            const off = d !== 0 ? Math.abs(row[i] - h) / Math.abs(d) : 0
            if (level === 31) worstClamped = Math.max(worstClamped, off)
            else worstStep = Math.max(worstStep, off)
            dot += level * q[i]
            exact += h * x[i]; norm += Math.abs(h * x[i])
          }
          want = Math.fround(want + Math.fround(Math.fround(d * xsc[bl * SBLOCK / 128]) * dot))
        }
        expect(got[r]).toBe(want)
        expect(Math.abs(got[r] - exact)).toBeLessThan(0.05 * norm + 1e-6)
      }
      expect(lowest).toBe(-32)
      if (k > 40) expect(highest).toBe(31)
      expect(worstStep).toBeLessThanOrEqual(0.5 + 1e-5)
      // the opposite extreme (level 32) clamps to 31: a step off, no more
      expect(worstClamped).toBeLessThanOrEqual(1 + 1e-5)
    })
  }
})
