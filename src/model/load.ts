/**
 * A model's tensors (ModelContents: a GGUF file or a Hugging Face folder) → weights in wasm
 * memory, in the kernels' layouts.
 *
 * Tensors are read one at a time (never the whole file), each is checked against the
 * config's shapes and repacked straight into its final place, so peak memory stays near
 * the packed model size: the wasm memories plus one tensor in flight.
 */
import { memoryLimits, type MemoryLimits } from '../env.js'
import { ModelFormatError, NotTernaryError, UnsupportedFeatureError } from '../errors.js'
import { FORMATS, TERNARIZABLE, decodeTernary, dequantizeRows, type FormatName } from '../formats/index.js'
import { isTernaryValued, ternarize } from '../formats/ternarize.js'
import { f32ToF16 } from '../formats/float.js'
import type { LoadProgress } from '../io/download.js'
import { CTL_BYTES } from '../runtime/protocol.js'
import { ThreadPool, usableThreads, type PoolOptions } from '../runtime/thread-pool.js'
import { compileKernels, createMemories, instantiateKernels, largestMemory, type KernelVariant, type Kernels, type WasmMemory, type WasmModule, type WasmSource } from '../runtime/wasm.js'
import { ARCH_FAMILIES, type ModelConfig } from './config.js'
import type { ModelContents, ModelLayout, ModelTensor } from './contents.js'
import { assertFiniteTensor, nonFiniteWeight } from './numerics.js'
import { unpermuteQkRows } from './qk-permute.js'
import { selectTernaryKernel } from './kernel-select.js'
import { layoutSize, outputPassAt, OUTPUT_LAYOUTS, TERNARY_LAYOUTS, type FloatMatrix, type OutputLayoutName, type TernaryKernel, type TernaryWeight } from './layouts.js'
import { layerTensors, modelTensors, scaleTensorName } from './tensors.js'
import { checkMemoryLimits, MAX_SEGMENT_BYTES, memorySizes, planSegments, reservationError, type Placed, type Segment, type SegmentPlan, type StateSize } from './segments.js'

/**
 * The input embedding of an untied model, outside wasm memory: the file's bytes of
 * [rows][cols] (F16, BF16, F32, Q8_0 or Q6_K), one row of `rowBytes` read per token. Only
 * the output projection needs a copy the kernels stream; the embedding is one row per token.
 */
export interface HostMatrix {
  host: Uint8Array
  format: FormatName
  rows: number
  cols: number
  rowBytes: number
}

/**
 * How the output projection is stored: 'f16' (exact, F16 files), 'q8' (a byte per weight,
 * half the bytes), 'q6' (6-bit copy, 6.25 bits per weight with scales), 'q4' (4-bit copy, 5 bits per weight with scales), 'q4+q8' (both: decode
 * steps read the q4 copy and rescore the tokens that can win with the q8 one, giving the q8
 * head's tokens; output-head.ts), or 'auto': a quantized copy (AUTO_QUANTIZED) when the matrix
 * is large enough to dominate a decode step's reads (≥ AUTO_QUANTIZED_ELEMENTS: 2B4T, 3B, 8B),
 * exact f16 below (tiny models, 0.7B).
 */
export type OutputType = 'auto' | 'f16' | 'q8' | 'q6' | 'q4' | 'q4+q8'

/** 64 Mi elements = 128 MiB of f16. */
export const AUTO_QUANTIZED_ELEMENTS = 1 << 26

/**
 * The copy 'auto' keeps of a large output matrix, per kernel build (both within the 0.5 %
 * perplexity budget on tiny-dev: q6 +0.19 %, q8 +0.24 %). q6 where the relaxed dot makes its
 * unpacking cheap: a 2B4T decode step 0.91× q8's at 1 and 2 threads, its output round 0.73×
 * (bench/output-copies.mjs); q8 on the baseline builds, where q6's output round is 1.13–1.21×
 * q8's. So 'auto' output differs between builds by that rounding; pass `outputType` to pin it.
 */
export const AUTO_QUANTIZED: Record<KernelVariant, 'q8' | 'q6'> = { relaxed: 'q6', simd: 'q8', single: 'q8' }

/** What `outputType` means for a matrix of `elements` weights on build `variant`. */
export function resolveOutputType(outputType: OutputType, elements: number, variant: KernelVariant): Exclude<OutputType, 'auto'> {
  if (outputType !== 'auto') return outputType
  return elements >= AUTO_QUANTIZED_ELEMENTS ? AUTO_QUANTIZED[variant] : 'f16'
}

