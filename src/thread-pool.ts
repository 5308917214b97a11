/**
 * The leader side of the compute threads. The thread that drives decoding computes its
 * own share of every round (thread 0) instead of only orchestrating: on 2 cores an idle
 * orchestrator costs 30–50 % (wasm-kernels.md §4). Workers are spawned once per model and
 * spin-then-sleep between rounds; see threads/protocol.ts for the round itself.
 *
 * Workers are Node `worker_threads` in Node, module Web Workers elsewhere (browsers, Deno,
 * Bun); both run threads/worker.ts and share the one WebAssembly.Memory.
 *
 * This file sits directly under src/ on purpose: `../dist/bitnet-worker*.js` resolves to
 * the bundled worker both from src/ (tests) and from dist/ (the published package).
 */
import { CAN_BLOCK, HAS_FS, IS_NODE } from './env.js'
import { InvalidArgumentError, WorkerError } from './errors.js'
import type { Logger } from './logger.js'
import { CTL_BYTES, CTL_DONE, CTL_ERROR, CTL_EXIT, CTL_GEN, runJobs, waitWhile, type Job, type WorkerInit, writeJobs } from './threads/protocol.js'
import { isSharedVariant, type KernelVariant, type Kernels } from './wasm.js'

/** Upper bound for a worker to start (instantiate the module on the shared memory). */
const START_TIMEOUT_MS = 60_000
/** Upper bound for one round; rounds take µs to ms (a 2B4T layer's largest matvec ~1 ms). */
const ROUND_TIMEOUT_MS = 30_000

interface WorkerHandle { terminate(): unknown }

/** Starts one compute worker; `ready` resolves once it has instantiated the module. */
type Spawn = (init: WorkerInit, onError: (message: string) => void) => { handle: WorkerHandle; ready: Promise<void> }

function workerError(m: unknown): string | undefined {
  return m && typeof m === 'object' && 'error' in m ? String(m.error) : undefined
}

async function nodeSpawn(): Promise<Spawn> {
  const { Worker } = await import('node:worker_threads')
  return (init, onError) => {
    const w = new Worker(new URL('../dist/bitnet-worker.js', import.meta.url), { workerData: init })
    const ready = new Promise<void>((resolve, reject) => {
      w.once('error', reject)
      w.once('exit', (code) => reject(new Error(`exited with code ${code}`)))
      w.on('message', (m: unknown) => {
        // Unref only once ready: until then the pending start must keep the process alive.
        if (m === 'ready') { w.unref(); resolve() }
        else onError(workerError(m) ?? String(m))
      })
    })
    return { handle: w, ready }
  }
}

function webSpawn(): Spawn {
  // Deno and Bun can run either bundle; a browser gets the one without `node:` imports.
  const url = HAS_FS ? new URL('../dist/bitnet-worker.js', import.meta.url) : new URL('../dist/bitnet-worker.browser.js', import.meta.url)
  return (init, onError) => {
    const w = new Worker(url, { type: 'module' })
    const ready = new Promise<void>((resolve, reject) => {
      w.onerror = (e) => { e.preventDefault(); reject(new Error(e.message || `cannot start ${url.href}`)) }
      w.onmessage = (e: MessageEvent) => {
        if (e.data === 'ready') { (w as { unref?: () => void }).unref?.(); resolve() } // unref: Bun
        else onError(workerError(e.data) ?? String(e.data))
      }
    })
    w.postMessage(init)
    return { handle: w, ready }
  }
}

/**
 * The thread count a model runs on: `requested`, or 1 when the kernel build has no shared
 * memory (a page without cross-origin isolation), which is said once through `logger`:
 * a silent fallback would leave users wondering why it is slow.
 */
export function usableThreads(requested: number, variant: KernelVariant, logger: Logger): number {
  if (requested <= 1 || isSharedVariant(variant)) return requested
  logger.warn?.(`bitnet-wasm: running on 1 thread instead of ${requested}: WebAssembly threads need SharedArrayBuffer, ` +
    'which a web page only gets when cross-origin isolated (serve it with the headers ' +
    '"Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp")')
  return 1
}

export class ThreadPool {
  private readonly i32: Int32Array
  private readonly f32: Float32Array
  private readonly base: number
  private lastError = ''

