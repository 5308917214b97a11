// The I2_S SIMD kernel equals its scalar `_ref` twin bit for bit, and both equal the
// exact integer definition y = Σ w·q / s · γ, on awkward shapes and thread splits.
import { describe, expect, it } from 'vitest'
import { encodeI2s } from '../src/formats/i2s.js'
import { packC4FromCodes, c4Shape } from '../src/formats/i2s-c4.js'
import { itemRanges, kernelBench, normQuantizeF64, rng, VARIANTS } from './helpers/kernels.js'

const SHAPES: [number, number][] = [
  [1, 128], [3, 128], [4, 256], [5, 384], [7, 130], [13, 1], [17, 255], [64, 640], [33, 2560], [2, 6912],
]

describe.each(VARIANTS)('matvec_i2s_i8 (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, cols] of SHAPES) {
    it(`${rows}×${cols}: SIMD == _ref == integer definition`, () => {
      const rand = rng(rows * 10007 + cols)
      const codes = Int8Array.from({ length: rows * cols }, () => Math.floor(rand() * 3) - 1)
      // extreme activations too: all −128 or 127 stress the i16 accumulation
      const q = Int8Array.from({ length: cols }, (_, i) => (i % 7 === 0 ? -128 : i % 11 === 0 ? 127 : Math.floor(rand() * 256) - 128))
      const { kp, bytes } = c4Shape(rows, cols), groups = Math.ceil(rows / 4)
      const w = b.alloc(bytes), qp = b.alloc(kp), meta = b.alloc(8), y1 = b.alloc(rows * 4), y2 = b.alloc(rows * 4)
      packC4FromCodes(codes, rows, cols, b.heap.subarray(w, w + bytes))
      b.i8(qp, kp).fill(0).set(q)
      const sumq = q.reduce((a, v) => a + v, 0)
      const s = 127 / 3.25, gamma = 0.8125
      new DataView(b.heap.buffer).setFloat32(meta, s, true)
      new DataView(b.heap.buffer).setInt32(meta + 4, sumq, true)

      b.k.matvec_i2s_i8(w, qp, meta, gamma, y1, rows, kp, 0, groups)
      b.k.matvec_i2s_i8_ref(w, qp, meta, gamma, y2, rows, kp, 0, groups)
      expect(Array.from(b.f32(y1, rows))).toEqual(Array.from(b.f32(y2, rows)))

      const sF = Math.fround(s)
      for (let r = 0; r < rows; r++) {
        let dot = 0
        for (let c = 0; c < cols; c++) dot += codes[r * cols + c] * q[c]
        const expected = Math.fround(Math.fround(Math.fround(dot) / sF) * Math.fround(gamma))
        expect(b.f32(y1, rows)[r]).toBe(expected)
      }

      // Any cut of the 4-row groups into ranges, in any order, computes the same rows.
      for (const parts of [2, 3, 5, groups + 2]) {
        b.f32(y2, rows).fill(NaN)
        for (const [first, end] of itemRanges(groups, parts, parts * rows)) b.k.matvec_i2s_i8(w, qp, meta, gamma, y2, rows, kp, first, end)
        expect(Array.from(b.f32(y2, rows))).toEqual(Array.from(b.f32(y1, rows)))
      }
    })
  }
})

describe.each(VARIANTS)('matvec_i2s_i8 at the largest sums (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  // rows 1 and 2 of a group sum 4 and 16 × their dot in i32: every weight +1 (code 2) against
  // every activation −128 or 127 over K = 36864 (a 100B model's FFN width) must stay exact
  for (const q of [-128, 127]) {
    it(`4×36864, every weight +1, every activation ${q}`, () => {
      const rows = 4, cols = 36864
      const { kp, bytes } = c4Shape(rows, cols)
      const wp = b.alloc(bytes), qp = b.alloc(kp), meta = b.alloc(8), y = b.alloc(rows * 4)
      packC4FromCodes(new Int8Array(rows * cols).fill(1), rows, cols, b.heap.subarray(wp, wp + bytes))
      b.i8(qp, kp).fill(q)
      new DataView(b.heap.buffer).setFloat32(meta, 1, true)
      new DataView(b.heap.buffer).setInt32(meta + 4, 0, true)
      b.k.matvec_i2s_i8(wp, qp, meta, 1, y, rows, kp, 0, 1)
      // Σq given as 0, so each row is Σ c·q = 2 · q · K (an integer below 2^24: exact in f32)
      expect(Array.from(b.f32(y, rows))).toEqual(new Array(rows).fill(2 * q * cols))
    })
  }
})

