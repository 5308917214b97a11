// The TL (lookup-table) kernel equals its scalar `_ref` twin and the I2_S kernel bit for
// bit, on awkward shapes and thread splits; its tables and both packers follow the layout.
import { describe, expect, it } from 'vitest'
import { encodeI2s } from '../src/formats/i2s.js'
import { packC4FromCodes, c4Shape } from '../src/formats/i2s-c4.js'
import { packTlFromCodes, tlShape } from '../src/formats/tl16.js'
import { itemRanges, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

const ROWS = [1, 3, 15, 16, 17, 33, 100]
const COLS = [1, 2, 127, 128, 130, 640, 2560, 6912]

describe.each(VARIANTS)('matvec_tl_i8 (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  const dv = () => new DataView(b.heap.buffer)

  // Writes q (zero-padded to kp) and its meta; builds the tables.
  const activations = (q: Int8Array, kp: number, s: number) => {
    const qp = b.alloc(kp), meta = b.alloc(8), lut = b.alloc(kp * 16)
    b.i8(qp, kp).fill(0).set(q)
    dv().setFloat32(meta, s, true)
    dv().setInt32(meta + 4, q.reduce((a, v) => a + v, 0), true)
    b.k.lut_build_i8(qp, kp, lut)
    return { qp, meta, lut }
  }

  // Runs TL (SIMD, ref) and I2_S on the same codes; returns the three outputs.
  const run = (codes: Int8Array, q: Int8Array, rows: number, cols: number, s: number, gamma: number) => {
    const tl = tlShape(rows, cols), c4 = c4Shape(rows, cols)
    expect(tl.kp).toBe(c4.kp)
    const { qp, meta, lut } = activations(q, tl.kp, s)
    const wt = b.alloc(tl.bytes), wx = b.alloc(c4.bytes)
    packTlFromCodes(codes, rows, cols, b.heap.subarray(wt, wt + tl.bytes))
    packC4FromCodes(codes, rows, cols, b.heap.subarray(wx, wx + c4.bytes))
    // one guard float past y: rows ≥ M must not be stored; y's old contents must not matter
    const y = b.alloc(rows * 4 + 4), yr = b.alloc(rows * 4), yi = b.alloc(rows * 4)
    b.f32(y, rows + 1).fill(NaN)
    b.k.matvec_tl_i8(wt, lut, meta, gamma, y, rows, tl.kp, 0, Math.ceil(rows / 16))
    b.k.matvec_tl_i8_ref(wt, lut, meta, gamma, yr, rows, tl.kp, 0, Math.ceil(rows / 16))
    b.k.matvec_i2s_i8(wx, qp, meta, gamma, yi, rows, c4.kp, 0, Math.ceil(rows / 4))
    expect(Number.isNaN(b.f32(y + rows * 4, 1)[0])).toBe(true)
    return { wt, lut, meta, y, kp: tl.kp, simd: Array.from(b.f32(y, rows)), ref: Array.from(b.f32(yr, rows)), i2s: Array.from(b.f32(yi, rows)) }
  }

  for (const rows of ROWS) {
    for (const cols of COLS) {
      it(`${rows}×${cols}: SIMD == _ref == I2_S == Σ w·q / s · γ, any thread split`, () => {
        const rand = rng(rows * 7919 + cols)
        const codes = Int8Array.from({ length: rows * cols }, () => Math.floor(rand() * 3) - 1)
        const q = Int8Array.from({ length: cols }, (_, i) =>
          i % 7 === 0 ? -128 : i % 11 === 0 ? 127 : Math.floor(rand() * 256) - 128)
        const s = 127 / 3.25, gamma = 0.8125
        const out = run(codes, q, rows, cols, s, gamma)
        expect(out.simd).toEqual(out.ref)
        expect(out.simd).toEqual(out.i2s)

        const sF = Math.fround(s)
        for (let r = 0; r < rows; r++) {
          let dot = 0
          for (let c = 0; c < cols; c++) dot += codes[r * cols + c] * q[c]
          expect(out.simd[r]).toBe(Math.fround(Math.fround(Math.fround(dot) / sF) * Math.fround(gamma)))
        }

        const groups = Math.ceil(rows / 16)
        for (const parts of [2, 3, 5]) {
          const y2 = b.alloc(rows * 4)
          b.f32(y2, rows).fill(NaN)
          for (const [first, end] of itemRanges(groups, parts, parts + cols)) b.k.matvec_tl_i8(out.wt, out.lut, out.meta, gamma, y2, rows, out.kp, first, end)
          expect(Array.from(b.f32(y2, rows))).toEqual(out.simd)
          b.f32(y2, rows).fill(NaN)
          for (const [first, end] of itemRanges(groups, parts, parts + rows)) b.k.matvec_tl_i8_ref(out.wt, out.lut, out.meta, gamma, y2, rows, out.kp, first, end)
          expect(Array.from(b.f32(y2, rows))).toEqual(out.simd)
        }
      })
    }
  }

  // Every lookup at |T| = 256 for the whole row: the largest i16 partial sums there are.
  for (const [w, x] of [[-1, -128], [1, -128], [1, 127], [-1, 127]]) {
    it(`extremes: all w = ${w}, all q = ${x}, 33×6912`, () => {
      const rows = 33, cols = 6912
      const codes = new Int8Array(rows * cols).fill(w)
      const q = new Int8Array(cols).fill(x)
      const out = run(codes, q, rows, cols, 1, 1)
      expect(out.simd).toEqual(Array(rows).fill(w * x * cols))
      expect(out.ref).toEqual(out.simd)
      expect(out.i2s).toEqual(out.simd)
    })
  }

  it('lut_build_i8: T[3(w0+1)+(w1+1)] = w0·q0 + w1·q1 = 16·hi + lo, lo ∈ [0, 16], hi ∈ [−16, 15], entries 9..15 zero', () => {
    const kp = 256
    const rand = rng(5)
    const q = Int8Array.from({ length: kp }, (_, i) => (i < 8 ? [-128, -128, 127, 127, -128, 127, 0, -1][i] : Math.floor(rand() * 256) - 128))
    const { lut } = activations(q, kp, 1)
    const bytes = b.heap.subarray(lut, lut + kp * 16)
    for (let p = 0; p < kp / 2; p++) {
      for (let idx = 0; idx < 16; idx++) {
        const w0 = Math.floor(idx / 3) - 1, w1 = (idx % 3) - 1
        const want = idx < 9 ? (w0 * q[2 * p] + w1 * q[2 * p + 1]) | 0 : 0
        const hi = (bytes[p * 32 + idx] << 24) >> 24, lo = bytes[p * 32 + 16 + idx]
        expect(16 * hi + lo).toBe(want)
        expect(lo >= 0 && lo <= 16 && hi >= -16 && hi <= 15).toBe(true)
      }
    }
  })
})

describe.each(VARIANTS)('repack_i2s_tl (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  // the load-time repack of official files == packing the decoded codes (padding rows, tiles)
  for (const [rows, cols] of [[1, 128], [3, 128], [16, 256], [17, 640], [33, 1152], [100, 2560], [20, 6912]]) {
    it(`${rows}×${cols}: == packTlFromCodes on the same codes, in 16-row groups cut in any order`, () => {
      const rand = rng(rows + cols)
      const codes = Int8Array.from({ length: rows * cols }, () => Math.floor(rand() * 3) - 1)
      const file = encodeI2s(codes, rows, cols, 1)
      const { bytes } = tlShape(rows, cols)
      const want = new Uint8Array(bytes)
      packTlFromCodes(codes, rows, cols, want)
      const src = b.alloc(file.length), dst = b.alloc(bytes)
      b.heap.set(file, src)
      b.heap.fill(0x5a, dst, dst + bytes) // every byte must be written
      for (const [first, end] of itemRanges(Math.ceil(rows / 16), 3, rows * cols)) b.k.repack_i2s_tl(src, rows, cols, dst, first, end)
      expect(Buffer.from(b.heap.slice(dst, dst + bytes)).equals(Buffer.from(want))).toBe(true)
    })
  }
})