export interface LayerWeights {
  attnNorm: number // f32 [n_embd]
  /** Per-projection input norms of q, k, v (ArchFamily.projNorms), f32 [n_embd] each. */
  qNormIn?: number
  kNormIn?: number
  vNormIn?: number
  wq: TernaryWeight // [n_head·head_dim, n_embd]
  wk: TernaryWeight // [kv_dim, n_embd]
  wv: TernaryWeight // [kv_dim, n_embd]
  /** Head norms of q and k (ArchFamily.qkNorm), f32 [head_dim]. */
  qHeadNorm?: number
  kHeadNorm?: number
  attnSubNorm?: number // f32 [n_head·head_dim]  (or attn_output_norm_in: the same place)
  wo: TernaryWeight // [n_embd, n_head·head_dim]
  postAttnNorm?: number // f32 [n_embd]  (ArchFamily.postNorms)
  ffnNorm: number // f32 [n_embd]
  gateNormIn?: number // f32 [n_embd]
  upNormIn?: number // f32 [n_embd]
  wGate: TernaryWeight // [n_ff, n_embd]
  wUp: TernaryWeight // [n_ff, n_embd]
  ffnSubNorm?: number // f32 [n_ff]  (or ffn_down_norm_in)
  wDown: TernaryWeight // [n_embd, n_ff]
  postFfnNorm?: number // f32 [n_embd]
}

export interface ModelWeights {
  tokenEmbd: FloatMatrix | HostMatrix // [vocab][n_embd]: host bytes when untied, else the output matrix
  outputNorm: number // f32 [n_embd]
  output: FloatMatrix // [vocab][n_embd]
  layers: LayerWeights[]
}

export type { LoadProgress } from '../io/download.js'

export interface LoadedModel {
  config: ModelConfig
  contents: ModelContents
  /** The memories holding the model: one unless it is larger than one wasm32 memory (segments.ts). */
  segments: Segment[]
  module: WasmModule
  /** Which build of the kernels runs. */
  variant: KernelVariant
  /** Which ternary kernel the weights are laid out for. */
  kernel: TernaryKernel
  weights: ModelWeights
  /** The compute threads (started before the weights, which their rounds convert); the caller disposes it. */
  pool: ThreadPool
}

export interface LoadOptions {
  /** Runtime state to reserve after the weights (activation buffers, KV cache rows per layer), computed by the caller. */
  state: (config: ModelConfig) => StateSize
  /** The context the state is for, in errors when it does not fit (e.g. 'a 4096-token context (the contextSize option)'). */
  stateLabel?: string
  /** Largest memory (default and at most 4 GiB, wasm32's limit); larger models take several (ModelOptions.maxMemoryBytes). */
  segmentBytes?: number
  onProgress?: (p: LoadProgress) => void
  signal?: AbortSignal
  /** Kernel build to use; default: the fastest this runtime runs. */
  variant?: KernelVariant
  /** Ternary kernel (and weight layout); default 'auto': the faster in this runtime. */
  kernel?: TernaryKernel | 'auto'
  /** Storage of the output projection (and of the embedding when tied). Default 'auto'. */
  outputType?: OutputType
  /** Kernel binaries override (unusual hosting). */
  wasm?: WasmSource
  /**
   * Compute threads, this one included (default 1): they convert the weights, then run the
   * model. A build without shared memory runs on 1 (said through `pool.logger`).
   */
  threads?: number
  /** Options of the thread pool. */
  pool?: PoolOptions
}

/**
 * Loads a model's weights into fresh wasm memories (one unless the model is larger than 4 GiB)
 * and starts its compute threads, which share the conversions (repacks, quantized copies).
 * @example
 * const model = await loadWeights(await ggufContents(source), { state: () => ({ buffers: 1 << 20, kvPerLayer: 1 << 16 }), threads: 2 })
 */
export async function loadWeights(contents: ModelContents, opts: LoadOptions): Promise<LoadedModel> {
  const planned = await planMemories(contents, opts)
  const { module, plan } = planned
  // A plain full-precision model is refused before the embedding streams in (it comes first).
  const probe = plan.find((p) => p.strictTernary)
  if (probe) ternaryValued(probe, await probe.info.read(0, probe.info.byteSize))
  const memories = reserveMemories(planned)
  const segments = planned.segments.map((g, i): Segment => ({ ...g, memory: memories[i], kernels: instantiateKernels(module, memories[i]) }))
  const threads = usableThreads(opts.threads ?? 1, planned.variant, opts.pool?.logger ?? console)
  const pool = await ThreadPool.create(module, memories, segments.map((g) => g.kernels), planned.ctl, threads, opts.pool)
  try {
    await storeWeights(contents, planned, segments, pool, opts)
  } catch (e) {
    await pool.dispose()
    throw e
  }
  const { variant, kernel } = planned
  return { config: contents.config, contents, segments, module, variant, kernel, weights: assemble(plan, contents.config, kernel), pool }
}

