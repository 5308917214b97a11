// The f32 ops of the forward pass against float64 on awkward shapes: RoPE (NEOX as the
// kernel computes it, and NORM-layout files through the loader's row un-permutation), the
// full-precision output projections, and the batch norm + quantize split by rows over threads
// (also with the FFN activation fused before it), and greedy sampling's argmax.
// Any cut of the rows into ranges, run in a scrambled order, must give the same bytes.
import { describe, expect, it } from 'vitest'
import { f16ToF32, f32ToF16 } from '../src/formats/float.js'
import { argmax } from '../src/generation/sampler.js'
import { unpermuteQkRows } from '../src/model/qk-permute.js'
import { itemRanges, kernelBench, normQuantizeF64, rng, VARIANTS, type KernelBench } from './helpers/kernels.js'

const U = 2 ** -24 // f32 unit roundoff

/** Index of the first differing byte, or −1 (toEqual on large byte arrays is slow). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}

// ── RoPE ──────────────────────────────────────────────────────────────────────────────
// Pair i of a head rotates by pos·θ^(−2i/n_rot). NEOX pairs dims (i, i + n_rot/2) (HF's
// rotate-half); NORM pairs (2i, 2i + 1) (llama.cpp's `build_llama` on permuted q/k rows).

type RopeLayout = 'neox' | 'norm'
const PAIR: Record<RopeLayout, (i: number, nRot: number) => [number, number]> = {
  neox: (i, nRot) => [i, i + nRot / 2],
  norm: (i) => [2 * i, 2 * i + 1],
}

function ropeF64(x: Float32Array, heads: number, hd: number, nRot: number, theta: number, pos: number, layout: RopeLayout): Float64Array {
  const y = Float64Array.from(x)
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < nRot / 2; i++) {
      const angle = pos * Math.pow(theta, (-2 * i) / nRot)
      const [ia, ib] = PAIR[layout](i, nRot).map((d) => h * hd + d)
      const a = x[ia], b = x[ib]
      y[ia] = a * Math.cos(angle) - b * Math.sin(angle)
      y[ib] = b * Math.cos(angle) + a * Math.sin(angle)
    }
  }
  return y
}

/** The kernel on x with the host's f32 cos/sin table (as Transformer.ropeTable writes it). */
function ropeKernel(b: KernelBench, x: Float32Array, heads: number, hd: number, nRot: number, theta: number, pos: number): Float32Array {
  const xp = b.alloc(x.length * 4), cs = b.alloc(nRot * 4)
  b.f32(xp, x.length).set(x)
  const table = b.f32(cs, nRot), half = nRot / 2
  for (let i = 0; i < half; i++) {
    const angle = pos * Math.pow(theta, (-2 * i) / nRot)
    table[i] = Math.cos(angle)
    table[half + i] = Math.sin(angle)
  }
  b.k.rope_neox_f32(xp, heads, hd, nRot, cs)
  return b.f32(xp, x.length).slice()
}

// |kernel − f64| per rotated pair: f32 cos/sin (≤ u each), two products and a sum: ≤ 3u·(|a| + |b|).
function expectRotation(got: ArrayLike<number>, want: Float64Array, x: Float32Array, pairOf: (d: number) => number): void {
  for (let d = 0; d < want.length; d++) {
    const bound = 3 * U * (Math.abs(x[d]) + Math.abs(x[pairOf(d)])) + 1e-30
    if (!(Math.abs(got[d] - want[d]) <= bound)) expect.fail(`dim ${d}: ${got[d]} vs ${want[d]} (bound ${bound})`)
  }
}

