// The BitNet embedding models as bitnet.cpp runs them (arch 'qwen3': BitNet-embedding-0.6B;
// arch 'gemma3': BitNet-embedding-270M): per-projection input norms, q/k head norms, Gemma3's
// √n_embd embedding scale, post-norms and GELU-tanh, against the float64 reference on
// synthetic weights of several shapes; the same weights as a Hugging Face folder; their
// tokenizers; and the embeddings API (EOS, last-token pooling, L2, batches, instructions).
import { describe, expect, it } from 'vitest'
import { BitnetModel, loadModel, UnsupportedFeatureError } from '../src/index.js'
import { GgufType } from '../src/gguf/types.js'
import { metaArr, metaBool, metaStr, writeGguf } from '../src/gguf/writer.js'
import { configFromHf } from '../src/model/config.js'
import { ggufContents } from '../src/model/contents.js'
import { hfContents } from '../src/model/load-hf.js'
import { convertToGguf } from '../src/convert/index.js'
import { tokenizerFromGguf, tokenizerFromHf } from '../src/tokenizer/tokenizer.js'
import { hfEmbeddingFolder } from './helpers/hf-folder.js'
import { bytesSource } from '../src/io/source.js'
import { syntheticGguf, type SyntheticOptions, type SyntheticShape } from '../src/model/synthetic.js'
import { engineAndReference } from './helpers/reference-pair.js'

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
      const { model, ref, tokens } = await engineAndReference(shape, opts, kernel, 11)
      const ours = model.logits(tokens)
      // the reference one position at a time: its logits and final normed state
      const refs = tokens.map((tok, pos) => ({ logits: ref.forward(tok, pos), hidden: ref.hidden! }))
      const maxAbs = (a: ArrayLike<number>, b?: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - (b ? b[i] : 0))))
      const dLogit = Math.max(...refs.map((r, pos) => maxAbs(ours[pos], r.logits)))
      const maxLogit = Math.max(...refs.map((r) => maxAbs(r.logits)))
      // last-token embedding of the whole sequence (no EOS: ids given) against the reference's
      const emb = model.embed(tokens, { pooling: 'last', normalize: false, appendEos: false })
      const last = refs[tokens.length - 1].hidden
      const dEmb = maxAbs(emb, last)
      await model.dispose()
      // Measured: |Δlogit| ≤ 1.4e-5 on logits up to ±77, |Δembedding| ≤ 6e-7. An int8 rounding flip
      // (an f32 value within ~1e-6 of a .5 boundary) moves logits by ~0.1: seeds avoid one.
      expect(dLogit).toBeLessThan(1e-4)
      expect(dEmb).toBeLessThan(1e-5)
      expect(maxLogit).toBeGreaterThan(5)
    })
  }
})

