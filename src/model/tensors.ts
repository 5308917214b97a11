/**
 * The tensors of a model: names (GGUF's), shapes and roles, in the official 2B4T file's order.
 * Every place that lists a model's tensors derives its list from here: the loader (what the
 * graph needs, checked by shape), the float64 reference, the synthetic models, `convert` and
 * `pad`.
 *
 * Shapes are GGUF dims [ne0, ne1] = [cols, rows]: a projection [K, M] maps K inputs to M outputs.
 */
import { ARCH_FAMILIES, type ArchFamily, type ModelConfig } from './config.js'

/** The widths tensor shapes are made of. */
export type TensorShape = Pick<ModelConfig, 'arch' | 'nEmbd' | 'nHead' | 'nHeadKv' | 'headDim' | 'nFf' | 'vocabSize'>

/** A width of the model: one axis of a tensor. */
export type Width = 'embd' | 'q' | 'kv' | 'ff' | 'head' | 'vocab'

const WIDTH: Record<Width, (c: TensorShape) => number> = {
  embd: (c) => c.nEmbd,
  q: (c) => c.nHead * c.headDim,
  kv: (c) => c.nHeadKv * c.headDim,
  ff: (c) => c.nFf,
  head: (c) => c.headDim,
  vocab: (c) => c.vocabSize,
}

/**
 * 'matrix': the embedding / output matrix (full precision); 'ternary': a BitLinear projection;
 * 'norm': an RMSNorm weight (full precision, one row).
 */
export type TensorRole = 'matrix' | 'ternary' | 'norm'

/** The family traits that add tensors to a layer (ArchFamily). */
export type Trait = 'subNorms' | 'projNorms' | 'qkNorm' | 'postNorms'

export interface Entry {
  /** GGUF name without `.weight` (after `blk.N.` for a layer's). */
  name: string
  role: TensorRole
  /** [ne0, ne1] in model widths. */
  dims: Width[]
  /** The LayerWeights field it fills (load.ts); the o and down input norms share theirs. */
  field?: string
  /** Present only in families with this trait. */
  trait?: Trait
  /** q / k: the heads whose rows NORM RoPE files store permuted. */
  heads?: 'nHead' | 'nHeadKv'
}

/** A tensor of a model of known widths. */
export interface TensorSpec {
  /** Full GGUF name, `.weight` included. */
  name: string
  role: TensorRole
  /** [ne0, ne1] (a norm: [ne0]). */
  dims: number[]
  field?: string
  /** May be absent (2B4T's sub-norms: 1bitLLM conversions may lack them). */
  optional: boolean
  heads?: number
}

const MODEL_START: Entry[] = [{ name: 'token_embd', role: 'matrix', dims: ['embd', 'vocab'] }]