/** Reads every tensor of the plan into its place, converting on the pool's threads. */
async function storeWeights(contents: ModelContents, planned: MemoryPlan, segments: Segment[], pool: ThreadPool, opts: LoadOptions): Promise<void> {
  const { plan, kernel } = planned, file = contents.name
  const heaps = segments.map((g) => new Uint8Array(g.memory.buffer))
  const total = plan.reduce((s, p) => s + p.info.byteSize, 0)
  let loaded = 0
  for (const p of plan) {
    opts.signal?.throwIfAborted()
    const read: Reader = async (offset, length, into) => {
      const bytes = await p.info.read(offset, length, into)
      if (bytes.byteLength !== length) {
        throw new ModelFormatError(`tensor '${p.info.name}' is truncated`, {
          file: p.info.file, offset: p.info.offset + offset, expected: `${length} bytes`, found: `${bytes.byteLength}`,
        })
      }
      return bytes
    }
    const { kernels, arena } = segments[p.seg], heap = heaps[p.seg], scratch = arena.top
    const at: Target = { heap, kernels, pool, scratch }
    if (p.role === 'rows') p.host = await storeHostRows(p, read, at)
    else if (p.role === 'matrix') await storeMatrix(p, read, at)
    else if (isCanonicalI2s(p)) p.gamma = await storeI2s(p, read, at, kernel)
    else p.gamma = storeTensor(p, await read(0, p.info.byteSize), heap, kernel)
    loaded += p.info.byteSize
    opts.onProgress?.({ phase: 'repack', file, loaded, total })
  }
}

/** Where a tensor goes: its segment's memory and kernels, the pool converting it, the segment's scratch area. */
interface Target { heap: Uint8Array; kernels: Kernels; pool: ThreadPool; scratch: number }

/**
 * Checks from its tensor directory alone (no weight is read: a GGUF header is enough) that a
 * model fits this runtime with `opts`: its memories are planned as loadWeights plans them,
 * checked against what the runtime tells (env.memoryLimits), then reserved once and let go.
 * @throws ResourceLimitError naming what the model needs, the limit found and what to do.
 * @example
 * await checkWeightsFit(await ggufLayout(rangeSource(url, size)), { state: (c) => stateSize(c, 4096, 'f16') })
 */
export async function checkWeightsFit(contents: ModelLayout, opts: LoadOptions): Promise<void> {
  reserveMemories(await planMemories(contents, { ...opts, onProgress: undefined }))
}

/** A model's memories, planned from its tensor directory and the options; nothing reserved yet. */
interface MemoryPlan {
  module: WasmModule
  variant: KernelVariant
  kernel: TernaryKernel
  plan: Planned[]
  segments: SegmentPlan[]
  /** The thread pool's control block: first in segment 0, clear of the scratch area loading uses. */
  ctl: number
  /** Bytes of each segment's memory. */
  sizes: number[]
  limits: MemoryLimits
  /** The context the state is for, in errors. */
  label: string
}

/**
 * Plans every tensor's place and the memories holding them: in each, weights first, then the
 * caller's state. Tensors pass through a scratch area where the runtime state will live
 * (unused until load ends): rows of an F16 matrix being converted to Q8B, never as a whole f16
 * copy, and each official I2_S tensor on its way to the c4 layout. A plan larger than the
 * runtime says it has is refused here (segments.ts checkMemoryLimits).
 */
async function planMemories(contents: ModelLayout, opts: LoadOptions): Promise<MemoryPlan> {
  const { config, name: file } = contents
  opts.onProgress?.({ phase: 'compile', file, loaded: 0, total: 1 })
  const { module, variant } = await compileKernels({ variant: opts.variant, wasm: opts.wasm })
  const kernel = !opts.kernel || opts.kernel === 'auto' ? selectTernaryKernel(module, variant) : opts.kernel
  const plan = planTensors(contents.tensors, config, file, (elements) => resolveOutputType(opts.outputType ?? 'auto', elements, variant), kernel)
  for (const p of plan) {
    p.layer = Number(/^blk\.(\d+)\./.exec(p.info.name)?.[1] ?? -1)
    p.scratch = (p.matrixType && OUTPUT_LAYOUTS[p.matrixType].convert) || p.role === 'rows' ? Math.min(p.rows, MATRIX_CHUNK_ROWS) * config.nEmbd * 2 : isCanonicalI2s(p) ? p.info.byteSize : 0
    if (p.pass) p.scratch = Math.max(p.scratch, 8 * config.nEmbd) // the bounds' two dequantized rows
    if (p.role === 'matrix' && p.matrixType !== 'f32' && REQUANTIZED[p.info.format]) p.scratch += Math.min(p.rows, MATRIX_CHUNK_ROWS) * (p.info.byteSize / p.rows) // the file's rows, past their f16 rows
  }
  const state = opts.state(config)
  const capacity = Math.min(opts.segmentBytes ?? MAX_SEGMENT_BYTES, MAX_SEGMENT_BYTES)
  const label = opts.stateLabel ?? 'the requested context'
  const ctl: Placed = { bytes: CTL_BYTES, layer: -1, scratch: 0, ptr: 0, seg: 0 }
  const segments = planSegments([ctl, ...plan], state, capacity, label)
  const sizes = memorySizes(segments, state)
  const limits = await memoryLimits()
  checkMemoryLimits(sizes, limits, label)
  return { module, variant, kernel, plan, segments, ctl: ctl.ptr, sizes, limits, label }
}

