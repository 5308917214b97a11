/**
 * Synthetic BitNet b1.58 models: random ternary weights in the real tensor layout and
 * metadata, at any shape (the published ones in SHAPES). Benchmarks use them at 2B4T
 * size (real weights cannot be downloaded here), tests use small ones of unusual shapes
 * to hold the engine against the reference forward pass.
 */
import { f32ToF16 } from '../formats/float.js'
import { encodeTernary, FORMATS, type FormatName } from '../formats/index.js'
import { metaArr, metaBool, metaF32, metaStr, metaU32, type GgufWriteInput, type GgufWriteTensor } from '../gguf/writer.js'
import { GgufType, type GgufMetadata } from '../gguf/types.js'
import { BYTE_SYMBOLS } from '../tokenizer/tokenizer.js'
import { ARCH_FAMILIES, type Activation } from './config.js'
import { permuteQkRows } from './qk-permute.js'

export interface SyntheticShape {
  /**
   * 'llama': a Llama-family ternary model as bitnet.cpp's converter + `llama-quantize` write it
   * (Falcon3-1.58bit, Falcon-E, Llama3-8B-1.58): q/k rows permuted for NORM RoPE, no sub-norms,
   * a separate F16 `output.weight`, no hidden_activation key (SiLU).
   */
  arch?: 'bitnet-b1.58' | 'bitnet-25' | 'bitnet' | 'llama'
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
  /** `tokenizer.ggml.pre` (e.g. 'falcon3', 'falcon_e'); default none (as the official 2B4T file). */
  tokenizerPre?: string
}

/** Published shapes (spec §1.1, §1.4). */
export const SHAPES = {
  '2b4t': { arch: 'bitnet-b1.58', nEmbd: 2560, nFf: 6912, nLayer: 30, nHead: 20, nHeadKv: 5, vocab: 128256, contextLength: 4096, ropeTheta: 500000, activation: 'relu2' },
  '0.7b': { arch: 'bitnet', nEmbd: 1536, nFf: 4096, nLayer: 24, nHead: 16, nHeadKv: 16, vocab: 32002, contextLength: 2048, ropeTheta: 10000, activation: 'silu' },
  '3b': { arch: 'bitnet', nEmbd: 3200, nFf: 8640, nLayer: 26, nHead: 32, nHeadKv: 32, vocab: 32002, contextLength: 2048, ropeTheta: 10000, activation: 'silu' },
  '8b': { arch: 'bitnet-b1.58', nEmbd: 4096, nFf: 14336, nLayer: 32, nHead: 32, nHeadKv: 8, vocab: 128256, contextLength: 8192, ropeTheta: 500000, activation: 'silu' },
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
  const arch = shape.arch ?? 'bitnet-b1.58'
  const family = ARCH_FAMILIES[arch]
  const s = { arch, subNorms: family.subNorms, untiedOutput: arch === 'llama', ...shape }
  const format = opts.format ?? 'I2_S'
  const headDim = s.headDim ?? s.nEmbd / s.nHead
  const qDim = s.nHead * headDim
  const kvDim = s.nHeadKv * headDim
  const rand = mulberry32(opts.seed ?? 1)
  const tensors: GgufWriteTensor[] = []

  const floats = (name: string, dims: number[], gen: () => number, type: 'F16' | 'F32' = 'F32') => {
    const n = dims.reduce((a, b) => a * b, 1)
    if (type === 'F16') {
      const h = new Uint16Array(n)
      for (let i = 0; i < n; i++) h[i] = f32ToF16(gen())
      tensors.push({ name, dims, typeId: FORMATS.F16.typeId, data: new Uint8Array(h.buffer) })
    } else {
      const f = new Float32Array(n)
      for (let i = 0; i < n; i++) f[i] = gen()
      tensors.push({ name, dims, typeId: FORMATS.F32.typeId, data: new Uint8Array(f.buffer) })
    }
  }
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand())
  const norm = (name: string, n: number) => floats(name, [n], () => 0.5 + rand())
  /** Random codes in HF row order; q/k permuted as llama.cpp's converters do for NORM-RoPE archs. */
  const ternary = (name: string, rows: number, cols: number, heads = 0) => {
    const codes = new Int8Array(rows * cols)
    for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(rand() * 3) - 1
    if (heads && family.rope === 'norm') permuteQkRows(codes, heads, cols)
    const gamma = 0.5 + rand()
    tensors.push({ name, dims: [cols, rows], typeId: FORMATS[format].typeId, data: encodeTernary(format, codes, rows, cols, gamma) })
  }

  floats('token_embd.weight', [s.nEmbd, s.vocab], () => normal() * 0.5, opts.embedding ?? 'F16')
  norm('output_norm.weight', s.nEmbd)
  for (let l = 0; l < s.nLayer; l++) {
    const b = `blk.${l}.`
    norm(b + 'attn_norm.weight', s.nEmbd)
    ternary(b + 'attn_q.weight', qDim, s.nEmbd, s.nHead)
    ternary(b + 'attn_k.weight', kvDim, s.nEmbd, s.nHeadKv)
    ternary(b + 'attn_v.weight', kvDim, s.nEmbd)
    if (s.subNorms) norm(b + 'attn_sub_norm.weight', qDim)
    ternary(b + 'attn_output.weight', s.nEmbd, qDim)
    norm(b + 'ffn_norm.weight', s.nEmbd)
    ternary(b + 'ffn_gate.weight', s.nFf, s.nEmbd)
    ternary(b + 'ffn_up.weight', s.nFf, s.nEmbd)
    if (s.subNorms) norm(b + 'ffn_sub_norm.weight', s.nFf)
    ternary(b + 'ffn_down.weight', s.nEmbd, s.nFf)
  }
  if (s.untiedOutput) floats('output.weight', [s.nEmbd, s.vocab], () => normal() * 0.5, 'F16')
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
