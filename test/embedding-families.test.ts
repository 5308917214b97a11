// The BitNet embedding models as bitnet.cpp runs them (arch 'qwen3': BitNet-embedding-0.6B;
// arch 'gemma3': BitNet-embedding-270M): per-projection input norms, q/k head norms, Gemma3's
// √n_embd embedding scale, post-norms and GELU-tanh, against the float64 reference on
// synthetic weights of several shapes; the same weights as a Hugging Face folder; their
// tokenizers; and the embeddings API (EOS, last-token pooling, L2, batches, instructions).
import { describe, expect, it } from 'vitest'
import { loadModel } from '../src/index.js'
import { writeGguf } from '../src/gguf/writer.js'
import { bytesSource } from '../src/io/source.js'
import { loadReferenceModel, ReferenceTransformer } from '../src/model/reference.js'
import { syntheticGguf, type SyntheticOptions, type SyntheticShape } from '../src/model/synthetic.js'
import { rng } from './helpers/kernels.js'

const CASES: [string, SyntheticShape, SyntheticOptions][] = [
  ['Qwen3-style: head_dim ≠ n_embd/n_head, GQA 2:1', { arch: 'qwen3', nEmbd: 128, nFf: 384, nLayer: 2, nHead: 4, nHeadKv: 2, headDim: 64, vocab: 300, ropeTheta: 1000000 }, { seed: 46 }],
  ['Qwen3-style: MHA, TQ2_0, head_dim 128', { arch: 'qwen3', nEmbd: 256, nFf: 512, nLayer: 2, nHead: 2, nHeadKv: 2, headDim: 128, vocab: 280 }, { seed: 42, format: 'TQ2_0' }],
  ['Qwen3-style: odd widths, MHA', { arch: 'qwen3', nEmbd: 96, nFf: 200, nLayer: 3, nHead: 3, nHeadKv: 3, headDim: 40, vocab: 280 }, { seed: 45 }],
  ['Gemma3-style: head_dim 2.5× n_embd/n_head, one kv head', { arch: 'gemma3', nEmbd: 160, nFf: 512, nLayer: 2, nHead: 4, nHeadKv: 1, headDim: 96, vocab: 300, ropeTheta: 10000 }, { seed: 43 }],
  ['Gemma3-style: odd widths, GQA 3:1, f32 embedding', { arch: 'gemma3', nEmbd: 80, nFf: 176, nLayer: 3, nHead: 3, nHeadKv: 1, headDim: 48, vocab: 270 }, { seed: 44, embedding: 'F32' }],
]

describe.each(['i2s', 'tl'] as const)('embedding families (%s kernel) vs the float64 reference', (kernel) => {
  for (const [name, shape, opts] of CASES) {
    it(name, async () => {
      const bytes = writeGguf(syntheticGguf(shape, opts))
      const model = await loadModel(bytes, { kernel, threads: 1 })
      const ref = new ReferenceTransformer(await loadReferenceModel(bytesSource(bytes)))
      const rand = rng(opts.seed! + 100)
      const tokens = Array.from({ length: 11 }, () => Math.floor(rand() * shape.vocab))
      const ours = model.logits(tokens)
      let dLogit = 0, maxLogit = 0
      const refHidden: Float64Array[] = []
      tokens.forEach((tok, pos) => {
        const want = ref.forward(tok, pos)
        refHidden.push(ref.hidden!)
        for (let i = 0; i < want.length; i++) {
          dLogit = Math.max(dLogit, Math.abs(ours[pos][i] - want[i]))
          maxLogit = Math.max(maxLogit, Math.abs(want[i]))
        }
      })
      // last-token embedding of the whole sequence (no EOS: ids given) against the reference's
      const emb = model.embed(tokens, { pooling: 'last', normalize: false, appendEos: false })
      const last = refHidden[tokens.length - 1]
      const dEmb = Math.max(...Array.from(emb, (v, i) => Math.abs(v - last[i])))
      await model.dispose()
      // Measured: |Δlogit| ≤ 1.4e-5 on logits up to ±77, |Δembedding| ≤ 6e-7. An int8 rounding flip
      // (an f32 value within ~1e-6 of a .5 boundary) moves logits by ~0.1: seeds avoid one.
      expect(dLogit).toBeLessThan(1e-4)
      expect(dEmb).toBeLessThan(1e-5)
      expect(maxLogit).toBeGreaterThan(5)
    })
  }
})