/** The plan's memories, all held at once; one the runtime refuses becomes the error saying what would fit. */
function reserveMemories(m: MemoryPlan): WasmMemory[] {
  const r = createMemories(m.sizes, m.variant)
  if ('memories' in r) return r.memories
  const largest = r.refused === 0 ? largestMemory(m.sizes[0], m.variant) : 0
  throw reservationError(m.sizes, r.refused, largest, m.limits, m.label)
}

/** 'rows': the untied input embedding, kept outside wasm memory (HostMatrix). */
type Role = 'ternary' | 'norm' | 'matrix' | 'rows' | 'scale'

interface Planned extends Placed {
  info: ModelTensor
  role: Role
  /** Expected [rows, cols] (rows = ne1, cols = ne0). */
  rows: number
  cols: number
  gamma: number
  matrixType?: OutputLayoutName
  /** A q8b matrix followed by its q4b pass copy and row bounds (outputType 'q4+q8'). */
  pass?: boolean
  /** Padded K (of the output matrix's layout). */
  kp: number
  /** q/k rows stored permuted for NORM RoPE: heads to un-permute (config.rope 'norm'). */
  permutedHeads?: number
  /** Full-precision projection that must already be ternary-valued (ArchFamily.latents false). */
  strictTernary?: boolean
  /** Role 'rows': the bytes as read. */
  host?: Uint8Array
}

/**
 * Finds every tensor the graph needs (tensors.ts: the embedding, output norm and matrix first,
 * then the layers; each ternary projection's optional 1bitLLM `.scale`), checks it and sizes its copy.
 */
/** The output type the options ask for, resolved for a matrix of that many weights. */
type OutputTypeOf = (elements: number) => Exclude<OutputType, 'auto'>

function planTensors(tensors: ModelTensor[], c: ModelConfig, file: string, outputType: OutputTypeOf, kernel: TernaryKernel): Planned[] {
  const byName = new Map(tensors.map((t) => [t.name, t]))
  checkDeclaredCounts(byName, c, file)
  const family = ARCH_FAMILIES[c.arch]
  const specs = [...modelTensors(c, 'start'), ...modelTensors(c, 'end'), ...Array.from({ length: c.nLayer }, (_, l) => layerTensors(c, l)).flat()]
  const plan: Planned[] = []
  const add = (info: ModelTensor, role: Role, rows: number, cols: number): void => {
    checkTensor(info, role, rows, cols, file)
    plan.push(storagePlan(info, role, rows, cols, outputType, kernel))
  }
  for (const spec of specs) {
    const info = byName.get(spec.name)
    if (!info) {
      if (spec.optional) continue
      throw new ModelFormatError(`missing tensor '${spec.name}'`, { file })
    }
    const [cols, rows = 1] = spec.dims
    // An untied model's input embedding stays outside wasm memory.
    add(info, spec.name === 'token_embd.weight' && byName.has('output.weight') ? 'rows' : spec.role, rows, cols)
    const scale = spec.role === 'ternary' ? byName.get(scaleTensorName(spec.name)) : undefined
    if (scale) add(scale, 'scale', 1, 1)
  }
  for (const p of plan) {
    if (p.role !== 'ternary') continue
    p.strictTernary = !family.latents && TERNARIZABLE.includes(p.info.format)
    if (c.rope === 'norm' && /\.attn_[qk]\.weight$/.test(p.info.name)) p.permutedHeads = p.rows / c.headDim
  }
  rejectUnused(tensors, plan, file)
  return plan
}

