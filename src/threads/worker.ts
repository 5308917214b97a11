/**
 * A compute worker: instantiates the kernel module on the shared memory, then loops
 * forever: wait for a new round (GEN changes), run its share of every job, count itself
 * done. One source for every runtime: a Node `worker_threads` worker gets its WorkerInit
 * as workerData, a module Web Worker (browsers, Deno, Bun) as its first message.
 * Bundled to dist/bitnet-worker.js (Node, Deno, Bun) and dist/bitnet-worker.browser.js.
 */
import { IS_NODE } from '../env.js'
import { instantiateKernels } from '../wasm.js'
import { CTL_DONE, CTL_ERROR, CTL_EXIT, CTL_GEN, runJobs, waitWhile, type WorkerInit } from './protocol.js'

if (IS_NODE) {
  const { parentPort, workerData } = await import('node:worker_threads')
  computeLoop(workerData as WorkerInit, (m) => parentPort!.postMessage(m))
} else {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void }
  scope.onmessage = (e) => {
    scope.onmessage = null
    computeLoop(e.data as WorkerInit, (m) => scope.postMessage(m))
  }
}

function computeLoop({ module, memory, ctl, ith, nth }: WorkerInit, post: (m: unknown) => void): void {
  const kernels = instantiateKernels(module, memory)
  const i32 = new Int32Array(memory.buffer)
  const f32 = new Float32Array(memory.buffer)
  const base = ctl >> 2
  // Read the generation before announcing readiness: the leader may publish its first round
  // as soon as it hears 'ready', and a worker that read GEN after that would sleep through it.
  let seen = Atomics.load(i32, base + CTL_GEN)
  post('ready')

  for (;;) {
    seen = waitWhile(i32, base + CTL_GEN, (v) => v === seen, true)
    if (Atomics.load(i32, base + CTL_EXIT)) break
    try {
      runJobs(kernels, i32, f32, ctl, ith, nth)
    } catch (e) {
      // Report instead of dying silently: the leader turns this into an error of its call.
      Atomics.store(i32, base + CTL_ERROR, ith)
      post({ error: String((e as Error)?.stack ?? e) })
    }
    if (Atomics.add(i32, base + CTL_DONE, 1) === nth - 2) Atomics.notify(i32, base + CTL_DONE)
  }
}
