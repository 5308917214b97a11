// Bad model files and bad requests through the public API: each gives a typed error
// naming the problem, never a crash, a hang or garbage.
import { describe, expect, it } from 'vitest'
import { ContextFullError, InvalidArgumentError, loadModel, ModelFormatError, ResourceLimitError, UnsupportedFeatureError } from '../src/index.js'
import { metaStr, metaU32, writeGguf } from '../src/gguf/writer.js'
import { syntheticGguf, type SyntheticShape } from '../src/model/synthetic.js'

const SHAPE: SyntheticShape = { nEmbd: 64, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270, contextLength: 16 }

describe('loadModel rejects inconsistent models with typed errors', () => {
  it('a missing tensor names it', async () => {
    const g = syntheticGguf(SHAPE)
    g.tensors = g.tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight')
    await expect(loadModel(writeGguf(g))).rejects.toThrow(/missing tensor 'blk.0.ffn_up.weight'/)
  })

  it('a tensor of the wrong shape names expected and found', async () => {
    const g = syntheticGguf(SHAPE)
    g.metadata.set('bitnet-b1.58.feed_forward_length', metaU32(256))
    const err = await loadModel(writeGguf(g)).catch((e) => e)
    expect(err).toBeInstanceOf(ModelFormatError)
    expect(err.message).toMatch(/ffn_gate.weight' has the wrong shape.*expected \[64, 256\].*found \[64, 128\]/)
  })

  it('a ternary projection stored as Q8_0 is unsupported, named (F32/F16/BF16 are ternarized)', async () => {
    const g = syntheticGguf(SHAPE)
    const t = g.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!
    t.typeId = 8
    t.data = new Uint8Array((64 * 64 / 32) * 34)
    await expect(loadModel(writeGguf(g))).rejects.toThrow(/'blk.0.attn_q.weight' is Q8_0/)
    await expect(loadModel(writeGguf(g))).rejects.toThrow(UnsupportedFeatureError)
  })

  it('an unknown architecture and absurd hyperparameters', async () => {
    const g = syntheticGguf(SHAPE)
    g.metadata.set('general.architecture', metaStr('mamba'))
    await expect(loadModel(writeGguf(g))).rejects.toThrow(/architecture 'mamba' is not a model this engine runs/)
    const h = syntheticGguf(SHAPE)
    h.metadata.set('bitnet-b1.58.attention.head_count_kv', metaU32(3))
    await expect(loadModel(writeGguf(h))).rejects.toThrow(/head_count_kv.*a divisor of head_count 2/)
  })

  it('a truncated file is a format error, at every cut point tried', async () => {
    const bytes = writeGguf(syntheticGguf(SHAPE))
    for (const cut of [3, 20, 200, 5000, bytes.length >> 1, bytes.length - 40, bytes.length - 1]) {
      const err = await loadModel(bytes.subarray(0, cut)).catch((e) => e)
      expect(err, `cut at ${cut}`).toBeInstanceOf(ModelFormatError)
    }
  })

  it('a non-finite weight scale is rejected, on the decode path and the I2_S fast path', async () => {
    for (const shape of [SHAPE, { ...SHAPE, nEmbd: 128 }]) { // K = 64: decoded; K = 128: byte-copied
      const g = syntheticGguf(shape)
      const t = g.tensors.find((x) => x.name === 'blk.0.attn_k.weight')!
      new DataView(t.data.buffer, t.data.byteOffset).setFloat32(t.dims[0] * t.dims[1] / 4, NaN, true)
      const err = await loadModel(writeGguf(g)).catch((e) => e)
      expect(err).toBeInstanceOf(ModelFormatError)
      expect(err.message).toMatch(/scale.*NaN/)
    }
  })
})

describe('a small file declaring huge sizes reserves only what it holds and what is asked for', () => {
  const declaring = (key: string, value: number) => {
    const g = syntheticGguf(SHAPE)
    g.metadata.set(`bitnet-b1.58.${key}`, metaU32(value))
    return writeGguf(g)
  }

  it('a huge context_length: the default context stays capped, and asking for it names the size', async () => {
    const bytes = declaring('context_length', 1 << 24)
    const model = await loadModel(bytes, { threads: 1 })
    expect(model.contextSize).toBe(4096)
    expect(model.transformer.memory.buffer.byteLength).toBeLessThan(8 << 20)
    await model.dispose()
    // (2^24 tokens would fail on the buffers alone; at 2^23 they fit and layer 0's f32 KV cache does not)
    const err = await loadModel(bytes, { threads: 1, contextSize: 1 << 23, kvType: 'f32' }).catch((e) => e)
    expect(err).toBeInstanceOf(ResourceLimitError)
    expect(err.message).toMatch(/layer 0 alone needs .* for a 8388608-token context \(the contextSize option\)/)
  })

  it('a huge vocab_size or block_count is refused before any memory is reserved, naming the declared value', async () => {
    const vocab = await loadModel(declaring('vocab_size', 1 << 22)).catch((e) => e)
    expect(vocab).toBeInstanceOf(ModelFormatError)
    expect(vocab.message).toMatch(/declares a vocabulary of 4194304 tokens \(bitnet-b1.58.vocab_size\) but token_embd.weight has 270 rows/)
    const layers = await loadModel(declaring('block_count', 1000)).catch((e) => e)
    expect(layers).toBeInstanceOf(ModelFormatError)
    expect(layers.message).toMatch(/declares 1000 layers \(bitnet-b1.58.block_count\) but holds tensors for 1/)
  })
})

describe('requests', () => {
  it('a full context raises ContextFullError with the sizes', async () => {
    const model = await loadModel(writeGguf(syntheticGguf(SHAPE)), { threads: 1 })
    expect(model.contextSize).toBe(16)
    const err = await model.generate(Array.from({ length: 10 }, (_, i) => i), { maxTokens: 20, temperature: 0, ignoreEos: true }).then(() => undefined, (e) => e)
    expect(err).toBeInstanceOf(ContextFullError)
    expect(err).toMatchObject({ contextSize: 16, requested: 17 })
  })

  it('bad options and token ids are InvalidArgumentError', async () => {
    const model = await loadModel(writeGguf(syntheticGguf(SHAPE)), { threads: 1 })
    await expect(model.generate([1, 2], { maxTokens: -1 })).rejects.toThrow(InvalidArgumentError)
    await expect(model.generate([1, 99999], { maxTokens: 1 })).rejects.toThrow(/token id 99999 is out of range/)
    await expect(loadModel(new Uint8Array(8), { contextSize: 0 })).rejects.toThrow(InvalidArgumentError)
  })
})
