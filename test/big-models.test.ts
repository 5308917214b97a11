// Models larger than one wasm32 memory: what stays out of wasm memory, and what is split.
import { describe, expect, it } from 'vitest'
import { loadModel } from '../src/index.js'
import { writeGguf } from '../src/gguf/writer.js'
import { syntheticGguf, type SyntheticShape } from '../src/model/synthetic.js'

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