/** A tensor's shape (`[cols, rows]`; a norm or scale: the element count) and type against its role. */
function checkTensor(info: ModelTensor, role: Role, rows: number, cols: number, file: string): void {
  const found = `[${info.dims.join(', ')}] ${info.format}`
  const n = info.dims.reduce((a, b) => a * b, 1)
  const shapeOk = role === 'norm' || role === 'scale'
    ? n === rows * cols
    : info.dims.length === 2 && info.dims[0] === cols && info.dims[1] === rows
  if (!shapeOk) {
    throw new ModelFormatError(`tensor '${info.name}' has the wrong shape`, { file, expected: `[${cols}, ${rows}]`, found })
  }
  const ternary = FORMATS[info.format as keyof typeof FORMATS]?.ternary
  if (role !== 'ternary') {
    if (ternary) throw new ModelFormatError(`tensor '${info.name}' must be full precision`, { file, found })
  } else if (!ternary && !TERNARIZABLE.includes(info.format)) {
    throw new UnsupportedFeatureError(`${file}: tensor '${info.name}' is ${info.format}; ternary projections must be ternary (I2_S, TQ1_0, TQ2_0, TL1, TL2) or full precision (${TERNARIZABLE.join(', ')})`)
  }
}

/**
 * How a tensor is stored (the storage policy): ternary projections in the kernel's layout; the
 * output matrix (token_embd when tied) in the layout `outputType` picks, from F16 or BF16 (via
 * f16), else f32; norms and scales as f32; the untied input embedding outside wasm memory.
 */
function storagePlan(info: ModelTensor, role: Role, rows: number, cols: number, outputType: OutputTypeOf, kernel: TernaryKernel): Planned {
  const p: Planned = { info, role, rows, cols, bytes: 0, ptr: 0, seg: 0, layer: -1, scratch: 0, gamma: 1, kp: cols }
  if (role === 'ternary') {
    p.bytes = layoutSize(TERNARY_LAYOUTS[kernel], rows, cols).bytes
  } else if (role === 'matrix') {
    const wanted = outputType(rows * cols)
    // a quantized copy comes from f16 rows: F16 and BF16 files, or Q8_0 / Q6_K ones dequantized
    const viaF16 = HALF.includes(info.format) || (wanted !== 'f16' && REQUANTIZED[info.format] !== undefined)
    p.pass = wanted === 'q4+q8' && viaF16
    p.matrixType = !viaF16 ? 'f32' : (Object.keys(OUTPUT_LAYOUTS) as OutputLayoutName[]).find((t) => OUTPUT_LAYOUTS[t].option === (p.pass ? 'q8' : wanted))!
    ;({ kp: p.kp, bytes: p.bytes } = layoutSize(OUTPUT_LAYOUTS[p.matrixType], rows, cols))
    if (p.pass) p.bytes += outputPassAt(0, rows, cols).bytes
  } else if (role !== 'rows') {
    p.bytes = rows * cols * 4
  }
  return p
}

/**
 * The vocabulary and layer count size buffers and caches, so they must be what the tensors
 * hold: a small file declaring a huge vocabulary or depth is refused before anything is
 * reserved, naming the declared value and what the file has.
 */
function checkDeclaredCounts(byName: Map<string, ModelTensor>, c: ModelConfig, file: string): void {
  const embd = byName.get('token_embd.weight')
  if (embd && embd.dims.length === 2 && embd.dims[1] !== c.vocabSize) {
    throw new ModelFormatError(`the file declares a vocabulary of ${c.vocabSize} tokens (${c.arch}.vocab_size) but token_embd.weight has ${embd.dims[1]} rows`,
      { file, expected: `${c.vocabSize} rows`, found: `[${embd.dims.join(', ')}]` })
  }
  // Layers the file has tensors of: 1 + the highest blk.N (a hole is a missing tensor, named later).
  let held = 0
  for (const name of byName.keys()) held = Math.max(held, 1 + Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1))
  if (held < c.nLayer) {
    throw new ModelFormatError(`the file declares ${c.nLayer} layers (${c.arch}.block_count) but holds tensors for ${held}`,
      { file, expected: `${c.nLayer} layers`, found: `${held}` })
  }
}

/**
 * Tensors a file may carry that the graph does not need: bitnet.cpp's TL1/TL2 converter writes
 * each γ twice, in the packed tensor's tail and as an F32 `<name>_scale` tensor.
 */
const REDUNDANT = /\.weight_scale$/

/** A tensor the engine would not use (a bias, an extra norm, rope_freqs) would silently change the model: refuse. */
function rejectUnused(tensors: ModelTensor[], plan: Planned[], file: string): void {
  const used = new Set(plan.map((p) => p.info.name))
  const unused = tensors.filter((t) => !used.has(t.name) && !REDUNDANT.test(t.name)).map((t) => t.name)
  if (unused.length === 0) return
  const list = unused.slice(0, 6).join(', ') + (unused.length > 6 ? `, … (${unused.length} in all)` : '')
  throw new UnsupportedFeatureError(`${file}: tensors this engine's graph has no place for: ${list}. ` +
    'They are part of a different architecture (attention biases, extra norms, RoPE frequency factors); ' +
    'running without them would compute a different model. Use an engine that supports this architecture.')
}

