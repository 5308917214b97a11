/**
 * The BitNet b1.58 transformer: runtime state and the forward pass, read top to bottom
 * like llama2.c's run.c. Every step names the line of the spec (§1.2 / §1.3 of
 * docs/bitnet-b158.md, = HF `modeling_bitnet`) it mirrors. All arithmetic happens in the
 * wasm kernels; this file only sequences them over pointers into the shared memory.
 */
import { ContextFullError, InvalidArgumentError } from '../errors.js'
import { ThreadPool } from '../thread-pool.js'
import { CTL_BYTES, type Job } from '../threads/protocol.js'
import type { Kernels } from '../wasm.js'
import { Arena } from './arena.js'
import { assertFiniteLogits, locateNonFinite } from './numerics.js'
import type { ModelConfig } from './config.js'
import type { LoadedModel, ModelWeights, TernaryWeight } from './load.js'
import type { TernaryKernel } from './kernel-select.js'

/** Activation buffers and KV cache: pointers into the shared memory ("the wave of activations"). */
interface RunState {
  x: number // f32 [n_embd]            residual stream
  xb: number // f32 [max(n_embd, q_dim)] normed input / projection output
  q: number // f32 [q_dim]              query of the current token
  ao: number // f32 [q_dim]             attention output
  hb: number // f32 [n_ff]              FFN gate, then activation
  hb2: number // f32 [n_ff]             FFN up
  qa: number // i8  [max K padded]      quantized activations, shared by q/k/v and gate/up
  qaMeta: number // {f32 s, i32 Σq}     their scale and sum
  lut: number // [K padded / 2][32 B]     lookup tables of qa (TL kernel only)
  att: number // f32 [n_head][ctx]      attention scores
  rope: number // f32 [n_rot]           cos (n_rot/2), then sin (n_rot/2), of this position
  logits: number // f32 [vocab]
  oq: number // i16 [n_embd padded to 128]  output-norm vector quantized per block (Q8B output)
  oqScales: number // f32 [n_embd padded / 128]
  kCache: number // f32 [n_layer][ctx][kv_dim]
  vCache: number // f32 [n_layer][ctx][kv_dim]
  ctl: number // thread-pool control block (threads/protocol.ts)
}

const f32 = 4

/** Bytes of runtime state for a context of `ctx` tokens: a dry run of allocState. */
export function stateBytes(c: ModelConfig, ctx: number): number {
  const dry = new Arena()
  const start = dry.top
  allocState(dry, c, ctx)
  return dry.top - start + 64
}

export class Transformer {
  readonly config: ModelConfig
  /** KV cache capacity in tokens. */
  readonly contextSize: number
  readonly memory: WebAssembly.Memory
  readonly module: WebAssembly.Module
  private readonly k: Kernels
  private readonly w: ModelWeights
  /** The ternary kernel the weights are laid out for. */
  readonly kernel: TernaryKernel
  private readonly s: RunState
  private readonly f32: Float32Array
  private pool!: ThreadPool
  /** Called after each layer with the residual's pointer (numerics.ts locates a NaN with it). */
  onLayer?: (layer: number, x: number) => void
  /** Time per op label since profiling was enabled (`bitnet bench --profile`). */
  profile?: Map<string, { ms: number; calls: number }>

  private constructor(model: LoadedModel, contextSize: number) {
    this.config = model.config
    this.contextSize = contextSize
    this.memory = model.memory
    this.module = model.module
    this.k = model.kernels
    this.kernel = model.kernel
    this.w = model.weights
    // The state area served as scratch during loading (F16 → Q8B rows): start from zeros.
    const start = model.arena.top
    this.s = allocState(model.arena, model.config, contextSize)
    new Uint8Array(model.memory.buffer, start, model.arena.top - start).fill(0)
    this.f32 = new Float32Array(model.memory.buffer)
  }

  /** A transformer over a loaded model, computing on `threads` threads (this one included). */
  static async create(model: LoadedModel, contextSize: number, threads: number): Promise<Transformer> {
    const t = new Transformer(model, contextSize)
    t.pool = await ThreadPool.create(model.module, model.memory, model.kernels, t.s.ctl, threads)
    return t
  }

  /** Storage of the output projection in use ('f16', 'f32' or 'q8b'). */
  get outputType(): string {
    return this.w.output.type
  }

  /** Threads computing each kernel round. */
  get threads(): number {
    return this.pool.nThreads
  }