interface RopeCase { heads: number; hd: number; nRot: number; theta: number; pos: number }
const ROPE_CASES: RopeCase[] = [
  { heads: 20, hd: 128, nRot: 128, theta: 500000, pos: 4095 }, //  2B4T q at the last position
  { heads: 5, hd: 128, nRot: 128, theta: 500000, pos: 0 }, //      position 0: the identity
  { heads: 3, hd: 80, nRot: 80, theta: 10000, pos: 1 }, //          1bitLLM-like head width
  { heads: 2, hd: 100, nRot: 100, theta: 10000, pos: 77 }, //       3B head_dim 100: half 50, not a multiple of 4
  { heads: 2, hd: 256, nRot: 256, theta: 1000042, pos: 123457 }, // Falcon3-1B: head_dim 256, θ 1000042, angles ≫ 2π
  { heads: 4, hd: 64, nRot: 32, theta: 10000, pos: 9 }, //          partial rotation: dims ≥ n_rot untouched
  { heads: 1, hd: 2, nRot: 2, theta: 10000, pos: 3 }, //            one pair
]

describe.each(VARIANTS)('rope_neox_f32 (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const c of ROPE_CASES) {
    it(`NEOX: ${c.heads} heads × ${c.hd}, n_rot ${c.nRot}, θ ${c.theta}, pos ${c.pos}`, () => {
      const rand = rng(c.hd * 31 + c.pos)
      const x = Float32Array.from({ length: c.heads * c.hd }, () => (rand() - 0.5) * 8)
      const got = ropeKernel(b, x, c.heads, c.hd, c.nRot, c.theta, c.pos)
      const want = ropeF64(x, c.heads, c.hd, c.nRot, c.theta, c.pos, 'neox')
      const half = c.nRot / 2
      expectRotation(got, want, x, (d) => {
        const j = d % c.hd
        return j >= c.nRot ? d : j < half ? d + half : d - half
      })
      for (let h = 0; h < c.heads; h++) {
        const tail = (a: ArrayLike<number>) => Array.from(a).slice(h * c.hd + c.nRot, (h + 1) * c.hd)
        expect(tail(got)).toEqual(tail(x))
      }
    })
  }

  // A NORM-layout file (arch llama): the loader un-permutes q/k rows, so the NEOX kernel on the
  // un-permuted vector must give the NORM rotation of the stored vector, un-permuted.
  for (const c of ROPE_CASES.filter((r) => r.nRot === r.hd)) {
    it(`NORM file: ${c.heads} heads × ${c.hd}, θ ${c.theta}, pos ${c.pos}`, () => {
      const rand = rng(c.hd * 37 + c.pos)
      const stored = Float32Array.from({ length: c.heads * c.hd }, () => (rand() - 0.5) * 8)
      const unpermute = <T extends Float32Array | Float64Array>(v: T): T => {
        unpermuteQkRows(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), c.heads, v.BYTES_PER_ELEMENT)
        return v
      }
      const got = ropeKernel(b, unpermute(stored.slice()), c.heads, c.hd, c.nRot, c.theta, c.pos)
      const want = unpermute(ropeF64(stored, c.heads, c.hd, c.nRot, c.theta, c.pos, 'norm'))
      const x = unpermute(stored.slice())
      const half = c.hd / 2
      expectRotation(got, want, x, (d) => (d % c.hd < half ? d + half : d - half))
    })
  }
})

// ── Full-precision output projection ─────────────────────────────────────────────────

