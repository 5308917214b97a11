// A synthetic Llama-family GGUF (src/model/synthetic.ts, arch 'llama') rewritten as the Hugging
// Face folder it would have been converted from: LlamaForCausalLM, q/k rows in HF order, and the
// projections either packed ("bitlinear" U8 [out/4, in] + weight_scale = 1/γ, as Falcon3-1.58bit
// ships) or given as full-precision values. In memory, as a ModelFolder.
import { readFileSync } from 'node:fs'
import { decodeTernary, FORMATS } from '../../src/formats/index.js'
import type { GgufWriteInput } from '../../src/gguf/writer.js'
import { bytesSource } from '../../src/io/source.js'
import type { ModelFolder } from '../../src/model/load-hf.js'
import { unpermuteQkRows } from '../../src/model/qk-permute.js'
import { TINY_DIR } from './golden.js'

const LAYER: Record<string, string> = {
  attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm',
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
}
const GLOBAL: Record<string, string> = { token_embd: 'model.embed_tokens', output_norm: 'model.norm', output: 'lm_head' }

interface StTensor { name: string; dtype: string; shape: number[]; data: Uint8Array }

/** A safetensors file (header padded to 8 bytes). */
export function safetensors(tensors: StTensor[]): Uint8Array {
  const header: Record<string, unknown> = {}
  let at = 0
  for (const t of tensors) { header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.byteLength] }; at += t.data.byteLength }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const out = new Uint8Array(8 + json.length + at)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(new TextEncoder().encode(json), 8)
  let o = 8 + json.length
  for (const t of tensors) { out.set(t.data, o); o += t.data.byteLength }
  return out
}

/** Codes rows × cols → HF U8 [rows/4, cols]: field i of packed row r = weight row i·rows/4 + r. */
function packHf(codes: Int8Array, rows: number, cols: number): Uint8Array {
  const q = rows / 4
  const out = new Uint8Array(q * cols)
  for (let r = 0; r < q; r++) {
    for (let c = 0; c < cols; c++) {
      let b = 0
      for (let i = 0; i < 4; i++) b |= (codes[(i * q + r) * cols + c] + 1) << (2 * i)
      out[r * cols + c] = b
    }
  }
  return out
}

const meta = (g: GgufWriteInput, key: string) => g.metadata.get(key)?.value as number

/**
 * `projections`: 'packed' (a 1.58-bit checkpoint), or a function giving each projection's F32
 * values from its codes and γ (e.g. noise: a plain full-precision Llama).
 */
export function hfLlamaFolder(g: GgufWriteInput, projections: 'packed' | ((codes: Int8Array, gamma: number) => Float32Array),
  tokenizer?: { json: object; config: object }): ModelFolder {
  const nHead = meta(g, 'llama.attention.head_count')
  const nHeadKv = meta(g, 'llama.attention.head_count_kv')
  const nEmbd = meta(g, 'llama.embedding_length')
  const tensors: StTensor[] = []
  for (const t of g.tensors) {
    const m = /^(?:blk\.(\d+)\.)?(\w+)\.weight$/.exec(t.name)!
    const base = m[1] === undefined ? GLOBAL[m[2]] : `model.layers.${m[1]}.${LAYER[m[2]]}`
    const shape = [...t.dims].reverse()
    if (t.typeId === FORMATS.F32.typeId || t.typeId === FORMATS.F16.typeId) {
      tensors.push({ name: `${base}.weight`, dtype: t.typeId === FORMATS.F32.typeId ? 'F32' : 'F16', shape, data: t.data })
      continue
    }
    const [cols, rows] = t.dims
    const { codes, scale } = decodeTernary('I2_S', t.data, rows, cols)
    const heads = m[2] === 'attn_q' ? nHead : m[2] === 'attn_k' ? nHeadKv : 0
    if (heads) unpermuteQkRows(codes, heads, cols)
    if (projections === 'packed') {
      tensors.push({ name: `${base}.weight`, dtype: 'U8', shape: [rows / 4, cols], data: packHf(codes, rows, cols) },
        { name: `${base}.weight_scale`, dtype: 'F32', shape: [1], data: new Uint8Array(Float32Array.of(1 / scale).buffer) })
    } else {
      tensors.push({ name: `${base}.weight`, dtype: 'F32', shape, data: new Uint8Array(projections(codes, scale).buffer) })
    }
  }
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama',
    hidden_size: nEmbd, intermediate_size: meta(g, 'llama.feed_forward_length'), num_hidden_layers: meta(g, 'llama.block_count'),
    num_attention_heads: nHead, num_key_value_heads: nHeadKv, head_dim: meta(g, 'llama.attention.key_length') ?? nEmbd / nHead,
    rope_theta: meta(g, 'llama.rope.freq_base'), rms_norm_eps: meta(g, 'llama.attention.layer_norm_rms_epsilon'),
    vocab_size: meta(g, 'llama.vocab_size'), max_position_embeddings: meta(g, 'llama.context_length'),
    hidden_act: 'silu', tie_word_embeddings: false,
    ...(projections === 'packed' ? { quantization_config: { quant_method: 'bitnet', linear_class: 'bitlinear', quantization_mode: 'offline' } } : {}),
  }
  return memoryFolder('synthetic-llama-hf', config, tensors, tokenizer ?? {
    json: syntheticTokenizerJson(g), config: { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' },
  })
}