describe('BitNet-embedding as a Hugging Face folder (Qwen3Model / Gemma3TextModel, latent weights)', () => {
  const GEMMA = CASES.find(([, s]) => s.arch === 'gemma3')![1]
  for (const [name, shape] of [CASES[0], CASES.find(([, s]) => s.arch === 'gemma3')!]) {
    it(`${name}: the folder and the GGUF of the same weights give the same logits and embeddings`, async () => {
      const g = syntheticGguf(shape, { seed: 51 })
      const folder = await hfContents(hfEmbeddingFolder(g))
      expect(folder.config).toMatchObject({ arch: shape.arch, pooling: 'last' })
      if (shape.arch === 'gemma3') expect(folder.config).toMatchObject({ activation: 'gelu', slidingWindow: 512 })
      const a = await BitnetModel.load(folder, { threads: 1 })
      const b = await loadModel(writeGguf(g), { threads: 1 })
      const ids = [3, 250, 17, 99, 140, 8, 61, 200, 5]
      expect(a.logits(ids).map((r) => Array.from(r))).toEqual(b.logits(ids).map((r) => Array.from(r)))
      expect(Array.from(a.embed(ids, { appendEos: false }))).toEqual(Array.from(b.embed(ids, { appendEos: false })))
      await Promise.all([a.dispose(), b.dispose()])
    })
  }

  it('a sliding window caps the context: exact up to the window, refused beyond it', async () => {
    const folder = await hfContents(hfEmbeddingFolder(syntheticGguf(GEMMA, { seed: 52 })))
    await expect(BitnetModel.load(folder, { contextSize: 600, threads: 1 })).rejects.toThrow(/sliding attention window of 512/)
    const m = await BitnetModel.load(folder, { threads: 1 })
    expect(m.contextSize).toBe(512)
    await m.dispose()
  })

  it('convert: a GGUF re-encodes (TQ2_0 → I2_S, same logits); folders and upstream targets are refused with the way out', async () => {
    const shape = CASES.find(([n]) => n.includes('TQ2_0'))![1]
    const src = writeGguf(syntheticGguf(shape, { seed: 54, format: 'TQ2_0' }))
    const chunks: Uint8Array[] = []
    for await (const c of convertToGguf(await ggufContents(bytesSource(src)), { to: 'i2s' })) chunks.push(c)
    const [a, b] = await Promise.all([loadModel(src, { threads: 1 }), loadModel(new Uint8Array(Buffer.concat(chunks)), { threads: 1 })])
    const ids = [4, 90, 200, 31]
    expect(b.logits(ids).map((r) => Array.from(r))).toEqual(a.logits(ids).map((r) => Array.from(r)))
    await Promise.all([a.dispose(), b.dispose()])
    const drain = async (it: AsyncIterable<Uint8Array>) => { for await (const _ of it) void _ }
    await expect(drain(convertToGguf(await ggufContents(bytesSource(src)), { to: 'tq2_0' }))).rejects.toThrow(/upstream llama.cpp has no per-projection norms/)
    const folder = await hfContents(hfEmbeddingFolder(syntheticGguf(CASES[0][1])))
    await expect(drain(convertToGguf(folder, { to: 'i2s' }))).rejects.toThrow(/convert-bitnet-embedding-to-gguf.py/)
  })

  it('config.json: Gemma3 keys and refusals', () => {
    const base = { model_type: 'gemma3_text', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 64, vocab_size: 300 }
    expect(configFromHf({ ...base, query_pre_attn_scalar: 16, hidden_activation: 'gelu_pytorch_tanh' }, 'c').attnScale).toBe(0.25)
    expect(() => configFromHf({ ...base, hidden_activation: 'gelu' }, 'c')).toThrow(/exact-erf gelu/)
    expect(() => configFromHf({ ...base, final_logit_softcapping: 30 }, 'c')).toThrow(/final_logit_softcapping/)
    expect(() => configFromHf({ ...base, sliding_window: 512, layer_types: ['sliding_attention'], rope_theta: 1e6, rope_local_base_freq: 1e4 }, 'c'))
      .toThrow(/rope_local_base_freq/)
  })

  it('an architecture the engine does not run is refused with what is supported and what to do', async () => {
    const g = syntheticGguf(CASES[0][1])
    g.metadata.set('general.architecture', metaStr('phi3'))
    const err = await ggufContents(bytesSource(writeGguf(g))).catch((e) => e)
    expect(err).toBeInstanceOf(UnsupportedFeatureError)
    expect(err.message).toMatch(/architecture 'phi3' is not a model this engine runs. Supported: .*'qwen3' \(BitNet-embedding \(Qwen3-style\)\).*'gemma3'/)
    expect(err.message).toMatch(/Use a ternary model of one of these families/)
    expect(() => configFromHf({ architectures: ['MistralForCausalLM'], model_type: 'mistral' }, 'c')).toThrow(/Gemma3TextModel \(BitNet-embedding\)/)
  })
})