  /** Stops the worker threads. */
  dispose(): Promise<void> {
    return this.pool.dispose()
  }

  /**
   * Runs one token at position `pos` through the network, appending its keys/values to
   * the cache. Returns the logits [vocab] (a view into wasm memory, valid until the next
   * call) when `wantLogits`, else undefined (prompt tokens before the last one).
   */
  forward(token: number, pos: number, wantLogits = true): Float32Array | undefined {
    const c = this.config, k = this.k, w = this.w, s = this.s
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) {
      throw new InvalidArgumentError(`token id ${token} is out of range 0..${c.vocabSize - 1}`)
    }
    if (pos >= this.contextSize) throw new ContextFullError(this.contextSize, pos + 1)
    const qDim = c.nHead * c.headDim
    const kvDim = c.nHeadKv * c.headDim

    // h0 = Embed[tok]                                        (F16 row → f32)
    this.embed(token, s.x)
    this.ropeTable(pos)

    for (let l = 0; l < c.nLayer; l++) {
      const L = w.layers[l]
      const kRow = s.kCache + (l * this.contextSize + pos) * kvDim * f32
      const vRow = s.vCache + (l * this.contextSize + pos) * kvDim * f32
      const kc = s.kCache + l * this.contextSize * kvDim * f32
      const vc = s.vCache + l * this.contextSize * kvDim * f32

      // a = RMSNorm(h, attn_norm), quantized once (fused, in f64), shared by q, k and v
      this.normQuantize(s.x, L.attnNorm, c.nEmbd)
      // q = BitLinear_q(a); k, v = BitLinear_k/v(a) written straight into the cache row (one round)
      this.round('attn_qkv', [this.bitlinear(L.wq, s.q), this.bitlinear(L.wk, kRow), this.bitlinear(L.wv, vRow)])
      // q, k = RoPE_neox(q, k, pos)
      k.rope_neox_f32(s.q, c.nHead, c.headDim, c.nRot, s.rope)
      k.rope_neox_f32(kRow, c.nHeadKv, c.headDim, c.nRot, s.rope)
      // o = softmax(q·Kᵀ/√d + causal)·V over positions 0..pos (GQA: head h → kv head h/group)
      this.round('attention', [['attention_f32', s.q, kc, vc, s.ao, s.att, c.nHead, c.nHeadKv, c.headDim, this.contextSize, pos + 1]])
      // o = RMSNorm(o, attn_sub_norm)   (2B4T's extra SubLN before o_proj; absent in llama)
      this.normQuantize(s.ao, L.attnSubNorm, qDim)
      // h = h + BitLinear_o(o)
      this.round('attn_output', [this.bitlinear(L.wo, s.xb)])
      k.add_f32(s.x, s.xb, c.nEmbd)

      // f = RMSNorm(h, ffn_norm), quantized once, shared by gate and up
      this.normQuantize(s.x, L.ffnNorm, c.nEmbd)
      this.round('ffn_gate_up', [this.bitlinear(L.wGate, s.hb), this.bitlinear(L.wUp, s.hb2)])
      // g = act(gate) ⊙ up            (ReLU² for 2B4T, SiLU for 1bitLLM; kept in f32)
      if (c.activation === 'relu2') k.relu2_mul_f32(s.hb, s.hb2, c.nFf)
      else k.silu_mul_f32(s.hb, s.hb2, c.nFf)
      // g = RMSNorm(g, ffn_sub_norm)
      this.normQuantize(s.hb, L.ffnSubNorm, c.nFf)
      // h = h + BitLinear_down(g)
      this.round('ffn_down', [this.bitlinear(L.wDown, s.xb)])
      k.add_f32(s.x, s.xb, c.nEmbd)
      this.onLayer?.(l, s.x)
    }

