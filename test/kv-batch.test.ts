// KV caches and batches: independent caches don't see each other, a batch of rows from
// different caches gives each row exactly what its own one-token pass gives, prompt
// chunks (matrix-matrix kernels) equal token-by-token evaluation bit for bit, and a
// cache survives save()/restore() into another cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, openModelContents } from '../src/index.js'
import { BitnetModel } from '../src/api/bitnet-model.js'
import type { ModelContents } from '../src/model/contents.js'
import { InvalidArgumentError } from '../src/errors.js'
import { KV_AUTO_F16_BYTES, MAX_BATCH, resolveKvType } from '../src/model/transformer.js'
import { firstDifference, TINY_GGUF } from './helpers/golden.js'
import type { Transformer } from '../src/model/transformer.js'

// q8: the byte-per-weight output copy, whose batch product is one pass for all rows
// Opened once for the file's models (tiny-dev's 128k-token tokenizer takes seconds to build).
let contents: ModelContents
beforeAll(async () => { contents = await openModelContents(TINY_GGUF) })
afterAll(() => contents.close?.())

// Each block's model lives for its tests only (beforeAll/afterAll): models loaded while the
// file is collected would all hold their memory and threads until the end.
describe.each([['i2s', 'f16'], ['tl', 'f16'], ['i2s', 'q8']] as const)('KV caches and batches (%s kernel, %s output, 2 threads)', (kernel, outputType) => {
  let model: BitnetModel, t: Transformer, a: number[], b: number[], long: number[]
  beforeAll(async () => {
    model = await BitnetModel.load(contents, { kernel, outputType, threads: 2, contextSize: 64 })
    t = model.transformer
    a = model.tokenize('In the beginning God created the heaven and the earth.')
    b = model.tokenize('And the LORD spake unto Moses, saying,')
    long = model.tokenize('In the beginning God created the heaven and the earth. And the earth was without form, and void; ' +
      'and darkness was upon the face of the deep. And God said, Let there be light.')
  })
  afterAll(() => model.dispose())

  // token-by-token reference on the model's own cache
  const oneByOne = (ids: number[]) => ids.map((tok, pos) => t.forward(tok, pos, true)!.slice())

  it.runIf(outputType === 'f16')('a prompt in batches of MAX_BATCH equals one token at a time, bit for bit', () => {
    expect(long.length).toBeGreaterThan(MAX_BATCH) // a full chunk and a partial one
    expect(long.length % MAX_BATCH).not.toBe(0)
    const want = oneByOne(long)
    const got = t.prefill(long, 0, t.kv, 'all')
    expect(got.length).toBe(long.length)
    got.forEach((l, i) => expect(firstDifference(l, want[i]), `position ${i}`).toBe(''))
  })

  // An f16 cache: a prompt chunk's attention reads rows widened once per tile into a slot,
  // a decode step widens them in registers; the bytes must not differ.
  it.runIf(kernel === 'i2s' && outputType === 'f16')('with an f16 cache too', async () => {
    const f16 = await BitnetModel.load(contents, { kernel, outputType, threads: 1, contextSize: 64, kvType: 'f16' }) // threads: kernels-attention.test.ts
    const u = f16.transformer
    const want = long.map((tok, pos) => u.forward(tok, pos, true)!.slice())
    const got = u.prefill(long, 0, u.kv, 'all')
    got.forEach((l, i) => expect(firstDifference(l, want[i]), `position ${i}`).toBe(''))
    await f16.dispose()
  })

  it('two sessions interleaved and batched together equal each run alone', () => {
    const wantA = oneByOne(a), wantB = oneByOne(b)
    const ka = t.createKvCache(), kb = t.createKvCache()
    // prompts of both, then decode steps of both sequences in one batch per step
    t.prefill(a.slice(0, 5), 0, ka, 'none')
    t.prefill(b.slice(0, 3), 0, kb, 'none')
    for (let i = 0; i < 5; i++) {
      const [la, lb] = t.forwardBatch([
        { token: a[5 + i], pos: 5 + i, kv: ka, logits: true },
        { token: b[3 + i], pos: 3 + i, kv: kb, logits: true },
      ])
      expect(firstDifference(la!, wantA[5 + i])).toBe('')
      expect(firstDifference(lb!, wantB[3 + i])).toBe('')
    }
    ka.dispose(); kb.dispose()
  })

  it.runIf(outputType === 'f16')('save() then restore() into a fresh cache continues identically; disposed memory is reused; a cache of another KV type refuses it', async () => {
    const want = oneByOne(a)
    const k1 = t.createKvCache()
    t.prefill(a.slice(0, 6), 0, k1, 'none')
    const bytes = k1.save(6)
    k1.dispose()
    const k2 = t.createKvCache() // takes k1's memory
    expect(k2.restore(bytes)).toBe(6)
    expect(firstDifference(t.forward(a[6], 6, true, k2)!, want[6])).toBe('')
    expect(() => k2.restore(bytes.subarray(0, 100))).toThrow(InvalidArgumentError)
    const bad = bytes.slice(); bad[0] ^= 1
    expect(() => k2.restore(bad)).toThrow(/bad magic/)
    k2.dispose()
    expect(t.kvType).toBe('f32') // the default ('auto') for a small cache
    const f16 = await BitnetModel.load(contents, { kernel, outputType, threads: 1, contextSize: 64, kvType: 'f16' })
    expect(() => f16.transformer.kv.restore(bytes)).toThrow(InvalidArgumentError)
    expect(() => f16.transformer.kv.restore(bytes)).toThrow(/f32 KV cache, this one is f16/)
    await f16.dispose()
  })

  // 'auto' (the default): f32 while the f32 cache of the context stays under 64 MiB, f16 from there
  it.runIf(kernel === 'i2s' && outputType === 'f16')('the default KV type follows the size of the f32 cache', async () => {
    const perToken = 2048 // tiny-dev: 2 (k, v) × 8 layers × 32 dims × 4 bytes
    expect(resolveKvType(model.config, KV_AUTO_F16_BYTES / perToken - 1, 'auto')).toBe('f32')
    expect(resolveKvType(model.config, KV_AUTO_F16_BYTES / perToken, 'auto')).toBe('f16')
    expect(resolveKvType(model.config, KV_AUTO_F16_BYTES / perToken, 'f32')).toBe('f32')
    await expect(loadModel(TINY_GGUF, { kvType: 'f8' as 'f16' })).rejects.toThrow(/kvType must be one of auto, f16, f32/)
  })

  it('bad batches are typed errors', () => {
    expect(() => t.forwardBatch([])).toThrow(InvalidArgumentError)
    expect(() => t.forwardBatch(Array.from({ length: MAX_BATCH + 1 }, (_, i) => ({ token: 1, pos: i })))).toThrow(InvalidArgumentError)
    expect(() => t.forward(1, 64)).toThrow(/context/i)
  })
})

