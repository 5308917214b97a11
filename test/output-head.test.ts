// The bounded output head ('q4+q8') end to end: the same tokens as the q8 head, bit for bit,
// for greedy and seeded top-k sampling (with top-p / min-p, and with penalties and logit bias),
// on tiny-dev's golden prompts and on a model built with tied and near-tied logits, on one
// thread and on two; its candidates' logits are the q8 head's, the others −Infinity; whatever
// reads the whole distribution (logits()) gets q8's logits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openModelContents } from '../src/index.js'
import { BitnetModel } from '../src/api/bitnet-model.js'
import type { GenerateOptions } from '../src/generation/generation.js'
import { f16ToF32, f32ToF16 } from '../src/formats/float.js'
import { writeGguf } from '../src/gguf/writer.js'
import { syntheticGguf } from '../src/model/synthetic.js'
import { loadGolden, TINY_GGUF } from './helpers/golden.js'
import { rng } from './helpers/kernels.js'

const golden = loadGolden()

const SAMPLINGS: [string, GenerateOptions][] = [
  ['greedy', { temperature: 0 }],
  ['top-k 40, top-p 0.95, min-p 0.05, seeded', { temperature: 0.8, topK: 40, seed: 7 }],
  ['top-k 5, penalties, logit bias', { temperature: 1.2, topK: 5, topP: 1, minP: 0, seed: 3, repeatPenalty: 1.3, presencePenalty: 0.4, logitBias: { 13: 4, 264: -2, 11: -Infinity } }],
]

/**
 * tiny-dev's shape with random weights and an embedding (tied: the output matrix) made of
 * near-duplicates: rows 4i + 1 equal rows 4i, rows 4i + 2 differ from them in one f16 step of
 * one weight, and the first 64 rows are 6× larger, so a few clusters of tied or nearly tied
 * logits stand out from the rest.
 */
function tiedModel(): Uint8Array {
  const file = syntheticGguf({ nEmbd: 128, nFf: 384, nLayer: 2, nHead: 4, nHeadKv: 1, vocab: 2000 }, { seed: 17 })
  const embd = file.tensors.find((t) => t.name === 'token_embd.weight')!
  const n = embd.dims[0], half = new Uint16Array(embd.data.buffer, embd.data.byteOffset, embd.data.byteLength / 2)
  for (let r = 0; r < 64; r++) for (let i = 0; i < n; i++) half[r * n + i] = f32ToF16(6 * f16ToF32(half[r * n + i]))
  for (let r = 0; r + 2 < embd.dims[1]; r += 4) {
    half.copyWithin((r + 1) * n, r * n, (r + 1) * n)
    half.copyWithin((r + 2) * n, r * n, (r + 1) * n)
    half[(r + 2) * n + (r % n)] += 1
  }
  return writeGguf(file)
}

const MODELS: [string, () => Uint8Array | string, number[][]][] = [
  ['tiny-dev', () => TINY_GGUF, golden.prompts.map((p) => p.ids)],
  ['near-tied logits', tiedModel, Array.from({ length: 4 }, (_, i) => { const r = rng(i + 1); return Array.from({ length: 6 }, () => Math.floor(r() * 2000)) })],
]

describe.each(MODELS)('%s: q4+q8 head vs q8 head', (_, source, prompts) => {
  let q8: BitnetModel
  const bounded: BitnetModel[] = []
  beforeAll(async () => {
    // One open for the three models (tiny-dev's 128k-token tokenizer takes seconds to build).
    const contents = await openModelContents(source())
    try {
      q8 = await BitnetModel.load(contents, { outputType: 'q8', threads: 1 })
      for (const threads of [1, 2]) bounded.push(await BitnetModel.load(contents, { outputType: 'q4+q8', threads }))
    } finally {
      await contents.close?.()
    }
    expect(bounded[0].transformer.outputType).toBe('q4b+q8b')
  })
  afterAll(async () => { await q8.dispose(); for (const m of bounded) await m.dispose() })

  for (const [label, opts] of SAMPLINGS) {
    it(`${label}: the same tokens on 1 and 2 threads`, async () => {
      for (const ids of prompts) {
        const want = (await q8.generate(ids, { ...opts, maxTokens: 24, ignoreEos: true })).tokens
        for (const m of bounded) expect((await m.generate(ids, { ...opts, maxTokens: 24, ignoreEos: true })).tokens).toEqual(want)
      }
      // the bounded head served the steps, and its candidates were few
      const s = bounded[0].transformer.headStats
      expect(s.rows).toBeGreaterThan(0)
      expect(s.full).toBeLessThan(s.rows)
    })
  }

  it('each decode row: candidates exact (the q8 logits bit for bit), others −Infinity, the same top 40', () => {
    const t8 = q8.transformer, tb = bounded[1].transformer
    for (const ids of prompts) {
      ids.forEach((token, pos) => {
        const want = t8.forwardBatch([{ token, pos, logits: true }])[0]!.slice()
        const got = tb.forwardBatch([{ token, pos, logits: true, need: { topK: 40, exactIds: [] } }])[0]!
        const exact = Array.from(got.keys()).filter((j) => got[j] !== -Infinity)
        expect(exact.map((j) => got[j])).toEqual(exact.map((j) => want[j]))
        expect(exact.length).toBeGreaterThanOrEqual(40)
        expect(top(got, 40)).toEqual(top(want, 40))
      })
    }
  })

  it('logits(): the whole distribution, equal to the q8 head', () => {
    const ids = prompts[0]
    const a = q8.logits(ids), b = bounded[0].logits(ids)
    b.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(a[i])))
  })
})

// Ids of the k largest values (ties: lower id first).
function top(v: Float32Array, k: number): number[] {
  const kth = Float32Array.from(v).sort()[v.length - k]
  const ids: number[] = []
  v.forEach((x, i) => { if (x >= kth) ids.push(i) })
  return ids.sort((a, b) => v[b] - v[a] || a - b).slice(0, k)
}