/** 16-bit formats kept as f16 (BF16 is converted: exact for |x| ≥ 2^-14, the f16 normal range). */
const HALF: readonly string[] = ['F16', 'BF16']

/**
 * Quantized formats a quantized copy (q8, q6, q4) is made from, through f16 rows (their values
 * are an f16 block scale times a small integer: f16 keeps them to 2^-11, far below the copy's
 * step), and the kernel making a chunk of f16 rows from the file's (the dequantizer's f32
 * values rounded to f16, bit for bit); with outputType 'f16' they are dequantized to f32 instead.
 */
const REQUANTIZED: Partial<Record<FormatName, 'dequantize_rows_q8_0_f16' | 'dequantize_rows_q6_k_f16'>> = {
  Q8_0: 'dequantize_rows_q8_0_f16',
  Q6_K: 'dequantize_rows_q6_k_f16',
}

/** An official-layout I2_S projection (K a multiple of 128): its blocks move as they are. */
function isCanonicalI2s(p: Planned): boolean {
  return p.role === 'ternary' && p.info.format === 'I2_S' && p.cols % 128 === 0
}

type Reader = (offset: number, length: number, into?: Uint8Array) => Promise<Uint8Array>

/** Reads `length` bytes of a tensor to heap[at…]: straight into wasm memory where the source can. */
async function readToHeap(read: Reader, offset: number, length: number, heap: Uint8Array, at: number): Promise<Uint8Array> {
  const view = heap.subarray(at, at + length)
  const bytes = await read(offset, length, view)
  if (bytes.buffer !== heap.buffer || bytes.byteOffset !== at) view.set(bytes)
  return view
}

/** An official I2_S tensor: read into the scratch area, repacked into place by a round of the pool. */
async function storeI2s(p: Planned, read: Reader, { heap, pool, scratch }: Target, kernel: TernaryKernel): Promise<number> {
  const bytes = await readToHeap(read, 0, p.info.byteSize, heap, scratch)
  const dataBytes = (p.rows * p.cols) / 4
  const gamma = new DataView(bytes.buffer, bytes.byteOffset + dataBytes, 4).getFloat32(0, true)
  if (!(gamma > 0 && Number.isFinite(gamma))) throw corruptI2s(p.info, p.rows, p.cols, gamma)
  // K is a multiple of 128, so each row is whole 32-byte blocks and rows move as bytes.
  if (p.permutedHeads) unpermuteQkRows(bytes.subarray(0, dataBytes), p.permutedHeads, p.cols / 4)
  pool.run([[TERNARY_LAYOUTS[kernel].repack, scratch, p.rows, p.cols, p.ptr]], p.seg, false)
  return gamma
}

/**
 * An I2_S tensor without a valid γ at byte M·K/4. bitnet.cpp's multi-threaded `llama-quantize`
 * writes each row chunk's data and scale at offsets computed for one byte per weight, so the
 * scale slot of a correct file stays 0 and the data is scrambled; the tensor's extent in the
 * file (up to the next tensor) tells a truncated or oversized tensor apart.
 */
function corruptI2s(t: ModelTensor, rows: number, cols: number, gamma: number): ModelFormatError {
  const expected = (rows * cols) / 4 + 32
  const extent = t.extent !== undefined && (t.extent < expected || t.extent - expected >= 32) ? `; its extent in the file is ${t.extent} bytes where M·K/4 + 32 = ${expected}` : ''
  return new ModelFormatError(`I2_S tensor '${t.name}' has no valid weight scale at byte M·K/4 = ${(rows * cols) / 4}${extent}. ` +
    'This is what bitnet.cpp\'s multi-threaded quantization leaves (each chunk\'s data and scale land at the wrong offset): ' +
    'the file is corrupt. Re-quantize with 1 thread: `llama-quantize model-f32.gguf ggml-model-i2_s.gguf I2_S 1`', {
    file: t.file, offset: t.offset + (rows * cols) / 4, expected: 'a finite positive f32 scale', found: String(gamma),
  })
}

