/**
 * The BitNet b1.58 transformer: runtime state and the forward pass, read top to bottom
 * like llama2.c's run.c. Every step names the line of the spec (§1.2 / §1.3 of
 * docs/bitnet-b158.md, = HF `modeling_bitnet`) it mirrors. All arithmetic happens in the
 * wasm kernels; this file only sequences them over pointers into the shared memory.
 */
import { ContextFullError, InvalidArgumentError } from '../errors.js'
import { ThreadPool, type PoolOptions } from '../runtime/thread-pool.js'
import { CTL_BYTES, MAX_JOBS, type Job } from '../runtime/protocol.js'
import { growMemory, type Kernels, type WasmMemory, type WasmModule } from '../runtime/wasm.js'
import { Arena } from './arena.js'
import { assertFiniteLogits, firstNonFinite } from './numerics.js'
import type { ModelConfig } from './config.js'
import type { LoadedModel, ModelWeights, TernaryWeight } from './load.js'
import type { TernaryKernel } from './kernel-select.js'

/**
 * Rows a forward pass evaluates at once: prompt chunks, or one step of several sessions.
 * 32: the batched I2_S kernel reads each weight once per pass, and at 32 tokens that
 * pass costs 1/32 of a token's matvec in weight traffic (bench/README.md: prompt speed).
 */
export const MAX_BATCH = 32

/** Positions per attention work item (assembly/ops/attention.ts): split-K granularity. */
export const ATT_BLOCK = 128

/** Attention round 1 per KV type; the SIMD kernels need head_dim % 8 == 0, else their scalar twins run. */
const ATTENTION_PARTIAL = {
  f32: { simd: 'attention_partial_f32', ref: 'attention_partial_f32_ref' },
  f16: { simd: 'attention_partial_f16', ref: 'attention_partial_f16_ref' },
} as const

/** Storage of the KV cache: f32 (default) or IEEE half. */
export type KvType = 'f16' | 'f32'
export const KV_TYPES: readonly KvType[] = ['f16', 'f32']
const KV_ELEM: Record<KvType, number> = { f16: 2, f32: 4 }

/**
 * Activation buffers for a batch of up to MAX_BATCH token rows (B): pointers into the
 * shared memory ("the wave of activations"). Row t of a buffer [B][n] starts at t·n.
 */
interface RunState {
  x: number // f32 [B][n_embd]          residual stream
  xb: number // f32 [B][n_embd]         projection output / output-normed input
  q: number // f32 [B][q_dim]           queries
  k: number // f32 [B][kv_dim]          keys of the batch, copied into each row's cache
  v: number // f32 [B][kv_dim]          values, likewise
  ao: number // f32 [B][q_dim]          attention output
  hb: number // f32 [B][n_ff]           FFN gate, then activation
  hb2: number // f32 [B][n_ff]          FFN up
  qa: number // i8  [B][K padded]       quantized activations (row stride = the K padded), shared by q/k/v and gate/up
  qaMeta: number // [B] × {f32 s, i32 Σq}  their scales and sums
  lut: number // [B][K padded / 2][32 B]  lookup tables of qa (TL kernel only)
  att: number // f32 [B][n_head][ctx blocks · ATT_BLOCK]   attention scores, one slice per work item
  part: number // f32 [B][n_head][ctx blocks][4 + head_dim]  per-block softmax partials (m, l, acc)
  rope: number // f32 [B][n_rot]        cos (n_rot/2), then sin (n_rot/2), of each row's position
  logits: number // f32 [B][vocab]
  oq: number // i8 [B][n_embd padded to 128]  output-norm vectors quantized per 128-block (Q8B, Q4B)
  oqScales: number // f32 [B][n_embd padded / 128]
  oqSums: number // i32 [B][n_embd padded / 32]     8·Σ per 32-block (the weights' offsets)
  ctl: number // thread-pool control block (runtime/protocol.ts)
}

/**
 * One sequence's keys and values: [n_layer][capacity][kv_dim] each, f16 or f32 (the
 * model's `kvType`), in the shared memory. The model owns one (`transformer.kv`); sessions
 * create more. Positions are the caller's business: row `pos` holds the token evaluated at `pos`.
 */
export class KvCache {
  /** @internal */
  constructor(
    private readonly t: Transformer,
    /** @internal */ readonly k: number,
    /** @internal */ readonly v: number,
    /** Capacity in tokens. */
    readonly capacity: number,
  ) {}

