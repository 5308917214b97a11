/**
 * Synthetic BitNet b1.58 models: random ternary weights in the real tensor layout and
 * metadata, at any shape (the published ones in SHAPES). Benchmarks use them at 2B4T
 * size (real weights cannot be downloaded here), tests use small ones of unusual shapes
 * to hold the engine against the reference forward pass.
 */
import { f32ToF16 } from '../formats/float.js'
import { encodeTernary, FORMATS, tensorByteSize, type FormatName } from '../formats/index.js'
import { ggufHeader, metaArr, metaBool, metaF32, metaStr, metaU32, type GgufHeaderTensor, type GgufWriteInput } from '../gguf/writer.js'
import { GgufType, type GgufMetadata } from '../gguf/types.js'
import { BYTE_SYMBOLS } from '../tokenizer/tokenizer.js'
import { ARCH_FAMILIES, type Activation } from './config.js'
import { allTensors } from './tensors.js'
import { permuteQkRows } from './qk-permute.js'

export interface SyntheticShape {
  /**
   * 'llama': a Llama-family ternary model as bitnet.cpp's converter + `llama-quantize` write it
   * (Falcon3-1.58bit, Falcon-E, Llama3-8B-1.58): q/k rows permuted for NORM RoPE, no sub-norms,
   * a separate F16 `output.weight`, no hidden_activation key (SiLU).
   */
  arch?: 'bitnet-b1.58' | 'bitnet-25' | 'bitnet' | 'llama' | 'qwen3' | 'gemma3'
  nEmbd: number
  nFf: number
  nLayer: number
  nHead: number
  nHeadKv: number
  /** Default nEmbd / nHead (written as attention.key_length when different). */
  headDim?: number
  /** Rotated dims per head; default headDim. */
  nRot?: number
  vocab: number
  contextLength?: number
  ropeTheta?: number
  activation?: Activation
  /** attn_sub_norm / ffn_sub_norm tensors; default: the arch's (2B4T, 1bitLLM: yes; llama: no). */
  subNorms?: boolean
  /** A separate `output.weight` (untied lm_head); default: only for llama. */
  untiedOutput?: boolean
  /** `tokenizer.ggml.pre` (e.g. 'falcon3', 'falcon_e'); default none (as the official 2B4T file), 'qwen2' for qwen3. */
  tokenizerPre?: string
}

/** Published shapes (docs/architecture.md#hyperparameters; 1bitLLM and Llama3-8B-1.58 from their config.json). */
export const SHAPES = {
  '2b4t': { arch: 'bitnet-b1.58', nEmbd: 2560, nFf: 6912, nLayer: 30, nHead: 20, nHeadKv: 5, vocab: 128256, contextLength: 4096, ropeTheta: 500000, activation: 'relu2' },
  '0.7b': { arch: 'bitnet', nEmbd: 1536, nFf: 4096, nLayer: 24, nHead: 16, nHeadKv: 16, vocab: 32002, contextLength: 2048, ropeTheta: 10000, activation: 'silu' },
  '3b': { arch: 'bitnet', nEmbd: 3200, nFf: 8640, nLayer: 26, nHead: 32, nHeadKv: 32, vocab: 32002, contextLength: 2048, ropeTheta: 10000, activation: 'silu' },
  // A 20B-class ternary model (the scale past one wasm32 memory; no published checkpoint).
  '20b': { arch: 'bitnet-b1.58', nEmbd: 5120, nFf: 13824, nLayer: 60, nHead: 40, nHeadKv: 8, vocab: 128256, contextLength: 4096, ropeTheta: 500000, activation: 'relu2' },
  // A 30B-class ternary model (LLaMA-30B widths, GQA 8:1; 27.6e9 ternary weights).
  '30b': { arch: 'bitnet-b1.58', nEmbd: 6656, nFf: 17920, nLayer: 60, nHead: 52, nHeadKv: 4, vocab: 128256, contextLength: 4096, ropeTheta: 500000, activation: 'relu2' },
  // Falcon3-10B-1.58bit (its config.json: head_dim 256, untied 131072-token embedding and output)
  'falcon3-10b': { arch: 'llama', nEmbd: 3072, nFf: 23040, nLayer: 40, nHead: 12, nHeadKv: 4, vocab: 131072, contextLength: 32768, ropeTheta: 1000042, tokenizerPre: 'falcon3' },
  '8b': { arch: 'bitnet-b1.58', nEmbd: 4096, nFf: 14336, nLayer: 32, nHead: 32, nHeadKv: 8, vocab: 128256, contextLength: 8192, ropeTheta: 500000, activation: 'silu' },
  // BitNet-embedding-0.6B and -270M (bitnet.cpp's embedding guide: head_dim ≠ n_embd / n_head)
  'embed-0.6b': { arch: 'qwen3', nEmbd: 1024, nFf: 3072, nLayer: 28, nHead: 16, nHeadKv: 8, headDim: 128, vocab: 151936, contextLength: 32768, ropeTheta: 1000000 },
  'embed-270m': { arch: 'gemma3', nEmbd: 640, nFf: 2048, nLayer: 18, nHead: 4, nHeadKv: 1, headDim: 256, vocab: 262144, contextLength: 32768, ropeTheta: 10000 },
} satisfies Record<string, SyntheticShape>

