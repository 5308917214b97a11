/**
 * The leader side of the compute threads. The thread that drives decoding computes
 * chunks of every round like the workers instead of only orchestrating (an idle
 * orchestrator on 2 cores costs 30–50 %). Workers are spawned once per model; a round's
 * work is cut into one contiguous share a thread, in chunks that shrink toward the share's end
 * (schedule.ts); a thread claims its own share's chunks from the front and, once done, the
 * others' from the back (protocol.ts); how many threads take part is decided from measured
 * rounds (governor.ts).
 *
 * Workers are Node `worker_threads` in Node, module Web Workers elsewhere (browsers, Deno,
 * Bun); both run compute-worker.ts and share the one WebAssembly.Memory.
 * Where the worker script is: src/assets.ts.
 */
import { computeWorkerUrl, startComputeWorker } from '../assets.js'
import { CAN_BLOCK, IS_NODE } from '../env.js'
import { DisposedError, InvalidArgumentError, WorkerError } from '../errors.js'
import type { Logger } from '../logger.js'
import { ThreadGovernor } from './governor.js'
import {
  claimStart, CTL_ACTIVE, CTL_BYTES, CTL_DONE, CTL_ERROR, CTL_EXIT, CTL_GEN, CTL_ORDER, CTL_SEGMENT, CTL_SHARE_LINES, CTL_SHARES, CTL_SPIN_US,
  callJob, jobWork, MAX_CHUNKS, runChunks, SHARE_WORDS, waitChange, type Bound, type ClaimStats, type Job, type WorkerInit, writeJobs,
} from './protocol.js'
import { type Cut, shareChunks, type Work } from './schedule.js'
import { isSharedVariant, type KernelVariant, type Kernels, type WasmMemory, type WasmModule } from './wasm.js'

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
    const w = new Worker(computeWorkerUrl(), { workerData: init })
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