  private disposed = false

  /** Gives the memory back to the model for the next cache (the model's own cache is kept). */
  dispose(): void {
    if (this.disposed || this === this.t.kv) return
    this.disposed = true
    this.t.releaseKv(this)
  }

  /** Element type of the keys and values. */
  get type(): KvType {
    return this.t.kvType
  }

  /**
   * The first `n` positions as bytes (header + keys + values), for `restore()` on a
   * cache of the same model and KV type, possibly in another process.
   */
  save(n: number): Uint8Array {
    const c = this.t.config
    if (!Number.isInteger(n) || n < 0 || n > this.capacity) throw new InvalidArgumentError(`save: n must be in 0..${this.capacity}, got ${n}`)
    const kvDim = c.nHeadKv * c.headDim
    const elem = KV_ELEM[this.type]
    const row = n * kvDim * elem
    const out = new Uint8Array(KV_HEADER + 2 * c.nLayer * row)
    new Uint32Array(out.buffer, 0, KV_HEADER / 4).set([KV_MAGIC, c.nLayer, kvDim, n, elem])
    const heap = new Uint8Array(this.t.memory.buffer)
    for (let l = 0; l < c.nLayer; l++) {
      const src = l * this.capacity * kvDim * elem
      out.set(heap.subarray(this.k + src, this.k + src + row), KV_HEADER + 2 * l * row)
      out.set(heap.subarray(this.v + src, this.v + src + row), KV_HEADER + (2 * l + 1) * row)
    }
    return out
  }

  /** Loads bytes from `save()`; returns the number of positions restored. */
  restore(bytes: Uint8Array): number {
    const c = this.t.config
    const kvDim = c.nHeadKv * c.headDim
    if (bytes.byteLength < KV_HEADER) throw new InvalidArgumentError(`restore: ${bytes.byteLength} bytes is shorter than the ${KV_HEADER}-byte header`)
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const [magic, nLayer, dim, n, elem] = [0, 4, 8, 12, 16].map((o) => dv.getUint32(o, true))
    if (magic !== KV_MAGIC) throw new InvalidArgumentError('restore: not a KV state (bad magic)')
    if (nLayer !== c.nLayer || dim !== kvDim) {
      throw new InvalidArgumentError(`restore: state of a model with ${nLayer} layers × kv_dim ${dim}, this one has ${c.nLayer} × ${kvDim}`)
    }
    if (elem !== KV_ELEM[this.type]) {
      throw new InvalidArgumentError(`restore: state of a ${elem === 2 ? 'f16' : elem === 4 ? 'f32' : `${elem}-byte`} KV cache, this one is ${this.type}`)
    }
    if (n > this.capacity) throw new ContextFullError(this.capacity, n)
    const row = n * kvDim * elem
    if (bytes.byteLength !== KV_HEADER + 2 * nLayer * row) {
      throw new InvalidArgumentError(`restore: expected ${KV_HEADER + 2 * nLayer * row} bytes for ${n} positions, got ${bytes.byteLength}`)
    }
    const heap = new Uint8Array(this.t.memory.buffer)
    for (let l = 0; l < c.nLayer; l++) {
      const dst = l * this.capacity * kvDim * elem
      heap.set(bytes.subarray(KV_HEADER + 2 * l * row, KV_HEADER + (2 * l + 1) * row), this.k + dst)
      heap.set(bytes.subarray(KV_HEADER + (2 * l + 1) * row, KV_HEADER + (2 * l + 2) * row), this.v + dst)
    }
    return n
  }
}

const KV_MAGIC = 0x324b4e42 // "BNK2": u32 magic, n_layer, kv_dim, n, bytes per element
const KV_HEADER = 20

/** One row of a batch: `token` evaluated at `pos` of `kv` (default: the model's cache). */
export interface BatchRow {
  token: number
  pos: number
  kv?: KvCache
  /** Compute this row's logits (default false). */
  logits?: boolean
}

const f32 = 4

/** Bytes of runtime state for a context of `ctx` tokens: a dry run of the allocations. */
export function stateBytes(c: ModelConfig, ctx: number, kvType: KvType): number {
  const dry = new Arena()
  const start = dry.top
  allocState(dry, c, ctx)
  dry.alloc(kvBytes(c, ctx, kvType))
  return dry.top - start + 64
}

