// Model families beyond 2B4T, as their publishers' tools write them, against the float64
// reference: bitnet.cpp's Llama-family GGUFs (Falcon3-1.58bit, Falcon-E, Llama3-8B-1.58: arch
// 'llama', q/k rows permuted for NORM RoPE, no sub-norms, untied output, SiLU, Falcon
// pre-tokenizers), and the refusals that keep a wrong file from computing silent garbage.
import llamaTokenizer from 'llama-tokenizer-js'
import { describe, expect, it } from 'vitest'
import { BitnetModel, loadModel, ModelFormatError, NotTernaryError, UnsupportedFeatureError } from '../src/index.js'
import { f32ToF16 } from '../src/formats/float.js'
import { FORMATS } from '../src/formats/index.js'
import { parseGguf } from '../src/gguf/reader.js'
import { metaStr, writeGguf } from '../src/gguf/writer.js'
import { bytesSource } from '../src/io/source.js'
import { configFromGguf } from '../src/model/config.js'
import { ggufContents } from '../src/model/contents.js'
import { permuteQkRows, unpermuteQkRows } from '../src/model/qk-permute.js'
import { loadReferenceModel, ReferenceTransformer } from '../src/model/reference.js'
import { syntheticGguf, type SyntheticOptions, type SyntheticShape } from '../src/model/synthetic.js'
import { convertToGguf } from '../src/convert/index.js'
import { decodeTernary } from '../src/formats/index.js'
import { readGguf } from '../src/gguf/reader.js'
import { hfContents } from '../src/model/load-hf.js'
import { hfLlamaFolder } from './helpers/hf-folder.js'
import { rng } from './helpers/kernels.js'

/** Max |Δlogit| between the engine and the float64 reference over 10 random tokens (top-1 must agree). */
async function vsReference(bytes: Uint8Array, vocab: number, seed: number, kernel: 'i2s' | 'tl'): Promise<number> {
  const model = await loadModel(bytes, { kernel, threads: 1 })
  const ref = new ReferenceTransformer(await loadReferenceModel(bytesSource(bytes)))
  const rand = rng(seed)
  const tokens = Array.from({ length: 10 }, () => Math.floor(rand() * vocab))
  const ours = model.logits(tokens)
  let maxDiff = 0
  tokens.forEach((tok, pos) => {
    const want = ref.forward(tok, pos)
    const argmax = (a: ArrayLike<number>) => Array.from(a).reduce((b, v, i) => (v > a[b] ? i : b), 0)
    expect(argmax(ours[pos]), `top-1 at ${pos}`).toBe(argmax(want))
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[pos][i] - want[i]))
  })
  await model.dispose()
  return maxDiff
}

const LLAMA_CASES: [string, SyntheticShape, SyntheticOptions][] = [
  ['Falcon3-style: falcon3 pre-tokenizer, GQA 2:1', { arch: 'llama', nEmbd: 128, nFf: 320, nLayer: 2, nHead: 2, nHeadKv: 1, vocab: 300, ropeTheta: 1000042, tokenizerPre: 'falcon3' }, { seed: 11 }],
  ['Falcon-E-style: falcon_e pre-tokenizer, MHA, TQ2_0', { arch: 'llama', nEmbd: 256, nFf: 512, nLayer: 2, nHead: 4, nHeadKv: 4, vocab: 290, tokenizerPre: 'falcon_e' }, { seed: 14, format: 'TQ2_0' }],
  ['Falcon3-1B-style: head_dim 256, θ 1000042', { arch: 'llama', nEmbd: 512, nFf: 384, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 260, ropeTheta: 1000042, tokenizerPre: 'falcon3' }, { seed: 15 }],
  ['Llama3-8B-style: head_dim ≠ n_embd/n_head, odd K (decode path)', { arch: 'llama', nEmbd: 96, nFf: 200, nLayer: 2, nHead: 3, nHeadKv: 1, headDim: 48, vocab: 280, tokenizerPre: 'llama-bpe' }, { seed: 13 }],
]

