/**
 * The BitNet b1.58 transformer: runtime state and the forward pass, read top to bottom
 * like llama2.c's run.c. Every step of forwardBatch names the line of the pseudo-code in
 * docs/architecture.md#the-forward-pass (= HF `modeling_bitnet`) it mirrors. All arithmetic
 * happens in the wasm kernels; this file only sequences them over pointers into the shared
 * memory.
 */
import { ContextFullError, InvalidArgumentError, ResourceLimitError } from '../errors.js'
import type { ThreadPool } from '../runtime/thread-pool.js'
import { callJob, MAX_JOBS, type Job } from '../runtime/protocol.js'
import { growMemory, type Kernels, type WasmMemory, type WasmModule } from '../runtime/wasm.js'
import { Arena } from './arena.js'
import { dequantizeRows } from '../formats/index.js'
import { assertFiniteLogits, firstNonFinite } from './numerics.js'
import { ARCH_FAMILIES, type ModelConfig } from './config.js'
import type { LoadedModel, ModelWeights } from './load.js'
import type { Segment, StateSize } from './segments.js'
import { OUTPUT_LAYOUTS, TERNARY_LAYOUTS, type FloatMatrix, type OutputRow, type QuantizedRows, type TernaryKernel, type TernaryWeight } from './layouts.js'
import { activationNorm, MAX_GROUP_SHARE, selectCandidates, type LogitNeed } from './output-head.js'

/**
 * Rows a forward pass evaluates at once: prompt chunks, or one step of several sessions.
 * 32: the batched I2_S kernel reads each weight once per pass, and at 32 tokens that
 * pass costs 1/32 of a token's matvec in weight traffic (bench/README.md: prompt speed).
 */
export const MAX_BATCH = 32

/** Positions per attention work item (assembly/ops/attention.ts): split-K granularity. */
export const ATT_BLOCK = 128

/**
 * A round's attention items (kv head × block of positions) at least, where the rows allow:
 * a prompt chunk's rows are one job (each key read once for all of them), but at 2B4T's 5 kv
 * heads and a context under ATT_BLOCK that is 5 items, too few to share between threads, so
 * such a chunk goes in several jobs of fewer rows (a row gets the same bytes in any job).
 */
const ATT_MIN_ITEMS = 16

/**
 * Positions attended by a pass's rows together (Σ pos + 1) up to which attention runs on this
 * thread alone, without a round: below it waking the workers and waiting for the last of a
 * few kv-head items costs more than the split saves. Measured on 2B4T, 2 threads: a round
 * costs ~5.5 µs more than the leader alone, one decode row's 5 items take ~0.23 µs per
 * position, and a round splits them 3:2 at best, so it wins from ~60 positions on a quiet
 * machine (on a loaded one the leader alone was faster up to 384).
 */
const ATT_ALONE_POSITIONS = 48

/**
 * Slots for the attention's widened tiles (ATT_TILE positions × head_dim f32 each: 16 KiB for
 * 2B4T): a call claims one while it runs, and with more threads than slots the calls that find
 * none widen in registers (the same bytes, a little slower).
 */
const ATT_TILE_SLOTS = 32
/** Positions per attention tile: TILE in assembly/ops/attention.ts (which checks a slot holds one). */
const ATT_TILE = 32

/** Attention round 1 per KV type; the SIMD kernels need head_dim % 8 == 0, else their scalar twins run. */
const ATTENTION_PARTIAL = {
  f32: { simd: 'attention_partial_f32', ref: 'attention_partial_f32_ref' },
  f16: { simd: 'attention_partial_f16', ref: 'attention_partial_f16_ref' },
} as const

/** The FFN activation per activation name: `act` of gated_rmsnorm_quantize_rows_f32_i8 (g = act(g) ⊙ u). */
const ACTIVATION_CODE = { relu2: 0, silu: 1, gelu: 2 } as const

/** Storage of the KV cache: f32 or IEEE half. */
export type KvType = 'f16' | 'f32'
export const KV_TYPES: readonly KvType[] = ['f16', 'f32']
const KV_ELEM: Record<KvType, number> = { f16: 2, f32: 4 }

/**
 * 'auto' keeps f32 while the f32 cache of the context stays under this, f16 from there on.
 * Why both: f16 keys and values cost nothing measurable in perplexity (tiny-dev −0.04 %) but,
 * even computed in float64, they move 3 % of tiny-dev's golden top-20 logits by more than
 * 0.05 (any 16-bit storage does: int16 with a scale per head still 0.7 %), where a small cache
 * saves nothing worth that; 2B4T's cache is 64 MiB at ~440 tokens of f32.
 */
export const KV_AUTO_F16_BYTES = 64 * 2 ** 20

