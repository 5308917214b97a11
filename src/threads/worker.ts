/**
 * A compute worker: instantiates the kernel module on the shared memory, then loops
 * forever: wait for a new round (GEN changes), run its share of every job, count itself
 * done. Bundled to dist/bitnet-worker.js. Node `worker_threads` for now.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { instantiateKernels } from '../wasm.js'
import { CTL_DONE, CTL_ERROR, CTL_EXIT, CTL_GEN, runJobs, waitWhile } from './protocol.js'

interface WorkerInit { module: WebAssembly.Module; memory: WebAssembly.Memory; ctl: number; ith: number; nth: number }

const { module, memory, ctl, ith, nth } = workerData as WorkerInit
const kernels = instantiateKernels(module, memory)
const i32 = new Int32Array(memory.buffer)
const f32 = new Float32Array(memory.buffer)
const base = ctl >> 2
// Read the generation before announcing readiness: the leader may publish its first round
// as soon as it hears 'ready', and a worker that read GEN after that would sleep through it.
let seen = Atomics.load(i32, base + CTL_GEN)
parentPort!.postMessage('ready')

for (;;) {
  seen = waitWhile(i32, base + CTL_GEN, (v) => v === seen)
  if (Atomics.load(i32, base + CTL_EXIT)) break
  try {
    runJobs(kernels, i32, f32, ctl, ith, nth)
  } catch (e) {
    // Report instead of dying silently: the leader turns this into an error of its call.
    Atomics.store(i32, base + CTL_ERROR, ith)
    parentPort!.postMessage({ error: String((e as Error)?.stack ?? e) })
  }
  if (Atomics.add(i32, base + CTL_DONE, 1) === nth - 2) Atomics.notify(i32, base + CTL_DONE)
}