describe.each(['i2s', 'tl'] as const)('bitnet.cpp Llama-family GGUFs (%s kernel) vs the float64 reference (NORM RoPE on the permuted rows)', (kernel) => {
  for (const [name, shape, opts] of LLAMA_CASES) {
    it(name, async () => {
      const diff = await vsReference(writeGguf(syntheticGguf(shape, opts)), shape.vocab, opts.seed! + 100, kernel)
      expect(diff).toBeLessThan(1e-4)
    })
  }
})

describe('Llama family: what the loader reads', () => {
  const shape: SyntheticShape = { arch: 'llama', nEmbd: 128, nFf: 256, nLayer: 2, nHead: 4, nHeadKv: 2, vocab: 270, tokenizerPre: 'falcon_e' }

  it('config: SiLU, NORM layout, no sub-norms, untied output, provenance', async () => {
    const contents = await ggufContents(bytesSource(writeGguf(syntheticGguf(shape))))
    expect(contents.config).toMatchObject({ arch: 'llama', activation: 'silu', rope: 'norm' })
    expect(contents.config.provenance.family).toMatch(/Llama-family.*general.architecture 'llama'/)
    expect(contents.config.provenance.activation).toBe("default of arch 'llama'")
    expect(contents.tensors.some((t) => t.name === 'output.weight')).toBe(true)
    expect(contents.tensors.some((t) => t.name.includes('sub_norm'))).toBe(false)
  })

  it('gives the logits of its twin: the same weights unpermuted, as a NEOX arch with SiLU and an untied output', async () => {
    const llama = await loadModel(writeGguf(syntheticGguf(shape, { seed: 21 })), { threads: 1 })
    const twin = await loadModel(writeGguf(syntheticGguf({ ...shape, arch: 'bitnet-25', activation: 'silu', subNorms: false, untiedOutput: true }, { seed: 21 })), { threads: 1 })
    const ids = [5, 77, 130, 9, 200, 31, 64, 250]
    expect(llama.logits(ids).map((r) => Array.from(r))).toEqual(twin.logits(ids).map((r) => Array.from(r)))
    await Promise.all([llama.dispose(), twin.dispose()])
  })

  it('un-permuting inverts the converter\'s permutation', () => {
    const rows = Int8Array.from({ length: 4 * 8 * 3 }, (_, i) => i)
    const p = permuteQkRows(rows.slice(), 4, 3)
    expect(Array.from(p.subarray(0, 12))).toEqual([0, 1, 2, 12, 13, 14, 3, 4, 5, 15, 16, 17]) // rows 0, 4, 1, 5 of head 0
    expect(Array.from(unpermuteQkRows(p, 4, 3))).toEqual(Array.from(rows))
  })
})