function webSpawn(url?: URL): Spawn {
  return (init, onError, onExit) => {
    const w = startComputeWorker(url)
    const ready = new Promise<void>((resolve, reject) => {
      w.onerror = (e) => { e.preventDefault(); reject(new Error(e.message || `cannot start the compute worker script${url ? ' ' + url.href : ''}`)); onExit() }
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

/**
 * Work of the smallest chunks, those that end a round, in multiply-adds of the OPS table
 * (~6 µs of one thread's i2s kernel on the project's machine); chunks before them grow
 * with the work left in their share, up to 16× this (schedule.ts). Small chunks at the end
 * of a share balance a round: the first thread done waits for at most one of them. Each
 * chunk costs a compare-and-swap on its share's line, a call, and a new weight stream for the prefetcher,
 * which is why they are not all small: measured with `bench/chunks.mjs` (bench/README.md).
 */
export const CHUNK_COST = 256 * 1024

/** Options of {@link ThreadPool.create}. */
export interface PoolOptions {
  /** Watchdog of one round (default 30 s): a worker silent for longer is declared dead. */
  roundTimeoutMs?: number
  /**
   * Adapt the number of threads taking part to what the machine gives (default false:
   * always all of them). See governor.ts.
   */
  adaptive?: boolean
  /**
   * Told once when adaptation first leaves the full count, and (debug) of every change; its
   * `warn` (else `console.warn`) when the workers cannot start and the pool runs on one thread.
   */
  logger?: Logger
  /** Work of the smallest chunks (default CHUNK_COST); benchmarks vary it. */
  chunkCost?: number
  /** Rotate which thread owns which share of a round, round by round (tests: results must not depend on it). */
  scrambleChunks?: boolean
  /** The compute worker script, where an app hosts it itself (default: the package's, found by assets.ts). */
  workerUrl?: URL
}

/** Every item of each job (`work[j]` is job j's) in one call on this thread. */
function runHere(kernels: Kernels, jobs: readonly Job[], work: readonly Work[]): void {
  for (let j = 0; j < jobs.length; j++) callJob(kernels, jobs[j], 0, work[j].items)
}

/** The jobs with their kernels, for runChunks. */
function bindJobs(kernels: Kernels, jobs: readonly Job[], work: readonly Work[]): Bound[] {
  return jobs.map((job, j) => ({ run: (first: number, end: number) => callJob(kernels, job, first, end), items: work[j].items }))
}

/** Round-trip cost and count, for `bitnet bench --profile`. */
export interface PoolStats { rounds: number; roundMs: number; leadMs: number }

/**
 * Fault handling: a round in which a thread's kernel traps, or a claimed chunk is not
 * finished within the watchdog time (its worker died or is wedged), fails with a
 * {@link WorkerError}; the pool then terminates its workers and starts new ones in the
 * background, computing every round on the calling thread alone until they are ready
 * ({@link whenReady}). A worker that dies between chunks holds nothing up: the others take
 * its chunks, and its exit replaces the workers the same way. After {@link dispose}, a round
 * throws {@link DisposedError} instead of waiting for workers that are gone.
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
  private gen = 0
  /** A round `post` published and no call has finished yet: its chunk total and jobs. */
  private posted?: { total: number; bound: Bound[] }
  private readonly roundTimeoutMs: number
  /** Work of the smallest chunks (CHUNK_COST unless PoolOptions say otherwise); benchmarks vary it. */
  chunkCost: number
  private readonly scramble: boolean
  private readonly workerUrl?: URL
  /** Decides how many threads take part in each round. */
  readonly governor: ThreadGovernor
  /** Rounds and their time since creation (profiling). */
  readonly stats: PoolStats = { rounds: 0, roundMs: 0, leadMs: 0 }

  private constructor(
    /** One instance per memory segment (the model's layers may span several memories). */
    private readonly kernels: Kernels[],
    private readonly module: WasmModule,
    private readonly memories: WasmMemory[],
    private readonly ctl: number,
    /** Threads computing at most, the calling thread included. */
    readonly nThreads: number,
    opts: PoolOptions,
  ) {
    this.i32 = new Int32Array(memories[0].buffer)
    this.f32 = new Float32Array(memories[0].buffer)
    this.base = ctl >>> 2
    this.roundTimeoutMs = opts.roundTimeoutMs ?? ROUND_TIMEOUT_MS
    this.chunkCost = opts.chunkCost ?? CHUNK_COST
    this.scramble = opts.scrambleChunks ?? false
    this.workerUrl = opts.workerUrl
    let told = false
    this.governor = new ThreadGovernor(nThreads, opts.adaptive ?? false, (from, to, measured) => {
      const speedups = [...measured].map(([n, s]) => `${n}: ${s.toFixed(2)}×`).join(', ')
      opts.logger?.debug?.(`bitnet-wasm: ${from} → ${to} compute threads (measured speed-up over one thread ${speedups})`)
      if (told || to >= nThreads) return
      told = true
      opts.logger?.info?.(`bitnet-wasm: the machine is busy, so ${to} of ${nThreads} compute threads are faster now; ` +
        'the count grows back when the load goes (pass `threads` to pin it)')
    })
  }

  /**
   * Starts `nThreads − 1` workers on the shared memories (a model's segments; `kernels[i]` is
   * the module instantiated on `memories[i]`) and waits until each has instantiated the
   * module on every one. `ctl` is a CTL_BYTES control block in the first memory. Workers
   * that cannot start leave a pool that computes on the calling thread alone (warned once).
   */
  static async create(module: WasmModule, memories: WasmMemory[], kernels: Kernels[], ctl: number, nThreads: number,
    opts: PoolOptions = {}): Promise<ThreadPool> {
    if (!Number.isInteger(nThreads) || nThreads < 1 || nThreads > 256) {
      throw new InvalidArgumentError(`threads must be an integer in 1..256, got ${nThreads}`)
    }
    const pool = new ThreadPool(kernels, module, memories, ctl, nThreads, opts)
    // A clean control block: a stale EXIT or GEN word would stop or confuse the workers.
    pool.i32.fill(0, pool.base, pool.base + CTL_BYTES / 4)
    if (nThreads === 1) return pool
    if (typeof SharedArrayBuffer === 'undefined' || memories.some((m) => !(m.buffer instanceof SharedArrayBuffer))) {
      throw new InvalidArgumentError('threads > 1 need a shared memory (a threaded kernel build and SharedArrayBuffer)')
    }
    try {
      pool.workers = await pool.startWorkers()
    } catch (e) {
      // A bundler that did not ship the worker script, a CSP that forbids workers, …: one
      // thread is slower but correct, and better than no model. Said once, never silently.
      const warn = opts.logger?.warn?.bind(opts.logger) ?? console.warn
      warn(`bitnet-wasm: running on 1 thread instead of ${nThreads}: ${(e as Error).message}`)
    }
    return pool
  }

  /** Starts the workers on a clean control block. */
  private async startWorkers(): Promise<WorkerHandle[]> {
    const { module, memories, ctl, nThreads } = this
    this.i32.fill(0, this.base, this.base + CTL_BYTES / 4)
    this.gen = 0
    Atomics.store(this.i32, this.base + CTL_ACTIVE, nThreads)
    const spawn = IS_NODE && !this.workerUrl ? await nodeSpawn() : webSpawn(this.workerUrl)
    const onError = (message: string) => { this.lastError = message }
    const workers: WorkerHandle[] = []
    await Promise.all(Array.from({ length: nThreads - 1 }, (_, i) => {
      // A worker of the live pool that dies between rounds: replace the pool now.
      const { handle, ready } = spawn({ module, memories, ctl, ith: i + 1, nth: nThreads }, onError, () => {
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

  /** Threads that can compute rounds right now: nThreads, or 1 while a failed pool is rebuilt. */
  get activeThreads(): number {
    return this.workers.length + 1
  }

  /** Threads the next round will use: the governor's count, within the live ones. */
  get roundThreads(): number {
    return Math.min(this.governor.threads, this.activeThreads)
  }

  /** Resolves when no rebuild is pending (all nThreads compute again, or the rebuild failed). */
  async whenReady(): Promise<void> {
    await this.rebuilding
  }

  /**
   * Runs one round: every job cut into chunks, computed by the threads taking part, this
   * one included. Jobs of a round must not depend on each other; their pointers address
   * memory `segment`. `measured` false keeps the round out of the stats and the governor
   * (loading's conversions: page-fault-bound, they say nothing about inference rounds).
   * @throws WorkerError if a thread failed (the pool rebuilds itself), DisposedError after dispose().
   */
  run(jobs: readonly Job[], segment = 0, measured = true): void {
    if (this.disposed) throw new DisposedError('the model was disposed; its compute threads are stopped')
    this.settle()
    const kernels = this.kernels[segment]
    const work = jobs.map((j) => jobWork(j))
    const units = work.reduce((a, w) => a + w.items * w.cost, 0)
    const n = this.roundThreads
    const t0 = performance.now()
    if (n === 1) {
      runHere(kernels, jobs, work)
      const ms = performance.now() - t0
      if (measured) this.account({ threads: 1, units, leadUnits: units, leadMs: ms, roundMs: ms })
      return
    }
    const total = this.publish(jobs, work, shareChunks(work, n, this.chunkCost, MAX_CHUNKS), n, segment)
    const mine = runChunks(bindJobs(kernels, jobs, work), this.i32, this.ctl, this.gen, 0, work)
    const leadMs = performance.now() - t0
    this.finish(total, mine)
    if (measured) this.account({ threads: n, units, leadUnits: mine.units, leadMs, roundMs: performance.now() - t0 })
  }

  /**
   * Hands the jobs to the workers and returns at once, for work this thread need not wait
   * for (touching the KV cache's next pages while it does the serial work between rounds).
   * The next round, or `settle()`, first finishes it: this thread then claims whatever chunks
   * no worker has taken, and waits for the rest. On one thread the jobs run here and now.
   * Jobs posted must not touch memory that this thread reads or writes before that.
   * @throws WorkerError as `run` does (from here or from the call that settles it), DisposedError after dispose().
   */
  post(jobs: readonly Job[], segment = 0): void {
    if (this.disposed) throw new DisposedError('the model was disposed; its compute threads are stopped')
    this.settle()
    const work = jobs.map((j) => jobWork(j))
    const n = this.roundThreads
    if (n === 1) return runHere(this.kernels[segment], jobs, work)
    // This thread's share too: the workers take it from the back until it settles the round.
    const total = this.publish(jobs, work, shareChunks(work, n, this.chunkCost, MAX_CHUNKS), n, segment)
    this.posted = { total, bound: bindJobs(this.kernels[segment], jobs, work) }
  }

  /** Finishes the round `post` published, if any (the next round does so itself). */
  settle(): void {
    const p = this.posted
    if (!p) return
    this.posted = undefined
    this.finish(p.total, runChunks(p.bound, this.i32, this.ctl, this.gen, 0))
  }

  /** Waits for the round's `total` chunks, then throws if a thread failed (`mine`: this thread's share). */
  private finish(total: number, mine: ClaimStats): void {
    this.awaitChunks(total)
    const failed = Atomics.load(this.i32, this.base + CTL_ERROR)
    if (!failed) return
    const who = failed === 1 ? 'compute thread 0' : `compute worker ${failed - 1}`
    const message = `${who} failed: ${failed === 1 ? String(mine.errors?.[0]) : this.lastError || 'a kernel trapped (see its error output)'}`
    this.fail()
    throw new WorkerError(message, { cause: mine.errors?.[0] })
  }

  /**
   * Runs the jobs on this thread alone, each in one call over all its items: work too small
   * to pay for waking the workers and waiting for them. The same bytes as a round (a kernel's
   * items do not depend on how they are cut); not a round for the governor or the stats.
   * @throws DisposedError after dispose().
   */
  runAlone(jobs: readonly Job[], segment = 0): void {
    if (this.disposed) throw new DisposedError('the model was disposed; its compute threads are stopped')
    runHere(this.kernels[segment], jobs, jobs.map((j) => jobWork(j)))
  }

  /** Writes the round into the control block and wakes the workers; returns its chunk count. */
  private publish(jobs: readonly Job[], work: readonly Work[], { chunks, starts }: Cut, n: number, segment: number): number {
    const { i32, base } = this
    const total = writeJobs(i32, this.f32, this.ctl, jobs, work, chunks)
    i32[base + CTL_SEGMENT] = segment
    i32[base + CTL_SHARES] = n
    const gen = ++this.gen
    i32[base + CTL_ORDER] = this.scramble ? gen % n : 0
    i32[base + CTL_SPIN_US] = this.governor.spinUs
    if (Atomics.load(i32, base + CTL_ACTIVE) !== n) {
      Atomics.store(i32, base + CTL_ACTIVE, n)
      Atomics.notify(i32, base + CTL_ACTIVE)
    }
    Atomics.store(i32, base + CTL_DONE, 0)
    Atomics.store(i32, base + CTL_ERROR, 0)
    for (let t = 0; t < n; t++) {
      const line = base + CTL_SHARE_LINES + t * SHARE_WORDS
      i32[line + 1] = starts[t]
      Atomics.store(i32, line, claimStart(gen, starts[t + 1] - starts[t]))
    }
    Atomics.store(i32, base + CTL_GEN, gen)
    Atomics.notify(i32, base + CTL_GEN)
    return total
  }

  /**
   * Waits until every chunk of the round is done: a short spin (the last chunks are
   * µs from done on a machine with a core per thread), then sleep, so that a thread the
   * OS preempted mid-chunk gets this core back. A chunk not done within the watchdog time
   * belongs to a dead or wedged worker.
   */
  private awaitChunks(total: number): void {
    const { i32, base } = this
    const t0 = Date.now()
    for (let done = Atomics.load(i32, base + CTL_DONE); done < total; done = Atomics.load(i32, base + CTL_DONE)) {
      waitChange(i32, base + CTL_DONE, done, this.governor.spinUs ? 50 : 5, CAN_BLOCK, 50, () => {
        if (Date.now() - t0 <= this.roundTimeoutMs) return
        this.fail()
        throw new WorkerError(`compute workers stopped responding (${Atomics.load(i32, base + CTL_DONE)} of ${total} chunks ` +
          `of a round finished within ${this.roundTimeoutMs / 1000} s)`)
      })
    }
  }

  private account(r: { threads: number; units: number; leadUnits: number; leadMs: number; roundMs: number }): void {
    this.stats.rounds++
    this.stats.roundMs += r.roundMs
    this.stats.leadMs += r.leadMs
    this.governor.record(r)
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
    const { i32, base } = this
    Atomics.store(i32, base + CTL_EXIT, 1)
    Atomics.add(i32, base + CTL_GEN, 1)
    Atomics.notify(i32, base + CTL_GEN)
    Atomics.notify(i32, base + CTL_ACTIVE)
  }

  /** Stops the workers. The pool cannot run afterwards (rounds throw DisposedError). */
  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    this.posted = undefined
    const workers = this.workers
    this.workers = []
    if (workers.length) this.signalExit()
    await Promise.all(workers.map((w) => w.terminate()))
    await this.rebuilding
  }
}