/** The KV type `kvType` means for a context of `ctx` tokens of model `c` ('auto': see KV_AUTO_F16_BYTES). */
export function resolveKvType(c: ModelConfig, ctx: number, kvType: KvType | 'auto'): KvType {
  if (kvType !== 'auto') return kvType
  return ctx * kvBytesPerToken(c, 'f32') >= KV_AUTO_F16_BYTES ? 'f16' : 'f32'
}

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
  qa: number // i8  [QA_SLOTS][B][K padded]  quantized activations (row stride = the K padded): slot 0 shared
  //            by q/k/v and gate/up, or with per-projection norms one slot per projection of a round
  qaMeta: number // [QA_SLOTS][B] × {f32 s, i32 Σq}  their scales and sums
  lut: number // [QA_SLOTS][B][K padded / 2][32 B]  lookup tables of qa (TL kernel only)
  att: number // f32 [B][n_head][ctx blocks · ATT_BLOCK]   attention scores, one slice per work item
  part: number // f32 [B][n_head][ctx blocks][4 + head_dim]  per-block softmax partials (m, l, acc)
  count: number // i32 [B][n_head_kv]   blocks done per kv head of a job's first row (attention's combine)
  tiles: number // attention's widened-tile slots: i32 [slots, floats a slot], a flag per 64 B line, the slots
  rope: number // f32 [B][n_rot]        cos (n_rot/2), then sin (n_rot/2), of each row's position
  logits: number // f32 [B][vocab]
  oq: number // i8 [B][n_embd padded to 128]  output-norm vectors quantized per 128-block (Q8B, Q4B)
  oqScales: number // f32 [B][n_embd padded / 128]
  oqSums: number // i32 [B][n_embd padded / 32]     8·Σ per 32-block (the weights' offsets)
  groups: number // i32 [vocab / 4]   4-row groups of the output matrix to rescore (output-head.ts)
}

/**
 * One sequence's keys and values: [n_layer][capacity][kv_dim] each, f16 or f32 (the
 * model's `kvType`), in the shared memory: each segment's layers in that segment
 * (segments.ts). The model owns one (`transformer.kv`, made when first used); sessions create more. Positions are
 * the caller's business: row `pos` holds the token evaluated at `pos`.
 */
export class KvCache {
  /** @internal */
  constructor(
    private readonly t: Transformer,
    /** @internal Per segment: where the keys of its first layer start. */ readonly k: readonly number[],
    /** @internal Per segment: the values, likewise. */ readonly v: readonly number[],
    /** Capacity in tokens. */
    readonly capacity: number,
  ) {}

  /** @internal Layer l's keys [capacity][kv_dim], in the memory of its segment. */
  kAt(l: number): number {
    return this.t.layerKv(this.k, l)
  }

  /** @internal Layer l's values. */
  vAt(l: number): number {
    return this.t.layerKv(this.v, l)
  }

  private disposed = false

