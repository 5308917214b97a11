// `Symbol.asyncDispose` in the public types: consumers whose lib is es2022 (+ DOM) get it from here.
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * `bitnet-wasm/worker`: the engine in a dedicated module Worker, with the in-thread API
 * (`generate`/`chat` stream with `for await` or resolve with `await`, AbortSignal,
 * progress events, typed errors), so a page's main thread never blocks on decoding.
 * Runs wherever `Worker` exists: browsers, Deno, Bun (in Node it throws
 * UnsupportedFeatureError naming `loadModel`, which computes on worker_threads). The messages are in
 * engine-worker/protocol.ts.
 */
import type { ModelOptions } from './api/options.js'
import type { ChatMessage } from './tokenizer/chat-template.js'
import { startEngineWorker } from './assets.js'
import { BASE_URL, IS_NODE } from './env.js'
import { UnsupportedFeatureError, WorkerError } from './errors.js'
import { Generation, type GenerateOptions, type GenerationChunk, type GenerationRun } from './generation/generation.js'
import type { ModelConfig } from './model/config.js'
import type { KernelVariant } from './runtime/wasm.js'
import { postError, revivedError, type ModelInfo, type Reply, type Request, type Results, type WorkerModelSource } from './engine-worker/protocol.js'

export type { WorkerModelSource } from './engine-worker/protocol.js'
// The error classes a WorkerModel rejects with. In browsers this module is its own bundle, so
// `instanceof` needs the classes from here, not from the main entry's copy.
export * from './errors.js'

/**
 * What Connection uses of a Web Worker, declared here so the published .d.ts files need no
 * DOM lib (a Node-only `lib: ["es2022"]` has no `Worker`).
 */
interface EngineWorker {
  onmessage: ((e: { data: Reply }) => void) | null
  onerror: ((e: { message?: string; preventDefault(): void }) => void) | null
  postMessage(message: unknown): void
  terminate(): void
}

type Outgoing = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never

/** Request/reply bookkeeping over one Worker. */
class Connection {
  private nextId = 1
  private readonly pending = new Map<number, (r: Reply) => void>()

  constructor(private readonly worker: EngineWorker) {
    worker.onmessage = (e) => this.pending.get(e.data.id)?.(e.data)
    worker.onerror = (e) => {
      e.preventDefault()
      this.failAll(new WorkerError(`the engine worker failed: ${e.message || 'its script did not load'}`))
    }
  }

  /** Sends a request; `onEvent` sees its progress, warnings and chunks before the result. */
  call<R extends Outgoing>(req: R, onEvent?: (r: Reply) => void): { id: number; result: Promise<Results[R['op']]> } {
    const id = this.nextId++
    const result = new Promise<Results[R['op']]>((resolve, reject) => {
      this.pending.set(id, (r) => {
        if (r.type === 'done') { this.pending.delete(id); resolve(r.value as Results[R['op']]) }
        else if (r.type === 'error') { this.pending.delete(id); reject(revivedError(r.error)) }
        else onEvent?.(r)
      })
    })
    this.worker.postMessage({ ...req, id })
    return { id, result }
  }

  failAll(e: Error): void {
    for (const settle of this.pending.values()) settle({ id: 0, type: 'error', error: postError(e) })
    this.pending.clear()
  }

  terminate(): void {
    this.worker.terminate()
    this.failAll(new WorkerError('the engine worker was terminated'))
  }
}

/**
 * Loads a model in a new dedicated Worker. Options are those of `loadModel`;
 * `onProgress`, `logger` and `signal` work from the caller's side.
 *
 * @example
 * ```ts
 * import { loadModelInWorker } from 'bitnet-wasm/worker'
 * const model = await loadModelInWorker(fileInput.files[0], { onProgress: (p) => bar.value = p.loaded / p.total })
 * for await (const { text } of model.generate('In the beginning', { maxTokens: 32 })) out.textContent += text
 * await model.dispose()
 * ```
 */