describe.each(VARIANTS)('matvec_f16_f32 / matvec_f32_f32 (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  // rows × k: k below, at and past the 8-wide step with every tail length; 2B4T's width + 1
  const SHAPES: [number, number][] = [[1, 1], [3, 7], [5, 8], [2, 9], [37, 15], [9, 130], [4, 2561], [17, 640]]

  for (const half of [true, false]) {
    const op = half ? 'matvec_f16_f32' : 'matvec_f32_f32'
    for (const [rows, k] of SHAPES) {
      it(`${op} ${rows}×${k}: float64 within the summation bound, same bytes for any split`, () => {
        const rand = rng(rows * 1009 + k)
        // halves across the range, subnormals included; f32 weights of any magnitude
        const wf = Float32Array.from({ length: rows * k }, (_, i) => (i % 13 === 0 ? 3e-6 : (rand() - 0.5) * 2 ** Math.floor(rand() * 16 - 8)))
        const bits = Uint16Array.from(wf, (v) => f32ToF16(v))
        const w = half ? Float64Array.from(bits, f16ToF32) : Float64Array.from(wf)
        const x = Float32Array.from({ length: k }, () => (rand() - 0.5) * 4)
        const wp = b.alloc(rows * k * (half ? 2 : 4)), xp = b.alloc(k * 4), yp = b.alloc(rows * 4)
        if (half) new Uint16Array(b.heap.buffer, wp, rows * k).set(bits)
        else b.f32(wp, rows * k).set(wf)
        b.f32(xp, k).set(x)
        b.k[op](wp, xp, yp, rows, k, 0, rows)
        const y = b.f32(yp, rows).slice()
        for (let r = 0; r < rows; r++) {
          let exact = 0, abs = 0
          for (let i = 0; i < k; i++) { exact += w[r * k + i] * x[i]; abs += Math.abs(w[r * k + i] * x[i]) }
          expect(Math.abs(y[r] - exact), `row ${r}`).toBeLessThanOrEqual(k * U * abs + 1e-30)
        }
        for (const parts of [2, 3, rows + 2]) {
          b.f32(yp, rows).fill(NaN)
          for (const [first, end] of itemRanges(rows, parts, parts * k)) b.k[op](wp, xp, yp, rows, k, first, end)
          expect(b.f32(yp, rows).slice(), `${parts} ranges`).toEqual(y)
        }
      })
    }
  }

  it('matvec_f16_f32 converts every finite half exactly, in every SIMD lane and the tail', () => {
    const finite: number[] = []
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00) finite.push(h)
    for (const k of [8, 9]) { // k 9: the value sits in the scalar tail for rows ≡ 8 (mod 9)
      const rows = finite.length
      const wp = b.alloc(rows * k * 2), xp = b.alloc(k * 4), yp = b.alloc(rows * 4)
      const w = new Uint16Array(b.heap.buffer, wp, rows * k).fill(0)
      finite.forEach((h, r) => { w[r * k + (r % k)] = h })
      b.f32(xp, k).fill(1)
      b.k.matvec_f16_f32(wp, xp, yp, rows, k, 0, rows)
      const y = b.f32(yp, rows)
      for (let r = 0; r < rows; r++) {
        if (y[r] !== f16ToF32(finite[r])) expect.fail(`half 0x${finite[r].toString(16)} (lane ${r % k} of ${k}): ${y[r]}`)
      }
    }
  })
})

// ── Batch norm + quantize, split by rows ──────────────────────────────────────────────