/** Bytes of keys and values one token takes in a KV cache (all layers). */
export function kvBytesPerToken(c: ModelConfig, kvType: KvType): number {
  return 2 * c.nLayer * c.nHeadKv * c.headDim * KV_ELEM[kvType]
}

function kvBytes(c: ModelConfig, ctx: number, kvType: KvType): number {
  return ctx * kvBytesPerToken(c, kvType)
}

export class Transformer {
  readonly config: ModelConfig
  /** KV cache capacity in tokens (of every cache of this model). */
  readonly contextSize: number
  /** Storage of every KV cache of this model. */
  readonly kvType: KvType
  readonly memory: WasmMemory
  readonly module: WasmModule
  private readonly k: Kernels
  private readonly w: ModelWeights
  /** The ternary kernel the weights are laid out for. */
  readonly kernel: TernaryKernel
  private readonly s: RunState
  /** The model's own KV cache (what `forward` uses when given none). */
  readonly kv: KvCache
  private readonly freeKv: KvCache[] = []
  /** @internal The compute threads (benchmarks tune and read it). */
  pool!: ThreadPool
  /** Called after each layer with the residual's pointer (numerics.ts locates a NaN with it). */
  onLayer?: (layer: number, x: number) => void
  /** Forward passes so far (profiles divide the pool's round count by it). */
  passes = 0
  /** Time per op label since profiling was enabled (`bitnet bench --profile`). */
  profile?: Map<string, { ms: number; calls: number }>

  private constructor(model: LoadedModel, contextSize: number, kvType: KvType) {
    this.config = model.config
    this.contextSize = contextSize
    this.kvType = kvType
    this.memory = model.memory
    this.module = model.module
    this.k = model.kernels
    this.kernel = model.kernel
    this.w = model.weights
    // The state area served as scratch during loading: its dirty start goes back to zeros
    // (the rest of a fresh memory is zero, and stays untouched: no pages of an unused KV cache).
    new Uint8Array(model.memory.buffer, model.arena.top, model.scratchBytes).fill(0)
    this.s = allocState(model.arena, model.config, contextSize)
    this.kv = this.newKv(model.arena.alloc(kvBytes(model.config, contextSize, kvType)))
  }

  /**
   * A transformer over a loaded model, computing on up to `threads` threads (this one
   * included), with KV caches of `kvType` (its memory must have been planned with the same
   * type); `pool.adaptive` lets the pool use fewer threads while that is faster.
   */
  static async create(model: LoadedModel, contextSize: number, threads: number, kvType: KvType = 'f32', pool: PoolOptions = {}): Promise<Transformer> {
    const t = new Transformer(model, contextSize, kvType)
    t.pool = await ThreadPool.create(model.module, model.memory, model.kernels, t.s.ctl, threads, pool)
    return t
  }

  /** Storage of the output projection in use ('f16', 'f32' or 'q8b'). */
  get outputType(): string {
    return this.w.output.type
  }

  /** Threads the model computes on at most (this one included). */
  get threads(): number {
    return this.pool.nThreads
  }

  /** Threads taking part in rounds right now (fewer than `threads` while that is faster). */
  get activeThreads(): number {
    return this.pool.roundThreads
  }


  /** Stops the worker threads. */
  dispose(): Promise<void> {
    return this.pool.dispose()
  }

  /**
   * A new, independent KV cache of `contextSize` tokens (a session's). Memory of disposed
   * caches is reused; otherwise the shared memory grows by the cache's size.
   */
  createKvCache(): KvCache {
    const reused = this.freeKv.pop()
    if (reused) return new KvCache(this, reused.k, reused.v, reused.capacity)
    const bytes = kvBytes(this.config, this.contextSize, this.kvType)
    const top = Math.ceil(this.memory.buffer.byteLength / 64) * 64
    growMemory(this.memory, top + bytes)
    return this.newKv(top)
  }

  /** @internal Called by KvCache.dispose. */
  releaseKv(kv: KvCache): void {
    this.freeKv.push(kv)
  }

  private newKv(ptr: number): KvCache {
    return new KvCache(this, ptr, ptr + kvBytes(this.config, this.contextSize, this.kvType) / 2, this.contextSize)
  }

  /**
   * Runs one token at position `pos` of `kv` through the network, appending its keys and
   * values to the cache. Returns the logits [vocab] (a view into wasm memory, valid until
   * the next call) when `wantLogits`, else undefined (prompt tokens before the last one).
   */
  forward(token: number, pos: number, wantLogits = true, kv: KvCache = this.kv): Float32Array | undefined {
    return this.forwardBatch([{ token, pos, kv, logits: wantLogits }])[0]
  }

