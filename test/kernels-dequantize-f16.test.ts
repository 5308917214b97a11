// Q6_K and Q8_0 rows → f16 rows (the loader's conversion of a quantized embedding / output
// matrix): SIMD == _ref bit for bit at any thread split, and both equal the TypeScript path
// (dequantizeQ6_K / dequantizeQ8_0 in f32, then f32ToF16) for every weight, over random blocks
// with every kind of block scale: normal, the largest (products overflow to ±Inf), subnormal
// (subnormal weights), ±0, ±Inf and NaN (NaN weights: any NaN bits, the loader rejects them).
import { describe, expect, it } from 'vitest'
import { f16ToF32, f32ToF16 } from '../src/formats/float.js'
import { dequantizeQ6_K } from '../src/formats/q6_k.js'
import { dequantizeQ8_0 } from '../src/formats/q8_0.js'
import { itemRanges, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

/** Block scales (f16 bits) besides random ones: max, smallest normal, subnormals, ±0, ±Inf, NaN. */
const SPECIAL_D = [0x7bff, 0xfbff, 0x0400, 0x0001, 0x03ff, 0x8155, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e01, 0xfd00]

const FORMATS = [
  { name: 'Q6_K', elems: 256, bytes: 210, dAt: 208, ks: [256, 512, 2560, 4096], dequantize: dequantizeQ6_K, kernel: 'dequantize_rows_q6_k_f16' },
  { name: 'Q8_0', elems: 32, bytes: 34, dAt: 0, ks: [32, 96, 2560], dequantize: dequantizeQ8_0, kernel: 'dequantize_rows_q8_0_f16' },
] as const

const isNaN16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0

describe.each(VARIANTS)('quantized rows → f16 rows (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  describe.each(FORMATS)('$name', (f) => {
    it.each([1, 3, 7])('%i rows: SIMD == _ref at any split == the TypeScript dequantizer rounded to f16', (rows) => {
      let nans = 0, infs = 0, subnormals = 0, rounded = 0, special = 0
      for (const k of f.ks) {
        const rand = rng(rows * 1000 + k), nb = (rows * k) / f.elems
        const bytes = Uint8Array.from({ length: nb * f.bytes }, () => Math.floor(rand() * 256))
        const dv = new DataView(bytes.buffer)
        for (let blk = 0; blk < nb; blk++) {
          // every other block special (in turn); the rest random finite scales: around 1 (products that round) or any
          const d = blk % 2 === 0 ? SPECIAL_D[special++ % SPECIAL_D.length] : blk % 4 === 1 ? f32ToF16((rand() - 0.5) * 4) : Math.floor(rand() * 0x7c00) | (rand() < 0.5 ? 0x8000 : 0)
          dv.setUint16(blk * f.bytes + f.dAt, d, true)
        }
        const src = b.alloc(bytes.length), out = b.alloc(rows * k * 2), ref = b.alloc(rows * k * 2)
        b.heap.set(bytes, src)
        const got = () => new Uint16Array(b.heap.buffer, out, rows * k).slice()
        b.k[`${f.kernel}_ref`](src, rows, k, ref, 0, rows)
        const want = new Uint16Array(b.heap.buffer, ref, rows * k).slice()
        b.k[f.kernel](src, rows, k, out, 0, rows)
        expect(got()).toEqual(want)
        for (const parts of [2, rows + 1]) {
          new Uint16Array(b.heap.buffer, out, rows * k).fill(0xffff)
          for (const [first, end] of itemRanges(rows, parts, parts + k)) b.k[f.kernel](src, rows, k, out, first, end)
          expect(got()).toEqual(want)
        }

        const values = f.dequantize(bytes, rows * k)
        let mismatches = 0
        for (let i = 0; i < values.length; i++) {
          const ts = f32ToF16(values[i]), h = want[i]
          if (isNaN16(ts) ? !isNaN16(h) : h !== ts) mismatches++
          if (isNaN16(h)) nans++
          else if ((h & 0x7fff) === 0x7c00) infs++
          else if ((h & 0x7c00) === 0 && (h & 0x3ff) !== 0) subnormals++
          else if (f16ToF32(h) !== values[i]) rounded++
        }
        expect(mismatches, `${k}`).toBe(0)
      }
      // the data reaches every case of the rounding to f16
      expect([nans, infs, subnormals, rounded].map((n) => n > 0)).toEqual([true, true, true, true])
    })
  })
})