export interface SyntheticOptions {
  /** Ternary format of the projections. Default I2_S. */
  format?: Extract<FormatName, 'I2_S' | 'TQ2_0' | 'TQ1_0'>
  /** Type of token_embd. Default F16. */
  embedding?: 'F16' | 'F32'
  seed?: number
}

/** A complete GGUF (metadata + tensors) for `shape`, ready for writeGguf / ggufChunks. */
export function syntheticGguf(shape: SyntheticShape, opts: SyntheticOptions = {}): GgufWriteInput {
  const { metadata, tensors } = syntheticTensors(shape, opts)
  return { metadata, tensors: tensors.map(({ make, byteSize: _, ...t }) => ({ ...t, data: make() })) }
}

/**
 * The same file as chunks (header, then each tensor generated when its turn comes, with its
 * padding), for models too large to hold in memory: 20B-class shapes are written to disk
 * with one tensor in memory at a time.
 * @example
 * for (const chunk of syntheticChunks(SHAPES['20b'], { format: 'TQ2_0' })) fs.writeSync(fd, chunk)
 */
export function* syntheticChunks(shape: SyntheticShape, opts: SyntheticOptions = {}): Generator<Uint8Array> {
  const file = syntheticTensors(shape, opts)
  const { header, padding } = ggufHeader(file)
  yield header
  for (const t of file.tensors) {
    yield t.make()
    const p = padding(t.byteSize)
    if (p) yield new Uint8Array(p)
  }
}

/** A tensor whose data is generated on demand (in file order: the generator is seeded once). */
type LazyTensor = GgufHeaderTensor & { make: () => Uint8Array }

function syntheticTensors(shape: SyntheticShape, opts: SyntheticOptions): { metadata: GgufMetadata; tensors: LazyTensor[] } {
  const arch = shape.arch ?? 'bitnet-b1.58'
  const family = ARCH_FAMILIES[arch]
  const s = { arch, subNorms: family.subNorms, untiedOutput: arch === 'llama', tokenizerPre: arch === 'qwen3' ? 'qwen2' : undefined, ...shape }
  const format = opts.format ?? 'I2_S'
  const headDim = s.headDim ?? s.nEmbd / s.nHead
  const rand = mulberry32(opts.seed ?? 1)
  const tensors: LazyTensor[] = []
  const push = (name: string, dims: number[], format: FormatName, make: () => Uint8Array) =>
    tensors.push({ name, dims, typeId: FORMATS[format].typeId, byteSize: tensorByteSize(format, dims), make })

  const floats = (name: string, dims: number[], gen: () => number, type: 'F16' | 'F32' = 'F32') => {
    const n = dims.reduce((a, b) => a * b, 1)
    push(name, dims, type, () => {
      if (type === 'F32') return new Uint8Array(Float32Array.from({ length: n }, gen).buffer)
      const h = new Uint16Array(n)
      for (let i = 0; i < n; i++) h[i] = f32ToF16(gen())
      return new Uint8Array(h.buffer)
    })
  }
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand())
  const norm = (name: string, n: number) => floats(name, [n], () => 0.5 + rand())
  /** Random codes in HF row order; q/k permuted as llama.cpp's converters do for NORM-RoPE archs. */
  const ternary = (name: string, rows: number, cols: number, heads = 0) => push(name, [cols, rows], format, () => {
    const codes = new Int8Array(rows * cols)
    for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(rand() * 3) - 1
    if (heads && family.rope === 'norm') permuteQkRows(codes, heads, cols)
    const gamma = 0.5 + rand()
    return encodeTernary(format, codes, rows, cols, gamma)
  })

  // Every tensor of the model in file order (tensors.ts); sub-norms as the shape asks
  for (const t of allTensors({ ...s, headDim, vocabSize: s.vocab }, { ...family, subNorms: s.subNorms })) {
    const [cols, rows] = t.dims
    if (t.role === 'ternary') ternary(t.name, rows, cols, t.heads)
    else if (t.role === 'norm') norm(t.name, cols)
    else if (t.name === 'token_embd.weight') floats(t.name, t.dims, () => normal() * 0.5, opts.embedding ?? 'F16')
    else if (s.untiedOutput) floats(t.name, t.dims, () => normal() * 0.5, 'F16')
  }
  return { metadata: syntheticMetadata(s, headDim), tensors }
}

