// Models larger than one wasm32 memory: what stays out of wasm memory, and how layers are
// split over several memories (src/model/segments.ts) without changing a single bit.
import { describe, expect, it } from 'vitest'
import { loadModel, ResourceLimitError } from '../src/index.js'
import { writeGguf } from '../src/gguf/writer.js'
import { bytesSource } from '../src/io/source.js'
import { ggufContents } from '../src/model/contents.js'
import { loadWeights } from '../src/model/load.js'
import { syntheticGguf, type SyntheticShape } from '../src/model/synthetic.js'
import { stateSize, Transformer } from '../src/model/transformer.js'
import { checkMemoryLimits, memorySizes, planSegments, type Placed } from '../src/model/segments.js'
import { machineMemoryBytes, type MemoryLimits } from '../src/env.js'
import { totalmem } from 'node:os'

const SHAPE: SyntheticShape = { nEmbd: 256, nFf: 256, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 4096, contextLength: 16 }

describe('the input embedding is read where it lies', () => {
  it('an untied model keeps only the output projection in wasm memory (the embedding rows stay on the host)', async () => {
    // Both output copies are Q8B of the same size; the F16 embedding (2 MiB) would be the difference.
    const opts = { threads: 1, outputType: 'q8' } as const
    const tied = await loadModel(writeGguf(syntheticGguf(SHAPE)), opts)
    const untied = await loadModel(writeGguf(syntheticGguf({ ...SHAPE, untiedOutput: true })), opts)
    const bytes = (m: typeof tied) => m.transformer.memory.buffer.byteLength
    expect(Math.abs(bytes(untied) - bytes(tied))).toBeLessThan(1 << 16)
    expect(untied.logits([1, 2, 3])[2].length).toBe(4096)
    await Promise.all([tied.dispose(), untied.dispose()])
  })
})

describe('layers split over several memories compute the same bits as one memory', () => {
  const CTX = 64
  // 5 layers of ~150 KiB of weights and 64 KiB of KV rows each, and ~1.8 MiB of buffers (32-row
  // batches, attention's 512 KiB of tiles) in every segment: 2.25 MiB segments hold one or two layers.
  const SEGMENT = 9 << 18
  const SPLIT: SyntheticShape = { nEmbd: 256, nFf: 512, nLayer: 5, nHead: 2, nHeadKv: 1, vocab: 300, contextLength: CTX, untiedOutput: true }
  const bytes = writeGguf(syntheticGguf(SPLIT, { seed: 11 }))
  const open = async (threads: number, segmentBytes?: number) => {
    const model = await loadWeights(await ggufContents(bytesSource(bytes)), { state: (c) => stateSize(c, CTX, 'f32'), segmentBytes, threads, pool: { scrambleChunks: true } })
    return { segments: model.segments.length, t: Transformer.create(model, CTX, 'f32') }
  }
  const tokens = Array.from({ length: 45 }, (_, i) => (i * 37 + 5) % 300)

  /** Logits of a 45-token prompt (batches of 32 and 13), 3 decode steps, and a second cache restored from the first's bytes. */
  const run = (t: Transformer) => {
    const out = t.prefill(tokens, 0, t.kv, 'all')
    for (let i = 0; i < 3; i++) out.push(t.forward(tokens[i], tokens.length + i)!.slice())
    const other = t.createKvCache()
    other.restore(t.kv.save(tokens.length + 3))
    out.push(t.forward(7, tokens.length + 3, true, other)!.slice())
    return out
  }

  for (const threads of [1, 2]) {
    it(`${threads} thread(s)`, async () => {
      const one = await open(threads)
      const split = await open(threads, SEGMENT)
      expect(one.segments).toBe(1)
      expect(split.segments).toBeGreaterThan(2)
      try {
        const want = run(one.t), got = run(split.t)
        expect(got.length).toBe(want.length)
        want.forEach((w, i) => expect(Buffer.from(got[i].buffer, got[i].byteOffset, got[i].byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength)), `logits ${i}`).toBe(true))
      } finally {
        await Promise.all([one.t.dispose(), split.t.dispose()])
      }
    })
  }

  it('through the public API: maxMemoryBytes splits the model, same logits; out-of-range values are refused', async () => {
    const one = await loadModel(bytes, { threads: 1, contextSize: CTX })
    const split = await loadModel(bytes, { threads: 1, contextSize: CTX, maxMemoryBytes: SEGMENT })
    expect(split.transformer.segmentCount).toBeGreaterThan(2)
    expect(split.logits(tokens)).toEqual(one.logits(tokens))
    await Promise.all([one.dispose(), split.dispose()])
    await expect(loadModel(bytes, { maxMemoryBytes: 2 ** 33 })).rejects.toThrow(/maxMemoryBytes must be an integer in 64 KiB..4 GiB, got 8589934592/)
  })

  it('the first cache (a session\'s) is the one the plan holds: generating grows no memory; a second cache does', async () => {
    const split = await loadModel(bytes, { threads: 1, contextSize: CTX, maxMemoryBytes: SEGMENT })
    const t = split.transformer
    const memories = [...new Set(Array.from({ length: SPLIT.nLayer }, (_, l) => t.layerMemory(l)))]
    const sizes = () => memories.map((m) => m.buffer.byteLength)
    const planned = sizes()
    await split.generate(tokens.slice(0, 5), { maxTokens: 3, temperature: 0 })
    expect(sizes()).toEqual(planned)
    split.logits(tokens.slice(0, 4)) // the model's own cache: a second one, in grown memory
    expect(sizes().every((n, i) => n > planned[i])).toBe(true)
    await split.dispose()
  })

  it('a layer larger than a memory is refused, naming the context', async () => {
    const err = await loadWeights(await ggufContents(bytesSource(bytes)), { state: (c) => stateSize(c, 1 << 16, 'f32'), segmentBytes: 64 << 20, stateLabel: 'a 65536-token context' }).catch((e) => e)
    expect(err).toBeInstanceOf(ResourceLimitError)
    expect(err.message).toMatch(/layer 0 alone needs .* for a 65536-token context/)
  })
})

describe('a model larger than the machine is refused before loading', () => {
  const state = { buffers: 1 << 20, kvPerLayer: 1 << 24 }
  const layers: Placed[] = Array.from({ length: 8 }, (_, layer) => ({ bytes: 1 << 28, layer, scratch: 0, ptr: 0, seg: 0 }))
  const plans = planSegments(layers, state, 2 ** 32, 'a 4096-token context')
  const sizes = memorySizes(plans, state)
  const limits = (ram?: number): MemoryLimits => ({ browser: ram === undefined, ram, memory64: false })

  it('sums every memory of the plan against the RAM, naming both sizes', () => {
    expect(plans.length).toBe(1)
    expect(() => checkMemoryLimits(sizes, limits(2 ** 32), 'a 4096-token context')).not.toThrow()
    expect(() => checkMemoryLimits(sizes, limits(undefined), 'a 4096-token context')).not.toThrow() // a browser: unknown
    const err = (() => { try { checkMemoryLimits(sizes, limits(2 ** 31), 'a 4096-token context') } catch (e) { return e } })()
    expect(err).toBeInstanceOf(ResourceLimitError)
    expect((err as ResourceLimitError).limit).toBe('memory')
    expect((err as Error).message).toMatch(/for a 4096-token context needs 2\.1\d GiB of memory; this machine has 2\.00 GiB of RAM/)
  })

  it('knows the RAM of this machine', async () => {
    expect(await machineMemoryBytes()).toBe(totalmem())
  })
})