  /** Gives the memory back to the model for the next cache (the model's own cache is kept). */
  dispose(): void {
    if (this.disposed || this.t.isOwnKv(this)) return
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
    for (let l = 0; l < c.nLayer; l++) {
      const heap = new Uint8Array(this.t.layerMemory(l).buffer)
      out.set(heap.subarray(this.kAt(l), this.kAt(l) + row), KV_HEADER + 2 * l * row)
      out.set(heap.subarray(this.vAt(l), this.vAt(l) + row), KV_HEADER + (2 * l + 1) * row)
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
    for (let l = 0; l < c.nLayer; l++) {
      const heap = new Uint8Array(this.t.layerMemory(l).buffer)
      heap.set(bytes.subarray(KV_HEADER + 2 * l * row, KV_HEADER + (2 * l + 1) * row), this.kAt(l))
      heap.set(bytes.subarray(KV_HEADER + (2 * l + 1) * row, KV_HEADER + (2 * l + 2) * row), this.vAt(l))
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
  /**
   * What the row's sampler reads of the logits. With a bounded output head ('q4+q8') and this
   * the only row wanting logits, only those are exact (the k largest, and `exactIds`); tokens
   * that cannot be among them get −Infinity. Without it, every logit is exact.
   */
  need?: LogitNeed
}

/** Bytes of the pages the OS maps on first touch (4 KiB: the smallest; prefaultKv). */
const PAGE = 4096

/** Bytes of an f32: buffer offsets are in bytes. */
const F32_BYTES = 4
/** Address of row t of a buffer of rows `width` floats wide. */
const row = (buf: number, t: number, width: number): number => buf + t * width * F32_BYTES

/** Quantized-activation slots: q, k and v each have their own input with per-projection norms. */
const QA_SLOTS = 3

/**
 * Runtime state for a context of `ctx` tokens: the activation buffers (a dry run of their
 * allocation, plus alignment), in every memory segment, and each layer's KV cache rows.
 */
export function stateSize(c: ModelConfig, ctx: number, kvType: KvType): StateSize {
  const dry = new Arena()
  const start = dry.top
  allocState(dry, c, ctx)
  return { buffers: dry.top - start + 128, kvPerLayer: kvLayerBytes(c, ctx, kvType) }
}

/** Bytes of keys and values one token takes in a KV cache (all layers). */
export function kvBytesPerToken(c: ModelConfig, kvType: KvType): number {
  return 2 * c.nLayer * c.nHeadKv * c.headDim * KV_ELEM[kvType]
}

/** Bytes of one layer's keys (then values) in a cache of `ctx` tokens. */
function kvLayerBytes(c: ModelConfig, ctx: number, kvType: KvType): number {
  return (ctx * kvBytesPerToken(c, kvType)) / c.nLayer
}

export class Transformer {
  readonly config: ModelConfig
  /** KV cache capacity in tokens (of every cache of this model). */
  readonly contextSize: number
  /** Storage of every KV cache of this model. */
  readonly kvType: KvType
  /** The memory of segment 0: the output projection, the logits, the thread pool's control block. */
  readonly memory: WasmMemory
  readonly module: WasmModule
  private readonly w: ModelWeights
  /** The ternary kernel the weights are laid out for. */
  readonly kernel: TernaryKernel
  /** The model's memories (segments.ts), each with its kernel instance and buffers. */
  private readonly segs: (Pick<Segment, 'memory' | 'first' | 'end'> & { kern: Kernels; s: RunState })[]
  /** The segment of each layer. */
  private readonly layerSeg: number[]
  // The segment a pass is in (carry() moves it): its kernels, buffers and memory.
  private seg = 0
  /** The kernels of the segment the pass is in (`s.k` is the batch's keys). */
  private kern: Kernels
  private s: RunState
  private mem: WasmMemory
  #ownKv?: KvCache
  // Caches ready to hand out: at first the one the memory plan holds (segments.ts), so the
  // first cache made (a session's, or the model's own) costs no memory beyond the plan.
  private readonly freeKv: KvCache[] = []
  /** @internal The compute threads (benchmarks tune and read it). */
  readonly pool: ThreadPool
  /** Called after each layer with the residual rows [n][n_embd] (locateNonFinite finds a NaN with it). */
  onLayer?: (layer: number, x: Float32Array) => void
  /** Forward passes so far (profiles divide the pool's round count by it). */
  passes = 0
  /**
   * The bounded output head's work so far: rows it served, candidate tokens and rescored 4-row
   * groups over them, and rows where the candidates were too many and the full q8 pass ran.
   */
  readonly headStats = { rows: 0, candidates: 0, groups: 0, full: 0 }
  /** Time per op label since profiling was enabled (`bitnet bench --profile`). */
  profile?: Map<string, { ms: number; calls: number }>
  /** Row stride of a qa slot. */
  private readonly kMax: number
  /** Factor of the token embedding (Gemma3: √n_embd in f32), else 1. */
  private readonly embedScale: number
  /** Factor of q making the kernels' 1/√head_dim the model's attention scale, else 1. */
  private readonly qScale: number

  private constructor(model: LoadedModel, contextSize: number, kvType: KvType) {
    this.config = model.config
    this.contextSize = contextSize
    this.kvType = kvType
    this.module = model.module
    this.pool = model.pool
    this.kernel = model.kernel
    this.w = model.weights
    this.kMax = kMaxOf(model.config)
    this.embedScale = ARCH_FAMILIES[model.config.arch].embedScale ? Math.fround(Math.sqrt(model.config.nEmbd)) : 1
    this.qScale = model.config.attnScale * Math.sqrt(model.config.headDim)
    if (Math.abs(this.qScale - 1) < 1e-12) this.qScale = 1
    this.segs = model.segments.map((g) => {
      // The state area served as scratch during loading: its dirty start goes back to zeros
      // (the rest of a fresh memory is zero, and stays untouched: no pages of an unused KV cache).
      new Uint8Array(g.memory.buffer, g.arena.top, g.scratchBytes).fill(0)
      const s = allocState(g.arena, model.config, contextSize)
      new Int32Array(g.memory.buffer, s.tiles, 2).set([ATT_TILE_SLOTS, ATT_TILE * model.config.headDim])
      return { memory: g.memory, first: g.first, end: g.end, kern: g.kernels, s }
    })
    this.layerSeg = Array.from({ length: model.config.nLayer }, (_, l) => this.segs.findIndex((g) => l >= g.first && l < g.end))
    ;({ memory: this.memory, kern: this.kern, s: this.s } = this.segs[0])
    this.mem = this.memory
    this.freeKv.push(this.newKv(model.segments.map((g, i) => g.arena.alloc(this.segmentKvBytes(i)))))
  }

  /** The model's own KV cache (what `forward` and `prefill` use when given none), made on first use. */
  get kv(): KvCache {
    return this.#ownKv ??= this.createKvCache()
  }

  /** @internal Whether `kv` is the model's own cache (which is never given back). */
  isOwnKv(kv: KvCache): boolean {
    return kv === this.#ownKv
  }

  /**
   * A transformer over a loaded model, computing on the model's thread pool (loadWeights
   * started it: LoadOptions `threads`, `pool`), with KV caches of `kvType` (its memory must
   * have been planned with the same type).
   */
  static create(model: LoadedModel, contextSize: number, kvType: KvType): Transformer {
    return new Transformer(model, contextSize, kvType)
  }

  /** Storage of the output projection in use ('f16', 'f32', 'q8b', 'q6b', 'q4b', or 'q4b+q8b': the bounded head). */
  get outputType(): string {
    return this.w.output.pass ? 'q4b+q8b' : this.w.output.type
  }

  /** Memories the model is spread over (1 unless it is larger than one wasm32 memory). */
  get segmentCount(): number {
    return this.segs.length
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
   * caches is reused; otherwise each memory segment grows by its layers' share.
   * @throws ResourceLimitError when a memory cannot grow, saying what frees or saves room.
   */
  createKvCache(): KvCache {
    const reused = this.freeKv.pop()
    if (reused) return new KvCache(this, reused.k, reused.v, reused.capacity)
    try {
      return this.newKv(this.segs.map((g, i) => {
        const top = Math.ceil(g.memory.buffer.byteLength / 64) * 64
        growMemory(g.memory, top + this.segmentKvBytes(i))
        return top
      }))
    } catch (e) {
      if (!(e instanceof ResourceLimitError)) throw e
      const mib = ((this.contextSize * kvBytesPerToken(this.config, this.kvType)) / 2 ** 20).toFixed(0)
      throw new ResourceLimitError(e.limit, e.max, `${e.message}. A new session needs a KV cache of its own (${mib} MiB: ` +
        `${this.contextSize} tokens of ${this.kvType} keys and values): dispose another session (session.dispose()) ` +
        'to hand its cache on, or load the model with a smaller contextSize (or kvType \'f16\')', e.needed)
    }
  }

  /** @internal Where layer l's rows start in a cache whose segments start at `bases`. */
  layerKv(bases: readonly number[], l: number): number {
    const g = this.layerSeg[l]
    return bases[g] + ((l - this.segs[g].first) * kvLayerBytes(this.config, this.contextSize, this.kvType)) / 2
  }

  /** @internal The memory holding layer l. */
  layerMemory(l: number): WasmMemory {
    return this.segs[this.layerSeg[l]].memory
  }

  /** Bytes of one cache's keys and values for the layers of segment i. */
  private segmentKvBytes(i: number): number {
    return (this.segs[i].end - this.segs[i].first) * kvLayerBytes(this.config, this.contextSize, this.kvType)
  }

  /** @internal Called by KvCache.dispose. */
  releaseKv(kv: KvCache): void {
    this.freeKv.push(kv)
  }

  private newKv(ptrs: number[]): KvCache {
    return new KvCache(this, ptrs, ptrs.map((p, i) => p + this.segmentKvBytes(i) / 2), this.contextSize)
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
   * Greedy sampling's argmax in wasm (`argmax_f32`, ~10× the JavaScript loop over a 128256-word
   * vocabulary) when `logits` is a view into this model's memory, as forward's results are: the
   * index of the largest logit (ties to the lowest id, NaN never wins), −1 when all are NaN or
   * −Infinity; undefined for any other array. The sampler's EngineArgmax.
   * @example new Sampler({ temperature: 0 }, (l) => transformer.argmax(l)).sample(transformer.forward(token, pos)!)
   */
  argmax(logits: Float32Array): number | undefined {
    if (logits.buffer !== this.memory.buffer) return undefined
    return this.segs[0].kern.argmax_f32(logits.byteOffset, logits.length)
  }

  /**
   * Re-runs the step of `token` at `pos` of `kv` (rewriting the same KV rows with the same values) with a
   * check of the residual stream after every layer; returns the first layer where it holds a NaN
   * or ±Inf, or undefined if all layers stay finite.
   */
  locateNonFinite(token: number, pos: number, kv: KvCache = this.kv): number | undefined {
    let found: number | undefined
    this.onLayer = (layer, x) => {
      if (found === undefined && firstNonFinite(x) >= 0) found = layer
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
    this.checkRows(rows)
    this.passes++
    const n = rows.length
    this.timed('embed', () => this.embedRows(rows))
    for (let l = 0; l < this.config.nLayer; l++) {
      // The layer's weights, KV rows and buffers are in its segment: bring the residual there.
      this.carry(this.layerSeg[l], n)
      this.attentionBlock(rows, l)
      this.ffnBlock(rows, l)
      this.onLayer?.(l, new Float32Array(this.mem.buffer, this.s.x, n * this.config.nEmbd))
    }
    this.carry(0, n)
    return this.logitsOf(rows)
  }

  private checkRows(rows: readonly BatchRow[]): void {
    const c = this.config
    if (rows.length < 1 || rows.length > MAX_BATCH) throw new InvalidArgumentError(`a batch holds 1..${MAX_BATCH} rows, got ${rows.length}`)
    for (const r of rows) {
      if (!Number.isInteger(r.token) || r.token < 0 || r.token >= c.vocabSize) {
        throw new InvalidArgumentError(`token id ${r.token} is out of range 0..${c.vocabSize - 1}`)
      }
      if (!Number.isInteger(r.pos) || r.pos < 0) throw new InvalidArgumentError(`position ${r.pos} is not a non-negative integer`)
      if (r.pos >= this.contextSize) throw new ContextFullError(this.contextSize, r.pos + 1)
    }
  }

  // h0 = Embed[tok]                                          x: [n][n_embd]  (F16 row → f32)
  // and each row's RoPE table at its position, in segment 0.
  private embedRows(rows: readonly BatchRow[]): void {
    const c = this.config
    this.carry(0, 0)
    const s = this.s
    rows.forEach((r, t) => {
      this.embed(r.token, row(s.x, t, c.nEmbd), t)
      this.ropeTable(r.pos, row(s.rope, t, c.nRot))
    })
    // h0 ·= √n_embd  (Gemma3; f32, as bitnet.cpp scales)
    if (this.embedScale !== 1) this.kern.scale_f32(s.x, rows.length * c.nEmbd, this.embedScale)
  }

  // h = h + PostNorm(BitLinear_o(SubNorm(Attention(RMSNorm(h)))))   for layer l
  private attentionBlock(rows: readonly BatchRow[], l: number): void {
    const c = this.config, L = this.w.layers[l], s = this.s, n = rows.length
    const qDim = c.nHead * c.headDim
    // a = RMSNorm(h, attn_norm), quantized per row (fused, in f64), shared by q, k and v;
    // with per-projection norms each of q, k, v quantizes RMSNorm(a, *_norm_in) of its own
    // q, k, v = BitLinear_q/k/v(a)                        q: [n][q_dim], k, v: [n][kv_dim]
    this.round('attn_qkv', this.projections(L.attnNorm, c.nEmbd, n, [[L.wq, s.q, L.qNormIn], [L.wk, s.k, L.kNormIn], [L.wv, s.v, L.vNormIn]]))
    this.timed('rope_kv', () => rows.forEach((r, t) => this.positionQk(r, t, l)))
    // o = softmax(q·Kᵀ/√d + causal)·V over positions 0..pos (GQA: head h → kv head h/group)
    this.attention(rows, l)
    // o = RMSNorm(o, attn_sub_norm)   (2B4T's extra SubLN before o_proj, or o_proj's own input
    // norm; absent in llama)
    this.normQuantize(s.ao, L.attnSubNorm, qDim, n)
    // h = h + PostNorm(BitLinear_o(o))                    xb: [n][n_embd]   (post-norm: Gemma3)
    this.round('attn_output', this.bitlinear(L.wo, s.xb, n))
    this.prefaultKv(rows, l, 'k')
    this.timed('residual', () => this.residual(L.postAttnNorm, n))
  }

  // Row t's q and k at its position, k and v appended to its cache at pos.
  private positionQk(r: BatchRow, t: number, l: number): void {
    const c = this.config, L = this.w.layers[l], kern = this.kern, s = this.s, kv = r.kv ?? this.kv
    const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim
    const kvRow = kvDim * KV_ELEM[this.kvType]
    // q, k = RMSNorm per head (Qwen3, Gemma3); q ·= attention scale ≠ 1/√head_dim (Gemma3's query_pre_attn_scalar)
    this.headNorm(row(s.q, t, qDim), L.qHeadNorm, c.nHead)
    this.headNorm(row(s.k, t, kvDim), L.kHeadNorm, c.nHeadKv)
    if (this.qScale !== 1) kern.scale_f32(row(s.q, t, qDim), qDim, this.qScale)
    // q, k = RoPE_neox(q, k, pos); k, v appended to the row's cache at pos
    kern.rope_neox_f32(row(s.q, t, qDim), c.nHead, c.headDim, c.nRot, row(s.rope, t, c.nRot))
    kern.rope_neox_f32(row(s.k, t, kvDim), c.nHeadKv, c.headDim, c.nRot, row(s.rope, t, c.nRot))
    this.storeKv(row(s.k, t, kvDim), kv.kAt(l) + r.pos * kvRow, kvDim)
    this.storeKv(row(s.v, t, kvDim), kv.vAt(l) + r.pos * kvRow, kvDim)
  }

  // h = h + PostNorm(BitLinear_down(SubNorm(act(gate) ⊙ up)))   for layer l, n rows
  private ffnBlock(rows: readonly BatchRow[], l: number): void {
    const c = this.config, L = this.w.layers[l], s = this.s, n = rows.length
    // f = RMSNorm(h, ffn_norm), quantized once per row, shared by gate and up (or per projection)
    //                                                     hb, hb2: [n][n_ff]
    this.round('ffn_gate_up', this.projections(L.ffnNorm, c.nEmbd, n, [[L.wGate, s.hb, L.gateNormIn], [L.wUp, s.hb2, L.upNormIn]]))
    this.prefaultKv(rows, l, 'v')
    // g = act(gate) ⊙ up            (ReLU² for 2B4T, SiLU for 1bitLLM / Qwen3, GELU-tanh for Gemma3; kept in f32)
    // g = RMSNorm(g, ffn_sub_norm)   (both row by row in one kernel)
    const { qa, meta, lut } = this.slot(0)
    this.rowJob(['gated_rmsnorm_quantize_rows_f32_i8', ACTIVATION_CODE[c.activation], s.hb, s.hb2, L.ffnSubNorm ?? 0, c.nFf, c.normEps,
      kPad(c.nFf), qa, meta, lut, n])
    // h = h + PostNorm(BitLinear_down(g))
    this.round('ffn_down', this.bitlinear(L.wDown, s.xb, n))
    this.timed('residual', () => this.residual(L.postFfnNorm, n))
  }

  // Layer l's key (or value) pages that the next pass of each cache here stores into first
  // (its next rows.length positions), touched by a worker while this thread does the serial
  // work before the next round (which finishes it): first-touch page faults, most of what
  // storing a new position cost, off the critical path (assembly/ops/prefault.ts). Keys after
  // the o projection, values after gate/up: a step that crosses into new pages crosses for
  // both, and one serial window is shorter than two faults. Only pages past the last one
  // this pass stored into: most decode steps post nothing.
  private prefaultKv(rows: readonly BatchRow[], l: number, which: 'k' | 'v'): void {
    const c = this.config
    const kvRow = c.nHeadKv * c.headDim * KV_ELEM[this.kvType]
    let jobs: Job[] | undefined
    for (let t = 0; t < rows.length; t++) {
      // each cache once (at its first row), from its last position in this pass
      const kv = rows[t].kv ?? this.kv
      let pos = rows[t].pos, seen = false
      for (let u = 0; u < rows.length; u++) {
        if ((rows[u].kv ?? this.kv) !== kv) continue
        if (u < t) seen = true
        pos = Math.max(pos, rows[u].pos)
      }
      if (seen) continue
      const base = which === 'k' ? kv.kAt(l) : kv.vAt(l)
      const stored = base + (pos + 1) * kvRow, stop = base + Math.min(pos + 1 + rows.length, kv.capacity) * kvRow
      const fresh = Math.ceil(stored / PAGE) * PAGE // the page of the last byte stored is mapped
      if (fresh < stop) (jobs ??= []).push(['prefault_pages', fresh, Math.ceil((stop - fresh) / PAGE)])
    }
    if (jobs) this.pool.post(jobs.slice(0, MAX_JOBS), this.seg)
  }

  // logits = RMSNorm(h, output_norm) · Embedᵀ   for the rows that want them   [m][vocab]
  // (tied unless output.weight exists). Those rows take slots 0..m−1 of oq and logits, so
  // the Q8B product is one pass over the matrix for the whole batch; a lone row with a `need`
  // goes through the bounded head when the model has one.
  private logitsOf(rows: readonly BatchRow[]): (Float32Array | undefined)[] {
    const c = this.config, w = this.w, kern = this.kern, s = this.s
    const out = w.output, layout = OUTPUT_LAYOUTS[out.type]
    const jobs: Job[] = []
    const kpOut = kPad(c.nEmbd)
    const input = (i: number, t: number): OutputRow =>
      ({ x: row(s.xb, t, c.nEmbd), q: s.oq + i * kpOut, scales: row(s.oqScales, i, kpOut / 128), sums: row(s.oqSums, i, kpOut / 32) })
    const slotRow: number[] = [] // slot → row
    rows.forEach((r, t) => {
      if (!r.logits) return
      const i = slotRow.push(t) - 1
      const a = input(i, t)
      kern.rmsnorm_f32(row(s.x, t, c.nEmbd), w.outputNorm, a.x, c.nEmbd, c.normEps)
      if (layout.activation === 'i8') kern.quantize_blocks_f32_i8(a.x, c.nEmbd, out.kp, a.q, a.scales, a.sums)
      if (layout.matvec) jobs.push(layout.matvec(out, a, row(s.logits, i, c.vocabSize)))
    })
    if (layout.matmul && slotRow.length) jobs.push(layout.matmul(out, input(0, 0), s.logits, slotRow.length))
    const heap = new Float32Array(this.memory.buffer)
    const logits: (Float32Array | undefined)[] = rows.map(() => undefined)
    const view = (i: number) => heap.subarray(row(s.logits, i, c.vocabSize) / F32_BYTES, row(s.logits, i, c.vocabSize) / F32_BYTES + c.vocabSize)
    const check = (t: number, l: Float32Array) => assertFiniteLogits(l, rows[t].pos, () => this.locateNonFinite(rows[t].token, rows[t].pos, rows[t].kv ?? this.kv),
      this.segs[0].kern.find_nonfinite_f32(l.byteOffset, l.length))
    const need = slotRow.length === 1 ? rows[slotRow[0]].need : undefined
    if (out.pass && need && need.topK < out.rows && this.boundedLogits(out, input(0, 0), need, view(0), (l) => check(slotRow[0], l))) {
      logits[slotRow[0]] = view(0)
      return logits
    }
    if (jobs.length) this.round('output', jobs)
    slotRow.forEach((t, i) => check(t, logits[t] = view(i)))
    return logits
  }

  // The bounded head (output-head.ts) for one row into y: the q4 pass, its logits checked
  // finite, the candidates rescored by the q8 kernel, the rest −Infinity. False when the
  // candidates are too many: then y holds nothing usable and the caller runs the full pass.
  private boundedLogits(out: FloatMatrix, a: OutputRow, need: LogitNeed, y: Float32Array, check: (l: Float32Array) => void): boolean {
    const pass = out.pass!, s = this.s, buf = this.memory.buffer, st = this.headStats
    this.round('output_pass', [['matvec_q4b_i8', pass.ptr, pass.scales, a.q, a.scales, a.sums, y.byteOffset, out.rows, out.kp]])
    check(y)
    const t0 = this.profile ? performance.now() : 0
    const xnorm = activationNorm(new Int8Array(buf, a.q, out.kp), new Float32Array(buf, a.scales, out.kp / 128))
    // scratch: logits slots 1 and 2, unused with one logits row
    const at = { logits: y.byteOffset, bounds: pass.bounds, groups: s.groups, scratch: y.byteOffset + out.rows * F32_BYTES }
    const picked = selectCandidates(this.kern, buf, at, out.rows, xnorm, need, Math.floor(Math.ceil(out.rows / 4) * MAX_GROUP_SHARE))
    if (this.profile) this.addTime('output_select', performance.now() - t0)
    st.rows++
    if (!picked) { st.full++; return false }
    st.candidates += picked.tokens
    st.groups += picked.count
    this.round('output_rescore', [['rescore_q8b_i8', out.ptr, out.scales, a.q, a.scales, a.sums, y.byteOffset, out.rows, out.kp, s.groups, picked.count]])
    return true
  }

  /**
   * Final hidden states of the first `n` rows of the last forwardBatch, after the output
   * norm: RMSNorm(h_t, output_norm), copies [n][n_embd] (what HF calls last_hidden_state).
   * Uses xb as scratch, so call it right after the pass.
   */
  hiddenStates(n: number): Float32Array[] {
    const c = this.config, s = this.s
    if (!Number.isInteger(n) || n < 1 || n > MAX_BATCH) throw new InvalidArgumentError(`hiddenStates: n must be in 1..${MAX_BATCH}, got ${n}`)
    if (this.seg !== 0) throw new InvalidArgumentError('hiddenStates: the last pass did not finish')
    return Array.from({ length: n }, (_, t) => {
      const x = s.x + t * c.nEmbd * F32_BYTES, xn = s.xb + t * c.nEmbd * F32_BYTES
      this.kern.rmsnorm_f32(x, this.w.outputNorm, xn, c.nEmbd, c.normEps)
      return new Float32Array(this.memory.buffer, xn, c.nEmbd).slice()
    })
  }

  // RMSNorm(x_t)·w (no norm when w is undefined; normed with w0 first when given) → int8
  // with per-token absmax scale, K zero-padded to the kernel block, for rows t < n, into
  // qa slot `slot`: [n][kp], meta [n] (+ the TL kernel's tables); the BitLinears of the
  // step read these. One row runs here, a batch is a round split by rows.
  private normQuantize(x: number, w: number | undefined, dim: number, n: number, slot = 0, w0 = 0): void {
    const { qa, meta, lut } = this.slot(slot)
    this.rowJob(['rmsnorm_quantize_rows_f32_i8', x, w0, w ?? 0, dim, this.config.normEps, kPad(dim), qa, meta, lut, n])
  }

  // A norm + quantize job over the rows of a batch (its last argument is the row count): a
  // round split by rows, or one row right here (a round would cost more than the row).
  private rowJob(job: Job): void {
    if ((job[job.length - 1] as number) > 1) return this.round('norm_quantize', [job])
    this.timed('norm_quantize', () => callJob(this.kern, job, 0, 1))
  }

  // Pointers of quantized-activation slot i (TL tables only with the TL kernel).
  private slot(i: number): QuantizedRows {
    const s = this.s, kMax = this.kMax
    const lut = TERNARY_LAYOUTS[this.kernel].activation === 'i8+lut' ? s.lut + i * MAX_BATCH * kMax * 16 : 0
    return { qa: s.qa + i * MAX_BATCH * kMax, meta: s.qaMeta + i * MAX_BATCH * 8, lut }
  }

  // The jobs of projections sharing one input x (normed with `norm`): one quantized input for
  // all of them, or, where each has its own input norm (ArchFamily.projNorms), one per
  // projection, RMSNorm(RMSNorm(x, norm), normIn) fused in f64.
  private projections(norm: number, dim: number, n: number, projs: [W: TernaryWeight, y: number, normIn?: number][]): Job[] {
    if (projs[0][2] === undefined) {
      this.normQuantize(this.s.x, norm, dim, n)
      return projs.flatMap(([W, y]) => this.bitlinear(W, y, n))
    }
    return projs.flatMap(([W, y, normIn], i) => {
      this.normQuantize(this.s.x, normIn, dim, n, i, norm)
      return this.bitlinear(W, y, n, i)
    })
  }

  // RMSNorm of each head of one row's q or k [heads][head_dim] in place, if the layer has head norms.
  private headNorm(x: number, w: number | undefined, heads: number): void {
    if (w === undefined) return
    const hd = this.config.headDim
    for (let h = 0; h < heads; h++) this.kern.rmsnorm_f32(x + h * hd * F32_BYTES, w, x + h * hd * F32_BYTES, hd, this.config.normEps)
  }

  // h += PostNorm(xb) per row (post-norm: Gemma3), else h += xb.
  private residual(postNorm: number | undefined, n: number): void {
    const c = this.config, s = this.s
    if (postNorm !== undefined) {
      for (let t = 0; t < n; t++) this.kern.rmsnorm_f32(s.xb + t * c.nEmbd * F32_BYTES, postNorm, s.xb + t * c.nEmbd * F32_BYTES, c.nEmbd, c.normEps)
    }
    this.kern.add_f32(s.x, s.xb, n * c.nEmbd)
  }

  // Attention of every row, in one round (assembly/ops/attention.ts; on this thread alone
  // while the rows attend few positions: ATT_ALONE_POSITIONS): partial softmax
  // results per (kv head, block of ATT_BLOCK positions), combined per query head by the item
  // that finishes a kv head's last block (counted in `count`, zeroed here before the round).
  // Consecutive rows of one cache at consecutive positions (a prompt chunk) form one job,
  // which reads each key and value once for all of them (several when that leaves too few
  // items: ATT_MIN_ITEMS). A job's scratch is that of its first row, so jobs of one round
  // never share any; the widened-tile slots (s.tiles) are claimed by each call that uses one.
  private attention(rows: readonly BatchRow[], l: number): void {
    const c = this.config, s = this.s
    const qDim = c.nHead * c.headDim
    const maxBlocks = Math.ceil(this.contextSize / ATT_BLOCK)
    const simd = c.headDim % 8 === 0 ? 'simd' : 'ref'
    const jobs: Job[] = []
    new Int32Array(this.mem.buffer, s.count, rows.length * c.nHeadKv).fill(0)
    for (let t = 0; t < rows.length;) {
      const kv = rows[t].kv ?? this.kv
      let n = 1
      while (t + n < rows.length && (rows[t + n].kv ?? this.kv) === kv && rows[t + n].pos === rows[t].pos + n) n++
      // A short context has few items (kv heads × blocks): its rows go in several jobs.
      const items = c.nHeadKv * Math.ceil((rows[t].pos + n) / ATT_BLOCK)
      const per = Math.ceil(n / Math.min(n, Math.ceil(ATT_MIN_ITEMS / items)))
      for (const end = t + n; t < end; t += per) {
        const q = s.q + t * qDim * F32_BYTES, out = s.ao + t * qDim * F32_BYTES
        const att = s.att + t * c.nHead * maxBlocks * ATT_BLOCK * F32_BYTES
        const part = s.part + t * c.nHead * maxBlocks * (4 + c.headDim) * F32_BYTES
        jobs.push([ATTENTION_PARTIAL[this.kvType][simd], q, kv.kAt(l), kv.vAt(l), att, part, s.count + t * c.nHeadKv * 4, s.tiles, out,
          Math.min(per, end - t), c.nHead, c.nHeadKv, c.headDim, rows[t].pos + 1, ATT_BLOCK])
      }
    }
    const positions = rows.reduce((a, r) => a + r.pos + 1, 0)
    if (positions > ATT_ALONE_POSITIONS) return this.round('attention', jobs)
    this.timed('attention', () => this.pool.runAlone(jobs, this.seg))
  }

  // Independent jobs on every thread, timed per label when profiling: one round, or several
  // when there are more jobs than a round holds (the TL kernel's one job per row).
  private round(label: string, jobs: Job[]): void {
    const t0 = this.profile ? performance.now() : 0
    for (let i = 0; i < jobs.length; i += MAX_JOBS) this.pool.run(jobs.length <= MAX_JOBS ? jobs : jobs.slice(i, i + MAX_JOBS), this.seg)
    if (this.profile) this.addTime(label, performance.now() - t0)
  }

  // Host work on this thread alone between rounds, timed per label when profiling.
  private timed(label: string, fn: () => void): void {
    if (!this.profile) return fn()
    const t0 = performance.now()
    fn()
    this.addTime(label, performance.now() - t0)
  }

  private addTime(label: string, ms: number): void {
    const e = this.profile!.get(label)
    if (e) { e.ms += ms; e.calls++ } else this.profile!.set(label, { ms, calls: 1 })
  }

  // The jobs y_t = (W_codes · q_t − Σq_t) / s_t · γ for the n quantized rows of qa slot
  // `slot`, y: [n][rows], as the weights' layout runs them (layouts.ts).
  private bitlinear(W: TernaryWeight, y: number, n: number, slot = 0): Job[] {
    return TERNARY_LAYOUTS[this.kernel].jobs(W, this.slot(slot), y, n)
  }

  // n keys or values (f32) into a cache row of the model's KV type.
  private storeKv(src: number, dst: number, n: number): void {
    if (this.kvType === 'f16') this.kern.f32_to_f16(src, dst, n)
    else this.copyF32(src, dst, n)
  }

  private copyF32(src: number, dst: number, n: number): void {
    new Uint8Array(this.mem.buffer).copyWithin(dst, src, src + n * F32_BYTES)
  }

  // Row `token` of the embedding → f32 at dst. An untied model's embedding is the file's
  // bytes outside wasm memory: an F16 row goes through xb row t (free before layer 0) to the
  // same conversion kernel, other formats are decoded here.
  private embed(token: number, dst: number, t: number): void {
    const e = this.w.tokenEmbd
    if ('host' in e) {
      const bytes = e.host.subarray(token * e.rowBytes, (token + 1) * e.rowBytes)
      if (e.format !== 'F16') return new Float32Array(this.mem.buffer, dst, e.cols).set(dequantizeRows(e.format, bytes, e.cols))
      const staged = this.s.xb + t * e.cols * F32_BYTES
      new Uint8Array(this.mem.buffer).set(bytes, staged)
      return this.kern.f16_to_f32(staged, dst, e.cols)
    }
    OUTPUT_LAYOUTS[e.type].embedRow(this.kern, new Uint8Array(this.mem.buffer), e, token, dst)
  }

  // Moves the pass to segment g, copying the first n rows of the residual stream and of the
  // RoPE table into g's buffers (a model in one memory never copies).
  private carry(g: number, n: number): void {
    if (g === this.seg) return
    const from = this.segs[this.seg], to = this.segs[g], c = this.config
    const src = new Uint8Array(from.memory.buffer), dst = new Uint8Array(to.memory.buffer)
    dst.set(src.subarray(from.s.x, from.s.x + n * c.nEmbd * F32_BYTES), to.s.x)
    dst.set(src.subarray(from.s.rope, from.s.rope + n * c.nRot * F32_BYTES), to.s.rope)
    this.seg = g
    this.kern = to.kern
    this.s = to.s
    this.mem = to.memory
  }

  // cos/sin of pos·θ^(−2i/n_rot), i < n_rot/2, computed in f64 once per row, into dst.
  private ropeTable(pos: number, dst: number): void {
    const { nRot, ropeTheta } = this.config
    const half = nRot / 2
    const heap = new Float32Array(this.mem.buffer, dst, nRot)
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(ropeTheta, (-2 * i) / nRot)
      heap[i] = Math.cos(angle)
      heap[half + i] = Math.sin(angle)
    }
  }
}

/** A BitLinear input width padded to the kernels' 128-column block. */
const kPad = (k: number) => Math.ceil(k / 128) * 128

/** Row stride of a quantized-activation slot: the widest BitLinear input, padded to 128. */
const kMaxOf = (c: ModelConfig) => kPad(Math.max(c.nEmbd, c.nHead * c.headDim, c.nFf))

function allocState(a: Arena, c: ModelConfig, ctx: number): RunState {
  const B = MAX_BATCH
  const qDim = c.nHead * c.headDim
  const kvDim = c.nHeadKv * c.headDim
  const kMax = kMaxOf(c)
  const kpOut = kPad(c.nEmbd)
  const maxBlocks = Math.ceil(ctx / ATT_BLOCK)
  return {
    x: a.alloc(B * c.nEmbd * F32_BYTES),
    xb: a.alloc(B * c.nEmbd * F32_BYTES),
    q: a.alloc(B * qDim * F32_BYTES),
    k: a.alloc(B * kvDim * F32_BYTES),
    v: a.alloc(B * kvDim * F32_BYTES),
    ao: a.alloc(B * qDim * F32_BYTES),
    hb: a.alloc(B * c.nFf * F32_BYTES),
    hb2: a.alloc(B * c.nFf * F32_BYTES),
    qa: a.alloc(QA_SLOTS * B * kMax),
    qaMeta: a.alloc(QA_SLOTS * B * 8),
    lut: a.alloc(QA_SLOTS * B * kMax * 16),
    att: a.alloc(B * c.nHead * maxBlocks * ATT_BLOCK * F32_BYTES),
    part: a.alloc(B * c.nHead * maxBlocks * (4 + c.headDim) * F32_BYTES),
    count: a.alloc(B * c.nHeadKv * 4),
    tiles: a.alloc(64 + ATT_TILE_SLOTS * (64 + ATT_TILE * c.headDim * F32_BYTES)),
    rope: a.alloc(B * c.nRot * F32_BYTES),
    logits: a.alloc(B * c.vocabSize * F32_BYTES),
    oq: a.alloc(B * kpOut),
    oqScales: a.alloc(B * (kpOut / 128) * F32_BYTES),
    oqSums: a.alloc(B * (kpOut / 32) * 4),
    groups: a.alloc(Math.ceil(c.vocabSize / 4) * 4),
  }
}
