/**
 * GGUF metadata for `bitnet convert`: copied from a GGUF source, or built from a Hugging Face
 * folder's config.json / tokenizer.json / tokenizer_config.json with the keys, order and
 * types of the official 2B4T I2_S file (docs/formats.md#metadata-keys), then adjusted for the target:
 * - a Llama-family model (arch 'llama') stays 'llama' for every target, with q/k rows permuted
 *   for NORM RoPE as bitnet.cpp's and upstream's converters write them (./index.ts);
 * - TQ1_0 / TQ2_0 are for upstream llama.cpp, which knows the BitNet graph as 'bitnet' only:
 *   'bitnet-b1.58' and 'bitnet-25' become 'bitnet' (same block) with an explicit
 *   `bitnet.hidden_activation` (upstream defaults to SiLU without it) and `tokenizer.ggml.pre` =
 *   'llama-bpe' for Llama 3 vocabularies;
 * - `<arch>.hidden_activation` is written whenever the activation is not the arch's default.
 */
import { ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { GgufType, type GgufMetadata, type GgufValue } from '../gguf/types.js'
import { metaArr, metaBool, metaF32, metaStr, metaU32 } from '../gguf/writer.js'
import { ARCH_FAMILIES, type ModelConfig } from '../model/config.js'
import type { ModelContents } from '../model/contents.js'
import { spmMetadataFromHf } from '../tokenizer/tokenizer.js'

/** llama.h `llama_ftype` per target (bitnet.cpp's fork for TL1/TL2/I2_S). */
export const FILE_TYPES = { f32: 0, f16: 1, bf16: 32, tq1_0: 36, tq2_0: 37, tl1: 38, tl2: 39, i2s: 40 } as const

export type ConvertTarget = keyof typeof FILE_TYPES

/** The output file's metadata (a new map; the source's is not modified). */
export function convertMetadata(contents: ModelContents, to: ConvertTarget, extra: [string, GgufValue][]): GgufMetadata {
  const c = contents.config
  const upstream = to === 'tq1_0' || to === 'tq2_0'
  if (ARCH_FAMILIES[c.arch].projNorms && (upstream || !contents.gguf)) {
    // upstream llama.cpp has no per-projection norms; a folder's pooling, EOS, window and
    // Gemma tokenizer keys are what bitnet.cpp's own embedding converter writes
    throw new UnsupportedFeatureError(`${contents.name}: converting a ${ARCH_FAMILIES[c.arch].family} model ` +
      `${upstream ? `to ${to} (upstream llama.cpp has no per-projection norms)` : 'from a Hugging Face folder'} is not supported; ` +
      'load the folder directly, or convert it with bitnet.cpp\'s utils/convert-bitnet-embedding-to-gguf.py')
  }
  const src = contents.gguf ? contents.gguf.metadata : hfMetadata(contents)
  const arch = outputArch(c.arch, upstream)
  const out: GgufMetadata = new Map()
  for (const [k, v] of src) {
    if (k === 'general.architecture') out.set(k, metaStr(arch))
    else if (k === 'general.file_type') out.set(k, metaU32(FILE_TYPES[to]))
    else if (k === 'general.alignment' || k.startsWith('bitnet-wasm.')) continue // re-derived by the writer / converter
    else out.set(k.startsWith(c.arch + '.') ? arch + k.slice(c.arch.length) : k, v)
  }
  if (!out.has('general.file_type')) out.set('general.file_type', metaU32(FILE_TYPES[to]))
  // upstream's 'bitnet' graph defaults to SiLU without the key; 'llama' is always SiLU
  if (c.activation !== ARCH_FAMILIES[arch].activation || (upstream && arch === 'bitnet')) out.set(`${arch}.hidden_activation`, metaStr(c.activation))
  if (upstream && !out.has('tokenizer.ggml.pre') && contents.tokenizer.bosToken === '<|begin_of_text|>') out.set('tokenizer.ggml.pre', metaStr('llama-bpe'))
  for (const [k, v] of extra) out.set(k, v)
  return out
}

/**
 * The architecture written: a Llama-family model stays 'llama' (bitnet.cpp and upstream
 * llama.cpp run it with `build_llama`; q/k rows are permuted to match, see ./index.ts);
 * upstream llama.cpp knows the BitNet graph only as 'bitnet'.
 */
export function outputArch(arch: string, upstream: boolean): string {
  return upstream && arch !== 'llama' ? 'bitnet' : arch
}

/** Metadata of a Hugging Face folder in the official file's key order. */
function hfMetadata(contents: ModelContents): GgufMetadata {
  const hf = contents.hf
  if (!hf) throw new ModelFormatError('model has neither GGUF metadata nor Hugging Face files', { file: contents.name })
  const c: ModelConfig = contents.config
  const m: GgufMetadata = new Map()
  m.set('general.architecture', metaStr(c.arch))
  m.set('general.name', metaStr(String(hf.config._name_or_path ?? contents.name.split(/[\\/]/).filter(Boolean).pop() ?? 'model')))
  for (const [k, v] of configMetadata(c)) {
    // bitnet.cpp's converter writes add_bos_token between the attention and the norm keys.
    if (k.endsWith('.attention.layer_norm_rms_epsilon')) m.set('tokenizer.ggml.add_bos_token', metaBool(contents.tokenizer.addBos))
    m.set(k, v)
  }
  m.set('general.file_type', metaU32(0))
  for (const [k, v] of tokenizerMetadata(hf.tokenizer, hf.tokenizerConfig, contents.name)) m.set(k, v)
  const template = hf.tokenizerConfig.chat_template
  const text = Array.isArray(template) ? template.find((t) => t?.name === 'default')?.template : template
  if (typeof text === 'string') m.set('tokenizer.chat_template', metaStr(text))
  m.set('general.quantization_version', metaU32(2))
  return m
}

/**
 * `tokenizer.ggml.*` of a tokenizer.json: a SentencePiece one (BPE with byte fallback: LLaMA-2,
 * 1bitLLM) as `llama` with scores and byte tokens, as llama.cpp's converter writes it; a
 * byte-level BPE one as `gpt2` (types: 1 normal, 3 control, 4 user-defined; scores 0, −1000 for
 * added tokens, as the bitnet.cpp converter writes them).
 */
function tokenizerMetadata(tok: Record<string, any>, cfg: Record<string, any>, file: string): [string, GgufValue][] {
  if (tok.model?.byte_fallback === true) return [...spmMetadataFromHf(tok, cfg, file)]
  const vocab = tok.model?.vocab as Record<string, number> | undefined
  if (!vocab || tok.model?.type !== 'BPE') throw new ModelFormatError('tokenizer.json: only BPE tokenizers convert', { file })
  const tokens: string[] = []
  const types: number[] = []
  const scores: number[] = []
  for (const [text, id] of Object.entries(vocab)) { tokens[id] = text; types[id] = 1; scores[id] = 0 }
  for (const t of (tok.added_tokens ?? []) as { id: number; content: string; special?: boolean }[]) {
    tokens[t.id] = t.content
    types[t.id] = t.special ? 3 : 4
    scores[t.id] = -1000
  }
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; types[i] = 5; scores[i] = -1000 }
  const merges = ((tok.model.merges ?? []) as (string | string[])[]).map((x) => (Array.isArray(x) ? x.join(' ') : x))
  const id = (v: unknown) => {
    const text = typeof v === 'string' ? v : (v as { content?: string } | undefined)?.content
    return text === undefined ? undefined : tokens.indexOf(text)
  }
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', metaStr('gpt2')],
    ['tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens)],
    ['tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, scores)],
    ['tokenizer.ggml.token_type', metaArr(GgufType.INT32, types)],
    ['tokenizer.ggml.merges', metaArr(GgufType.STRING, merges)],
  ]
  const bos = id(cfg.bos_token), eos = id(cfg.eos_token)
  if (bos !== undefined && bos >= 0) out.push(['tokenizer.ggml.bos_token_id', metaU32(bos)])
  if (eos !== undefined && eos >= 0) out.push(['tokenizer.ggml.eos_token_id', metaU32(eos)])
  return out
}

/**
 * The GGUF hyperparameter keys of `c` (`<arch>.*`, what configFromGguf reads back), for the
 * writers of new files (convert) and of changed ones (model/pad.ts). `attention.key_length`
 * only when the head width is not n_embd / n_head.
 */
export function configMetadata(c: ModelConfig): GgufMetadata {
  const a = (k: string) => `${c.arch}.${k}`
  const m: GgufMetadata = new Map([
    [a('vocab_size'), metaU32(c.vocabSize)],
    [a('context_length'), metaU32(c.contextLength)],
    [a('embedding_length'), metaU32(c.nEmbd)],
    [a('block_count'), metaU32(c.nLayer)],
    [a('feed_forward_length'), metaU32(c.nFf)],
    [a('rope.dimension_count'), metaU32(c.nRot)],
    [a('attention.head_count'), metaU32(c.nHead)],
    [a('attention.head_count_kv'), metaU32(c.nHeadKv)],
    ...(c.headDim !== c.nEmbd / c.nHead ? [[a('attention.key_length'), metaU32(c.headDim)] as const] : []),
    [a('attention.layer_norm_rms_epsilon'), metaF32(c.normEps)],
    [a('rope.freq_base'), metaF32(c.ropeTheta)],
  ])
  return m
}