describe('Llama family as a Hugging Face folder (LlamaForCausalLM, bitlinear-packed) and through `bitnet convert`', () => {
  const shape: SyntheticShape = { arch: 'llama', nEmbd: 256, nFf: 512, nLayer: 2, nHead: 4, nHeadKv: 2, vocab: 300, ropeTheta: 1000042, tokenizerPre: 'falcon3' }
  const ids = [1, 45, 260, 3, 99, 180, 7, 33, 250]
  const logitsOf = async (src: Uint8Array | Awaited<ReturnType<typeof hfContents>>, tokens = ids) => {
    const model = src instanceof Uint8Array ? await loadModel(src, { threads: 1 }) : await BitnetModel.load(src, { threads: 1 })
    const out = model.logits(tokens).map((r) => Array.from(r))
    await model.dispose()
    return out
  }
  const close = (a: number[][], b: number[][]) => {
    let d = 0
    a.forEach((r, p) => r.forEach((v, i) => { d = Math.max(d, Math.abs(v - b[p][i])) }))
    return d
  }

  it('the folder and the bitnet.cpp-style GGUF of the same weights give the same logits', async () => {
    const g = syntheticGguf(shape, { seed: 31 })
    const folder = await hfContents(hfLlamaFolder(g, 'packed'))
    expect(folder.config).toMatchObject({ arch: 'llama', rope: 'neox', activation: 'silu' })
    // γ goes through weight_scale = 1/γ (f32) and back: equal to within an ulp
    expect(close(await logitsOf(folder), await logitsOf(writeGguf(g)))).toBeLessThan(1e-4)
  })

  it('convert writes arch llama with q/k permuted as bitnet.cpp does; the file loads back with the folder\'s logits', async () => {
    const g = syntheticGguf(shape, { seed: 32 })
    const folder = await hfContents(hfLlamaFolder(g, 'packed'))
    const chunks: Uint8Array[] = []
    for await (const c of convertToGguf(folder, { to: 'i2s' })) chunks.push(c)
    const out = new Uint8Array(Buffer.concat(chunks))
    const gguf = await readGguf(bytesSource(out))
    expect(gguf.metadata.get('general.architecture')?.value).toBe('llama')
    expect(gguf.metadata.has('llama.hidden_activation')).toBe(false)
    expect(gguf.tensors.map((t) => t.name)).toContain('output.weight')
    // the q rows are those of the bitnet.cpp-style file (codes equal; γ within an ulp)
    const q = gguf.tensors.find((t) => t.name === 'blk.1.attn_q.weight')!
    const mine = decodeTernary('I2_S', out.subarray(gguf.dataOffset + q.offset, gguf.dataOffset + q.offset + q.byteSize), 256, 256)
    const theirs = decodeTernary('I2_S', g.tensors.find((t) => t.name === 'blk.1.attn_q.weight')!.data, 256, 256)
    expect(Buffer.compare(Buffer.from(mine.codes.buffer), Buffer.from(theirs.codes.buffer))).toBe(0)
    expect(close(await logitsOf(out), await logitsOf(folder))).toBeLessThan(1e-4)
    for (const to of ['tl2', 'tq2_0'] as const) { // TL2 as arch llama is file_type 39; TQ2_0 is for upstream llama.cpp, same arch
      const c: Uint8Array[] = []
      for await (const x of convertToGguf(folder, { to })) c.push(x)
      const file = new Uint8Array(Buffer.concat(c))
      expect((await readGguf(bytesSource(file))).metadata.get('general.architecture')?.value).toBe('llama')
      // TQ2_0 rounds γ to fp16 (its logits are checked against I2_S in formats-load.test.ts)
      if (to === 'tl2') expect(close(await logitsOf(file), await logitsOf(folder))).toBeLessThan(1e-4)
      else expect((await logitsOf(file)).flat().every(Number.isFinite)).toBe(true)
    }
  })

  it('convert keeps a SentencePiece tokenizer (tokenizer.ggml.model llama, not gpt2): same ids and logits as the folder', async () => {
    // LLaMA-2's vocabulary and merges as Meta's HF export spells them (byte fallback on)
    const ref = llamaTokenizer as unknown as { vocabById: string[]; merges: Map<string, number> }
    const json = {
      model: {
        type: 'BPE', byte_fallback: true, unk_token: '<unk>', fuse_unk: true,
        vocab: Object.fromEntries(ref.vocabById.map((t, id) => [t, id])),
        merges: [...ref.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair),
      },
      added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, special: true })),
      decoder: { type: 'Sequence', decoders: [] },
    }
    const g = syntheticGguf({ arch: 'llama', nEmbd: 64, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 32000 }, { seed: 34 })
    const folder = await hfContents(hfLlamaFolder(g, 'packed', { json, config: { bos_token: '<s>', eos_token: '</s>', add_bos_token: true } }))
    const chunks: Uint8Array[] = []
    for await (const c of convertToGguf(folder, { to: 'i2s' })) chunks.push(c)
    const out = new Uint8Array(Buffer.concat(chunks))
    const md = (await readGguf(bytesSource(out))).metadata
    expect(md.get('tokenizer.ggml.model')?.value).toBe('llama')
    expect(md.get('tokenizer.ggml.bos_token_id')?.value).toBe(1)
    const model = await loadModel(out, { threads: 1 })
    for (const text of ['Hello world', ' grüße, 東京 🦙\n\tx']) expect(model.tokenize(text)).toEqual(folder.tokenizer.encode(text))
    const ids = model.tokenize('The quick brown fox')
    const a = model.logits(ids).map((r) => Array.from(r))
    await model.dispose()
    expect(close(a, await logitsOf(folder, ids))).toBeLessThan(1e-4)
  })

  it('a plain full-precision LlamaForCausalLM folder is refused with NotTernaryError', async () => {
    const rand = rng(9)
    const folder = await hfContents(hfLlamaFolder(syntheticGguf(shape, { seed: 33 }), (codes, gamma) => Float32Array.from(codes, (c) => c * gamma + (rand() - 0.5) * 0.01)))
    const err = await logitsOf(folder).catch((e) => e)
    expect(err).toBeInstanceOf(NotTernaryError)
    expect(err.message).toMatch(/'blk.0.attn_q.weight' holds F32 weights with many distinct magnitudes/)
  })
})

