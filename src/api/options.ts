/**
 * The options of loadModel() and of BitnetModel.embed(), in a file of their own: the OpenAI
 * wire format, the engine worker's protocol and the CLI read them without importing the model.
 */
import type { Pooling } from '../model/config.js'
import { InvalidArgumentError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { LoadProgress, OutputType } from '../model/load.js'
import type { TernaryKernel } from '../model/layouts.js'
import { KV_TYPES, type KvType } from '../model/transformer.js'
import { MAX_SEGMENT_BYTES } from '../model/segments.js'
import type { KernelVariant, WasmSource } from '../runtime/wasm.js'

/** Default cap of the KV cache when the caller gives no `contextSize` (2B4T's own is 4096). */
export const DEFAULT_MAX_CONTEXT = 4096

export interface ModelOptions {
  /** KV cache size in tokens. Default: the model's context length, capped at 4096. */
  contextSize?: number
  /**
   * Compute threads, this one included; a number pins the count. Default: the cores this
   * process may use (in a browser, one fewer, left to the page), and the count adapts at
   * run time: when another process or tab keeps cores busy and fewer threads measure
   * faster, fewer take part until the load goes (told once through `logger.info`).
   */
  threads?: number
  /** Kernel build; default: the fastest this runtime runs ('relaxed', else 'simd'). */
  variant?: KernelVariant
  /**
   * Output projection storage: 'q8' (8-bit copy, half the bytes of F16; perplexity cost
   * on tiny-dev +0.24 %), 'q6' (6-bit copy, 0.77× the bytes of q8; perplexity +0.19 % on
   * tiny-dev), 'q4' (4-bit copy, 0.6× the bytes of q8; perplexity +1.7 % on
   * tiny-dev, over the 0.5 % budget, so never chosen by 'auto'), 'q4+q8' (both copies, 1.6×
   * q8's memory: a decode step reads the q4 copy and rescores with the q8 one the tokens
   * that can still be picked, so greedy and top-k sampling give exactly q8's tokens; logits(),
   * log-probabilities, grammars and sampling without top-k read the q8 copy whole), 'f16'
   * (exact, as in the file) or 'auto' (default: for matrices of ≥ 64 Mi weights such as
   * 2B4T's q6 on the relaxed build, where it is the faster, and q8 on the baseline builds; f16
   * below).
   * @example loadModel(path, { outputType: 'q4+q8' })
   */
  outputType?: OutputType
  /**
   * Storage of the KV cache: 'f32' (as computed), 'f16' (half the memory, 2B4T: 75 KiB per
   * token instead of 150; on tiny-dev perplexity −0.04 %, but ~3 % of the golden top-20
   * logits move by more than 0.05, max 0.09: test/golden.test.ts) or 'auto' (default: f16
   * when the f32 cache of the context would take ≥ 64 MiB, as 2B4T's does from ~440 tokens;
   * f32 below, where halving saves little).
   */
  kvType?: KvType | 'auto'
  /** Ternary kernel: 'i2s' (multiply-add), 'tl' (lookup table) or 'auto' (default: the faster here). */
  kernel?: TernaryKernel | 'auto'
  /** Chat template override (Jinja). Default: the model's (with the 2B4T placeholder fixed). */
  chatTemplate?: string
  /** Structured progress while loading. */
  onProgress?: (p: LoadProgress) => void
  /** Cancels the load. */
  signal?: AbortSignal
  /**
   * Largest wasm memory the model takes (default and at most 4 GiB, wasm32's limit). A model
   * larger than that spreads whole layers over several memories with identical results; a
   * lower cap helps where a runtime cannot reserve 4 GiB at once (32-bit browsers).
   * @example loadModel(path, { maxMemoryBytes: 2 ** 31 })  // memories of ≤ 2 GiB
   */
  maxMemoryBytes?: number
  /**
   * Where the kernel binaries come from, for unusual hosting: a folder URL holding
   * `bitnet-{relaxed,simd,single}.wasm`, or one build's bytes (with `variant`).
   * Default: the package's own build/ folder, found relative to the module.
   */
  wasm?: WasmSource
  /**
   * Where the worker scripts are, for bundlers that do not follow `new URL(…, import.meta.url)`
   * (esbuild) and apps that host the package's files themselves; with `wasm` this gives every
   * asset location. Strings resolve against the page in a browser.
   * - `computeWorker`: the package's `dist/bitnet-worker.browser.js` (browsers) or
   *   `dist/bitnet-worker.js` (Node, Deno, Bun)
   * - `engineWorker`: `dist/engine-worker.js` (`bitnet-wasm/worker` only)
   *
   * @example
   * ```ts
   * await loadModel(url, { wasm: '/static/bitnet/', assets: { computeWorker: '/static/bitnet/bitnet-worker.browser.js' } })
   * ```
   */
  assets?: ModelAssets
  /**
   * Where to log KV-cache reuse, context shifts, … (`console` works); silent by default,
   * except the single-thread fallback in a page that is not cross-origin isolated, which
   * is said once through `console.warn` when no logger is given.
   */
  logger?: Logger
}

/** Locations of the worker scripts (see {@link ModelOptions.assets}). */
export interface ModelAssets { computeWorker?: string | URL; engineWorker?: string | URL }

/**
 * Rejects invalid {@link ModelOptions} before any file is read.
 * @example checkModelOptions({ contextSize: 0 }) // throws InvalidArgumentError
 */
export function checkModelOptions(opts: ModelOptions): void {
  const ctx = opts.contextSize
  if (ctx !== undefined && (!Number.isInteger(ctx) || ctx < 1)) {
    throw new InvalidArgumentError(`contextSize must be a positive integer, got ${ctx}`)
  }
  if (opts.kvType !== undefined && opts.kvType !== 'auto' && !KV_TYPES.includes(opts.kvType)) {
    throw new InvalidArgumentError(`kvType must be one of auto, ${KV_TYPES.join(', ')}, got ${opts.kvType}`)
  }
  const max = opts.maxMemoryBytes
  if (max !== undefined && (!Number.isInteger(max) || max < 65536 || max > MAX_SEGMENT_BYTES)) {
    throw new InvalidArgumentError(`maxMemoryBytes must be an integer in 64 KiB..4 GiB, got ${max}`)
  }
}

/** Options of `BitnetModel.embed`. */
/** Options of {@link BitnetModel.embed}. */
export interface EmbedOptions {
  /** Prepend BOS to a string input (default: the tokenizer's setting). */
  addBos?: boolean
  /** 'mean': the average hidden state; 'last': the last token's. Default: the model's pooling, else 'mean'. */
  pooling?: Pooling
  /** Append the EOS token (default: the tokenizer's `add_eos_token`; last-token pooled models end every input with it). */
  appendEos?: boolean
  /** Scale the result to unit L2 norm (then a dot product is the cosine similarity). Default: true for embedding models. */
  normalize?: boolean
  /** Text put before a string input. */
  prefix?: string
  /**
   * A query's task, one sentence: the input becomes `Instruct: {instruction}\nQuery: {text}`,
   * the format the BitNet-embedding models (and the E5 / Qwen3-Embedding instruct models they
   * follow) are trained with. Documents take none. Replaces `prefix`.
   */
  instruction?: string
}
