/**
 * A plain-TypeScript reference forward pass in float64: no wasm, no SIMD, no layouts,
 * slow and obvious, in the order of docs/architecture.md#the-forward-pass. Tests hold the
 * wasm engine against it on models of any shape (written by the GGUF writer), and so tell
 * an engine bug from a model problem.
 */
import { decodeTernary, dequantizeRows } from '../formats/index.js'
import { readGguf } from '../gguf/reader.js'
import type { ByteSource } from '../io/source.js'
import { ARCH_FAMILIES, configFromGguf, type ModelConfig } from './config.js'
import { layerTensors, scaleTensorName } from './tensors.js'

interface RefTernary { codes: Int8Array; rows: number; cols: number; gamma: number }

interface RefLayer {
  attnNorm: Float32Array
  wq: RefTernary; wk: RefTernary; wv: RefTernary; wo: RefTernary
  /** Input norms of o and down: 2B4T's sub-norms, or the embedding models' attn_output / ffn_down `_norm_in`. */
  attnSubNorm?: Float32Array
  ffnNorm: Float32Array
  wGate: RefTernary; wUp: RefTernary; wDown: RefTernary
  ffnSubNorm?: Float32Array
  /** BitNet-embedding per-projection input norms of q, k, v, gate, up. */
  qNormIn?: Float32Array; kNormIn?: Float32Array; vNormIn?: Float32Array; gateNormIn?: Float32Array; upNormIn?: Float32Array
  /** Qwen3 / Gemma3 head norms of q and k [head_dim]. */
  qHeadNorm?: Float32Array; kHeadNorm?: Float32Array
  /** Gemma3 norms of the attention and FFN outputs. */
  postAttnNorm?: Float32Array; postFfnNorm?: Float32Array
}

export interface ReferenceModel {
  config: ModelConfig
  tokenEmbd: Float32Array // [vocab][n_embd]
  outputNorm: Float32Array
  output: Float32Array // [vocab][n_embd] (= tokenEmbd when tied)
  layers: RefLayer[]
}

/** Reads every tensor of a GGUF model into plain arrays (whole model in memory: small models only). */
export async function loadReferenceModel(source: ByteSource): Promise<ReferenceModel> {
  const gguf = await readGguf(source)
  const config = configFromGguf(gguf, source.name)
  const byName = new Map(gguf.tensors.map((t) => [t.name, t]))
  const bytesOf = async (name: string) => {
    const t = byName.get(name)!
    return { t, bytes: await source.read(gguf.dataOffset + t.offset, t.byteSize) }
  }
  const float = async (name: string) => {
    const { t, bytes } = await bytesOf(name)
    return dequantizeRows(t.format, bytes, t.dims.reduce((a, b) => a * b, 1))
  }
  const optFloat = async (name: string) => (byName.has(name) ? float(name) : undefined)
  const ternary = async (name: string): Promise<RefTernary> => {
    const { t, bytes } = await bytesOf(name)
    const [cols, rows] = t.dims
    const { codes, scale } = decodeTernary(t.format, bytes, rows, cols)
    const extra = byName.has(scaleTensorName(name)) ? (await float(scaleTensorName(name)))[0] : 1
    return { codes, rows, cols, gamma: scale * extra }
  }
  const tokenEmbd = await float('token_embd.weight')
  const layers: RefLayer[] = []
  for (let l = 0; l < config.nLayer; l++) {
    // Each tensor of the layer (tensors.ts) into its field; an absent sub-norm stays undefined.
    const layer: Record<string, RefTernary | Float32Array | undefined> = {}
    for (const t of layerTensors(config, l)) layer[t.field!] = t.role === 'ternary' ? await ternary(t.name) : t.optional ? await optFloat(t.name) : await float(t.name)
    layers.push(layer as unknown as RefLayer)
  }
  return {
    config,
    tokenEmbd,
    outputNorm: await float('output_norm.weight'),
    output: (await optFloat('output.weight')) ?? tokenEmbd,
    layers,
  }
}

const rmsnorm = (x: Float64Array, w: Float32Array, eps: number): Float64Array<ArrayBuffer> => {
  let ss = 0
  for (const v of x) ss += v * v
  const inv = 1 / Math.sqrt(ss / x.length + eps)
  return x.map((v, i) => v * inv * w[i])
}

/** RMSNorm of each head_dim slice of x (q/k head norms), in place. */
const headNorm = (x: Float64Array, w: Float32Array | undefined, hd: number, eps: number): void => {
  if (w) for (let h = 0; h < x.length / hd; h++) x.set(rmsnorm(x.subarray(h * hd, (h + 1) * hd), w, eps), h * hd)
}

/** FFN gate activations. GELU in its tanh form (Gemma's gelu_pytorch_tanh). */
const ACTIVATIONS: Record<ModelConfig['activation'], (x: number) => number> = {
  relu2: (x) => Math.max(x, 0) ** 2,
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
}

/** Round half to even (torch.round; docs/architecture.md#bitlinear). */
const roundHalfEven = (v: number): number => {
  const f = Math.floor(v)
  const d = v - f
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f
}

/** W1.58·A8 BitLinear: y = γ/s · Σ Wt·q with per-token absmax int8 q (docs/architecture.md#bitlinear). */
const bitlinear = (W: RefTernary, x: Float64Array): Float64Array<ArrayBuffer> => {
  let amax = 0
  for (const v of x) amax = Math.max(amax, Math.abs(v))
  const s = 127 / Math.max(amax, 1e-5)
  const q = x.map((v) => Math.min(127, Math.max(-128, roundHalfEven(v * s))))
  const y = new Float64Array(W.rows)
  for (let r = 0; r < W.rows; r++) {
    let dot = 0
    for (let c = 0; c < W.cols; c++) dot += W.codes[r * W.cols + c] * q[c]
    y[r] = (dot / s) * W.gamma
  }
  return y
}