    if (!wantLogits) return undefined
    // logits = RMSNorm(h, output_norm) · Embedᵀ              (tied unless output.weight exists)
    k.rmsnorm_f32(s.x, w.outputNorm, s.xb, c.nEmbd, c.normEps)
    const out = w.output
    if (out.type === 'q8b') {
      k.quantize_blocks_f32_i16(s.xb, c.nEmbd, out.kp, s.oq, s.oqScales)
      this.round('output', [['matvec_q8b_i16', out.ptr, out.scales, s.oq, s.oqScales, s.logits, out.rows, out.kp]])
    } else {
      this.round('output', [[out.type === 'f16' ? 'matvec_f16_f32' : 'matvec_f32_f32', out.ptr, s.xb, s.logits, out.rows, out.cols]])
    }
    const logits = this.f32.subarray(s.logits / f32, s.logits / f32 + c.vocabSize)
    assertFiniteLogits(logits, pos, () => locateNonFinite(this, token, pos))
    return logits
  }

  // RMSNorm(x)·w (no norm when w is undefined) → int8 with per-token absmax scale, K
  // zero-padded to the kernel block; every BitLinear reads this one quantized vector.
  private normQuantize(x: number, w: number | undefined, n: number): void {
    const t0 = this.profile ? performance.now() : 0
    const kp = Math.ceil(n / 128) * 128
    this.k.rmsnorm_quantize_f32_i8(x, w ?? 0, n, this.config.normEps, kp, this.s.qa, this.s.qaMeta)
    if (this.kernel === 'tl') this.k.lut_build_i8(this.s.qa, kp, this.s.lut)
    if (this.profile) this.addTime('norm_quantize', performance.now() - t0)
  }

  // One round of independent jobs on every thread, timed per label when profiling.
  private round(label: string, jobs: Job[]): void {
    if (!this.profile) return this.pool.run(jobs)
    const t0 = performance.now()
    this.pool.run(jobs)
    this.addTime(label, performance.now() - t0)
  }

  private addTime(label: string, ms: number): void {
    const e = this.profile!.get(label)
    if (e) { e.ms += ms; e.calls++ } else this.profile!.set(label, { ms, calls: 1 })
  }

  // The job y = (W_codes · q − Σq) / s · γ over the last quantized activation.
  private bitlinear(W: TernaryWeight, y: number): Job {
    return this.kernel === 'tl'
      ? ['matvec_tl_i8', W.ptr, this.s.lut, this.s.qaMeta, W.gamma, y, W.rows, W.kp]
      : ['matvec_i2s_i8', W.ptr, this.s.qa, this.s.qaMeta, W.gamma, y, W.rows, W.kp]
  }

  private embed(token: number, dst: number): void {
    const e = this.w.tokenEmbd
    if (e.type === 'f16') this.k.f16_to_f32(e.ptr + token * e.cols * 2, dst, e.cols)
    else if (e.type === 'q8b') this.k.dequantize_row_q8b(e.ptr, e.scales, token, e.cols, e.kp, dst)
    else this.f32.copyWithin(dst / f32, e.ptr / f32 + token * e.cols, e.ptr / f32 + (token + 1) * e.cols)
  }

  // cos/sin of pos·θ^(−2i/n_rot), i < n_rot/2, computed in f64 once per token.
  private ropeTable(pos: number): void {
    const { nRot, ropeTheta } = this.config
    const half = nRot / 2
    const base = this.s.rope / f32
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(ropeTheta, (-2 * i) / nRot)
      this.f32[base + i] = Math.cos(angle)
      this.f32[base + half + i] = Math.sin(angle)
    }
  }
}

function allocState(a: Arena, c: ModelConfig, ctx: number): RunState {
  const qDim = c.nHead * c.headDim
  const kvDim = c.nHeadKv * c.headDim
  const kMax = Math.ceil(Math.max(c.nEmbd, qDim, c.nFf) / 128) * 128
  return {
    x: a.alloc(c.nEmbd * f32),
    xb: a.alloc(Math.max(c.nEmbd, qDim) * f32),
    q: a.alloc(qDim * f32),
    ao: a.alloc(qDim * f32),
    hb: a.alloc(c.nFf * f32),
    hb2: a.alloc(c.nFf * f32),
    qa: a.alloc(kMax),
    qaMeta: a.alloc(16),
    lut: a.alloc(kMax * 16),
    att: a.alloc(c.nHead * ctx * f32),
    rope: a.alloc(c.nRot * f32),
    logits: a.alloc(c.vocabSize * f32),
    oq: a.alloc(Math.ceil(c.nEmbd / 128) * 128 * 2),
    oqScales: a.alloc(Math.ceil(c.nEmbd / 128) * f32),
    kCache: a.alloc(c.nLayer * ctx * kvDim * f32),
    vCache: a.alloc(c.nLayer * ctx * kvDim * f32),
    ctl: a.alloc(CTL_BYTES),
  }
}