describe('the embedding models\' tokenizers', () => {
  it("'qwen2' pre-tokenizer: digits one by one (Llama 3 groups three), no ignore_merges", () => {
    const g = syntheticGguf({ ...CASES[0][1], vocab: 300 })
    const tokens = [...(g.metadata.get('tokenizer.ggml.tokens')!.value as string[])]
    tokens[260] = '12'
    tokens[261] = 'ab'
    const md = new Map(g.metadata)
    md.set('tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens))
    const types = [...(g.metadata.get('tokenizer.ggml.token_type')!.value as number[])]
    types[260] = types[261] = 1
    md.set('tokenizer.ggml.token_type', metaArr(GgufType.INT32, types))
    md.set('tokenizer.ggml.merges', metaArr(GgufType.STRING, ['1 2', 'a b']))
    const id = (c: string) => tokens.indexOf(c)
    const qwen = tokenizerFromGguf(md, 'qwen')
    // Qwen2: '1','2','3' are three pre-tokens (no merge across them); 'ab' merges
    expect(qwen.encode('123 ab', { addBos: false })).toEqual([id('1'), id('2'), id('3'), id('Ġ'), id('ab')])
    md.set('tokenizer.ggml.pre', metaStr('llama-bpe'))
    // Llama 3: '123' is one pre-token, merged into '12' + '3'
    expect(tokenizerFromGguf(md, 'llama3').encode('123 ab', { addBos: false })).toEqual([id('12'), id('3'), id('Ġ'), id('ab')])
    expect(qwen.addEos).toBe(true) // bitnet.cpp's converter: EOS appended for last-token pooling
  })

  it("Gemma's SentencePiece-BPE: no space prefix, byte fallback, user-defined added tokens; tokenizer.json and GGUF agree", () => {
    // a Gemma-style tokenizer.json: BPE with byte fallback, spaces replaced by '▁' (no prepend)
    const vocab: Record<string, number> = { '<pad>': 0, '<eos>': 1, '<bos>': 2, '<unk>': 3 }
    for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 4 + b
    for (const t of ['a', 'b', 'c', '▁', 'ab', '▁c', '▁ca', '\n\n']) vocab[t] = Object.keys(vocab).length
    const json = {
      model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab, merges: ['a b', '▁ c', '▁c a'] },
      normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      added_tokens: [
        { id: 0, content: '<pad>', special: true }, { id: 1, content: '<eos>', special: true }, { id: 2, content: '<bos>', special: true },
        { id: 3, content: '<unk>', special: true }, { id: vocab['\n\n'], content: '\n\n', special: false },
      ],
    }
    const hf = tokenizerFromHf(json, { bos_token: '<bos>', eos_token: '<eos>' })
    const v = (t: string) => vocab[t]
    // 'ab ca\n\nz': no leading '▁'; '▁ca' merged; '\n\n' is an added token; 'z' falls back to its byte
    const want = [v('<bos>'), v('ab'), v('▁ca'), v('\n\n'), v('<0x7A>')]
    expect(hf.encode('ab ca\n\nz')).toEqual(want)
    expect(hf.decode(want.slice(1))).toBe('ab ca\n\nz')
    // as bitnet.cpp's converter writes it: scores from merge ranks, add_space_prefix false
    const tokens = Object.keys(vocab)
    const rank: Record<string, number> = { ab: 0, '▁c': 1, '▁ca': 2 }
    const md = new Map([
      ['tokenizer.ggml.model', metaStr('llama')],
      ['tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens)],
      ['tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, tokens.map((t) => -(rank[t] ?? 0)))],
      ['tokenizer.ggml.token_type', metaArr(GgufType.INT32, tokens.map((t, i) => (i < 4 ? 3 : t === '\n\n' ? 4 : t.startsWith('<0x') ? 6 : 1)))],
      ['tokenizer.ggml.add_space_prefix', metaBool(false)],
      ['tokenizer.ggml.bos_token_id', { type: GgufType.UINT32, value: 2 }],
      ['tokenizer.ggml.eos_token_id', { type: GgufType.UINT32, value: 1 }],
    ]) as Parameters<typeof tokenizerFromGguf>[0]
    expect(tokenizerFromGguf(md, 'gemma').encode('ab ca\n\nz')).toEqual(want)
  })
})

describe('embeddings API on a BitNet-embedding model', () => {
  it('EOS per add_eos_token, last-token pooling, L2 norm, batches, instruction format; mean pooling kept', async () => {
    const model = await loadModel(writeGguf(syntheticGguf(CASES[0][1], { seed: 53 })), { threads: 1 })
    const tok = model.tokenizer
    const text = 'hello embeddings'
    const ids = [...model.tokenize(text), tok.eosId!]
    expect(model.embeddingIds(text)).toEqual(ids)
    // by hand: the last row's final normed state, L2-normalised
    model.logits(ids)
    const last = model.embed(ids, { appendEos: false, normalize: false })
    const norm = Math.hypot(...last)
    const e = model.embed(text)
    expect(Math.hypot(...e)).toBeCloseTo(1, 6)
    e.forEach((v, i) => expect(v).toBeCloseTo(last[i] / norm, 6))
    const q = 'what is it?', task = 'Given a question, retrieve passages that answer it'
    expect(model.embeddingIds(q, { instruction: task })).toEqual([...model.tokenize(`Instruct: ${task}\nQuery: ${q}`), tok.eosId!])
    const [a, b] = model.embedBatch([text, q])
    expect(Array.from(a)).toEqual(Array.from(e))
    expect(Array.from(b)).toEqual(Array.from(model.embed(q)))
    // mean pooling as an option: the average of every row's state
    const mean = model.embed(ids, { appendEos: false, pooling: 'mean', normalize: false })
    const rows = ids.map((_, i) => model.embed(ids.slice(0, i + 1), { appendEos: false, normalize: false }))
    mean.forEach((v, d) => expect(v).toBeCloseTo(rows.reduce((s, r) => s + r[d], 0) / rows.length, 5))
    await model.dispose()
  })
})
