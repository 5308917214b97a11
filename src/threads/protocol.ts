/**
 * The job protocol between the leader thread and the compute workers, in one place.
 *
 * Jobs travel through a control block in the shared wasm memory, not through messages:
 * posting a message costs tens of µs, a spinning worker sees a store in well under one.
 *
 *   ctl (Int32 words, 64-byte aligned, allocated with the model state)
 *   ┌─────┬──────┬────────┬───────┬───────┬──────────┬───────────────────────────────┐
 *   │ GEN │ DONE │ N_JOBS │ EXIT  │ ERROR │ reserved │ job 0 [16 words] job 1 …       │
 *   └─────┴──────┴────────┴───────┴───────┴──────────┴───────────────────────────────┘
 *   job: [op index, arg 0 … arg 14]; float args are stored as their f32 bit patterns.
 *
 * A round: the leader writes the jobs, zeroes DONE, bumps GEN and notifies; every thread
 * (leader included, as thread 0) runs every job of the round on its own share
 * (ith, nth) — the jobs of one round must be independent (q/k/v, gate/up) —, then
 * workers increment DONE; the leader waits for DONE = nth − 1.
 */
export const CTL_GEN = 0
export const CTL_DONE = 1
export const CTL_NJOBS = 2
export const CTL_EXIT = 3
export const CTL_ERROR = 4
export const CTL_JOBS = 8
export const JOB_WORDS = 16
export const MAX_JOBS = 32
export const CTL_BYTES = (CTL_JOBS + MAX_JOBS * JOB_WORDS) * 4

/**
 * Kernels a round can run, with their argument kinds (i = int/pointer, f = f32) before
 * the trailing (ith, nth). The index in this table is the op code.
 */
export const OPS = [
  ['matvec_i2s_i8', 'iiifiii'],
  ['matvec_tl_i8', 'iiifiii'],
  ['matvec_f16_f32', 'iiiii'],
  ['matvec_f32_f32', 'iiiii'],
  ['attention_partial_f32', 'iiiiiiiiiiii'],
  ['matmul_q8b_i8', 'iiiiiiiii'],
  ['matvec_q4b_i8', 'iiiiiiii'],
  ['matmul_i2s_i8', 'iiifiiii'],
  ['rmsnorm_quantize_rows_f32_i8', 'iiifiiiii'],
  ['attention_partial_f16', 'iiiiiiiiiiii'],
  ['attention_partial_f32_ref', 'iiiiiiiiiiii'],
  ['attention_partial_f16_ref', 'iiiiiiiiiiii'],
  ['attention_combine_f32', 'iiiiii'],
] as const

export type OpName = (typeof OPS)[number][0]
export const OP_CODE = Object.fromEntries(OPS.map(([name], i) => [name, i])) as Record<OpName, number>

/** A job: a kernel name and its arguments without (ith, nth). */
export type Job = [OpName, ...number[]]

/**
 * Loads a waiting thread spins before it sleeps in Atomics.wait. Spinning makes a round
 * trip ~0.2 µs instead of 10–40 µs for a futex wake (wasm-kernels.md §4). The leader's
 * work between rounds (norm + quantize, RoPE, the JavaScript that sets up a round) must
 * not outlast the spin, or every round of a decode step pays a wake-up: with 20 000 loads
 * the short rounds (q/k/v, attention output) ran 30–40 µs over their kernels' time, and
 * 200 000 gave 2B4T decode +12 % on 2 threads (same-run pairs, bench/README.md). Longer
 * spins only burn more of a core once a generation ends (~0.1 ms per pause).
 */
export const SPIN = 200_000

/** Writes the jobs of one round into the control block. */
export function writeJobs(i32: Int32Array, f32: Float32Array, ctl: number, jobs: readonly Job[]): void {
  if (jobs.length > MAX_JOBS) throw new RangeError(`a round holds at most ${MAX_JOBS} jobs, got ${jobs.length}`)
  const base = ctl >> 2
  jobs.forEach(([name, ...args], j) => {
    const o = base + CTL_JOBS + j * JOB_WORDS
    const code = OP_CODE[name]
    const kinds = OPS[code][1]
    i32[o] = code
    for (let a = 0; a < args.length; a++) {
      if (kinds[a] === 'f') f32[o + 1 + a] = args[a]
      else i32[o + 1 + a] = args[a]
    }
  })
  i32[base + CTL_NJOBS] = jobs.length
}

/** Runs every job of the current round on share (ith, nth). */
export function runJobs(kernels: object, i32: Int32Array, f32: Float32Array, ctl: number, ith: number, nth: number): void {
  const base = ctl >> 2
  const n = i32[base + CTL_NJOBS]
  const k = kernels as Record<OpName, (...a: number[]) => void>
  for (let j = 0; j < n; j++) {
    const o = base + CTL_JOBS + j * JOB_WORDS
    const [name, kinds] = OPS[i32[o]]
    const args: number[] = []
    for (let a = 0; a < kinds.length; a++) args.push(kinds[a] === 'f' ? f32[o + 1 + a] : i32[o + 1 + a])
    k[name](...args, ith, nth)
  }
}

/**
 * Spins while `busy(value)` holds, then sleeps in 50 ms Atomics.wait slices, calling
 * `onSleep` before each (a watchdog may throw from it). Returns the final value.
 * Where the thread may not block (`canBlock` false: a browser page's main thread, on
 * which Atomics.wait throws), it keeps spinning and calls `onSleep` every SPIN loads.
 */
export function waitWhile(i32: Int32Array, index: number, busy: (v: number) => boolean, canBlock: boolean, onSleep?: () => void): number {
  let v = Atomics.load(i32, index)
  for (let spins = 0; busy(v); spins++) {
    if (spins >= SPIN) {
      onSleep?.()
      if (canBlock) Atomics.wait(i32, index, v, 50)
      else spins = 0
    }
    v = Atomics.load(i32, index)
  }
  return v
}

/** What a compute worker is started with (Node: workerData; Web Workers: the first message). */
export interface WorkerInit { module: WebAssembly.Module; memory: WebAssembly.Memory; ctl: number; ith: number; nth: number }