export async function loadModelInWorker(source: WorkerModelSource, opts: ModelOptions = {}): Promise<WorkerModel> {
  const { onProgress, signal, logger = console, wasm, assets, ...rest } = opts
  signal?.throwIfAborted()
  if (IS_NODE) {
    throw new UnsupportedFeatureError("bitnet-wasm/worker needs a Web Worker (browsers, Deno, Bun) and Node has none: " +
      "in Node use loadModel from 'bitnet-wasm', which already computes on worker_threads, or call it inside your own worker_threads Worker")
  }
  const worker = startEngineWorker(assets?.engineWorker ? new URL(assets.engineWorker, BASE_URL) : undefined)
  const conn = new Connection(worker as unknown as EngineWorker) // a Worker is one; its DOM typing is wider
  const onAbort = () => conn.terminate()
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const href = (u?: string | URL) => (u === undefined ? undefined : new URL(u, BASE_URL).href)
    const options = { ...rest, wasm: wasm instanceof URL ? wasm.href : wasm, assets: assets && { computeWorker: href(assets.computeWorker) } }
    const { result } = conn.call({ op: 'load', source, options }, (r) => {
      if (r.type === 'progress') onProgress?.(r.progress)
      else if (r.type === 'warn') logger.warn?.(r.message)
    })
    return new WorkerModel(conn, await result)
  } catch (e) {
    conn.terminate()
    throw signal?.aborted ? signal.reason : e
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}

/** A model living in a Worker: the API of `BitnetModel`, with tokenizing made async. */
export class WorkerModel {
  readonly config: ModelConfig
  /** KV cache capacity in tokens. */
  readonly contextSize: number
  /** The Jinja chat template in use. */
  readonly chatTemplate: string
  /** Which kernel build runs ('relaxed', 'simd' or 'single'). */
  readonly variant: KernelVariant
  /** Compute threads in use (the engine worker included). */
  readonly threads: number

  /** @internal */
  constructor(private readonly conn: Connection, info: ModelInfo) {
    this.config = info.config
    this.contextSize = info.contextSize
    this.chatTemplate = info.chatTemplate
    this.variant = info.variant
    this.threads = info.threads
  }

  /**
   * Generates text after `prompt` (a string, or token ids used as is).
   *
   * @example
   * ```ts
   * const stop = new AbortController()
   * for await (const { text } of model.generate('Hello', { maxTokens: 64, signal: stop.signal })) out.textContent += text
   * ```
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): Generation {
    const { signal, ...options } = opts
    return new Generation(() => this.stream({ op: 'generate', prompt: typeof prompt === 'string' ? prompt : [...prompt], options }, signal))
  }

  /** Chat: renders `messages` with the chat template in the worker, then generates the reply. */
  chat(messages: readonly ChatMessage[], opts: GenerateOptions = {}): Generation {
    const { signal, ...options } = opts
    return new Generation(() => this.stream({ op: 'chat', messages: [...messages], options }, signal))
  }

  /** Text → token ids. */
  tokenize(text: string, opts: { addBos?: boolean } = {}): Promise<number[]> {
    return this.conn.call({ op: 'tokenize', text, addBos: opts.addBos }).result
  }

  /** Token ids → text. */
  detokenize(ids: readonly number[]): Promise<string> {
    return this.conn.call({ op: 'detokenize', ids: [...ids] }).result
  }

  /** Stops the compute threads and the worker; the model cannot generate afterwards. */
  async dispose(): Promise<void> {
    try {
      await this.conn.call({ op: 'dispose' }).result
    } finally {
      this.conn.terminate()
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose()
  }

  private async *stream(req: Extract<Outgoing, { op: 'generate' | 'chat' }>, signal?: AbortSignal): GenerationRun {
    const queue: GenerationChunk[] = []
    let wake: (() => void) | undefined
    let settled = false
    const { id, result } = this.conn.call(req, (r) => {
      if (r.type === 'chunk') { queue.push(r.chunk); wake?.() }
    })
    result.then(() => {}, () => {}).finally(() => { settled = true; wake?.() })
    const abort = () => { if (!settled) this.conn.call({ op: 'abort', target: id }) }
    if (signal?.aborted) abort()
    signal?.addEventListener('abort', abort, { once: true })
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!
        // Chunks arrive before the final reply (a Worker's messages keep their order).
        if (settled) return await result
        await new Promise<void>((resolve) => { wake = resolve })
        wake = undefined
      }
    } finally {
      signal?.removeEventListener('abort', abort)
      abort() // the consumer left the loop early: stop the worker's run too
    }
  }
}
