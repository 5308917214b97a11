/**
 * The message protocol between `bitnet-wasm/worker` (the caller's thread, src/worker.ts)
 * and the engine running in a dedicated Worker (./host.ts), in one place.
 *
 *   caller ── Request {id, op, …} ──▶ worker
 *   caller ◀── Reply {id, type: progress | warn | chunk}* then {id, type: done | error}
 *
 * Every request gets exactly one final reply (done or error) with its id; a load streams
 * progress and warnings before it, a generation its chunks. Functions and AbortSignals
 * cannot cross threads: they stay with the caller, which turns an abort into an `abort`
 * request naming the generation's id.
 */
import type { ModelOptions } from '../api/options.js'
import type { ChatMessage } from '../tokenizer/chat-template.js'
import * as errors from '../errors.js'
import type { GenerateOptions, GenerationChunk, GenerationResult } from '../generation/generation.js'
import type { ModelConfig } from '../model/config.js'
import type { LoadProgress } from '../model/load.js'
import type { KernelVariant } from '../runtime/wasm.js'

/**
 * Model sources that can be posted to a Worker: bytes, a Blob/File, or a string as
 * `loadModel` takes it (a URL or `hf:` id; in Deno and Bun a file path too).
 */
export type WorkerModelSource = string | Uint8Array | ArrayBuffer | Blob

/** Load options that cross the thread boundary (the kernel binaries' folder and the compute worker as strings). */
export type PostedModelOptions = Omit<ModelOptions, 'onProgress' | 'signal' | 'logger' | 'wasm' | 'assets'> & {
  wasm?: string | Uint8Array
  assets?: { computeWorker?: string }
}
export type PostedGenerateOptions = Omit<GenerateOptions, 'signal'>

export type Request =
  | { id: number; op: 'load'; source: WorkerModelSource; options: PostedModelOptions }
  | { id: number; op: 'generate'; prompt: string | number[]; options: PostedGenerateOptions }
  | { id: number; op: 'chat'; messages: ChatMessage[]; options: PostedGenerateOptions }
  | { id: number; op: 'tokenize'; text: string; addBos?: boolean }
  | { id: number; op: 'detokenize'; ids: number[] }
  /** Stops generation `target` within one token (its result keeps the partial text). */
  | { id: number; op: 'abort'; target: number }
  | { id: number; op: 'dispose' }

export type Op = Request['op']

/** What a loaded model tells the caller once. */
export interface ModelInfo {
  config: ModelConfig
  contextSize: number
  chatTemplate: string
  variant: KernelVariant
  threads: number
}

/** The value of each request's `done` reply. */
export interface Results {
  load: ModelInfo
  generate: GenerationResult
  chat: GenerationResult
  tokenize: number[]
  detokenize: string
  abort: undefined
  dispose: undefined
}

/**
 * An error as posted: its class name (`typed`: one of the package's, not a foreign error of the
 * same name, such as a DOMException 'NotFoundError'), message, stack, cause, code and fields
 * (file, offset, expected, found, …).
 */
export interface PostedError { name: string; typed?: boolean; message: string; stack?: string; cause?: PostedError; [field: string]: unknown }

export type Reply =
  | { id: number; type: 'progress'; progress: LoadProgress }
  | { id: number; type: 'warn'; message: string }
  | { id: number; type: 'chunk'; chunk: GenerationChunk }
  | { id: number; type: 'done'; value: Results[Op] }
  | { id: number; type: 'error'; error: PostedError }

/** An error's name, message, stack, cause and primitive fields, for postMessage. */
export function postError(e: unknown): PostedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) }
  const out: PostedError = { name: e.name, typed: e instanceof errors.BitnetError, message: e.message, stack: e.stack }
  if (e.cause !== undefined) out.cause = postError(e.cause)
  for (const [k, v] of Object.entries(e)) if (v === null || typeof v !== 'object') out[k] = v
  return out
}

/** The language's own error classes, revived as themselves (`TypeError` stays a TypeError). */
const BUILTIN: Record<string, ErrorConstructor> = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }

/**
 * The error back on the caller's side: an instance of the same class when it is one of the
 * package's typed errors or a built-in one (so `instanceof ModelFormatError` and `.code` work),
 * with the worker's message, stack (where it was thrown) and cause. Built by `Error` itself
 * with the class as new.target: a native error object, as consoles and `util.inspect` render
 * errors (name, message, stack), and no class constructor runs with arguments it does not take.
 */
export function revivedError(p: PostedError): Error {
  const { name, typed, message, stack, cause, ...fields } = p
  const own = (errors as Record<string, unknown>)[name]
  const cls = typed && typeof own === 'function' && own.prototype instanceof Error ? own : BUILTIN[name] ?? Error
  const e = Reflect.construct(Error, cause ? [message, { cause: revivedError(cause) }] : [message], cls) as Error
  if (e.name !== name) e.name = name // the package's classes set their own name, as these do
  Object.assign(e, fields)
  if (stack !== undefined) Object.defineProperty(e, 'stack', { value: stack, writable: true, configurable: true })
  return e
}