describe('no silent garbage', () => {
  const SHAPE: SyntheticShape = { nEmbd: 64, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270 }
  const config = (g: ReturnType<typeof syntheticGguf>) => (() => { const b = writeGguf(g); return configFromGguf(parseGguf(b, b.length, 'x.gguf'), 'x.gguf') })()

  it("arch 'bitnet-b1.58' without hidden_activation: SiLU for a SentencePiece vocabulary (1bitLLM), ReLU² for Llama 3 (2B4T)", () => {
    const spm = syntheticGguf(SHAPE)
    spm.metadata.set('tokenizer.ggml.model', metaStr('llama'))
    expect(config(spm)).toMatchObject({ activation: 'silu', provenance: { activationGuessed: true } })
    expect(config(spm).provenance.activation).toMatch(/SentencePiece.*1bitLLM/)
    const b4t = config(syntheticGguf(SHAPE))
    expect(b4t).toMatchObject({ activation: 'relu2', provenance: { activationGuessed: false } })
    expect(config(syntheticGguf({ ...SHAPE, activation: 'silu' })).provenance.activation).toBe('metadata bitnet-b1.58.hidden_activation')
  })

  it('a guessed activation is logged as a warning at load', async () => {
    const g = syntheticGguf(SHAPE)
    const tokens = g.metadata.get('tokenizer.ggml.tokens')!.value as string[]
    tokens[tokens.indexOf('<|begin_of_text|>')] = '<s>'
    const warnings: string[] = []
    const model = await loadModel(writeGguf(g), { threads: 1, logger: { warn: (m) => warnings.push(m) } })
    expect(model.config.activation).toBe('relu2')
    expect(warnings.join('\n')).toMatch(/FFN activation relu2 \(guessed: arch 'bitnet-b1.58' without hidden_activation/)
    await model.dispose()
  })

  it('a plain (non-ternary) Llama GGUF with float projections is refused with NotTernaryError, before the embedding is read', async () => {
    const g = syntheticGguf({ ...SHAPE, arch: 'llama' })
    const rand = rng(3)
    for (const t of g.tensors.filter((x) => /attn_|ffn_(gate|up|down)/.test(x.name) && !x.name.includes('norm'))) {
      const n = t.dims[0] * t.dims[1]
      t.typeId = FORMATS.F16.typeId
      t.data = new Uint8Array(Uint16Array.from({ length: n }, () => f32ToF16(rand() - 0.5)).buffer)
    }
    const err = await loadModel(writeGguf(g)).catch((e) => e)
    expect(err).toBeInstanceOf(NotTernaryError)
    expect(err).toBeInstanceOf(UnsupportedFeatureError)
    expect(err.message).toMatch(/'blk.0.attn_q.weight' holds F16 weights with many distinct magnitudes.*full-precision model/)
  })

  it('ternary-valued float projections of a Llama-family file load (bitnet.cpp\'s f32 output before llama-quantize)', async () => {
    const g = syntheticGguf({ ...SHAPE, arch: 'llama' })
    const rand = rng(4)
    for (const t of g.tensors.filter((x) => x.typeId === FORMATS.I2_S.typeId)) {
      t.typeId = FORMATS.F32.typeId
      t.data = new Uint8Array(Float32Array.from({ length: t.dims[0] * t.dims[1] }, () => (Math.floor(rand() * 3) - 1) * 0.25).buffer)
    }
    const model = await loadModel(writeGguf(g), { threads: 1 })
    expect(model.logits([1, 2])[1].every(Number.isFinite)).toBe(true)
    await model.dispose()
  })

  it('tensors the graph has no place for (attention biases, sub-norms in a Llama file, rope_freqs) are named in an error', async () => {
    const bias = syntheticGguf(SHAPE)
    bias.tensors.push({ name: 'blk.0.attn_q.bias', dims: [64], typeId: FORMATS.F32.typeId, data: new Uint8Array(256) })
    await expect(loadModel(writeGguf(bias))).rejects.toThrow(/no place for: blk.0.attn_q.bias\..*attention biases/)
    const llama = syntheticGguf({ ...SHAPE, arch: 'llama', subNorms: true })
    llama.tensors.push({ name: 'rope_freqs.weight', dims: [16], typeId: FORMATS.F32.typeId, data: new Uint8Array(64) })
    const err = await loadModel(writeGguf(llama)).catch((e) => e)
    expect(err).toBeInstanceOf(UnsupportedFeatureError)
    expect(err.message).toMatch(/blk.0.attn_sub_norm.weight, blk.0.ffn_sub_norm.weight, rope_freqs.weight/)
  })

  it('TL companions `<name>_scale` (bitnet.cpp TL1/TL2 files) are redundant, not refused', async () => {
    const g = syntheticGguf(SHAPE)
    g.tensors.push({ name: 'blk.0.attn_q.weight_scale', dims: [1], typeId: FORMATS.F32.typeId, data: new Uint8Array(4) })
    const model = await loadModel(writeGguf(g), { threads: 1 })
    await model.dispose()
  })
})

describe('corrupt I2_S from multi-threaded quantization', () => {
  it.each([64, 128])('a zero scale at M·K/4 (K = %i) names the cause and the fix', async (k) => {
    const g = syntheticGguf({ nEmbd: k, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270 })
    const t = g.tensors.find((x) => x.name === 'blk.0.ffn_up.weight')!
    // what the bug leaves: the scale slot of the tensor is 0, a chunk's scale sits inside the data
    const dv = new DataView(t.data.buffer, t.data.byteOffset)
    dv.setFloat32((t.dims[0] * t.dims[1]) / 4, 0, true)
    dv.setFloat32(t.dims[0] / 4, 0.75, true)
    const err = await loadModel(writeGguf(g)).catch((e) => e)
    expect(err).toBeInstanceOf(ModelFormatError)
    expect(err.message).toMatch(/I2_S tensor 'blk.0.ffn_up.weight' has no valid weight scale at byte M·K\/4.*multi-threaded quantization.*Re-quantize with 1 thread/)
  })

  it('the extent is reported when the tensor does not span M·K/4 + 32 bytes', async () => {
    const g = syntheticGguf({ nEmbd: 128, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270 })
    const t = g.tensors.find((x) => x.name === 'blk.0.ffn_up.weight')!
    new DataView(t.data.buffer, t.data.byteOffset).setFloat32((t.dims[0] * t.dims[1]) / 4, 0, true)
    // the next tensor starts 4 KiB later, as when chunks were written one byte per weight apart
    const grown = new Uint8Array(t.data.byteLength + 4096)
    grown.set(t.data)
    t.data = grown
    const err = await loadModel(writeGguf(g)).catch((e) => e)
    expect(err.message).toMatch(/its extent in the file is 8224 bytes where M·K\/4 \+ 32 = 4128/)
  })
})
