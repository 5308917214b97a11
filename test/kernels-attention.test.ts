// The split-K attention kernels (assembly/ops/attention.ts) against a float64 computation
// on awkward shapes: head_dim 64/80/128/256 (and 36 for the scalar twins), GQA ratios 1–8,
// lengths and batches that are no multiple of the block, the tile or the quad of queries, f32
// and f16 caches; the items cut into nth uneven ranges (1, 2, 3, 7, more ranges than items)
// run in a shuffled order must give the same bytes, with the widened-tile slots free, all held
// by other calls, or absent. And the f32 → f16 conversion that fills an f16 cache.
import { beforeAll, describe, expect, it } from 'vitest'
import { itemRanges, kernelBench, rng, VARIANTS, type KernelBench } from './helpers/kernels.js'

interface Case { headDim: number; nHead: number; nHeadKv: number; nPos: number; n: number; block: number }

const CASES: Case[] = [
  { headDim: 64, nHead: 4, nHeadKv: 4, nPos: 1, n: 1, block: 128 }, //        first token, MHA
  { headDim: 128, nHead: 20, nHeadKv: 5, nPos: 1000, n: 1, block: 128 }, //  2B4T heads, 8 blocks, last one partial
  { headDim: 80, nHead: 10, nHeadKv: 2, nPos: 259, n: 1, block: 64 }, //     GQA 5: a quad + a single head
  { headDim: 256, nHead: 8, nHeadKv: 1, nPos: 77, n: 3, block: 32 }, //      GQA 8, a batch of 3 across blocks
  { headDim: 64, nHead: 6, nHeadKv: 2, nPos: 129, n: 8, block: 128 }, //     GQA 3, batch of 8 crossing a block edge
  { headDim: 128, nHead: 4, nHeadKv: 2, nPos: 5, n: 7, block: 128 }, //      one block: round 1 writes out itself
  { headDim: 64, nHead: 7, nHeadKv: 7, nPos: 300, n: 2, block: 16 }, //      many small blocks
  { headDim: 128, nHead: 8, nHeadKv: 2, nPos: 90, n: 32, block: 128 }, //    a full prompt chunk, tiles cut by the causal edge
  { headDim: 80, nHead: 6, nHeadKv: 6, nPos: 150, n: 17, block: 64 }, //     MHA, 17 rows over 3 blocks
  { headDim: 128, nHead: 12, nHeadKv: 4, nPos: 333, n: 5, block: 128 }, //   GQA 3: 15 queries, the last quad repeats one
  { headDim: 256, nHead: 6, nHeadKv: 1, nPos: 41, n: 31, block: 128 }, //    GQA 6, 31 rows, an odd last tile
  { headDim: 64, nHead: 16, nHeadKv: 2, nPos: 2, n: 1, block: 128 }, //      GQA 8 decode: two quads share each key
]
const REF_ONLY: Case[] = [{ headDim: 36, nHead: 6, nHeadKv: 3, nPos: 50, n: 2, block: 16 }]

type Kind = 'f32' | 'f16'