  /**
   * Re-runs the step of `token` at `pos` of `kv` (rewriting the same KV rows with the same values) with a
   * check of the residual stream after every layer; returns the first layer where it holds a NaN
   * or ±Inf, or undefined if all layers stay finite.
   */
  locateNonFinite(token: number, pos: number, kv: KvCache = this.kv): number | undefined {
    let found: number | undefined
    const n = this.config.nEmbd
    this.onLayer = (layer, x) => {
      if (found === undefined && firstNonFinite(new Float32Array(this.memory.buffer, x, n)) >= 0) found = layer
    }
    try {
      this.forward(token, pos, false, kv)
    } finally {
      this.onLayer = undefined
    }
    return found
  }

  /**
   * Evaluates `tokens` at positions pos0, pos0+1, … of `kv`, MAX_BATCH tokens per weight
   * pass. Returns the logits of every token (`'all'`, copies) or of the last one
   * (`'last'`, a view valid until the next call), or none.
   */
  prefill(tokens: readonly number[], pos0: number, kv: KvCache = this.kv, logits: 'all' | 'last' | 'none' = 'last'): Float32Array[] {
    const out: Float32Array[] = []
    for (let i = 0; i < tokens.length; i += MAX_BATCH) {
      const rows = tokens.slice(i, i + MAX_BATCH).map((token, j): BatchRow => ({
        token, pos: pos0 + i + j, kv, logits: logits === 'all' || (logits === 'last' && i + j === tokens.length - 1),
      }))
      for (const l of this.forwardBatch(rows)) if (l) out.push(logits === 'all' ? l.slice() : l)
    }
    return out
  }

