/**
 * Hyperparameters of a BitNet b1.58 model, read from GGUF metadata (`<arch>.*` keys) —
 * never hard-coded, so any shape loads.
 */
import { ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { metaNumber, metaNumberOpt, metaString, metaStringOpt } from '../gguf/reader.js'
import type { GgufFile } from '../gguf/types.js'

export type Activation = 'relu2' | 'silu'

export interface ModelConfig {
  /** GGUF architecture string: 'bitnet-b1.58', 'bitnet-25' or 'bitnet'. */
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