/** Writes one tensor into its planned place; returns its weight scale (1 for non-ternary). */
function storeTensor(p: Planned, bytes: Uint8Array, heap: Uint8Array, kernel: TernaryKernel): number {
  const { info } = p
  const file = info.file
  if (p.role === 'ternary') {
    const out = heap.subarray(p.ptr, p.ptr + p.bytes)
    const { codes, scale } = p.strictTernary ? ternaryValued(p, bytes)
      : decodeTernary(info.format, bytes, p.rows, p.cols, { file, offset: info.offset }, info.decode)
    if (p.permutedHeads) unpermuteQkRows(codes, p.permutedHeads, p.cols)
    TERNARY_LAYOUTS[kernel].pack(codes, p.rows, p.cols, out)
    if (info.format === 'I2_S' && !(scale > 0 && Number.isFinite(scale))) throw corruptI2s(info, p.rows, p.cols, scale)
    return checkScale(scale, info.name, file)
  }
  const values = dequantizeRows(info.format, bytes, p.rows * p.cols)
  assertFiniteTensor(info.name, values, file)
  new Float32Array(heap.buffer, p.ptr, values.length).set(values)
  // A `.scale` tensor's value multiplies its projection's γ (see assemble()).
  return p.role === 'scale' ? checkScale(values[0], info.name, file) : 1
}

/** A float projection of a family without latent weights: ternary-valued or refused (a plain, non-ternary model). */
function ternaryValued(p: Planned, bytes: Uint8Array) {
  const values = dequantizeRows(p.info.format, bytes, p.rows * p.cols)
  if (!isTernaryValued(values)) {
    throw new NotTernaryError(p.info.name, `${p.info.format} weights with many distinct magnitudes`, p.info.file)
  }
  return ternarize(values)
}

/**
 * Rows of the embedding / output matrix per chunk (bounds memory outside wasm and the Q8B
 * scratch); a multiple of every copy's groupRows, so chunks start on a group.
 */
const MATRIX_CHUNK_ROWS = 4096

/** BF16 bytes converted to f16 bits (round to nearest even). */
function bf16ToF16(bytes: Uint8Array, n: number): Uint8Array {
  const values = dequantizeRows('BF16', bytes, n)
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16(values[i])
  return new Uint8Array(out.buffer)
}

/**
 * Streams the embedding / output matrix into place in row chunks (it is the largest tensor:
 * never held whole outside wasm memory): f16 rows as they are (BF16 converted), f32 rows
 * dequantized, or a quantized copy via the scratch area (f16 rows → its convert kernel).
 * F16 rows are read straight to where they go (their place, or the scratch area); Q8_0 and
 * Q6_K rows (always made into a copy) to the scratch area past their f16 rows, which a round
 * of the pool makes from them.
 */
async function storeMatrix(p: Planned, read: Reader, at: Target): Promise<void> {
  const { heap, kernels, pool, scratch } = at
  const rowBytes = p.info.byteSize / p.rows
  const layout = OUTPUT_LAYOUTS[p.matrixType!], convert = layout.convert
  const scales = p.ptr + layoutSize(layout, p.rows, p.cols).scalesAt
  for (let r0 = 0; r0 < p.rows; r0 += MATRIX_CHUNK_ROWS) {
    const n = Math.min(MATRIX_CHUNK_ROWS, p.rows - r0)
    if (p.matrixType === 'f32') {
      const values = dequantizeRows(p.info.format, await read(r0 * rowBytes, n * rowBytes), n * p.cols)
      assertFiniteTensor(p.info.name, values, p.info.file)
      new Float32Array(heap.buffer, p.ptr + r0 * p.cols * 4, n * p.cols).set(values)
      continue
    }
    const rows = convert ? scratch : p.ptr + r0 * p.cols * 2, requantize = REQUANTIZED[p.info.format]
    if (p.info.format === 'F16') {
      await readToHeap(read, r0 * rowBytes, n * rowBytes, heap, rows)
    } else if (requantize) {
      const src = scratch + n * p.cols * 2
      await readToHeap(read, r0 * rowBytes, n * rowBytes, heap, src)
      pool.run([[requantize, src, n, p.cols, scratch]], p.seg, false)
    } else {
      heap.set(bf16ToF16(await read(r0 * rowBytes, n * rowBytes), n * p.cols), rows)
    }
    const bad = kernels.find_nonfinite_f16(rows, n * p.cols)
    if (bad >= 0) throw nonFiniteWeight(p.info.name, p.info.file, r0 * p.cols + bad, 'NaN or Inf (F16)')
    if (convert) pool.run([[convert, scratch, n, p.cols, p.kp, p.ptr + r0 * layout.rowBytes(p.kp), scales + r0 * (p.kp / layout.scaleBlock!) * 4]], p.seg, false)
    if (p.pass) storePassRows(p, at, scales, r0, n)
  }
}

/**
 * Rows r0 … r0+n of the bounded head's pass copy: the q4b rows from the f16 rows in the scratch
 * area, then each row's bound from its q4b and q8b rows (the f16 rows are no longer needed, so
 * the scratch area holds the dequantized pair).
 */