describe.each(VARIANTS)('attention kernels (%s build)', (variant) => {
  let b: KernelBench
  beforeAll(async () => { b = await kernelBench(variant, 192 << 20) }) // every case allocates anew: caches of 1000 rows

  for (const kind of ['f32', 'f16'] as Kind[]) {
    for (const [simd, cases] of [['', CASES], ['_ref', [...CASES, ...REF_ONLY]]] as const) {
      for (const c of cases) {
        it(`attention_partial_${kind}${simd}: d ${c.headDim}, ${c.nHead}/${c.nHeadKv} heads, ${c.nPos} positions × ${c.n} rows, block ${c.block}`, () => {
          const t = setup(b, c, kind)
          const want = reference(t, c)
          let first: Float32Array | undefined
          const items = c.nHeadKv * t.nBlocks
          for (const [nth, tiles] of [[1, 'free'], [2, 'held'], [3, 'none'], [7, 'free'], [items + 5, 'free']] as const) {
            const got = run(b, t, c, `attention_partial_${kind}${simd}`, nth, tiles)
            let maxDiff = 0
            got.forEach((v, i) => { maxDiff = Math.max(maxDiff, Math.abs(v - want[i])) })
            // f32 arithmetic on scores of a few units and values in ±1: measured ≤ 1e-6
            expect(maxDiff, `nth ${nth}`).toBeLessThan(1e-5)
            if (first) expect(sameBytes(got, first), `nth ${nth}, tile slots ${tiles}, vs nth 1`).toBe(true)
            else first = got
          }
        })
      }
    }
  }

  // A prompt chunk is one job; each of its rows must get what a decode step at its position
  // gets (test/kv-batch.test.ts: prefill equals token by token, bit for bit).
  // Quads of queries within a row (GQA 4) and across rows (GQA 3, 33 queries).
  const BATCHES: Case[] = [{ headDim: 64, nHead: 8, nHeadKv: 2, nPos: 125, n: 8, block: 128 }, { headDim: 80, nHead: 6, nHeadKv: 2, nPos: 120, n: 11, block: 64 }]
  for (const kind of ['f32', 'f16'] as Kind[]) {
    for (const [simd, c] of ['', '_ref'].flatMap((x) => BATCHES.map((c) => [x, c] as const))) {
      it(`attention_partial_${kind}${simd}: a row of a batch gets the same bytes as alone (blocks edge inside the batch; GQA ${c.nHead / c.nHeadKv})`, () => {
        const t = setup(b, c, kind)
        const batch = run(b, t, c, `attention_partial_${kind}${simd}`, 3)
        const qDim = c.nHead * c.headDim
        for (let r = 0; r < c.n; r++) {
          const one: Case = { ...c, nPos: c.nPos + r, n: 1 }
          const alone = run(b, { ...t, q: t.q + r * qDim * 4, nBlocks: Math.ceil(one.nPos / c.block) }, one, `attention_partial_${kind}${simd}`, 2)
          expect(alone, `row ${r}`).toEqual(batch.subarray(r * qDim, (r + 1) * qDim))
        }
      })
    }
  }

  it('f32_to_f16 equals its scalar twin and rounds to nearest even', () => {
    const n = 1003 // not a multiple of 8: the scalar tail too
    const src = b.alloc(n * 4), dst = b.alloc(n * 2), dstRef = b.alloc(n * 2), back = b.alloc(n * 4)
    const x = b.f32(src, n), rand = rng(7)
    const special = [0, -0, 1, -1, 65504, 65519, 65520, -70000, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-30, 1 + 2 ** -11, 1 + 3 * 2 ** -11]
    for (let i = 0; i < n; i++) x[i] = i < special.length ? special[i] : (rand() - 0.5) * 10 ** Math.floor(rand() * 12 - 8)
    b.k.f32_to_f16(src, dst, n)
    b.k.f32_to_f16_ref(src, dstRef, n)
    const h = new Uint16Array(b.heap.buffer, dst, n)
    expect(h).toEqual(new Uint16Array(b.heap.buffer, dstRef, n))
    for (let i = 0; i < n; i++) expect(h[i], `x = ${x[i]}`).toBe(halfBits(x[i]))
    b.k.f16_to_f32(dst, back, n)
    expect(b.f32(back, 3)).toEqual(new Float32Array([0, -0, 1]))
  })
})

interface Setup { q: number; kc: number; vc: number; att: number; part: number; count: number; tiles: number; out: number; nBlocks: number; kv: Float64Array[]; vv: Float64Array[]; qv: Float32Array }

/** The tile slots as the host lays them out (transformer.ts): 2 slots of 32 positions. */
const TILE_SLOTS = 2, TILE = 32

// Random q [n][n_head][d] and a cache [n_pos + n − 1][n_head_kv][d] of kind; kv/vv hold the
// stored values as float64 (after f16 rounding), so the comparison sees kernel arithmetic only.
function setup(b: KernelBench, c: Case, kind: Kind): Setup {
  const rand = rng(c.headDim * 1000 + c.nPos + c.n)
  const len = c.nPos + c.n - 1, kvDim = c.nHeadKv * c.headDim, qDim = c.nHead * c.headDim
  const nBlocks = Math.ceil(len / c.block)
  const elem = kind === 'f16' ? 2 : 4
  const q = b.alloc(c.n * qDim * 4), kc = b.alloc(len * kvDim * elem), vc = b.alloc(len * kvDim * elem)
  const att = b.alloc(c.nHeadKv * nBlocks * c.n * (c.nHead / c.nHeadKv) * c.block * 4)
  const part = b.alloc(c.n * c.nHead * nBlocks * (4 + c.headDim) * 4), out = b.alloc(c.n * qDim * 4), count = b.alloc(c.nHeadKv * 4)
  const tiles = b.alloc(64 + TILE_SLOTS * (64 + TILE * c.headDim * 4))
  new Int32Array(b.heap.buffer, tiles, 2).set([TILE_SLOTS, TILE * c.headDim])
  const qv = b.f32(q, c.n * qDim)
  // scores q·k/√d of a few units: q, k uniform in ±1.5
  for (let i = 0; i < qv.length; i++) qv[i] = (rand() - 0.5) * 3
  const fill = (ptr: number): Float64Array[] => {
    const tmp = b.alloc(len * kvDim * 4), f = b.f32(tmp, len * kvDim)
    for (let i = 0; i < f.length; i++) f[i] = (rand() - 0.5) * 3
    if (kind === 'f16') {
      b.k.f32_to_f16(tmp, ptr, len * kvDim)
      b.k.f16_to_f32(ptr, tmp, len * kvDim)
    } else b.heap.copyWithin(ptr, tmp, tmp + len * kvDim * 4)
    return Array.from({ length: len }, (_, t) => Float64Array.from(f.subarray(t * kvDim, (t + 1) * kvDim)))
  }
  return { q, kc, vc, att, part, count, tiles, out, nBlocks, kv: fill(kc), vv: fill(vc), qv }
}