describe.each(VARIANTS)('rmsnorm_quantize_rows_f32_i8 (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  const EPS = Math.fround(1e-5)

  for (const [rows, n] of [[1, 1], [3, 17], [8, 130], [5, 640], [2, 2560]] as const) {
    for (const norm of [true, false]) {
      it(`${rows} rows × ${n}${norm ? ' with RMSNorm' : ''}: each row is the float64 definition, its tables, any split`, () => {
        const np = Math.ceil(n / 128) * 128
        const rand = rng(rows * 131 + n)
        // rows of very different scales: each row has its own absmax and s
        const x = Float32Array.from({ length: rows * n }, (_, i) => (rand() - 0.5) * 10 ** ((i / n) % 4 - 2))
        const w = norm ? Float32Array.from({ length: n }, () => 0.25 + rand()) : undefined
        const xp = b.alloc(x.length * 4), wp = w ? b.alloc(n * 4) : 0
        b.f32(xp, x.length).set(x)
        if (w) b.f32(wp, n).set(w)
        const out = () => ({ q: b.alloc(rows * np), meta: b.alloc(rows * 8), lut: b.alloc(rows * np * 16) })
        const first = out()
        b.heap.fill(0x5a, first.q, first.q + rows * np) // the padding must be written
        b.k.rmsnorm_quantize_rows_f32_i8(xp, 0, wp, n, EPS, np, first.q, first.meta, first.lut, rows, 0, rows)
        const dv = new DataView(b.heap.buffer)
        const lutOne = b.alloc(np * 16)
        for (let t = 0; t < rows; t++) {
          const want = normQuantizeF64(x.subarray(t * n, (t + 1) * n), EPS, w)
          const q = b.i8(first.q + t * np, np)
          expect(Array.from(q.subarray(0, n)), `row ${t}`).toEqual(want.q)
          expect(q.subarray(n).every((v) => v === 0), `row ${t} padding`).toBe(true)
          expect(dv.getFloat32(first.meta + t * 8, true), `row ${t} s`).toBe(Math.fround(want.s))
          expect(dv.getInt32(first.meta + t * 8 + 4, true), `row ${t} Σq`).toBe(want.q.reduce((a, v) => a + v, 0))
          b.k.lut_build_i8(first.q + t * np, np, lutOne)
          const tables = b.heap.subarray(first.lut + t * np * 16, first.lut + (t + 1) * np * 16)
          expect(firstDiff(tables, b.heap.subarray(lutOne, lutOne + np * 16)), `row ${t} tables`).toBe(-1)
        }
        // q, meta and tables as one byte string each
        const bytes = (o: ReturnType<typeof out>, lut = true) => new Uint8Array([
          ...b.heap.subarray(o.q, o.q + rows * np), ...b.heap.subarray(o.meta, o.meta + rows * 8),
          ...(lut ? b.heap.subarray(o.lut, o.lut + rows * np * 16) : []),
        ])
        const want = bytes(first)
        for (const parts of [2, 3, rows + 3]) {
          const o = out()
          for (const [lo, hi] of itemRanges(rows, parts, parts + n)) b.k.rmsnorm_quantize_rows_f32_i8(xp, 0, wp, n, EPS, np, o.q, o.meta, o.lut, rows, lo, hi)
          expect(firstDiff(bytes(o), want), `${parts} ranges`).toBe(-1)
        }
        // lut = 0: no tables written, the same q and meta
        const noLut = out()
        b.heap.fill(0x77, noLut.lut, noLut.lut + rows * np * 16)
        b.k.rmsnorm_quantize_rows_f32_i8(xp, 0, wp, n, EPS, np, noLut.q, noLut.meta, 0, rows, 0, rows)
        expect(firstDiff(bytes(noLut, false), bytes(first, false))).toBe(-1)
        expect(b.heap.subarray(noLut.lut, noLut.lut + rows * np * 16).every((v) => v === 0x77)).toBe(true)
      })
    }
  }
})