  /**
   * One pass of up to MAX_BATCH rows, each a token at a position of its own cache (a
   * prompt chunk, or one decode step of several sessions). Rows of one cache see each
   * other causally. Returns per row its logits (views into wasm memory, valid until the
   * next call) or undefined.
   */
  forwardBatch(rows: readonly BatchRow[]): (Float32Array | undefined)[] {
    const c = this.config, k = this.k, w = this.w, s = this.s
    const n = rows.length
    if (n < 1 || n > MAX_BATCH) throw new InvalidArgumentError(`a batch holds 1..${MAX_BATCH} rows, got ${n}`)
    this.passes++
    for (const r of rows) {
      if (!Number.isInteger(r.token) || r.token < 0 || r.token >= c.vocabSize) {
        throw new InvalidArgumentError(`token id ${r.token} is out of range 0..${c.vocabSize - 1}`)
      }
      if (!Number.isInteger(r.pos) || r.pos < 0) throw new InvalidArgumentError(`position ${r.pos} is not a non-negative integer`)
      if (r.pos >= this.contextSize) throw new ContextFullError(this.contextSize, r.pos + 1)
    }
    const qDim = c.nHead * c.headDim
    const kvDim = c.nHeadKv * c.headDim
    const cap = this.contextSize
    const kvRow = kvDim * KV_ELEM[this.kvType]
    const row = (buf: number, t: number, width: number) => buf + t * width * f32

    // h0 = Embed[tok]                                        x: [n][n_embd]  (F16 row → f32)
    rows.forEach((r, t) => {
      this.embed(r.token, row(s.x, t, c.nEmbd))
      this.ropeTable(r.pos, row(s.rope, t, c.nRot))
    })

    for (let l = 0; l < c.nLayer; l++) {
      const L = w.layers[l]
      const layerOff = l * cap * kvRow

      // a = RMSNorm(h, attn_norm), quantized per row (fused, in f64), shared by q, k and v
      this.normQuantize(s.x, L.attnNorm, c.nEmbd, n)
      // q, k, v = BitLinear_q/k/v(a)                        q: [n][q_dim], k, v: [n][kv_dim]
      this.round('attn_qkv', [...this.bitlinear(L.wq, s.q, n), ...this.bitlinear(L.wk, s.k, n), ...this.bitlinear(L.wv, s.v, n)])
      rows.forEach((r, t) => {
        const kv = r.kv ?? this.kv
        // q, k = RoPE_neox(q, k, pos); k, v appended to the row's cache at pos
        k.rope_neox_f32(row(s.q, t, qDim), c.nHead, c.headDim, c.nRot, row(s.rope, t, c.nRot))
        k.rope_neox_f32(row(s.k, t, kvDim), c.nHeadKv, c.headDim, c.nRot, row(s.rope, t, c.nRot))
        this.storeKv(row(s.k, t, kvDim), kv.k + layerOff + r.pos * kvRow, kvDim)
        this.storeKv(row(s.v, t, kvDim), kv.v + layerOff + r.pos * kvRow, kvDim)
      })
      // o = softmax(q·Kᵀ/√d + causal)·V over positions 0..pos (GQA: head h → kv head h/group)
      this.attention(rows, layerOff)
      // o = RMSNorm(o, attn_sub_norm)   (2B4T's extra SubLN before o_proj; absent in llama)
      this.normQuantize(s.ao, L.attnSubNorm, qDim, n)
      // h = h + BitLinear_o(o)                              xb: [n][n_embd]
      this.round('attn_output', this.bitlinear(L.wo, s.xb, n))
      k.add_f32(s.x, s.xb, n * c.nEmbd)

      // f = RMSNorm(h, ffn_norm), quantized once per row, shared by gate and up
      this.normQuantize(s.x, L.ffnNorm, c.nEmbd, n)
      //                                                     hb, hb2: [n][n_ff]
      this.round('ffn_gate_up', [...this.bitlinear(L.wGate, s.hb, n), ...this.bitlinear(L.wUp, s.hb2, n)])
      // g = act(gate) ⊙ up            (ReLU² for 2B4T, SiLU for 1bitLLM; kept in f32)
      if (c.activation === 'relu2') k.relu2_mul_f32(s.hb, s.hb2, n * c.nFf)
      else k.silu_mul_f32(s.hb, s.hb2, n * c.nFf)
      // g = RMSNorm(g, ffn_sub_norm)
      this.normQuantize(s.hb, L.ffnSubNorm, c.nFf, n)
      // h = h + BitLinear_down(g)
      this.round('ffn_down', this.bitlinear(L.wDown, s.xb, n))
      k.add_f32(s.x, s.xb, n * c.nEmbd)
      this.onLayer?.(l, s.x)
    }

    // logits = RMSNorm(h, output_norm) · Embedᵀ   for the rows that want them   [m][vocab]
    // (tied unless output.weight exists). Those rows take slots 0..m−1 of oq and logits, so
    // the Q8B product is one pass over the matrix for the whole batch.
    const out = w.output
    const jobs: Job[] = []
    const kpOut = Math.ceil(c.nEmbd / 128) * 128
    const slotRow: number[] = [] // slot → row
    rows.forEach((r, t) => {
      if (!r.logits) return
      const i = slotRow.push(t) - 1
      const xn = row(s.xb, t, c.nEmbd), y = row(s.logits, i, c.vocabSize)
      k.rmsnorm_f32(row(s.x, t, c.nEmbd), w.outputNorm, xn, c.nEmbd, c.normEps)
      if (out.type === 'q8b' || out.type === 'q4b') {
        const oq = s.oq + i * kpOut, os = row(s.oqScales, i, kpOut / 128), sums = row(s.oqSums, i, kpOut / 32)
        k.quantize_blocks_f32_i8(xn, c.nEmbd, out.kp, oq, os, sums)
        if (out.type === 'q4b') jobs.push(['matvec_q4b_i8', out.ptr, out.scales, oq, os, sums, y, out.rows, out.kp])
      } else {
        jobs.push([out.type === 'f16' ? 'matvec_f16_f32' : 'matvec_f32_f32', out.ptr, xn, y, out.rows, out.cols])
      }
    })
    if (out.type === 'q8b' && slotRow.length) {
      jobs.push(['matmul_q8b_i8', out.ptr, out.scales, s.oq, s.oqScales, s.oqSums, s.logits, out.rows, out.kp, slotRow.length])
    }
    if (jobs.length) this.round('output', jobs)
    const heap = new Float32Array(this.memory.buffer)
    const logits: (Float32Array | undefined)[] = rows.map(() => undefined)
    slotRow.forEach((t, i) => {
      const l = logits[t] = heap.subarray(row(s.logits, i, c.vocabSize) / f32, row(s.logits, i, c.vocabSize) / f32 + c.vocabSize)
      assertFiniteLogits(l, rows[t].pos, () => this.locateNonFinite(rows[t].token, rows[t].pos, rows[t].kv ?? this.kv))
    })
    return logits
  }

