// Output copies made at load from a quantized embedding (Q8_0 or Q6_K, as bitnet.cpp's
// `llama-quantize --token-embedding-type` writes it): the rows go through f16 into the copy
// the option names, so the logits are bit for bit those of the same model whose embedding is
// the f16 rounding of the file's values; outputType 'f16' dequantizes them to f32 instead.
import { describe, expect, it } from 'vitest'
import { loadModel } from '../src/index.js'
import { dequantizeRows, FORMATS, quantizeRows } from '../src/formats/index.js'
import { f32ToF16 } from '../src/formats/float.js'
import { NumericalError } from '../src/errors.js'
import { writeGguf } from '../src/gguf/writer.js'
import { mulberry32, syntheticGguf, type SyntheticShape } from '../src/model/synthetic.js'

// 256 wide: Q6_K's super-block; a vocabulary of 4-row groups and a partial one
const SHAPE: SyntheticShape = { nEmbd: 256, nFf: 256, nLayer: 1, nHead: 4, nHeadKv: 1, vocab: 302, contextLength: 16 }

// The synthetic model with its embedding stored as `format` (values in `format`'s bytes).
function model(format: 'Q8_0' | 'Q6_K' | 'F16', bytes: Uint8Array): Uint8Array {
  const g = syntheticGguf(SHAPE)
  const t = g.tensors.find((x) => x.name === 'token_embd.weight')!
  t.typeId = FORMATS[format].typeId
  t.data = bytes
  return writeGguf(g)
}

describe.each(['Q8_0', 'Q6_K'] as const)('%s embedding', (embedding) => {
  const n = SHAPE.vocab * SHAPE.nEmbd, rand = mulberry32(5)
  const bytes = quantizeRows(embedding, Float32Array.from({ length: n }, () => (rand() - 0.5) * 2))
  const file = model(embedding, bytes)
  const f16File = model('F16', quantizeRows('F16', dequantizeRows(embedding, bytes, n)))
  const tokens = [1, 7, 300, 42]

  it.each([['q6', 'q6b'], ['q8', 'q8b'], ['q4+q8', 'q4b+q8b']] as const)('outputType %s: a %s copy, as from the f16 rows', async (outputType, storage) => {
    const copy = await loadModel(file, { outputType })
    expect(copy.transformer.outputType).toBe(storage)
    const got = copy.logits(tokens)
    await copy.dispose()
    const viaF16 = await loadModel(f16File, { outputType })
    expect(viaF16.logits(tokens)).toEqual(got)
    await viaF16.dispose()
  })

  it('weights beyond f16 (a block scale of 65504) are refused, naming the first one', async () => {
    const big = bytes.slice(), { blockElems, blockBytes } = FORMATS[embedding], block = 40
    new DataView(big.buffer).setUint16(block * blockBytes + (embedding === 'Q6_K' ? 208 : 0), 0x7bff, true)
    const values = dequantizeRows(embedding, big, n)
    const first = values.findIndex((v) => (f32ToF16(v) & 0x7fff) === 0x7c00)
    expect(Math.floor(first / blockElems)).toBe(block)
    const err = await loadModel(model(embedding, big), { outputType: 'q8' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NumericalError)
    expect((err as Error).message).toContain(`element ${first} is NaN or Inf`)
  })

  it('outputType f16: the values dequantized to f32', async () => {
    const exact = await loadModel(file, { outputType: 'f16' })
    expect(exact.transformer.outputType).toBe('f32')
    await exact.dispose()
  })
})