/** The reference transformer, one token at a time, with an f64 KV cache. */
export class ReferenceTransformer {
  private readonly kCache: Float64Array[][] = []
  private readonly vCache: Float64Array[][] = []
  /** RMSNorm(h, output_norm) of the last forward() (the embedding models' output). */
  hidden?: Float64Array

  constructor(readonly model: ReferenceModel) {
    for (let l = 0; l < model.config.nLayer; l++) {
      this.kCache.push([])
      this.vCache.push([])
    }
  }

  /** Logits [vocab] for `token` at `pos` (positions must arrive in order 0, 1, 2, …). */
  forward(token: number, pos: number): Float64Array {
    const { config: c, layers } = this.model
    const hd = c.headDim
    const group = c.nHead / c.nHeadKv
    const fam = ARCH_FAMILIES[c.arch]
    const embedScale = fam.embedScale ? Math.sqrt(c.nEmbd) : 1 // Gemma3
    let h = Float64Array.from(this.model.tokenEmbd.subarray(token * c.nEmbd, (token + 1) * c.nEmbd), (v) => v * embedScale)
    // Norms only some families have: BitNet-embedding's per-projection input norms (each
    // projection norms its input once more), Gemma3's post-norms of attention and FFN outputs
    const optNorm = (x: Float64Array, w: Float32Array | undefined) => (w ? rmsnorm(x, w, c.normEps) : x)

    for (let l = 0; l < c.nLayer; l++) {
      const L = layers[l]
      const a = rmsnorm(h, L.attnNorm, c.normEps)
      const q = bitlinear(L.wq, optNorm(a, L.qNormIn))
      const k = bitlinear(L.wk, optNorm(a, L.kNormIn))
      const v = bitlinear(L.wv, optNorm(a, L.vNormIn))
      headNorm(q, L.qHeadNorm, hd, c.normEps)
      headNorm(k, L.kHeadNorm, hd, c.normEps)
      for (let head = 0; head < c.nHead; head++) rope(q, head * hd, c, pos)
      for (let head = 0; head < c.nHeadKv; head++) rope(k, head * hd, c, pos)
      this.kCache[l][pos] = k
      this.vCache[l][pos] = v

      let o = new Float64Array(c.nHead * hd)
      for (let head = 0; head < c.nHead; head++) {
        const kv = Math.floor(head / group) * hd
        const scores = new Float64Array(pos + 1)
        for (let t = 0; t <= pos; t++) {
          let dot = 0
          for (let i = 0; i < hd; i++) dot += q[head * hd + i] * this.kCache[l][t][kv + i]
          scores[t] = dot * c.attnScale
        }
        const mx = Math.max(...scores)
        let sum = 0
        for (let t = 0; t <= pos; t++) sum += (scores[t] = Math.exp(scores[t] - mx))
        for (let t = 0; t <= pos; t++) {
          for (let i = 0; i < hd; i++) o[head * hd + i] += (scores[t] / sum) * this.vCache[l][t][kv + i]
        }
      }
      if (L.attnSubNorm) o = rmsnorm(o, L.attnSubNorm, c.normEps)
      const ao = optNorm(bitlinear(L.wo, o), L.postAttnNorm)
      h = h.map((x, i) => x + ao[i])

      const f = rmsnorm(h, L.ffnNorm, c.normEps)
      const gate = bitlinear(L.wGate, optNorm(f, L.gateNormIn))
      const up = bitlinear(L.wUp, optNorm(f, L.upNormIn))
      let g = gate.map((x, i) => ACTIVATIONS[c.activation](x) * up[i])
      if (L.ffnSubNorm) g = rmsnorm(g, L.ffnSubNorm, c.normEps)
      const down = optNorm(bitlinear(L.wDown, g), L.postFfnNorm)
      h = h.map((x, i) => x + down[i])
    }

    const hn = this.hidden = rmsnorm(h, this.model.outputNorm, c.normEps)
    const logits = new Float64Array(c.vocabSize)
    for (let r = 0; r < c.vocabSize; r++) {
      let dot = 0
      for (let i = 0; i < c.nEmbd; i++) dot += this.model.output[r * c.nEmbd + i] * hn[i]
      logits[r] = dot
    }
    return logits
  }
}

/**
 * Which two dims of a head rotate together at frequency i, per stored row layout: NEOX pairs
 * (i, i + n_rot/2); NORM (llama.cpp's `build_llama` on permuted q/k rows) pairs (2i, 2i + 1).
 * The engine un-permutes NORM rows at load instead; the reference computes on the file's rows.
 */
const ROPE_PAIRS: Record<ModelConfig['rope'], (i: number, nRot: number) => [number, number]> = {
  neox: (i, nRot) => [i, i + nRot / 2],
  norm: (i) => [2 * i, 2 * i + 1],
}

/** RoPE on one head starting at `off`. */
function rope(x: Float64Array, off: number, c: ModelConfig, pos: number): void {
  const pair = ROPE_PAIRS[c.rope]
  for (let i = 0; i < c.nRot / 2; i++) {
    const angle = pos * Math.pow(c.ropeTheta, (-2 * i) / c.nRot)
    const cos = Math.cos(angle), sin = Math.sin(angle)
    const [ia, ib] = pair(i, c.nRot)
    const a = x[off + ia], b = x[off + ib]
    x[off + ia] = a * cos - b * sin
    x[off + ib] = b * cos + a * sin
  }
}