  /**
   * Final hidden states of the first `n` rows of the last forwardBatch, after the output
   * norm: RMSNorm(h_t, output_norm), copies [n][n_embd] (what HF calls last_hidden_state).
   * Uses xb as scratch, so call it right after the pass.
   */
  hiddenStates(n: number): Float32Array[] {
    const c = this.config, s = this.s
    if (!Number.isInteger(n) || n < 1 || n > MAX_BATCH) throw new InvalidArgumentError(`hiddenStates: n must be in 1..${MAX_BATCH}, got ${n}`)
    return Array.from({ length: n }, (_, t) => {
      const x = s.x + t * c.nEmbd * f32, xn = s.xb + t * c.nEmbd * f32
      this.k.rmsnorm_f32(x, this.w.outputNorm, xn, c.nEmbd, c.normEps)
      return new Float32Array(this.memory.buffer, xn, c.nEmbd).slice()
    })
  }

  // RMSNorm(x_t)·w (no norm when w is undefined) → int8 with per-token absmax scale, K
  // zero-padded to the kernel block, for rows t < n: qa [n][kp], meta [n] (+ the TL
  // kernel's tables); every BitLinear of the step reads these. One row runs here, a batch
  // is a round split by rows.
  private normQuantize(x: number, w: number | undefined, dim: number, n: number): void {
    const s = this.s, eps = this.config.normEps, kp = Math.ceil(dim / 128) * 128
    const lut = this.kernel === 'tl' ? s.lut : 0
    if (n > 1) return this.round('norm_quantize', [['rmsnorm_quantize_rows_f32_i8', x, w ?? 0, dim, eps, kp, s.qa, s.qaMeta, lut, n]])
    const t0 = this.profile ? performance.now() : 0
    this.k.rmsnorm_quantize_rows_f32_i8(x, w ?? 0, dim, eps, kp, s.qa, s.qaMeta, lut, 1, 0, 1)
    if (this.profile) this.addTime('norm_quantize', performance.now() - t0)
  }

  // Attention of every row, in two rounds (assembly/ops/attention.ts): partial softmax
  // results per (kv head, block of ATT_BLOCK positions), then their combine per query head.
  // Consecutive rows of one cache at consecutive positions (a prompt chunk) form one job,
  // which reads each key and value once for all of them. A job's scratch is that of its
  // first row, so jobs of one round never share any.
  private attention(rows: readonly BatchRow[], layerOff: number): void {
    const c = this.config, s = this.s
    const qDim = c.nHead * c.headDim
    const maxBlocks = Math.ceil(this.contextSize / ATT_BLOCK)
    const simd = c.headDim % 8 === 0 ? 'simd' : 'ref'
    const partial: Job[] = [], combine: Job[] = []
    for (let t = 0; t < rows.length;) {
      const kv = rows[t].kv ?? this.kv
      let n = 1
      while (t + n < rows.length && (rows[t + n].kv ?? this.kv) === kv && rows[t + n].pos === rows[t].pos + n) n++
      const nPos = rows[t].pos + 1
      const q = s.q + t * qDim * f32, out = s.ao + t * qDim * f32
      const att = s.att + t * c.nHead * maxBlocks * ATT_BLOCK * f32
      const part = s.part + t * c.nHead * maxBlocks * (4 + c.headDim) * f32
      partial.push([ATTENTION_PARTIAL[this.kvType][simd], q, kv.k + layerOff, kv.v + layerOff, att, part, out,
        n, c.nHead, c.nHeadKv, c.headDim, nPos, ATT_BLOCK])
      const blocks = Math.ceil((nPos + n - 1) / ATT_BLOCK)
      if (blocks > 1) combine.push(['attention_combine_f32', part, out, n, c.nHead, c.headDim, blocks])
      t += n
    }
    this.round('attention', partial)
    if (combine.length) this.round('attention_combine', combine)
  }

  // Independent jobs on every thread, timed per label when profiling: one round, or several
  // when there are more jobs than a round holds (the TL kernel's one job per row).
  private round(label: string, jobs: Job[]): void {
    const t0 = this.profile ? performance.now() : 0
    for (let i = 0; i < jobs.length; i += MAX_JOBS) this.pool.run(jobs.length <= MAX_JOBS ? jobs : jobs.slice(i, i + MAX_JOBS))
    if (this.profile) this.addTime(label, performance.now() - t0)
  }