describe.each(VARIANTS)('repack_i2s_c4 (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  // the load-time move of official files' blocks == packing the decoded codes, padding rows too
  for (const [rows, cols] of [[1, 128], [4, 256], [5, 384], [13, 640], [8, 2560]] as const) {
    it(`${rows}×${cols}: same bytes as packC4FromCodes, in 4-row groups cut in any order`, () => {
      const rand = rng(rows * 7919 + cols)
      const codes = Int8Array.from({ length: rows * cols }, () => Math.floor(rand() * 3) - 1)
      const file = encodeI2s(codes, rows, cols, 1)
      const { bytes } = c4Shape(rows, cols)
      const src = b.alloc(file.length), dst = b.alloc(bytes)
      b.heap.set(file, src)
      b.heap.fill(0xaa, dst, dst + bytes) // every byte must be written
      // the groups in 3 ranges, run out of order (a load-time round of the thread pool)
      for (const [first, end] of itemRanges(Math.ceil(rows / 4), 3, rows + cols)) b.k.repack_i2s_c4(src, rows, cols, dst, first, end)
      const want = new Uint8Array(bytes)
      packC4FromCodes(codes, rows, cols, want)
      expect(b.heap.slice(dst, dst + bytes)).toEqual(want)
    })
  }
})

describe.each(VARIANTS)('rmsnorm_quantize_f32_i8 (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  const EPS = Math.fround(1e-5)
  const reference = (x: Float32Array, w?: Float32Array, w0?: Float32Array) => normQuantizeF64(x, EPS, w, w0)
  const run = (x: Float32Array, w?: Float32Array, w0?: Float32Array) => {
    const n = x.length, np = Math.ceil(n / 128) * 128
    const xp = b.alloc(n * 4), wp = w ? b.alloc(n * 4) : 0, w0p = w0 ? b.alloc(n * 4) : 0, qp = b.alloc(np), meta = b.alloc(8)
    b.f32(xp, n).set(x)
    if (w) b.f32(wp, n).set(w)
    if (w0) b.f32(w0p, n).set(w0)
    b.i8(qp, np).fill(99)
    b.k.rmsnorm_quantize_f32_i8(xp, w0p, wp, n, EPS, np, qp, meta)
    const dv = new DataView(b.heap.buffer)
    return { s: dv.getFloat32(meta, true), sum: dv.getInt32(meta + 4, true), q: Array.from(b.i8(qp, n)), pad: Array.from(b.i8(qp + n, np - n)) }
  }

  for (const n of [1, 3, 4, 8, 17, 128, 130, 384, 2560, 6912]) {
    for (const norm of [0, 1, 2]) {
      it(`n=${n}${['', ' with RMSNorm', ' with two RMSNorms'][norm]}: absmax scale, RNE in f64, zero padding, Σq`, () => {
        const rand = rng(n)
        const x = Float32Array.from({ length: n }, () => (rand() - 0.5) * 7.3)
        const w = norm ? Float32Array.from({ length: n }, () => 0.5 + rand()) : undefined
        const w0 = norm === 2 ? Float32Array.from({ length: n }, () => 0.5 + rand()) : undefined
        const want = reference(x, w, w0)
        const got = run(x, w, w0)
        expect(got.q).toEqual(want.q)
        expect(got.s).toBe(Math.fround(want.s))
        expect(got.sum).toBe(want.q.reduce((a, v) => a + v, 0))
        expect(got.pad.every((v) => v === 0)).toBe(true)
      })
    }
  }

  it('rounds exact .5 ties to even, and clamps', () => {
    // absmax 127 makes s = 1 exactly, so x itself is the scaled value.
    const x = Float32Array.from([127, 2.5, -3.5, 0.5, -0.5, 1.5, -127, 126.5])
    expect(run(x).q).toEqual([127, 2, -4, 0, 0, 2, -127, 126])
  })

  it('a row holding NaN or ∞ quantizes to zeros, its scale not finite or 0', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const w of [undefined, new Float32Array(130).fill(1)]) {
        const x = Float32Array.from({ length: 130 }, (_, i) => (i === 7 ? bad : Math.sin(i) * 3))
        const got = run(x, w)
        expect(got.q.every((v) => v === 0)).toBe(true)
        expect(got.sum).toBe(0)
        expect(Number.isFinite(got.s) && got.s !== 0).toBe(false)
      }
    }
  })

  it('an all-zero vector quantizes to zeros (absmax floor 1e-5)', () => {
    const got = run(new Float32Array(9))
    expect(got.q.every((v) => v === 0)).toBe(true)
    expect(got.s).toBe(Math.fround(127 / 1e-5))
  })
})