const LAYER: Entry[] = [
  { name: 'attn_norm', role: 'norm', dims: ['embd'], field: 'attnNorm' },
  { name: 'attn_q', role: 'ternary', dims: ['embd', 'q'], field: 'wq', heads: 'nHead' },
  { name: 'attn_k', role: 'ternary', dims: ['embd', 'kv'], field: 'wk', heads: 'nHeadKv' },
  { name: 'attn_v', role: 'ternary', dims: ['embd', 'kv'], field: 'wv' },
  { name: 'attn_output', role: 'ternary', dims: ['q', 'embd'], field: 'wo' },
  { name: 'attn_sub_norm', role: 'norm', dims: ['q'], field: 'attnSubNorm', trait: 'subNorms' },
  { name: 'ffn_norm', role: 'norm', dims: ['embd'], field: 'ffnNorm' },
  { name: 'ffn_gate', role: 'ternary', dims: ['embd', 'ff'], field: 'wGate' },
  { name: 'ffn_up', role: 'ternary', dims: ['embd', 'ff'], field: 'wUp' },
  { name: 'ffn_down', role: 'ternary', dims: ['ff', 'embd'], field: 'wDown' },
  { name: 'ffn_sub_norm', role: 'norm', dims: ['ff'], field: 'ffnSubNorm', trait: 'subNorms' },
  // BitNet-embedding families: an input norm per projection (o's and down's where the sub-norms sit)
  { name: 'attn_q_norm_in', role: 'norm', dims: ['embd'], field: 'qNormIn', trait: 'projNorms' },
  { name: 'attn_k_norm_in', role: 'norm', dims: ['embd'], field: 'kNormIn', trait: 'projNorms' },
  { name: 'attn_v_norm_in', role: 'norm', dims: ['embd'], field: 'vNormIn', trait: 'projNorms' },
  { name: 'attn_output_norm_in', role: 'norm', dims: ['q'], field: 'attnSubNorm', trait: 'projNorms' },
  { name: 'ffn_gate_norm_in', role: 'norm', dims: ['embd'], field: 'gateNormIn', trait: 'projNorms' },
  { name: 'ffn_up_norm_in', role: 'norm', dims: ['embd'], field: 'upNormIn', trait: 'projNorms' },
  { name: 'ffn_down_norm_in', role: 'norm', dims: ['ff'], field: 'ffnSubNorm', trait: 'projNorms' },
  // RMSNorm over each head of q and k before RoPE; norms of the attention and FFN outputs (Gemma3)
  { name: 'attn_q_norm', role: 'norm', dims: ['head'], field: 'qHeadNorm', trait: 'qkNorm' },
  { name: 'attn_k_norm', role: 'norm', dims: ['head'], field: 'kHeadNorm', trait: 'qkNorm' },
  { name: 'post_attention_norm', role: 'norm', dims: ['embd'], field: 'postAttnNorm', trait: 'postNorms' },
  { name: 'post_ffw_norm', role: 'norm', dims: ['embd'], field: 'postFfnNorm', trait: 'postNorms' },
]

const MODEL_END: Entry[] = [
  { name: 'output_norm', role: 'norm', dims: ['embd'] },
  // absent when tied to token_embd
  { name: 'output', role: 'matrix', dims: ['embd', 'vocab'] },
]

const spec = (e: Entry, c: TensorShape, prefix = ''): TensorSpec => ({
  name: `${prefix}${e.name}.weight`, role: e.role, dims: e.dims.map((w) => WIDTH[w](c)), field: e.field,
  optional: e.trait === 'subNorms' || e.name === 'output', heads: e.heads && c[e.heads],
})

/**
 * The tensors of layer `layer`, in file order: the core ones, then those of the traits the family
 * has (`traits`: the arch's unless given, e.g. a synthetic model with other choices).
 * @example
 * layerTensors(config, 0).map((t) => t.name) // ['blk.0.attn_norm.weight', 'blk.0.attn_q.weight', …]
 */
export function layerTensors(c: TensorShape, layer: number, traits: Pick<ArchFamily, Trait> = ARCH_FAMILIES[c.arch]): TensorSpec[] {
  return LAYER.filter((e) => !e.trait || traits[e.trait]).map((e) => spec(e, c, `blk.${layer}.`))
}

/** The tensors before the layers (the embedding) and after them (output norm, output matrix). */
export function modelTensors(c: TensorShape, where: 'start' | 'end'): TensorSpec[] {
  return (where === 'start' ? MODEL_START : MODEL_END).map((e) => spec(e, c))
}

/** Every tensor of a model of `nLayer` layers, in the official file's order. */
export function allTensors(c: TensorShape & { nLayer: number }, traits?: Pick<ArchFamily, Trait>): TensorSpec[] {
  const layers = Array.from({ length: c.nLayer }, (_, l) => layerTensors(c, l, traits))
  return [...modelTensors(c, 'start'), ...layers.flat(), ...modelTensors(c, 'end')]
}

/** The 1bitLLM per-projection scale tensor (1 element, multiplies γ) of a ternary tensor. */
export const scaleTensorName = (weightName: string): string => weightName.replace(/\.weight$/, '.scale')

/** The table entry a GGUF tensor name is an instance of (layer prefix and `.weight` dropped), for per-kind rules. */
export function tensorKind(name: string): Readonly<Entry> | undefined {
  const base = name.replace(/^blk\.\d+\./, '').replace(/\.weight$/, '')
  return [...MODEL_START, ...LAYER, ...MODEL_END].find((e) => e.name === base)
}