/** tiny-dev's Llama 3 tokenizer.json with a synthetic model's vocabulary (bytes, then control tokens). */
function syntheticTokenizerJson(g: GgufWriteInput): Record<string, any> {
  const tok = JSON.parse(readFileSync(TINY_DIR + 'tokenizer.json', 'utf8'))
  const tokens = g.metadata.get('tokenizer.ggml.tokens')!.value as string[]
  const types = g.metadata.get('tokenizer.ggml.token_type')!.value as number[]
  tok.model.vocab = Object.fromEntries(tokens.map((t, i) => [t, i]))
  tok.model.merges = []
  tok.added_tokens = tokens.flatMap((content, id) => (types[id] === 3
    ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }] : []))
  return tok
}

/** A Hugging Face folder in memory: config.json, one safetensors file, the tokenizer files. */
function memoryFolder(name: string, config: object, tensors: StTensor[], tokenizer: { json: object; config: object }): ModelFolder {
  const files: Record<string, Uint8Array> = {
    'config.json': new TextEncoder().encode(JSON.stringify(config)),
    'model.safetensors': safetensors(tensors),
    'tokenizer.json': new TextEncoder().encode(JSON.stringify(tokenizer.json)),
    'tokenizer_config.json': new TextEncoder().encode(JSON.stringify(tokenizer.config)),
  }
  return { name, open: async (f) => files[f] && bytesSource(files[f], `${name}/${f}`) }
}

/**
 * A synthetic BitNet-embedding GGUF (arch 'qwen3' or 'gemma3') as the Hugging Face folder
 * bitnet.cpp's embedding converter reads: `Qwen3Model` / `Gemma3TextModel` names without the
 * `model.` prefix, per-projection norms as `<proj>.norm.weight`, float latents (γ·codes), and
 * Gemma's block norms stored as w − 1.
 */
export function hfEmbeddingFolder(g: GgufWriteInput): ModelFolder {
  const arch = g.metadata.get('general.architecture')!.value as 'qwen3' | 'gemma3'
  const gemma = arch === 'gemma3'
  const names: Record<string, string> = {
    ...LAYER, attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm',
    ...Object.fromEntries(['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'].map((p) => [`${p}_norm_in`, `${LAYER[p]}.norm`])),
    ...(gemma ? { post_attention_norm: 'post_attention_layernorm', ffn_norm: 'pre_feedforward_layernorm', post_ffw_norm: 'post_feedforward_layernorm' } : {}),
  }
  const tensors = g.tensors.map((t): StTensor => {
    const m = /^(?:blk\.(\d+)\.)?(\w+)\.weight$/.exec(t.name)!
    const name = `${m[1] === undefined ? GLOBAL[m[2]].replace('model.', '') : `layers.${m[1]}.${names[m[2]]}`}.weight`
    const shape = [...t.dims].reverse()
    if (t.typeId === FORMATS.F16.typeId) return { name, dtype: 'F16', shape, data: t.data }
    if (t.typeId === FORMATS.F32.typeId) {
      const offset = gemma && !m[2].endsWith('_norm_in') ? 1 : 0
      return { name, dtype: 'F32', shape, data: new Uint8Array(Float32Array.from(new Float32Array(t.data.slice().buffer), (v) => v - offset).buffer) }
    }
    const [cols, rows] = t.dims
    const { codes, scale } = decodeTernary('I2_S', t.data, rows, cols)
    return { name, dtype: 'F32', shape, data: new Uint8Array(Float32Array.from(codes, (c) => c * scale).buffer) }
  })
  const meta = (key: string) => g.metadata.get(`${arch}.${key}`)?.value as number
  const config = {
    architectures: [gemma ? 'Gemma3TextModel' : 'Qwen3Model'], model_type: gemma ? 'gemma3_text' : 'qwen3',
    hidden_size: meta('embedding_length'), intermediate_size: meta('feed_forward_length'), num_hidden_layers: meta('block_count'),
    num_attention_heads: meta('attention.head_count'), num_key_value_heads: meta('attention.head_count_kv'), head_dim: meta('attention.key_length'),
    rope_theta: meta('rope.freq_base'), rms_norm_eps: meta('attention.layer_norm_rms_epsilon'),
    vocab_size: meta('vocab_size'), max_position_embeddings: meta('context_length'), tie_word_embeddings: true,
    ...(gemma ? { hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: meta('attention.key_length'), rope_local_base_freq: meta('rope.freq_base'), sliding_window: 512, layer_types: ['sliding_attention', 'full_attention'] } : { hidden_act: 'silu' }),
  }
  return memoryFolder(`synthetic-${arch}-hf`, config, tensors, {
    json: syntheticTokenizerJson(g),
    config: { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_eos_token: g.metadata.get('tokenizer.ggml.add_eos_token')?.value === true },
  })
}
