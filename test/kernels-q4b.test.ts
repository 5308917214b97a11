// The 4-bit output projection (Q4B): SIMD kernel == scalar _ref bit for bit (every row
// count around the 4-row group, thread splits), both equal the block-scaled integer
// definition, and the load-time F16 → Q4B conversion is within its error bound.
import { describe, expect, it } from 'vitest'
import { f32ToF16 } from '../src/formats/float.js'
import { itemRanges, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

describe.each(VARIANTS)('Q4B output projection (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, k] of [[1, 128], [3, 130], [17, 256], [5, 1], [64, 2560], [9, 383], [4, 40]] as const) {
    it(`${rows}×${k}: convert from F16, quantize x, matvec SIMD == _ref == definition`, () => {
      const rand = rng(rows * 131 + k)
      const kp = Math.ceil(k / 128) * 128, nb = kp / 32, stored = Math.ceil(rows / 4) * 4, groups = stored / 4
      const half = Uint16Array.from({ length: rows * k }, () => f32ToF16((rand() - 0.5) * 4))
      const src = b.alloc(rows * k * 2), w = b.alloc(stored * kp / 2), ws = b.alloc(stored * nb * 4)
      new Uint16Array(b.heap.buffer, src, rows * k).set(half)
      b.k.quantize_rows_f16_q4b(src, rows, k, kp, w, ws, 0, rows)

      const x = Float32Array.from({ length: k }, (_, i) => (i % 13 === 0 ? 9.99 : (rand() - 0.5) * 10))
      const xp = b.alloc(k * 4), xq = b.alloc(kp), xs = b.alloc(kp / 128 * 4), xsum = b.alloc(nb * 4)
      b.f32(xp, k).set(x)
      b.k.quantize_blocks_f32_i8(xp, k, kp, xq, xs, xsum)
      const q = b.i8(xq, kp), xsc = b.f32(xs, kp / 128)
      expect(Array.from(q.subarray(k)).every((v) => v === 0)).toBe(true)
      for (let i = 0; i < k; i++) expect(Math.abs(q[i] * xsc[i >> 7] - x[i])).toBeLessThanOrEqual(xsc[i >> 7] / 2 + 1e-6)

      const y1 = b.alloc(rows * 4), y2 = b.alloc(rows * 4)
      b.k.matvec_q4b_i8(w, ws, xq, xs, xsum, y1, rows, kp, 0, groups)
      b.k.matvec_q4b_i8_ref(w, ws, xq, xs, xsum, y2, rows, kp, 0, groups)
      const got = Array.from(b.f32(y1, rows))
      expect(got).toEqual(Array.from(b.f32(y2, rows)))
      for (const parts of [2, 3, groups + 1]) {
        b.f32(y2, rows).fill(NaN)
        for (const [first, end] of itemRanges(groups, parts, parts + k)) b.k.matvec_q4b_i8(w, ws, xq, xs, xsum, y2, rows, kp, first, end)
        expect(Array.from(b.f32(y2, rows))).toEqual(got)
      }

      // The integer definition, from the dequantized row and the quantized activations.
      // scales in 4-row groups: [group][block][row of the group]
      const deq = b.alloc(k * 4), allScales = b.f32(ws, stored * nb)
      const wsc = { at: (r: number, bl: number) => allScales[((r >> 2) * nb + bl) * 4 + (r & 3)] }
      let worstLevel = 0, worstStep = 0 // max |q|, max |dequantized − f16| in scale steps
      for (let r = 0; r < rows; r++) {
        b.k.dequantize_row_q4b(w, ws, r, k, kp, deq)
        const row = b.f32(deq, k)
        let want = 0, exact = 0, norm = 0
        for (let bl = 0; bl < nb; bl++) {
          let dot = 0
          for (let i = bl * 32; i < Math.min(k, bl * 32 + 32); i++) {
            const h = decodeHalf(half[r * k + i])
            const wq = Math.round(row[i] / (wsc.at(r, bl) || 1))
            worstLevel = Math.max(worstLevel, Math.abs(wq))
            if (wsc.at(r, bl) > 0) worstStep = Math.max(worstStep, Math.abs(row[i] - h) / wsc.at(r, bl))
            dot += wq * q[i]
            exact += h * x[i]; norm += Math.abs(h * x[i])
          }
          want = Math.fround(want + Math.fround(Math.fround(wsc.at(r, bl) * xsc[bl >> 2]) * dot))
        }
        expect(got[r]).toBe(want)
        expect(Math.abs(got[r] - exact)).toBeLessThan(0.15 * norm + 1e-6)
      }
      expect(worstLevel).toBeLessThanOrEqual(8)
      // half a step, or the clamp at +7 when the chosen scale reaches max|w| / 8.25
      expect(worstStep).toBeLessThanOrEqual(1.25 + 1e-6)
    })
  }
})

function decodeHalf(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15)
}