function storePassRows(p: Planned, { kernels, pool, scratch }: Target, scales8: number, r0: number, n: number): void {
  const { pass } = outputPassAt(p.ptr, p.rows, p.cols)
  const w4 = pass.ptr + r0 * OUTPUT_LAYOUTS.q4b.rowBytes(p.kp), s4 = pass.scales + r0 * (p.kp / OUTPUT_LAYOUTS.q4b.scaleBlock!) * 4
  pool.run([['quantize_rows_f16_q4b', scratch, n, p.cols, p.kp, w4, s4]], p.seg, false)
  kernels.bound_rows_q4b_q8b(w4, s4, p.ptr + r0 * p.kp, scales8 + r0 * (p.kp / 128) * 4, n, p.cols, p.kp, scratch, pass.bounds + r0 * 4, 0, n)
}

/**
 * The untied input embedding, kept as the file's bytes outside wasm memory and checked for
 * NaN/Inf chunk by chunk as it streams (F16 rows by the kernel, in the scratch area).
 */
async function storeHostRows(p: Planned, read: Reader, { heap, kernels, scratch }: Target): Promise<Uint8Array> {
  const host = new Uint8Array(p.info.byteSize)
  const rowBytes = p.info.byteSize / p.rows
  for (let r0 = 0; r0 < p.rows; r0 += MATRIX_CHUNK_ROWS) {
    const n = Math.min(MATRIX_CHUNK_ROWS, p.rows - r0)
    if (p.info.format === 'F16') {
      const bytes = await readToHeap(read, r0 * rowBytes, n * rowBytes, heap, scratch)
      const bad = kernels.find_nonfinite_f16(scratch, n * p.cols)
      if (bad >= 0) throw nonFiniteWeight(p.info.name, p.info.file, r0 * p.cols + bad, 'NaN or Inf (F16)')
      host.set(bytes, r0 * rowBytes)
    } else {
      const bytes = await read(r0 * rowBytes, n * rowBytes, host.subarray(r0 * rowBytes, (r0 + n) * rowBytes))
      assertFiniteTensor(p.info.name, dequantizeRows(p.info.format, bytes, n * p.cols), p.info.file)
      if (bytes.buffer !== host.buffer) host.set(bytes, r0 * rowBytes)
    }
  }
  return host
}

function checkScale(gamma: number, name: string, file: string): number {
  if (!Number.isFinite(gamma) || gamma <= 0) {
    throw new ModelFormatError(`tensor '${name}' has an invalid weight scale`, { file, expected: 'a finite positive number', found: String(gamma) })
  }
  return gamma
}

/** Turns the filled plan into the typed weight tree the forward pass walks. */
function assemble(plan: Planned[], c: ModelConfig, kernel: TernaryKernel): ModelWeights {
  const byName = new Map(plan.map((p) => [p.info.name, p]))
  const matrix = (p: Planned): FloatMatrix => {
    const layout = OUTPUT_LAYOUTS[p.matrixType!]
    const scales = layout.scaleBlock ? p.ptr + layoutSize(layout, p.rows, p.cols).scalesAt : 0
    return { ptr: p.ptr, rows: p.rows, cols: p.cols, type: p.matrixType!, kp: p.kp, scales, pass: p.pass ? outputPassAt(p.ptr, p.rows, p.cols).pass : undefined }
  }
  const get = (name: string) => byName.get(name)!
  const ternary = (name: string): TernaryWeight => {
    const p = get(name)
    const scale = byName.get(scaleTensorName(name))
    return {
      ptr: p.ptr, rows: p.rows, cols: p.cols, kp: layoutSize(TERNARY_LAYOUTS[kernel], p.rows, p.cols).kp,
      gamma: p.gamma * (scale ? scale.gamma : 1),
    }
  }
  const embd = get('token_embd.weight')
  const out = byName.get('output.weight')
  return {
    tokenEmbd: embd.host
      ? { host: embd.host, format: embd.info.format, rows: embd.rows, cols: embd.cols, rowBytes: embd.info.byteSize / embd.rows }
      : matrix(embd),
    outputNorm: get('output_norm.weight').ptr,
    output: matrix(out ?? embd),
    layers: Array.from({ length: c.nLayer }, (_, l) => {
      // Each tensor fills its field (tensors.ts); an absent optional norm leaves it undefined.
      const layer: Record<string, TernaryWeight | number | undefined> = {}
      for (const t of layerTensors(c, l)) layer[t.field!] = t.role === 'ternary' ? ternary(t.name) : byName.get(t.name)?.ptr
      return layer as unknown as LayerWeights
    }),
  }
}