function reference(t: Setup, c: Case): Float64Array {
  const d = c.headDim, group = c.nHead / c.nHeadKv
  const out = new Float64Array(c.n * c.nHead * d)
  for (let r = 0; r < c.n; r++) {
    for (let h = 0; h < c.nHead; h++) {
      const g = Math.floor(h / group), qo = (r * c.nHead + h) * d
      const s = Array.from({ length: c.nPos + r }, (_, p) => {
        let dot = 0
        for (let i = 0; i < d; i++) dot += t.qv[qo + i] * t.kv[p][g * d + i]
        return dot / Math.sqrt(d)
      })
      const mx = Math.max(...s)
      const e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, x) => a + x, 0)
      e.forEach((w, p) => { for (let i = 0; i < d; i++) out[qo + i] += (w / sum) * t.vv[p][g * d + i] })
    }
  }
  return out
}

// The round as nth item ranges in a shuffled order, on outputs and scratch poisoned with NaN,
// the blocks-done counters zeroed as the host does; the tile slots free (and poisoned), every
// one held by another call, or none given.
function run(b: KernelBench, t: Setup, c: Case, partial: string, nth: number, tiles: 'free' | 'held' | 'none' = 'free'): Float32Array {
  const qDim = c.nHead * c.headDim
  b.f32(t.out, c.n * qDim).fill(NaN)
  b.f32(t.part, c.n * c.nHead * t.nBlocks * (4 + c.headDim)).fill(NaN)
  b.f32(t.att, c.nHeadKv * t.nBlocks * c.n * (c.nHead / c.nHeadKv) * c.block).fill(NaN)
  new Int32Array(b.heap.buffer, t.count, c.nHeadKv).fill(0)
  b.f32(t.tiles + 64 + TILE_SLOTS * 64, TILE_SLOTS * TILE * c.headDim).fill(NaN)
  for (let i = 0; i < TILE_SLOTS; i++) new Int32Array(b.heap.buffer, t.tiles + 64 + i * 64, 1)[0] = tiles === 'held' ? 1 : 0
  const k = b.k as unknown as Record<string, (...a: number[]) => void>
  for (const [first, end] of itemRanges(c.nHeadKv * t.nBlocks, nth, nth * 31 + c.nPos)) {
    k[partial](t.q, t.kc, t.vc, t.att, t.part, t.count, tiles === 'none' ? 0 : t.tiles, t.out, c.n, c.nHead, c.nHeadKv, c.headDim, c.nPos, c.block, first, end)
  }
  if (tiles === 'free') {
    const flags = Array.from({ length: TILE_SLOTS }, (_, i) => new Int32Array(b.heap.buffer, t.tiles + 64 + i * 64, 1)[0])
    expect(flags, 'every claimed slot given back').toEqual(flags.map(() => 0))
    // the SIMD f16 kernel widens a prompt chunk's rows (more than one quad of queries) into a slot
    const widened = !Number.isNaN(b.f32(t.tiles + 64 + TILE_SLOTS * 64, 1)[0])
    expect(widened, 'rows widened into a slot').toBe(partial === 'attention_partial_f16' && c.n * (c.nHead / c.nHeadKv) > 4)
  }
  return b.f32(t.out, c.n * qDim).slice()
}

// Bytes equal (toEqual on a typed array of 10⁴ floats takes a second).
const sameBytes = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

// IEEE half bits of x, round to nearest even, computed exactly in float64.
function halfBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0
  const a = Math.abs(Math.fround(x))
  if (a >= 65520) return sign | 0x7c00
  const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a)) // subnormals share the smallest exponent
  const ulp = 2 ** (e - 10)
  let m = a / ulp
  const fl = Math.floor(m), frac = m - fl
  m = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl
  const v = m * ulp
  if (v === 0) return sign
  const ve = v < 2 ** -14 ? -15 : Math.floor(Math.log2(v))
  if (ve < -14) return sign | m // subnormal: the mantissa is the bits
  return sign | ((ve + 15) << 10) | Math.round(v / 2 ** (ve - 10) - 1024)
}
