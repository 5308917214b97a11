// The wasm engine against the plain float64 reference forward pass (src/model/reference.ts)
// on random models of shapes the engine has never seen, written by the GGUF writer:
// odd widths (K not a multiple of 128), GQA and MHA, partial RoPE, SiLU and ReLU²,
// no sub-norms, and each ternary format.
import { describe, expect, it } from 'vitest'
import type { SyntheticOptions, SyntheticShape } from '../src/model/synthetic.js'
import { engineAndReference } from './helpers/reference-pair.js'

const CASES: [string, SyntheticShape, SyntheticOptions][] = [
  ['odd widths, GQA 3:1, relu2', { nEmbd: 96, nFf: 200, nLayer: 2, nHead: 3, nHeadKv: 1, vocab: 300 }, { seed: 1 }],
  ['MHA, SiLU, arch bitnet', { arch: 'bitnet', nEmbd: 64, nFf: 160, nLayer: 3, nHead: 4, nHeadKv: 4, vocab: 280, activation: 'silu' }, { seed: 2 }],
  ['partial RoPE, head_dim ≠ n_embd/n_head', { nEmbd: 128, nFf: 384, nLayer: 2, nHead: 2, nHeadKv: 1, headDim: 48, nRot: 32, vocab: 320 }, { seed: 3 }],
  ['no sub-norms, f32 embedding, bitnet-25', { arch: 'bitnet-25', nEmbd: 80, nFf: 224, nLayer: 2, nHead: 5, nHeadKv: 5, vocab: 270, subNorms: false }, { seed: 4, embedding: 'F32' }],
  ['TQ2_0 weights', { nEmbd: 256, nFf: 512, nLayer: 2, nHead: 4, nHeadKv: 2, vocab: 300 }, { seed: 5, format: 'TQ2_0' }],
  ['untied output, f16 embedding rows read outside wasm memory', { nEmbd: 64, nFf: 128, nLayer: 2, nHead: 2, nHeadKv: 1, vocab: 290, untiedOutput: true }, { seed: 7 }],
  ['untied output, f32 embedding rows decoded on the host', { nEmbd: 96, nFf: 128, nLayer: 1, nHead: 3, nHeadKv: 3, vocab: 275, untiedOutput: true }, { seed: 8, embedding: 'F32' }],
  ['TQ1_0 weights', { nEmbd: 256, nFf: 256, nLayer: 2, nHead: 8, nHeadKv: 2, vocab: 300 }, { seed: 6, format: 'TQ1_0' }],
]

describe.each(['i2s', 'tl'] as const)('engine (%s kernel) vs float64 reference on random models', (kernel) => {
  for (const [name, shape, opts] of CASES) {
    it(name, async () => {
      const { model, ref, tokens } = await engineAndReference(shape, opts, kernel, 12)
      const ours = model.logits(tokens)
      let maxDiff = 0, maxLogit = 0
      tokens.forEach((tok, pos) => {
        const want = ref.forward(tok, pos)
        let best = 0
        for (let i = 0; i < want.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(ours[pos][i] - want[i]))
          maxLogit = Math.max(maxLogit, Math.abs(want[i]))
          if (want[i] > want[best]) best = i
        }
        let oursBest = 0
        for (let i = 0; i < ours[pos].length; i++) if (ours[pos][i] > ours[pos][oursBest]) oursBest = i
        expect(oursBest, `top-1 at position ${pos}`).toBe(best)
      })
      // Measured: max |Δ| 3e-6…6e-6 on logits up to ±35 (float32 vs float64); an int8
      // rounding flip or a layout bug moves logits by 1e-2 or more.
      expect(maxDiff).toBeLessThan(1e-4)
      expect(maxLogit).toBeGreaterThan(5)
    })
  }
})