  private addTime(label: string, ms: number): void {
    const e = this.profile!.get(label)
    if (e) { e.ms += ms; e.calls++ } else this.profile!.set(label, { ms, calls: 1 })
  }

  // The jobs y_t = (W_codes · q_t − Σq_t) / s_t · γ for the n quantized rows, y: [n][rows].
  // i2s: one matrix-matrix job (several tokens per weight pass), or the matvec for one
  // row; tl: one job per row (each row has its own lookup tables).
  private bitlinear(W: TernaryWeight, y: number, n: number): Job[] {
    const s = this.s
    if (this.kernel === 'i2s') {
      return [n === 1
        ? ['matvec_i2s_i8', W.ptr, s.qa, s.qaMeta, W.gamma, y, W.rows, W.kp]
        : ['matmul_i2s_i8', W.ptr, s.qa, s.qaMeta, W.gamma, y, W.rows, W.kp, n]]
    }
    return Array.from({ length: n }, (_, t): Job =>
      ['matvec_tl_i8', W.ptr, s.lut + t * W.kp * 16, s.qaMeta + t * 8, W.gamma, y + t * W.rows * f32, W.rows, W.kp])
  }

  // n keys or values (f32) into a cache row of the model's KV type.
  private storeKv(src: number, dst: number, n: number): void {
    if (this.kvType === 'f16') this.k.f32_to_f16(src, dst, n)
    else this.copyF32(src, dst, n)
  }

  private copyF32(src: number, dst: number, n: number): void {
    new Uint8Array(this.memory.buffer).copyWithin(dst, src, src + n * f32)
  }

  private embed(token: number, dst: number): void {
    const e = this.w.tokenEmbd
    if (e.type === 'f16') this.k.f16_to_f32(e.ptr + token * e.cols * 2, dst, e.cols)
    else if (e.type === 'q8b') this.k.dequantize_row_q8b(e.ptr, e.scales, token, e.cols, e.kp, dst)
    else if (e.type === 'q4b') this.k.dequantize_row_q4b(e.ptr, e.scales, token, e.cols, e.kp, dst)
    else this.copyF32(e.ptr + token * e.cols * f32, dst, e.cols)
  }

  // cos/sin of pos·θ^(−2i/n_rot), i < n_rot/2, computed in f64 once per row, into dst.
  private ropeTable(pos: number, dst: number): void {
    const { nRot, ropeTheta } = this.config
    const half = nRot / 2
    const heap = new Float32Array(this.memory.buffer, dst, nRot)
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(ropeTheta, (-2 * i) / nRot)
      heap[i] = Math.cos(angle)
      heap[half + i] = Math.sin(angle)
    }
  }
}

function allocState(a: Arena, c: ModelConfig, ctx: number): RunState {
  const B = MAX_BATCH
  const qDim = c.nHead * c.headDim
  const kvDim = c.nHeadKv * c.headDim
  const kMax = Math.ceil(Math.max(c.nEmbd, qDim, c.nFf) / 128) * 128
  const kpOut = Math.ceil(c.nEmbd / 128) * 128
  const maxBlocks = Math.ceil(ctx / ATT_BLOCK)
  return {
    x: a.alloc(B * c.nEmbd * f32),
    xb: a.alloc(B * c.nEmbd * f32),
    q: a.alloc(B * qDim * f32),
    k: a.alloc(B * kvDim * f32),
    v: a.alloc(B * kvDim * f32),
    ao: a.alloc(B * qDim * f32),
    hb: a.alloc(B * c.nFf * f32),
    hb2: a.alloc(B * c.nFf * f32),
    qa: a.alloc(B * kMax),
    qaMeta: a.alloc(B * 8),
    lut: a.alloc(B * kMax * 16),
    att: a.alloc(B * c.nHead * maxBlocks * ATT_BLOCK * f32),
    part: a.alloc(B * c.nHead * maxBlocks * (4 + c.headDim) * f32),
    rope: a.alloc(B * c.nRot * f32),
    logits: a.alloc(B * c.vocabSize * f32),
    oq: a.alloc(B * kpOut),
    oqScales: a.alloc(B * (kpOut / 128) * f32),
    oqSums: a.alloc(B * (kpOut / 32) * 4),
    ctl: a.alloc(CTL_BYTES),
  }
}
