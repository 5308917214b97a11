// NaN/Inf in weights or activations end in a NumericalError naming the tensor or the layer,
// never in a stream of garbage tokens.
import { describe, expect, it } from 'vitest'
import { loadModel, NumericalError } from '../src/index.js'
import { FORMATS } from '../src/formats/index.js'
import { writeGguf, type GgufWriteTensor } from '../src/gguf/writer.js'
import { syntheticGguf, type SyntheticShape } from '../src/model/synthetic.js'
import { firstNonFinite } from '../src/model/numerics.js'
import { kernelBench, VARIANTS } from './helpers/kernels.js'

const SHAPE: SyntheticShape = { nEmbd: 64, nFf: 128, nLayer: 3, nHead: 2, nHeadKv: 1, vocab: 270, contextLength: 32 }

function withTensor(edit: (byName: Map<string, GgufWriteTensor>) => void, extra: GgufWriteTensor[] = []): Uint8Array {
  const g = syntheticGguf(SHAPE)
  edit(new Map(g.tensors.map((t) => [t.name, t])))
  g.tensors.push(...extra)
  return writeGguf(g)
}

describe('numerical health', () => {
  it('finds NaN and ±Inf in f32', () => {
    expect(firstNonFinite(new Float32Array([1, -2, 3e38]))).toBe(-1)
    expect(firstNonFinite(new Float32Array([1, NaN]))).toBe(1)
    expect(firstNonFinite(new Float32Array([-Infinity]))).toBe(0)
  })

  it.each(VARIANTS)('finds NaN and ±Inf in raw F16 (find_nonfinite_f16, %s build)', async (variant) => {
    const b = await kernelBench(variant)
    const at = (bytes: number[]) => { const p = b.alloc(bytes.length); b.heap.set(bytes, p); return b.k.find_nonfinite_f16(p, bytes.length >> 1) }
    expect(at([0x00, 0x3c, 0xff, 0x7b])).toBe(-1) // 1.0, 65504
    expect(at([0x00, 0x3c, 0x00, 0xfc])).toBe(1) // -Inf
    expect(at([0x01, 0x7e])).toBe(0) // NaN
    // every position around the 8-lane vectors and the scalar tail, at an odd address too
    const n = 1001, p = b.alloc(2 * n + 2) + 2
    b.heap.fill(0x3b, p, p + 2 * n) // 0x3b3b: a finite f16
    for (const i of [0, 1, 7, 8, 9, 500, 991, 992, 999, 1000]) {
      b.heap[p + 2 * i + 1] = 0x7c
      expect(b.k.find_nonfinite_f16(p, n)).toBe(i)
      expect(b.k.find_nonfinite_f16(p + 2, n - 1)).toBe(i - 1)
      b.heap[p + 2 * i + 1] = 0x3b
    }
    expect(b.k.find_nonfinite_f16(p, n)).toBe(-1)
  })

  it.each(VARIANTS)('finds NaN and ±Inf in f32 logits (find_nonfinite_f32, %s build) as firstNonFinite does', async (variant) => {
    const b = await kernelBench(variant)
    const n = 1001, p = b.alloc(4 * n + 4) + 4
    const x = b.f32(p, n)
    x.fill(-3.4e38)
    expect(b.k.find_nonfinite_f32(p, n)).toBe(-1)
    // every position around the 16-word steps and the scalar tail
    for (const i of [0, 1, 15, 16, 17, 500, 975, 976, 999, 1000]) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        x[i] = bad
        expect(b.k.find_nonfinite_f32(p, n), `${bad} at ${i}`).toBe(i)
        expect(b.k.find_nonfinite_f32(p + 4, n - 1)).toBe(i - 1)
        expect(firstNonFinite(x)).toBe(i)
        x[i] = 3.4e38
      }
    }
    expect(b.k.find_nonfinite_f32(p, n)).toBe(-1)
  })

  it('a NaN in a norm vector is rejected at load, naming the tensor', async () => {
    const bytes = withTensor((t) => new DataView(t.get('blk.1.ffn_norm.weight')!.data.buffer).setFloat32(8, NaN, true))
    const err = await loadModel(bytes, { threads: 1 }).catch((e) => e)
    expect(err).toBeInstanceOf(NumericalError)
    expect(err.tensor).toBe('blk.1.ffn_norm.weight')
    expect(err.message).toMatch(/blk\.1\.ffn_norm\.weight.*element 2 is NaN/)
  })

  it.each(['f16', 'q8'] as const)('an Inf in the F16 embedding is rejected at load (output %s)', async (outputType) => {
    const bytes = withTensor((t) => new DataView(t.get('token_embd.weight')!.data.buffer).setUint16(2 * 1000, 0x7c00, true))
    const err = await loadModel(bytes, { threads: 1, outputType }).catch((e) => e)
    expect(err).toBeInstanceOf(NumericalError)
    expect(err.tensor).toBe('token_embd.weight')
    expect(err.message).toMatch(/element 1000 is NaN or Inf/)
  })

  it('activations that overflow stop generation with the first non-finite layer named', async () => {
    // A finite but huge `.scale` (3e38) on layer 1's down projection overflows its output to ±Inf.
    const scale = { name: 'blk.1.ffn_down.scale', dims: [1], typeId: FORMATS.F32.typeId, data: new Uint8Array(new Float32Array([3e38]).buffer) }
    const model = await loadModel(withTensor(() => {}, [scale]), { threads: 1 })
    try {
      const err = await model.generate('Hello', { maxTokens: 4 }).then(() => undefined, (e) => e as NumericalError)
      expect(err).toBeInstanceOf(NumericalError)
      expect(err?.layer).toBe(1)
      expect(err?.message).toMatch(/non-finite activations at position \d+: .*layer 1 \(blk\.1\.\*\)/)
    } finally {
      await model.dispose()
    }
  })
})
