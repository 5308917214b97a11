/**
 * Hyperparameters of a BitNet b1.58 model, read from GGUF metadata (`<arch>.*` keys) or a
 * Hugging Face `config.json` — never hard-coded, so any shape loads.
 */
import { ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { metaNumber, metaNumberOpt, metaString, metaStringOpt } from '../gguf/reader.js'
import type { GgufFile } from '../gguf/types.js'

export type Activation = 'relu2' | 'silu'

export interface ModelConfig {
  /**
   * GGUF architecture string: 'bitnet-b1.58', 'bitnet-25' or 'bitnet'; from a Hugging Face
   * folder also 'llama' ("bitlinear" checkpoints: Falcon3-1.58bit, Llama3-8B-1.58; q/k unpermuted,
   * so RoPE stays NEOX as for the others).
   */
  arch: string
  nEmbd: number
  nFf: number
  nLayer: number
  nHead: number
  nHeadKv: number
  headDim: number
  /** Rotated dimensions per head (NEOX style). */
  nRot: number
  ropeTheta: number
  normEps: number
  vocabSize: number
  /** Training context length (the default, capped, KV cache size). */
  contextLength: number
  activation: Activation
}

/** Architectures whose graph this engine implements (spec §1.2 / §1.4). */
export const SUPPORTED_ARCHS = ['bitnet-b1.58', 'bitnet-25', 'bitnet'] as const

/** Maps `hidden_act` / `hidden_activation` spellings to the FFN activation. */
export function parseActivation(name: string, where: string): Activation {
  const n = name.toLowerCase()
  if (n === 'relu2' || n === 'relu_squared' || n === 'relu_sqr' || n === 'squared_relu') return 'relu2'
  if (n === 'silu' || n === 'swish' || n === 'swiglu') return 'silu'
  throw new UnsupportedFeatureError(`${where}: unsupported FFN activation '${name}' (supported: relu2, silu)`)
}

/** Reads the model config from a parsed GGUF header. */
export function configFromGguf(gguf: GgufFile, file: string): ModelConfig {
  const m = gguf.metadata
  const arch = metaString(m, 'general.architecture', file)
  if (!(SUPPORTED_ARCHS as readonly string[]).includes(arch)) {
    throw new UnsupportedFeatureError(`${file}: architecture '${arch}' is not supported (supported: ${SUPPORTED_ARCHS.join(', ')})`)
  }
  const k = (key: string) => `${arch}.${key}`
  const nEmbd = metaNumber(m, k('embedding_length'), file)
  const nHead = metaNumber(m, k('attention.head_count'), file)
  const nHeadKv = metaNumberOpt(m, k('attention.head_count_kv')) ?? nHead
  const headDim = metaNumberOpt(m, k('attention.key_length')) ?? nEmbd / nHead
  const embd = gguf.tensors.find((t) => t.name === 'token_embd.weight')
  const vocabSize = metaNumberOpt(m, k('vocab_size')) ?? embd?.dims[1] ?? 0
  // 2B4T (bitnet-b1.58, bitnet-25) uses ReLU², 1bitLLM (bitnet) SiLU; an explicit key wins
  // because converters since 2026-07 tag both families 'bitnet-b1.58' (spec §1.4).
  const act = metaStringOpt(m, k('hidden_activation')) ?? metaStringOpt(m, k('hidden_act'))
  const cfg: ModelConfig = {
    arch,
    nEmbd,
    nFf: metaNumber(m, k('feed_forward_length'), file),
    nLayer: metaNumber(m, k('block_count'), file),
    nHead,
    nHeadKv,
    headDim,
    nRot: metaNumberOpt(m, k('rope.dimension_count')) ?? headDim,
    ropeTheta: metaNumberOpt(m, k('rope.freq_base')) ?? 10000,
    normEps: metaNumberOpt(m, k('attention.layer_norm_rms_epsilon')) ?? 1e-5,
    vocabSize,
    contextLength: metaNumberOpt(m, k('context_length')) ?? 2048,
    activation: act !== undefined ? parseActivation(act, file) : arch === 'bitnet' ? 'silu' : 'relu2',
  }
  validateConfig(cfg, file)
  return cfg
}

/** Rejects shapes the forward pass cannot compute, naming the offending key. */
export function validateConfig(c: ModelConfig, file: string): void {
  const bad = (key: string, expected: string, found: unknown) => {
    throw new ModelFormatError(`invalid hyperparameter ${c.arch}.${key}`, { file, expected, found: String(found) })
  }
  const posInt = (key: string, v: number, max: number) => {
    if (!Number.isInteger(v) || v <= 0 || v > max) bad(key, `an integer in 1..${max}`, v)
  }
  posInt('embedding_length', c.nEmbd, 1 << 16)
  posInt('feed_forward_length', c.nFf, 1 << 18)
  posInt('block_count', c.nLayer, 1024)
  posInt('attention.head_count', c.nHead, 1024)
  posInt('attention.head_count_kv', c.nHeadKv, 1024)
  posInt('attention.key_length', c.headDim, 4096)
  posInt('vocab_size', c.vocabSize, 1 << 22)
  posInt('context_length', c.contextLength, 1 << 24)
  if (c.nHead % c.nHeadKv !== 0) bad('attention.head_count_kv', `a divisor of head_count ${c.nHead}`, c.nHeadKv)
  if (c.nRot % 2 !== 0 || c.nRot > c.headDim || c.nRot <= 0) bad('rope.dimension_count', `an even number ≤ head_dim ${c.headDim}`, c.nRot)
  if (!(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta)) bad('rope.freq_base', 'a positive number', c.ropeTheta)
  if (!(c.normEps > 0) || c.normEps > 1) bad('attention.layer_norm_rms_epsilon', 'a small positive number', c.normEps)
}

/**
 * Reads the model config from a Hugging Face `config.json` (parsed). Arch: 2B4T
 * (`model_type` 'bitnet') → 'bitnet-b1.58'; 1bitLLM (`BitnetForCausalLM`) → 'bitnet';
 * `LlamaForCausalLM` → 'llama'. Floats are rounded to f32 as a GGUF file stores them, so a
 * folder and its GGUF conversion compute the same numbers.
 * @example configFromHf(JSON.parse(await readFile('config.json', 'utf8')), 'config.json')
 */
export function configFromHf(json: unknown, file: string): ModelConfig {
  if (!json || typeof json !== 'object') throw new ModelFormatError('config.json must be a JSON object', { file })
  const c = json as Record<string, unknown>
  const archs = Array.isArray(c.architectures) ? c.architectures : []
  const arch = c.model_type === 'bitnet' ? 'bitnet-b1.58'
    : archs.includes('BitnetForCausalLM') ? 'bitnet'
      : archs.includes('LlamaForCausalLM') || c.model_type === 'llama' ? 'llama' : undefined
  if (!arch) {
    throw new UnsupportedFeatureError(`${file}: model_type '${String(c.model_type)}' / architectures [${archs.join(', ')}] is not a supported BitNet model ` +
      '(supported: BitNetForCausalLM, BitnetForCausalLM, LlamaForCausalLM 1.58-bit)')
  }
  const num = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback
    if (typeof v !== 'number') throw new ModelFormatError(`config key '${key}' is missing or not a number`, { file, expected: 'a number', found: JSON.stringify(v) })
    return v
  }
  const rs = c.rope_scaling as Record<string, unknown> | null | undefined
  const rsType = rs ? rs.rope_type ?? rs.type : undefined
  if (rs && rsType !== 'default' && !(rsType === 'linear' && rs.factor === 1)) {
    throw new UnsupportedFeatureError(`${file}: rope_scaling ${JSON.stringify(rs)} is not supported`)
  }
  const nEmbd = num('hidden_size')
  const nHead = num('num_attention_heads')
  const headDim = num('head_dim', nEmbd / nHead)
  const act = typeof c.hidden_act === 'string' ? c.hidden_act : arch === 'bitnet-b1.58' ? 'relu2' : 'silu'
  const cfg: ModelConfig = {
    arch,
    nEmbd,
    nFf: num('intermediate_size'),
    nLayer: num('num_hidden_layers'),
    nHead,
    nHeadKv: num('num_key_value_heads', nHead),
    headDim,
    nRot: headDim * num('partial_rotary_factor', 1),
    ropeTheta: Math.fround(num('rope_theta', 10000)),
    normEps: Math.fround(num('rms_norm_eps', 1e-5)),
    vocabSize: num('vocab_size'),
    contextLength: num('max_position_embeddings', 2048),
    activation: parseActivation(act, file),
  }
  validateConfig(cfg, file)
  return cfg
}
