/**
 * A compute worker: instantiates the kernel module on the shared memory, then loops
 * forever: wait for a new round (GEN changes), claim and run chunks of it until none are
 * left (protocol.ts), wait again. One source for every runtime: a Node
 * `worker_threads` worker gets its WorkerInit as workerData, a module Web Worker
 * (browsers, Deno, Bun) as its first message.
 * Bundled to dist/bitnet-worker.js (Node, Deno, Bun) and dist/bitnet-worker.browser.js.
 */
import { IS_NODE } from '../env.js'
import { instantiateKernels } from './wasm.js'
import { CTL_ACTIVE, CTL_EXIT, CTL_GEN, CTL_SEGMENT, CTL_SPIN_US, readJobs, runChunks, waitChange, type WorkerInit } from './protocol.js'

function computeLoop({ module, memories, ctl, ith }: WorkerInit, post: (m: unknown) => void): void {
  // One instance per memory segment; the control block lives in the first.
  const kernels = memories.map((m) => instantiateKernels(module, m))
  const i32 = new Int32Array(memories[0].buffer)
  const f32 = new Float32Array(memories[0].buffer)
  const base = ctl >>> 2
  const spin = new AdaptiveSpin()
  // Read the generation before announcing readiness: the leader may publish its first round
  // as soon as it hears 'ready', and a worker that read GEN after that would sleep through it.
  let gen = Atomics.load(i32, base + CTL_GEN)
  post('ready')

  for (;;) {
    const active = Atomics.load(i32, base + CTL_ACTIVE)
    if (ith >= active) {
      // Parked by the leader (fewer threads are faster right now): sleep until it says otherwise.
      Atomics.wait(i32, base + CTL_ACTIVE, active)
      if (Atomics.load(i32, base + CTL_EXIT)) break
      gen = Atomics.load(i32, base + CTL_GEN)
      continue
    }
    const t0 = performance.now()
    const { value, spun } = waitChange(i32, base + CTL_GEN, gen, spin.us(Atomics.load(i32, base + CTL_SPIN_US)), true, 1000)
    spin.update(spun, performance.now() - t0)
    gen = value
    if (Atomics.load(i32, base + CTL_EXIT)) break
    if (ith >= Atomics.load(i32, base + CTL_ACTIVE)) continue
    const { errors } = runChunks(readJobs(kernels[i32[base + CTL_SEGMENT]], i32, f32, ctl), i32, ctl, gen, ith)
    // Report instead of dying silently: the leader turns this into an error of its call.
    for (const e of errors ?? []) post({ error: String((e as Error)?.stack ?? e) })
  }
}

/**
 * How long to spin before sleeping, adapted to the waits this worker has seen: a wait that
 * ended while spinning or soon after the spin would have ended it keeps (or doubles) the
 * spin; a long sleep halves it, so a worker between generations, or on a machine where
 * spinning steals the core from the thread it waits for, soon stops spinning. Never more
 * than the leader's SPIN_US, which is 0 when it has measured the machine oversubscribed.
 */
class AdaptiveSpin {
  private current = 50

  us(max: number): number {
    return Math.min(this.current, max)
  }

  update(spun: boolean, waitedMs: number): void {
    const waitedUs = waitedMs * 1000
    if (spun || waitedUs < 2 * this.current + 100) this.current = Math.min(1000, Math.max(8, this.current * 2))
    else this.current = Math.max(0, Math.floor(this.current / 2))
  }
}

// Started last: the classes above must be initialised before the loop uses them.
// No top-level await: bundlers build worker scripts as classic (iife) workers by default.
if (IS_NODE) {
  void import('node:worker_threads').then(({ parentPort, workerData }) => computeLoop(workerData as WorkerInit, (m) => parentPort!.postMessage(m)))
} else {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void }
  scope.onmessage = (e) => {
    scope.onmessage = null
    computeLoop(e.data as WorkerInit, (m) => scope.postMessage(m))
  }
}
