/**
 * Hyperparameters of a BitNet b1.58 model, read from GGUF metadata (`<arch>.*` keys) or a
 * Hugging Face `config.json` — never hard-coded, so any shape loads.
 */
import { ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { metaNumber, metaNumberOpt, metaString, metaStringOpt } from '../gguf/reader.js'
import type { GgufFile } from '../gguf/types.js'

/** FFN gate activation; 'gelu' is GELU's tanh form (Gemma's `gelu_pytorch_tanh`, ggml_gelu). */
export type Activation = 'relu2' | 'silu' | 'gelu'

/** Embedding pooling: the mean of the tokens' final states, or the last token's. */
export type Pooling = 'mean' | 'last'

/**
 * How q/k rows are laid out for RoPE. 'neox': as trained (HF), dims i and i + n_rot/2 rotate
 * together. 'norm': llama.cpp's `convert` permuted each head's rows so that adjacent dims
 * (2i, 2i+1) rotate together (row 2i + j of a head = HF row j·head_dim/2 + i); the loader
 * un-permutes such rows, so the engine always computes NEOX.
 */
export type RopeLayout = 'neox' | 'norm'

/**
 * What one architecture string means (docs/architecture.md#families). Behaviour lives here, not in switches:
 * - rope: the q/k row layout files of this arch carry (GGUF; HF folders are always 'neox');
 * - activation: the FFN activation when the file does not say;
 * - subNorms: attn_sub_norm / ffn_sub_norm tensors are part of the graph (2B4T, 1bitLLM) or
 *   absent (Llama family: bitnet.cpp runs `build_llama`);
 * - latents: full-precision projections are latent weights to ternarize (BitNet checkpoints
 *   are trained quantization-aware) or must already be ternary-valued (a Llama-family file
 *   with float weights is only ternary if bitnet.cpp's converter wrote it);
 * - projNorms: every projection has its own input RMSNorm (`*_norm_in`): q, k, v, gate and up
 *   norm the block's normed input once more, o and down norm their input (where 2B4T's
 *   sub-norms sit; the loader files `attn_output_norm_in` / `ffn_down_norm_in` there);
 * - qkNorm: RMSNorm over each head of q and k before RoPE (`attn_q_norm` / `attn_k_norm`, [head_dim]);
 * - postNorms: RMSNorm of the attention and FFN outputs before each residual add
 *   (`post_attention_norm`, `post_ffw_norm`);
 * - embedScale: the token embedding is multiplied by √n_embd (in f32, as bitnet.cpp does);
 * - hfNormOffset: HF checkpoints store the block norms as w − 1 (Gemma's `(1 + w)` RMSNorm);
 *   GGUF files hold w (the converter adds the 1), so the HF loader adds it.
 *
 * The tensors each trait adds to a layer are rows of the tensor table (tensors.ts).
 */
export interface ArchFamily {
  family: string
  rope: RopeLayout
  activation: Activation
  subNorms: boolean
  latents: boolean
  projNorms?: boolean
  qkNorm?: boolean
  postNorms?: boolean
  embedScale?: boolean
  hfNormOffset?: number
}

/** Architectures whose graph this engine implements. */
export const ARCH_FAMILIES: Record<string, ArchFamily> = {
  'bitnet-b1.58': { family: 'BitNet b1.58 2B4T', rope: 'neox', activation: 'relu2', subNorms: true, latents: true },
  'bitnet-25': { family: 'BitNet b1.58 2B4T (first upload)', rope: 'neox', activation: 'relu2', subNorms: true, latents: true },
  bitnet: { family: '1bitLLM bitnet_b1_58', rope: 'neox', activation: 'silu', subNorms: true, latents: true },
  // bitnet.cpp's converter writes Falcon3-1.58bit, Falcon-E and Llama3-8B-1.58 as arch 'llama'
  // (`LlamaModel`: q/k permuted, lm_head separate, no sub-norms); llama.cpp runs them with
  // `build_llama` (SiLU, NORM RoPE).
  llama: { family: 'Llama-family ternary (Falcon3-1.58bit, Falcon-E, Llama3-8B-1.58)', rope: 'norm', activation: 'silu', subNorms: false, latents: false },
  // BitNet-embedding-0.6B: Qwen3's graph (q/k head norms, SiLU) with BitNet's per-projection
  // norms, as bitnet.cpp's `utils/convert-bitnet-embedding-to-gguf.py` writes it (arch 'qwen3').
  qwen3: { family: 'BitNet-embedding (Qwen3-style)', rope: 'neox', activation: 'silu', subNorms: false, latents: true, projNorms: true, qkNorm: true },
  // BitNet-embedding-270M: Gemma3's graph (√n_embd embedding scale, q/k head norms, post-norms,
  // GELU-tanh, (1 + w) norms) with BitNet's per-projection norms (arch 'gemma3').
  gemma3: {
    family: 'BitNet-embedding (Gemma3-style)', rope: 'neox', activation: 'gelu', subNorms: false, latents: true,
    projNorms: true, qkNorm: true, postNorms: true, embedScale: true, hfNormOffset: 1,
  },
}

export const SUPPORTED_ARCHS = Object.keys(ARCH_FAMILIES)

/** Where a config value was decided, for `bitnet info` and warnings. */
export interface ConfigProvenance {
  family: string
  activation: string
  /** True when the activation was inferred from indirect clues (a warning is logged at load). */
  activationGuessed: boolean
}

export interface ModelConfig {
  /**
   * Architecture string (a key of ARCH_FAMILIES): from GGUF `general.architecture`; from a
   * Hugging Face folder 'bitnet-b1.58' (2B4T), 'bitnet' (1bitLLM), 'llama' (LlamaForCausalLM),
   * 'qwen3' or 'gemma3' (BitNet-embedding).
   */
  arch: string
  nEmbd: number
  nFf: number
  nLayer: number
  nHead: number
  nHeadKv: number
  headDim: number
  /** Rotated dimensions per head. */
  nRot: number
  ropeTheta: number
  /** Layout of the stored q/k rows (the loader makes them NEOX). */
  rope: RopeLayout
  normEps: number
  vocabSize: number
  /** Training context length (the default, capped, KV cache size). */
  contextLength: number
  /**
   * Sliding-window attention declared by the file (Gemma3: `gemma3.attention.sliding_window`,
   * config.json `sliding_window` with sliding layers). The engine attends globally in every
   * layer, which equals the windowed layers as long as the context fits the window, so the
   * context is capped to it. bitnet.cpp's embedding converter writes no window: every layer
   * attends globally, as here.
   */
  slidingWindow?: number
  /**
   * How the model's embeddings pool, when the file says (GGUF `<arch>.pooling_type` 1 mean /
   * 3 last; sentence-transformers' `1_Pooling/config.json`), else 'last' for the BitNet-embedding
   * families (their documented last-token pooling), else undefined (a language model).
   */
  pooling?: Pooling
  activation: Activation
  /**
   * Factor of q·k before the softmax: 1/√query_pre_attn_scalar (Gemma3: config.json's
   * `query_pre_attn_scalar`, or the head_dim as bitnet.cpp computes it), else 1/√head_dim.
   */
  attnScale: number
  provenance: ConfigProvenance
}

/** Maps `hidden_act` / `hidden_activation` spellings to the FFN activation. */
export function parseActivation(name: string, where: string): Activation {
  const n = name.toLowerCase()
  if (n === 'relu2' || n === 'relu_squared' || n === 'relu_sqr' || n === 'squared_relu') return 'relu2'
  if (n === 'silu' || n === 'swish' || n === 'swiglu') return 'silu'
  if (n === 'gelu_pytorch_tanh' || n === 'gelu_tanh' || n === 'gelu_new' || n === 'geglu') return 'gelu'
  throw new UnsupportedFeatureError(`${where}: unsupported FFN activation '${name}' ` +
    '(supported: relu2, silu, gelu_pytorch_tanh; exact-erf gelu is not)')
}

/**
 * The activation of a GGUF file without `<arch>.hidden_activation`. Since 2026-07 bitnet.cpp's
 * converter tags 1bitLLM (SiLU) and 2B4T (ReLU²) both 'bitnet-b1.58' (docs/architecture.md#families), so for that
 * arch the tokenizer decides: 1bitLLM ships a SentencePiece vocabulary (`tokenizer.ggml.model`
 * 'llama'), 2B4T the Llama 3 BPE one ('gpt2' with <|begin_of_text|>; the official file has no
 * activation key, so that case is the documented default, not a guess).
 */
function ggufActivation(gguf: GgufFile, arch: string): { activation: Activation; source: string; guessed: boolean } {
  const m = gguf.metadata
  for (const key of [`${arch}.hidden_activation`, `${arch}.hidden_act`]) {
    const v = metaStringOpt(m, key)
    if (v !== undefined) return { activation: parseActivation(v, key), source: `metadata ${key}`, guessed: false }
  }
  if (arch !== 'bitnet-b1.58') {
    return { activation: ARCH_FAMILIES[arch].activation, source: `default of arch '${arch}'`, guessed: false }
  }
  const tok = metaStringOpt(m, 'tokenizer.ggml.model')
  if (tok === 'llama') {
    return { activation: 'silu', source: "guessed: arch 'bitnet-b1.58' without hidden_activation and a SentencePiece tokenizer (1bitLLM)", guessed: true }
  }
  const tokens = m.get('tokenizer.ggml.tokens')?.value
  const llama3 = tok === 'gpt2' && Array.isArray(tokens) && (tokens as unknown[]).includes('<|begin_of_text|>')
  return llama3
    ? { activation: 'relu2', source: "arch 'bitnet-b1.58' with a Llama 3 tokenizer (2B4T; the official file has no hidden_activation)", guessed: false }
    : { activation: 'relu2', source: `guessed: arch 'bitnet-b1.58' without hidden_activation, tokenizer '${tok}'`, guessed: true }
}

/** Reads the model config from a parsed GGUF header. */
export function configFromGguf(gguf: GgufFile, file: string): ModelConfig {
  const m = gguf.metadata
  const arch = metaString(m, 'general.architecture', file)
  const fam = ARCH_FAMILIES[arch]
  if (!fam) throw unsupportedArch(`architecture '${arch}'`, file)
  const k = (key: string) => `${arch}.${key}`
  const nEmbd = metaNumber(m, k('embedding_length'), file)
  const nHead = metaNumber(m, k('attention.head_count'), file)
  const nHeadKv = metaNumberOpt(m, k('attention.head_count_kv')) ?? nHead
  const headDim = metaNumberOpt(m, k('attention.key_length')) ?? nEmbd / nHead
  const embd = gguf.tensors.find((t) => t.name === 'token_embd.weight')
  const vocabSize = metaNumberOpt(m, k('vocab_size')) ?? embd?.dims[1] ?? 0
  const act = ggufActivation(gguf, arch)
  const scaling = metaStringOpt(m, k('rope.scaling.type'))
  if (scaling !== undefined && scaling !== 'none' && !(scaling === 'linear' && metaNumberOpt(m, k('rope.scaling.factor')) === 1)) {
    throw new UnsupportedFeatureError(`${file}: ${k('rope.scaling.type')} '${scaling}' is not supported (only unscaled RoPE)`)
  }
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
    rope: fam.rope,
    normEps: metaNumberOpt(m, k('attention.layer_norm_rms_epsilon')) ?? 1e-5,
    vocabSize,
    contextLength: metaNumberOpt(m, k('context_length')) ?? 2048,
    slidingWindow: positiveOrUndefined(metaNumberOpt(m, k('attention.sliding_window'))),
    pooling: ({ 1: 'mean', 3: 'last' } as Record<number, Pooling>)[metaNumberOpt(m, k('pooling_type')) ?? -1] ?? defaultPooling(arch),
    activation: act.activation,
    // bitnet.cpp (llama.cpp's gemma3 graph): 1/√head_dim; the key is not written.
    attnScale: 1 / Math.sqrt(headDim),
    provenance: { family: `${fam.family} (general.architecture '${arch}')`, activation: act.source, activationGuessed: act.guessed },
  }
  const softcap = metaNumberOpt(m, k('final_logit_softcapping')) ?? metaNumberOpt(m, k('attn_logit_softcapping'))
  if (softcap) throw new UnsupportedFeatureError(`${file}: logit soft-capping (${k('final_logit_softcapping')} / attn_logit_softcapping) is not supported`)
  validateConfig(cfg, file)
  return cfg
}