function syntheticMetadata(s: SyntheticShape & { arch: string }, headDim: number): GgufMetadata {
  const a = (k: string) => `${s.arch}.${k}`
  const m: GgufMetadata = new Map()
  m.set('general.architecture', metaStr(s.arch))
  m.set('general.name', metaStr(`synthetic ${s.arch} ${s.nLayer}L ${s.nEmbd}`))
  m.set(a('vocab_size'), metaU32(s.vocab))
  m.set(a('context_length'), metaU32(s.contextLength ?? 2048))
  m.set(a('embedding_length'), metaU32(s.nEmbd))
  m.set(a('block_count'), metaU32(s.nLayer))
  m.set(a('feed_forward_length'), metaU32(s.nFf))
  m.set(a('attention.head_count'), metaU32(s.nHead))
  m.set(a('attention.head_count_kv'), metaU32(s.nHeadKv))
  if (headDim !== s.nEmbd / s.nHead) m.set(a('attention.key_length'), metaU32(headDim))
  m.set(a('rope.dimension_count'), metaU32(s.nRot ?? headDim))
  m.set(a('rope.freq_base'), metaF32(s.ropeTheta ?? 500000))
  m.set(a('attention.layer_norm_rms_epsilon'), metaF32(1e-5))
  if (s.activation) m.set(a('hidden_activation'), metaStr(s.activation))
  if (ARCH_FAMILIES[s.arch].projNorms) {
    // as bitnet.cpp's embedding converter: last-token pooling (sentence-transformers' config),
    // key_length always, and (Qwen3) EOS appended to every input
    m.set(a('pooling_type'), metaU32(3))
    m.set(a('attention.key_length'), metaU32(headDim))
    if (s.arch === 'qwen3') m.set('tokenizer.ggml.add_eos_token', metaBool(true))
  }
  // Tokenizer: the 256 byte-level symbols (so any text encodes), filler tokens, and the
  // Llama 3 specials at the end. No merges: every byte is its own token.
  const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>']
  const nFill = s.vocab - BYTE_SYMBOLS.length - specials.length
  if (nFill < 0) throw new RangeError(`synthetic vocab must be ≥ ${BYTE_SYMBOLS.length + specials.length}`)
  const tokens = [...BYTE_SYMBOLS, ...Array.from({ length: nFill }, (_, i) => `<filler_${i}>`), ...specials]
  const types = tokens.map((_, i) => (i >= BYTE_SYMBOLS.length ? 3 : 1))
  m.set('tokenizer.ggml.model', metaStr('gpt2'))
  if (s.tokenizerPre) m.set('tokenizer.ggml.pre', metaStr(s.tokenizerPre))
  m.set('tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens))
  m.set('tokenizer.ggml.token_type', metaArr(GgufType.INT32, types))
  m.set('tokenizer.ggml.merges', metaArr(GgufType.STRING, []))
  m.set('tokenizer.ggml.bos_token_id', metaU32(s.vocab - 3))
  m.set('tokenizer.ggml.eos_token_id', metaU32(s.vocab - 2))
  m.set('tokenizer.ggml.add_bos_token', metaBool(true))
  return m
}

/** mulberry32: a tiny seeded PRNG, enough for reproducible random weights. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