  private constructor(
    private readonly kernels: Kernels,
    memory: WebAssembly.Memory,
    private readonly ctl: number,
    /** Threads computing, the calling thread included. */
    readonly nThreads: number,
    private readonly workers: WorkerHandle[],
  ) {
    this.i32 = new Int32Array(memory.buffer)
    this.f32 = new Float32Array(memory.buffer)
    this.base = ctl >> 2
  }

  /**
   * Starts `nThreads − 1` workers on the shared memory and waits until each has
   * instantiated the module. `ctl` is a CTL_BYTES control block in that memory.
   */
  static async create(module: WebAssembly.Module, memory: WebAssembly.Memory, kernels: Kernels, ctl: number, nThreads: number): Promise<ThreadPool> {
    if (!Number.isInteger(nThreads) || nThreads < 1 || nThreads > 256) {
      throw new InvalidArgumentError(`threads must be an integer in 1..256, got ${nThreads}`)
    }
    const workers: WorkerHandle[] = []
    const pool = new ThreadPool(kernels, memory, ctl, nThreads, workers)
    // A clean control block: a stale EXIT or GEN word would stop or confuse the workers.
    pool.i32.fill(0, pool.base, pool.base + CTL_BYTES / 4)
    if (nThreads === 1) return pool
    if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError('threads > 1 need a shared memory (a threaded kernel build and SharedArrayBuffer)')
    }
    const spawn = IS_NODE ? await nodeSpawn() : webSpawn()
    const onError = (message: string) => { pool.lastError = message }
    await Promise.all(Array.from({ length: nThreads - 1 }, (_, i) => {
      const { handle, ready } = spawn({ module, memory, ctl, ith: i + 1, nth: nThreads }, onError)
      workers.push(handle)
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS)
      })
      return Promise.race([ready, timeout])
        .catch((e: Error) => { throw new Error(`worker ${i + 1}: ${e.message}`) })
        .finally(() => clearTimeout(timer))
    })).catch(async (e) => {
      await Promise.all(workers.map((w) => w.terminate()))
      throw new WorkerError(`starting compute workers failed: ${(e as Error).message}`)
    })
    return pool
  }

  /**
   * Runs one round: every job on every thread's share, this thread being thread 0.
   * Jobs of a round must not depend on each other.
   */
  run(jobs: readonly Job[]): void {
    if (this.nThreads === 1) {
      for (const [name, ...args] of jobs) (this.kernels[name] as (...a: number[]) => void)(...args, 0, 1)
      return
    }
    const { i32, f32, base } = this
    writeJobs(i32, f32, this.ctl, jobs)
    Atomics.store(i32, base + CTL_DONE, 0)
    Atomics.add(i32, base + CTL_GEN, 1)
    Atomics.notify(i32, base + CTL_GEN)
    runJobs(this.kernels, i32, f32, this.ctl, 0, this.nThreads)
    // A round takes micro- to milliseconds; a worker that has not finished after
    // ROUND_TIMEOUT_MS is dead or wedged, and waiting longer would hang the caller.
    const t0 = Date.now()
    waitWhile(i32, base + CTL_DONE, (v) => v < this.nThreads - 1, CAN_BLOCK, () => {
      if (Date.now() - t0 > ROUND_TIMEOUT_MS) {
        const done = Atomics.load(i32, base + CTL_DONE)
        throw new WorkerError(`compute workers stopped responding (${done} of ${this.nThreads - 1} finished a round within ${ROUND_TIMEOUT_MS / 1000} s)`)
      }
    })
    if (Atomics.load(i32, base + CTL_ERROR)) {
      Atomics.store(i32, base + CTL_ERROR, 0)
      throw new WorkerError(`a compute worker failed: ${this.lastError || 'see its error output'}`)
    }
  }

  /** Stops the workers. The pool cannot run afterwards. */
  async dispose(): Promise<void> {
    if (this.workers.length === 0) return
    Atomics.store(this.i32, this.base + CTL_EXIT, 1)
    Atomics.add(this.i32, this.base + CTL_GEN, 1)
    Atomics.notify(this.i32, this.base + CTL_GEN)
    await Promise.all(this.workers.map((w) => w.terminate()))
    this.workers.length = 0
  }
}