/** BitNet-embedding models pool the last token (their model card); language models have no pooling. */
const defaultPooling = (arch: string): Pooling | undefined => (ARCH_FAMILIES[arch].projNorms ? 'last' : undefined)

const positiveOrUndefined = (v: unknown): number | undefined => (typeof v === 'number' && v > 0 ? v : undefined)

/**
 * The error for a model whose graph this engine does not implement: what it found, the
 * families it runs, and what to do.
 */
function unsupportedArch(found: string, file: string): UnsupportedFeatureError {
  const families = Object.entries(ARCH_FAMILIES).map(([a, f]) => `'${a}' (${f.family})`).join(', ')
  return new UnsupportedFeatureError(`${file}: ${found} is not a model this engine runs. Supported: ${families}; ` +
    'as Hugging Face folders: BitNetForCausalLM, BitnetForCausalLM, LlamaForCausalLM (1.58-bit), ' +
    'Qwen3ForCausalLM / Qwen3Model and Gemma3ForCausalLM / Gemma3TextModel (BitNet-embedding). ' +
    'Use a ternary model of one of these families, or an engine that supports this architecture (llama.cpp for non-ternary models)')
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
  // Un-permuting 'norm' rows restores HF order over the whole head; partial rotation would pair other dims.
  if (c.rope === 'norm' && c.nRot !== c.headDim) bad('rope.dimension_count', `head_dim ${c.headDim} (q/k rows permuted for NORM RoPE)`, c.nRot)
  if (!(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta)) bad('rope.freq_base', 'a positive number', c.ropeTheta)
  if (!(c.normEps > 0) || c.normEps > 1) bad('attention.layer_norm_rms_epsilon', 'a small positive number', c.normEps)
  if (!(c.attnScale > 0) || !Number.isFinite(c.attnScale)) bad('query_pre_attn_scalar', 'a positive number', 1 / c.attnScale ** 2)
  if (c.slidingWindow !== undefined && !Number.isInteger(c.slidingWindow)) bad('attention.sliding_window', 'a positive integer', c.slidingWindow)
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
  const arch = hfArch(c.model_type, archs)
  if (!arch) throw unsupportedArch(`model_type '${String(c.model_type)}' / architectures [${archs.join(', ')}]`, file)
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
  const actKey = typeof c.hidden_activation === 'string' ? 'hidden_activation' : 'hidden_act'
  const act = typeof c[actKey] === 'string' ? c[actKey] as string : ARCH_FAMILIES[arch].activation
  const quant = (c.quantization_config as Record<string, unknown> | undefined)?.quant_method
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
    rope: 'neox', // HF checkpoints are never permuted
    normEps: Math.fround(num('rms_norm_eps', 1e-5)),
    vocabSize: num('vocab_size'),
    contextLength: num('max_position_embeddings', 2048),
    slidingWindow: hfSlidingWindow(c, file),
    pooling: defaultPooling(arch),
    activation: parseActivation(act, file),
    attnScale: 1 / Math.sqrt(num('query_pre_attn_scalar', headDim)),
    provenance: {
      family: `${ARCH_FAMILIES[arch].family} (config.json ${c.model_type === 'bitnet' ? "model_type 'bitnet'" : `architectures [${archs.join(', ')}]`}` +
        `${quant ? `, quant_method '${String(quant)}'` : ''})`,
      activation: typeof c[actKey] === 'string' ? `config.json ${actKey}` : `default of arch '${arch}'`,
      activationGuessed: false,
    },
  }
  validateConfig(cfg, file)
  return cfg
}

