/**
 * A Hugging Face model folder → ModelContents (docs/formats.md#hugging-face-folders): `config.json`, `model.safetensors`
 * or shards listed in `model.safetensors.index.json`, `tokenizer.json`, and optionally
 * `tokenizer_config.json` (BOS/EOS, chat template) and `generation_config.json` (stop ids).
 *
 * Weights, by dtype of the projections:
 * - U8 [out/4, in] + `weight_scale` (2B4T, Falcon3-1.58bit, Llama3-8B-1.58): HF_PACKED; the
 *   scale multiplies for `linear_class: autobitlinear` (2B4T), divides otherwise ("bitlinear"
 *   class, transformers' default);
 * - BF16 / F16 / F32 (2B4T-bf16 masters, 1bitLLM fp16 latents): ternarized per tensor at load.
 * Nothing but headers and the small JSON files is read here.
 */
import { ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { dequantizeRows, tensorByteSize, type FormatName } from '../formats/index.js'
import type { ByteSource } from '../io/source.js'
import { readSafetensors, type SafetensorsTensor } from '../safetensors/reader.js'
import { tokenizerFromHf } from '../tokenizer/tokenizer.js'
import { ARCH_FAMILIES, configFromHf } from './config.js'
import type { ModelContents, ModelTensor } from './contents.js'

/**
 * A folder of model files: a local directory (`folderSource` in src/io/file.ts), a remote
 * repository, or files in memory.
 * @example
 * const folder: ModelFolder = { name: 'mem', open: async (f) => files[f] && bytesSource(files[f], f) }
 */
export interface ModelFolder {
  readonly name: string
  /** Opens `file` (a path relative to the folder), or resolves to undefined if it does not exist. */
  open(file: string): Promise<ByteSource | undefined>
}

// HF tensor names (per layer: after `model.layers.N.`) → GGUF names; both spellings of the
// sub-norms (2B4T: attn_sub_norm / ffn_sub_norm; 1bitLLM: inner_attn_ln / ffn_layernorm).
const GLOBAL_NAMES: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
}
const LAYER_NAMES: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  // BitNet-embedding (bitnet.cpp's embedding converter): q/k head norms, each projection's input norm
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'self_attn.q_proj.norm.weight': 'attn_q_norm_in.weight',
  'self_attn.k_proj.norm.weight': 'attn_k_norm_in.weight',
  'self_attn.v_proj.norm.weight': 'attn_v_norm_in.weight',
  'self_attn.o_proj.norm.weight': 'attn_output_norm_in.weight',
  'mlp.gate_proj.norm.weight': 'ffn_gate_norm_in.weight',
  'mlp.up_proj.norm.weight': 'ffn_up_norm_in.weight',
  'mlp.down_proj.norm.weight': 'ffn_down_norm_in.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.attn_sub_norm.weight': 'attn_sub_norm.weight',
  'self_attn.inner_attn_ln.weight': 'attn_sub_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.ffn_sub_norm.weight': 'ffn_sub_norm.weight',
  'mlp.ffn_layernorm.weight': 'ffn_sub_norm.weight',
}

/**
 * Gemma3's four block norms: `post_attention_layernorm` is the post-norm of the attention
 * output there, not the FFN's input norm (that is `pre_feedforward_layernorm`).
 */
const GEMMA3_LAYER_NAMES: Record<string, string> = {
  ...LAYER_NAMES,
  'post_attention_layernorm.weight': 'post_attention_norm.weight',
  'pre_feedforward_layernorm.weight': 'ffn_norm.weight',
  'post_feedforward_layernorm.weight': 'post_ffw_norm.weight',
}

/**
 * HF name → GGUF name, or undefined for tensors the graph does not use. Base-model
 * checkpoints (`Qwen3Model`, `Gemma3TextModel`) name tensors without the `model.` prefix.
 */
