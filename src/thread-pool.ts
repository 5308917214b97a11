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
import { DisposedError, InvalidArgumentError, WorkerError } from './errors.js'
import type { Logger } from './logger.js'
import { CTL_BYTES, CTL_DONE, CTL_ERROR, CTL_EXIT, CTL_GEN, runJobs, waitWhile, type Job, type WorkerInit, writeJobs } from './threads/protocol.js'
import { isSharedVariant, type KernelVariant, type Kernels } from './wasm.js'

/** Upper bound for a worker to start (instantiate the module on the shared memory). */
const START_TIMEOUT_MS = 60_000
/** Upper bound for one round; rounds take µs to ms (a 2B4T layer's largest matvec ~1 ms). */
const ROUND_TIMEOUT_MS = 30_000

interface WorkerHandle { terminate(): unknown }

/**
 * Starts one compute worker; `ready` resolves once it has instantiated the module. `onExit`
 * is called if the worker dies (exits, or fails outside a round) at any time.
 */
type Spawn = (init: WorkerInit, onError: (message: string) => void, onExit: () => void) => { handle: WorkerHandle; ready: Promise<void> }

function workerError(m: unknown): string | undefined {
  return m && typeof m === 'object' && 'error' in m ? String(m.error) : undefined
}

async function nodeSpawn(): Promise<Spawn> {
  const { Worker } = await import('node:worker_threads')
  return (init, onError, onExit) => {
    const w = new Worker(new URL('../dist/bitnet-worker.js', import.meta.url), { workerData: init })
    w.once('exit', onExit)
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
  return (init, onError, onExit) => {
    const w = new Worker(url, { type: 'module' })
    const ready = new Promise<void>((resolve, reject) => {
      w.onerror = (e) => { e.preventDefault(); reject(new Error(e.message || `cannot start ${url.href}`)); onExit() }
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

/** Options of {@link ThreadPool.create}. */
export interface PoolOptions {
  /** Watchdog of one round (default 30 s): a worker silent for longer is declared dead. */
  roundTimeoutMs?: number
}

/**
 * Fault handling: a round in which a worker reports an error (a wasm trap), stops answering
 * (watchdog) or has exited fails with a {@link WorkerError}; the pool then terminates its
 * workers and starts new ones in the background, computing every round on the calling thread
 * alone until they are ready ({@link whenReady}). After {@link dispose}, a round throws
 * {@link DisposedError} instead of waiting for workers that are gone.
 */
export class ThreadPool {
  private readonly i32: Int32Array
  private readonly f32: Float32Array
  private readonly base: number
  private lastError = ''
  /** Live workers; fewer than nThreads − 1 while a failed pool is being rebuilt. */
  private workers: WorkerHandle[] = []
  private rebuilding?: Promise<void>
  private disposed = false
  private readonly roundTimeoutMs: number

  private constructor(
    private readonly kernels: Kernels,
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    private readonly ctl: number,
    /** Threads computing, the calling thread included. */
    readonly nThreads: number,
    opts: PoolOptions,
  ) {
    this.i32 = new Int32Array(memory.buffer)
    this.f32 = new Float32Array(memory.buffer)
    this.base = ctl >> 2
    this.roundTimeoutMs = opts.roundTimeoutMs ?? ROUND_TIMEOUT_MS
  }

  /**
   * Starts `nThreads − 1` workers on the shared memory and waits until each has
   * instantiated the module. `ctl` is a CTL_BYTES control block in that memory.
   */
  static async create(module: WebAssembly.Module, memory: WebAssembly.Memory, kernels: Kernels, ctl: number, nThreads: number,
    opts: PoolOptions = {}): Promise<ThreadPool> {
    if (!Number.isInteger(nThreads) || nThreads < 1 || nThreads > 256) {
      throw new InvalidArgumentError(`threads must be an integer in 1..256, got ${nThreads}`)
    }
    const pool = new ThreadPool(kernels, module, memory, ctl, nThreads, opts)
    // A clean control block: a stale EXIT or GEN word would stop or confuse the workers.
    pool.i32.fill(0, pool.base, pool.base + CTL_BYTES / 4)
    if (nThreads === 1) return pool
    if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError('threads > 1 need a shared memory (a threaded kernel build and SharedArrayBuffer)')
    }
    pool.workers = await pool.startWorkers()
    return pool
  }

  /** Starts the workers on a clean control block. */
  private async startWorkers(): Promise<WorkerHandle[]> {
    const { module, memory, ctl, nThreads } = this
    this.i32.fill(0, this.base, this.base + CTL_BYTES / 4)
    const spawn = IS_NODE ? await nodeSpawn() : webSpawn()
    const onError = (message: string) => { this.lastError = message }
    const workers: WorkerHandle[] = []
    await Promise.all(Array.from({ length: nThreads - 1 }, (_, i) => {
      // A worker of the live pool that dies between rounds: replace the pool now.
      const { handle, ready } = spawn({ module, memory, ctl, ith: i + 1, nth: nThreads }, onError, () => {
        if (this.workers.includes(handle)) this.fail()
      })
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
    return workers
  }

  /** Threads computing rounds right now: nThreads, or 1 while a failed pool is rebuilt. */
  get activeThreads(): number {
    return this.workers.length + 1
  }

  /** Resolves when no rebuild is pending (all nThreads compute again, or the rebuild failed). */
  async whenReady(): Promise<void> {
    await this.rebuilding
  }

  /**
   * Runs one round: every job on every thread's share, this thread being thread 0.
   * Jobs of a round must not depend on each other.
   * @throws WorkerError if a thread failed (the pool rebuilds itself), DisposedError after dispose().
   */
  run(jobs: readonly Job[]): void {
    if (this.disposed) throw new DisposedError('the model was disposed; its compute threads are stopped')
    if (this.workers.length < this.nThreads - 1 || this.nThreads === 1) {
      for (const [name, ...args] of jobs) (this.kernels[name] as (...a: number[]) => void)(...args, 0, 1)
      return
    }
    const { i32, f32, base } = this
    const nWorkers = this.workers.length
    writeJobs(i32, f32, this.ctl, jobs)
    Atomics.store(i32, base + CTL_DONE, 0)
    Atomics.add(i32, base + CTL_GEN, 1)
    Atomics.notify(i32, base + CTL_GEN)
    let leaderError: unknown
    try {
      runJobs(this.kernels, i32, f32, this.ctl, 0, this.nThreads)
    } catch (e) {
      leaderError = e // wait for the workers first: they are still writing this round's outputs
    }
    // A round takes micro- to milliseconds; a worker that has not finished after the
    // watchdog time is dead or wedged, and waiting longer would hang the caller.
    const t0 = Date.now()
    try {
      waitWhile(i32, base + CTL_DONE, (v) => v < nWorkers, CAN_BLOCK, () => {
        if (Date.now() - t0 > this.roundTimeoutMs) {
          const done = Atomics.load(i32, base + CTL_DONE)
          throw new WorkerError(`compute workers stopped responding (${done} of ${nWorkers} finished a round within ${this.roundTimeoutMs / 1000} s)`)
        }
      })
    } catch (e) {
      this.fail()
      throw e
    }
    const failed = Atomics.load(i32, base + CTL_ERROR)
    if (failed) {
      const message = `compute worker ${failed} failed: ${this.lastError || 'a kernel trapped (see its error output)'}`
      this.fail()
      throw new WorkerError(message)
    }
    if (leaderError) throw new WorkerError(`compute thread 0 failed: ${String(leaderError)}`, { cause: leaderError })
  }

  /**
   * Drops the current workers and starts new ones in the background; until they are ready,
   * rounds run on the calling thread alone. Old workers are told to exit, then terminated.
   */
  private fail(): void {
    if (this.rebuilding || this.disposed) return
    this.lastError = ''
    const old = this.workers
    this.workers = []
    this.signalExit()
    this.rebuilding = (async () => {
      await Promise.all(old.map((w) => w.terminate()))
      if (this.disposed) return
      try {
        const fresh = await this.startWorkers()
        if (this.disposed) await Promise.all(fresh.map((w) => w.terminate()))
        else this.workers = fresh
      } catch {
        // Starting failed as well: stay on one thread (correct, slower) rather than fail every call.
      }
    })().finally(() => { this.rebuilding = undefined })
  }

  private signalExit(): void {
    Atomics.store(this.i32, this.base + CTL_EXIT, 1)
    Atomics.add(this.i32, this.base + CTL_GEN, 1)
    Atomics.notify(this.i32, this.base + CTL_GEN)
  }

  /** Stops the workers. The pool cannot run afterwards (rounds throw DisposedError). */
  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    const workers = this.workers
    this.workers = []
    if (workers.length) this.signalExit()
    await Promise.all(workers.map((w) => w.terminate()))
    await this.rebuilding
  }
}