/** The engine's arch for a config.json's model_type / architectures, if it runs that family. */
function hfArch(modelType: unknown, archs: unknown[]): string | undefined {
  if (modelType === 'bitnet') return 'bitnet-b1.58'
  if (archs.includes('BitnetForCausalLM')) return 'bitnet'
  if (archs.includes('LlamaForCausalLM') || modelType === 'llama') return 'llama'
  if (archs.includes('Qwen3ForCausalLM') || archs.includes('Qwen3Model') || modelType === 'qwen3') return 'qwen3'
  if (archs.includes('Gemma3ForCausalLM') || archs.includes('Gemma3TextModel') || modelType === 'gemma3_text') return 'gemma3'
  return undefined
}

/**
 * A Gemma3 config's sliding window, if any layer uses it (`layer_types`, or
 * `sliding_window_pattern` > 1). Refused when those layers would rotate with another RoPE base
 * (`rope_local_base_freq`): the engine has one per model. Soft-capping is refused too.
 */
function hfSlidingWindow(c: Record<string, unknown>, file: string): number | undefined {
  for (const key of ['final_logit_softcapping', 'attn_logit_softcapping']) {
    if (typeof c[key] === 'number' && c[key] !== 0) throw new UnsupportedFeatureError(`${file}: ${key} ${c[key]} is not supported`)
  }
  const window = positiveOrUndefined(c.sliding_window)
  const types = Array.isArray(c.layer_types) ? c.layer_types : undefined
  const sliding = types ? types.includes('sliding_attention') : typeof c.sliding_window_pattern === 'number' && c.sliding_window_pattern > 1
  if (!window || !sliding || c.use_sliding_window === false) return undefined
  const local = c.rope_local_base_freq
  if (typeof local === 'number' && local !== (c.rope_theta ?? 10000)) {
    throw new UnsupportedFeatureError(`${file}: sliding-window layers use rope_local_base_freq ${local}, the others rope_theta ${String(c.rope_theta)}; ` +
      'this engine rotates every layer with one base (bitnet.cpp\'s converted files use rope_theta everywhere): convert with bitnet.cpp\'s converter')
  }
  return window
}