export function ggufTensorName(hfName: string, arch?: string): string | undefined {
  const name = hfName.startsWith('model.') || hfName === 'lm_head.weight' ? hfName : `model.${hfName}`
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name)
  if (!m) return GLOBAL_NAMES[name]
  const n = (arch === 'gemma3' ? GEMMA3_LAYER_NAMES : LAYER_NAMES)[m[2]]
  return n && `blk.${m[1]}.${n}`
}

/**
 * A norm a family's HF checkpoint stores as w − 1 (ArchFamily.hfNormOffset: Gemma's (1 + w)
 * RMSNorm), presented as the F32 tensor of w that a GGUF conversion holds (bitnet.cpp's
 * converter adds the 1 the same way): the block and head norms, not the per-projection ones.
 */
function offsetNorm(t: ModelTensor, offset: number): ModelTensor {
  if (!offset || !/norm\.weight$/.test(t.name) || t.name.endsWith('_norm_in.weight')) return t
  const n = t.dims.reduce((a, b) => a * b, 1)
  let values: Promise<Uint8Array> | undefined
  const read = () => (values ??= t.read(0, t.byteSize).then((b) => {
    const f = Float32Array.from(dequantizeRows(t.format, b, n), (v) => v + offset)
    return new Uint8Array(f.buffer)
  }))
  return { ...t, format: 'F32', byteSize: n * 4, read: async (at, length) => (await read()).slice(at, at + length) }
}

/** HF tensors that carry nothing the graph lacks: packed weights' scales (read with them), RoPE tables (recomputed). */
const HF_REDUNDANT = /\.(weight_scale|rotary_emb\.inv_freq)$/

const FLOAT_DTYPES: Record<string, FormatName> = { BF16: 'BF16', F16: 'F16', F32: 'F32' }

/**
 * Opens a Hugging Face folder as ModelContents; `close()` releases the weight files.
 * @example
 * const contents = await hfContents(await folderSource('bitnet-b1.58-2B-4T'))
 */