describe.each(VARIANTS)('gated_rmsnorm_quantize_rows_f32_i8 (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  const EPS = Math.fround(1e-5)
  const ACTS = [['relu2', 0, 'relu2_mul_f32'], ['silu', 1, 'silu_mul_f32'], ['gelu', 2, 'gelu_mul_f32']] as const

  for (const [rows, n] of [[1, 5], [3, 130], [6, 768]] as const) {
    for (const [act, code, kernel] of ACTS) {
      it(`${rows} rows × ${n}, ${act}: the activation kernel then the row norm + quantize, byte for byte, any split`, () => {
        const np = Math.ceil(n / 128) * 128
        const rand = rng(rows * 17 + n + code)
        const g = Float32Array.from({ length: rows * n }, () => (rand() - 0.5) * 8)
        const u = Float32Array.from({ length: rows * n }, () => (rand() - 0.5) * 3)
        const w = Float32Array.from({ length: n }, () => 0.25 + rand())
        const put = (v: Float32Array) => { const p = b.alloc(v.length * 4); b.f32(p, v.length).set(v); return p }
        const up = put(u), wp = put(w)
        // the two steps as the forward pass ran them before: activation over the batch, then the rows kernel
        const g0 = put(g), q0 = b.alloc(rows * np), m0 = b.alloc(rows * 8), l0 = b.alloc(rows * np * 16)
        b.k[kernel](g0, up, rows * n)
        b.k.rmsnorm_quantize_rows_f32_i8(g0, 0, wp, n, EPS, np, q0, m0, l0, rows, 0, rows)
        const bytes = (gp: number, q: number, m: number, l: number) => new Uint8Array([
          ...b.heap.subarray(gp, gp + rows * n * 4), ...b.heap.subarray(q, q + rows * np), ...b.heap.subarray(m, m + rows * 8),
          ...b.heap.subarray(l, l + rows * np * 16),
        ])
        const want = bytes(g0, q0, m0, l0)
        for (const parts of [1, 2, rows + 2]) {
          const g1 = put(g), q1 = b.alloc(rows * np), m1 = b.alloc(rows * 8), l1 = b.alloc(rows * np * 16)
          for (const [lo, hi] of itemRanges(rows, parts, parts + n)) {
            b.k.gated_rmsnorm_quantize_rows_f32_i8(code, g1, up, wp, n, EPS, np, q1, m1, l1, rows, lo, hi)
          }
          expect(firstDiff(bytes(g1, q1, m1, l1), want), `${parts} ranges`).toBe(-1)
        }
      })
    }
  }
})

// ── Output norm and element-wise ops ──────────────────────────────────────────────────

describe.each(VARIANTS)('rmsnorm_f32 and the element-wise ops (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  const put = (v: Float32Array) => { const p = b.alloc(v.length * 4); b.f32(p, v.length).set(v); return p }

  for (const n of [1, 3, 4, 130, 2561]) {
    it(`n ${n}: rmsnorm_f32 within f32 rounding of float64; add, ReLU²·up exact; SiLU·up within 4 ulp`, () => {
      const rand = rng(n + 5)
      const x = Float32Array.from({ length: n }, () => (rand() - 0.5) * 6)
      const w = Float32Array.from({ length: n }, () => 0.5 + rand())
      const u = Float32Array.from({ length: n }, () => (rand() - 0.5) * 3)
      const eps = Math.fround(1e-5)

      const y = b.alloc(n * 4)
      b.k.rmsnorm_f32(put(x), put(w), y, n, eps)
      const inv = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / n + eps)
      // mean of squares summed in f32 (≤ n·u relative), then two products: a few n·u overall
      b.f32(y, n).forEach((v, i) => expect(Math.abs(v - x[i] * inv * w[i]), `rmsnorm ${i}`).toBeLessThanOrEqual((n + 4) * U * Math.abs(x[i] * inv * w[i]) + 1e-30))

      const sum = put(x)
      b.k.add_f32(sum, put(u), n)
      expect(b.f32(sum, n).slice()).toEqual(x.map((v, i) => Math.fround(v + u[i])))

      const relu = put(x)
      b.k.relu2_mul_f32(relu, put(u), n)
      expect(b.f32(relu, n).slice()).toEqual(x.map((v, i) => { const r = Math.max(v, 0); return Math.fround(Math.fround(r * r) * u[i]) }))

      const silu = put(x)
      b.k.silu_mul_f32(silu, put(u), n)
      b.f32(silu, n).forEach((v, i) => {
        const want = (x[i] / (1 + Math.exp(-x[i]))) * u[i]
        expect(Math.abs(v - want), `silu ${i}`).toBeLessThanOrEqual(4 * U * Math.abs(want) + 1e-30)
      })
    })
  }
  it('ReLU²·up on NaN, ±0, ±∞: NaN stays NaN, the rest as max(g, 0)² · u', () => {
    const g = Float32Array.from([-0, 0, NaN, -Infinity, Infinity, -1, 2, -0, 0.5])
    const u = Float32Array.from([1, -1, 1, 2, 1, 3, -1, -1, 1])
    const p = put(g)
    b.k.relu2_mul_f32(p, put(u), g.length)
    const want = Array.from(g, (v, i) => { const r = Number.isNaN(v) ? NaN : Math.max(v, 0); return Math.fround(Math.fround(r * r) * u[i]) })
    Array.from(b.f32(p, g.length)).forEach((v, i) => expect(Object.is(v, want[i]), `element ${i}: ${v} vs ${want[i]}`).toBe(true))
  })
})