export async function hfContents(folder: ModelFolder): Promise<ModelContents> {
  const opened: ByteSource[] = []
  try {
    const json = async (file: string, required: boolean): Promise<Record<string, any> | undefined> => {
      const src = await folder.open(file)
      if (!src) {
        if (required) throw new ModelFormatError(`missing ${file}`, { file: `${folder.name}/${file}` })
        return undefined
      }
      try {
        return JSON.parse(new TextDecoder().decode(await src.read(0, src.size)))
      } catch (e) {
        throw new ModelFormatError(`not valid JSON: ${(e as Error).message}`, { file: src.name })
      } finally {
        await src.close?.()
      }
    }
    const configJson = (await json('config.json', true))!
    const config = configFromHf(configJson, `${folder.name}/config.json`)
    const multiplier = configJson.quantization_config?.linear_class === 'autobitlinear'

    // Shards: the index's weight_map values, else the single file.
    const index = await json('model.safetensors.index.json', false)
    const shardNames = index
      ? [...new Set(Object.values((index.weight_map ?? {}) as Record<string, unknown>))]
      : ['model.safetensors']
    if (shardNames.length === 0 || !shardNames.every((s) => typeof s === 'string' && !s.includes('..'))) {
      throw new ModelFormatError('bad weight_map', { file: `${folder.name}/model.safetensors.index.json`, expected: 'shard file names' })
    }
    const all = new Map<string, { src: ByteSource; t: SafetensorsTensor }>()
    for (const shard of shardNames as string[]) {
      const src = await folder.open(shard)
      if (!src) throw new ModelFormatError(`missing ${shard}`, { file: `${folder.name}/${shard}` })
      opened.push(src)
      for (const t of (await readSafetensors(src)).tensors.values()) all.set(t.name, { src, t })
    }

    const tensors: ModelTensor[] = []
    const unmapped = [...all.keys()].filter((n) => !ggufTensorName(n, config.arch) && !HF_REDUNDANT.test(n))
    if (unmapped.length) {
      throw new UnsupportedFeatureError(`${folder.name}: tensors this engine's graph has no place for: ${unmapped.slice(0, 6).join(', ')}` +
        `${unmapped.length > 6 ? `, … (${unmapped.length} in all)` : ''}. Running without them (attention biases, extra norms) ` +
        'would compute a different model; use an engine that supports this architecture')
    }
    for (const [hfName, { src, t }] of all) {
      const name = ggufTensorName(hfName, config.arch)
      if (!name || (name === 'output.weight' && configJson.tie_word_embeddings === true)) continue
      const where = { file: src.name, offset: t.offset }
      const read = (at: number, length: number, into?: Uint8Array) => src.read(t.offset + at, length, into)
      const dims = [...t.shape].reverse()
      if (t.dtype === 'U8') {
        if (dims.length !== 2) throw new ModelFormatError(`packed tensor '${hfName}' must be 2-D`, { ...where, found: `[${t.shape.join(', ')}]` })
        dims[1] *= 4
        tensors.push({ name, dims, format: 'HF_PACKED', byteSize: t.byteSize, read, file: src.name, offset: t.offset,
          decode: { scale: await weightScale(all, hfName.replace(/\.weight$/, '.weight_scale'), multiplier, src.name) } })
        continue
      }
      const format = FLOAT_DTYPES[t.dtype]
      if (!format) throw new UnsupportedFeatureError(`${src.name}: tensor '${hfName}' has dtype ${t.dtype} (supported: U8 packed ternary, BF16, F16, F32)`)
      tensors.push(offsetNorm({ name, dims, format, byteSize: tensorByteSize(format, dims, where), read, file: src.name, offset: t.offset },
        ARCH_FAMILIES[config.arch].hfNormOffset ?? 0))
    }
    // sentence-transformers' pooling of an embedding model
    const pooling = await json('1_Pooling/config.json', false)
    if (pooling?.pooling_mode_lasttoken === true) config.pooling = 'last'
    else if (pooling?.pooling_mode_mean_tokens === true) config.pooling = 'mean'
    const tokenizerJson = await json('tokenizer.json', true)
    const tokenizerConfig = await json('tokenizer_config.json', false) ?? {}
    const generationConfig = await json('generation_config.json', false) ?? {}
    return {
      name: folder.name,
      config,
      tensors,
      tokenizer: tokenizerFromHf(tokenizerJson!, tokenizerConfig, generationConfig),
      chatTemplate: { hfTemplate: tokenizerConfig.chat_template },
      hf: { config: configJson, tokenizer: tokenizerJson!, tokenizerConfig },
      close: async () => { await Promise.all(opened.map((s) => s.close?.())) },
    }
  } catch (e) {
    await Promise.all(opened.map((s) => s.close?.()))
    throw e
  }
}

/** The 1-element `weight_scale` of a packed tensor, as a multiplier. */
async function weightScale(all: Map<string, { src: ByteSource; t: SafetensorsTensor }>, name: string, multiplier: boolean, file: string): Promise<number> {
  const entry = all.get(name)
  const format = entry && FLOAT_DTYPES[entry.t.dtype]
  if (!entry || !format || entry.t.byteSize !== (format === 'F32' ? 4 : 2)) {
    throw new ModelFormatError(`packed ternary weight needs '${name}'`, { file, expected: 'a 1-element BF16/F16/F32 tensor', found: entry ? `${entry.t.dtype} [${entry.t.shape.join(', ')}]` : 'nothing' })
  }
  const ws = dequantizeRows(format, await entry.src.read(entry.t.offset, entry.t.byteSize), 1)[0]
  if (!Number.isFinite(ws) || ws <= 0) throw new ModelFormatError(`'${name}' is not a positive number`, { file, offset: entry.t.offset, found: String(ws) })
  return multiplier ? ws : 1 / ws
}