// Greedy sampling's pick (assembly/ops/select.ts): the SIMD scan == its _ref twin == the
// sampler's JavaScript argmax, on ties across lanes and vectors, NaN, ±∞, ±0 and odd lengths.
describe.each(VARIANTS)('argmax_f32 (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  const both = (x: Float32Array) => {
    const p = b.alloc(x.length * 4)
    b.f32(p, x.length).set(x)
    return [b.k.argmax_f32(p, x.length), b.k.argmax_f32_ref(p, x.length)]
  }
  const js = (x: Float32Array) => { try { return argmax(x) } catch { return -1 } }

  it('random logits of awkward lengths, the max moved to every kind of position', () => {
    const rand = rng(17)
    for (const n of [1, 2, 15, 16, 17, 31, 33, 100, 1000, 128256]) {
      const x = Float32Array.from({ length: n }, () => (rand() - 0.5) * 20)
      for (const at of [0, n - 1, n >> 1, Math.min(n - 1, n & ~15), Math.max(0, (n & ~15) - 1)]) {
        const y = x.slice()
        y[at] = 11
        expect(both(y), `n ${n}, max at ${at}`).toEqual([at, at])
      }
    }
  })

  it('ties go to the lowest index, across lanes, vectors and the tail', () => {
    for (const [n, ids] of [[64, [5, 2]], [64, [17, 3, 60]], [40, [33, 39]], [40, [38, 7]], [7, [6, 4]], [100, [99, 0]]] as const) {
      const x = new Float32Array(n).fill(-3)
      for (const i of ids) x[i] = 4
      expect(both(x), `n ${n}, ties ${ids}`).toEqual([Math.min(...ids), Math.min(...ids)])
    }
    // −0 and +0 are one value: the first of them wins
    expect(both(Float32Array.from([-1, -0, 0, -2]))).toEqual([1, 1])
    expect(both(Float32Array.from([-1, 0, -0, -2]))).toEqual([1, 1])
  })

  it('NaN never wins, −∞ only when nothing else is left (then −1), +∞ wins', () => {
    const cases: [number[], number][] = [
      [[NaN, -1, NaN], 1],
      [[NaN, NaN, NaN], -1],
      [[-Infinity, NaN, -Infinity], -1],
      [[-Infinity, -Infinity, -1e30], 2],
      [[1, Infinity, NaN, Infinity], 1],
    ]
    for (const [v, want] of cases) {
      for (const pad of [0, 16, 37]) { // the same values in the scalar tail and inside vectors
        const x = Float32Array.from([...new Array(pad).fill(NaN), ...v, ...new Array(pad).fill(-Infinity)])
        const at = want < 0 ? -1 : want + pad
        expect(both(x), `${v} after ${pad} NaN`).toEqual([at, at])
        expect(js(x)).toBe(at)
      }
    }
  })

  it('equals the JavaScript argmax on rows of a few distinct values (many ties)', () => {
    const rand = rng(5)
    for (let r = 0; r < 50; r++) {
      const n = 1 + Math.floor(rand() * 300)
      const x = Float32Array.from({ length: n }, () => [NaN, -Infinity, -1, 0, 2, 2.5][Math.floor(rand() * 6)])
      const want = js(x)
      expect(both(x), `row ${r}`).toEqual([want, want])
    }
  })
})
