/**
 * The round protocol between the leader thread and the compute workers, in one place.
 *
 * Jobs travel through a control block in the shared wasm memory, not through messages:
 * posting a message costs tens of µs, a spinning worker sees a store in well under one.
 *
 *   ctl (Int32 words, 64-byte aligned, allocated with the model state)
 *   word 0   GEN      round generation; waiting workers sleep on it
 *        1   NJOBS    jobs in this round
 *        2   TOTAL    chunks in this round (all jobs)
 *        3   EXIT     1: workers leave their loop
 *        4   ERROR    ith + 1 of a thread whose kernel trapped (0: none)
 *        5   ACTIVE   threads taking part (the leader's count; workers with ith ≥ ACTIVE sleep on it)
 *        6   SPIN_US  how long a waiting worker spins before it sleeps, µs
 *        7   ORDER    thread ith owns share (ith + ORDER) mod SHARES (tests rotate it; else 0)
 *        8   SEGMENT  which of the model's memories the round's pointers address (src/model/segments.ts)
 *        9   SHARES   shares of this round (schedule.ts): one a thread taking part
 *   word 32  DONE     chunks finished in this round, on its own line
 *   word 48  job 0 [16 words] job 1 …   job: [op code, items, arg 0 … arg 13]
 *   word 560 CHUNKS   chunk c: job << 24 | its first item (schedule.ts), MAX_CHUNKS words
 *   word 1584 share 0 [16 words: a line] share 1 …   share: [CLAIM, its first chunk]
 *            CLAIM    (GEN mod 2^20) << 12 | front << 6 | back: the share's chunks left are
 *                     [front, back), counted from its first chunk
 *
 * A round: the leader writes the jobs and the chunk table (each chunk an item range
 * [first, end) of one job; its end is the next chunk's first, or the job's item count; the
 * table is cut into one contiguous share a thread), zeroes DONE, sets each share's CLAIM to
 * the new generation with all its chunks left, bumps GEN and notifies. Every thread taking
 * part, the leader included, then claims chunks one at a time with a compare-and-swap: of its
 * own share from the front (moving `front` up), then of the others' from the back (moving
 * `back` down), and runs the job's kernel on the chunk's items, until none are left; each
 * adds its count to DONE, and the leader waits for DONE = TOTAL. So a thread that the OS
 * preempts holds up at most the chunk it is in: the others take every chunk it did not claim.
 * Kernels take (…, first, end) and compute items [first, end) of their work
 * (assembly/ops/split.ts), in any thread and any order.
 * Their outputs are disjoint per item and integer-exact, so the result is bit for bit the
 * same whoever computes a chunk, however the items were cut.
 *
 * The generation and the chunks left, both inside a CLAIM, make a late worker harmless: one
 * that read the jobs of an old round can no longer claim a chunk (its compare-and-swap
 * expects the old generation), and a claim that succeeds proves the round was not over, so
 * what it read before (jobs, TOTAL, ORDER, SHARES) and the share's first chunk and the chunk
 * table it reads after were that round's: the leader rewrites them only after DONE = TOTAL.
 * A stale SHARES only makes it look at fewer shares, or at words of older generations.
 */
import { ITEM_BITS, ITEM_MASK, type Work } from './schedule.js'
import type { Kernels, WasmMemory, WasmModule } from './wasm.js'

export const CTL_GEN = 0
export const CTL_NJOBS = 1
export const CTL_TOTAL = 2
export const CTL_EXIT = 3
export const CTL_ERROR = 4
export const CTL_ACTIVE = 5
export const CTL_SPIN_US = 6
export const CTL_ORDER = 7
export const CTL_SEGMENT = 8
export const CTL_SHARES = 9
export const CTL_DONE = 32
export const CTL_JOBS = 48
export const JOB_WORDS = 16
export const JOB_HEADER = 2
export const MAX_JOBS = 32
/**
 * Chunks of one round at most: the chunk table's length (4 KiB). A decode round on 2 threads
 * has ~15; each share at most MAX_SHARE_CHUNKS (schedule.ts), its chunk indices' 6 bits in CLAIM.
 */
export const MAX_CHUNKS = (1 << 10) - 1
export const CTL_CHUNKS = CTL_JOBS + MAX_JOBS * JOB_WORDS
/** One 64-byte line a share (a thread taking part), up to the pool's 256 threads: [CLAIM, its first chunk]. */
export const CTL_SHARE_LINES = CTL_CHUNKS + MAX_CHUNKS + 1
export const SHARE_WORDS = 16
export const MAX_SHARES = 256
export const CTL_BYTES = (CTL_SHARE_LINES + MAX_SHARES * SHARE_WORDS) * 4
const GEN_MASK = (1 << 20) - 1


const groups = (rows: number, size: number) => Math.ceil(rows / size)

/**
 * Work of norm + quantize per element of a row, in ternary multiply-adds of the same time:
 * ~4.5–5 µs for a row of 2560 against the batched kernel's ~80 G multiply-adds/s (relaxed build).
 */
const NORM_ROW_COST = 128

/**
 * Attention (assembly/ops/attention.ts), one round: items are (kv head × block of `block`
 * positions); each reads `block` keys and values for the n rows of its group of query heads
 * (the item finishing a kv head's last block also combines its blocks: n·group·blocks·head_dim).
 */
const ATTENTION_PARTIAL = {
  kinds: 'iiiiiiiiiiiiii',
  work: ([, , , , , , , , n, nHead, nHeadKv, headDim, nPos, block]: number[]): Work =>
    ({ items: nHeadKv * Math.ceil((nPos + n - 1) / block), cost: 8 * block * headDim * n * (nHead / nHeadKv) }),
} as const

/** An F16 matrix's rows → a quantized output copy (load): items are rows. */
const QUANTIZE_ROWS = { kinds: 'iiiiii', work: ([, rows, k]: number[]): Work => ({ items: rows, cost: 4 * k }) } as const

/** A Q8_0 / Q6_K matrix's rows → f16 rows (load, before the copy is made): items are rows. */
const DEQUANTIZE_ROWS = { kinds: 'iiii', work: ([, rows, k]: number[]): Work => ({ items: rows, cost: 2 * k }) } as const

/**
 * Kernels a round can run: their argument kinds before the trailing (first, end) (i =
 * int/pointer, f = f32) and the work of a call, from which the leader cuts chunks. The
 * index in this table is the op code. Costs are multiply-adds of the inner loop, scaled by
 * how much slower one is than a ternary one (f32 lanes are 4 per vector, not 16).
 */
export const OPS = {
  matvec_i2s_i8: { kinds: 'iiifiii', work: ([, , , , , rows, kp]: number[]): Work => ({ items: groups(rows, 4), cost: 4 * kp }) },
  matvec_tl_i8: { kinds: 'iiifiii', work: ([, , , , , rows, kp]: number[]): Work => ({ items: groups(rows, 16), cost: 16 * kp }) },
  matvec_f16_f32: { kinds: 'iiiii', work: ([, , , rows, k]: number[]): Work => ({ items: rows, cost: 4 * k }) },
  matvec_f32_f32: { kinds: 'iiiii', work: ([, , , rows, k]: number[]): Work => ({ items: rows, cost: 4 * k }) },
  matmul_q8b_i8: { kinds: 'iiiiiiiii', work: ([, , , , , , rows, kp, ntok]: number[]): Work => ({ items: groups(rows, 4), cost: 4 * kp * ntok }) },
  matmul_q6b_i8: { kinds: 'iiiiiiiii', work: ([, , , , , , rows, kp, ntok]: number[]): Work => ({ items: groups(rows, 4), cost: 4 * kp * ntok }) },
  matvec_q4b_i8: { kinds: 'iiiiiiii', work: ([, , , , , , rows, kp]: number[]): Work => ({ items: groups(rows, 4), cost: 4 * kp }) },
  // the listed 4-row groups of one token (a bounded output head's exact rows)
  rescore_q8b_i8: { kinds: 'iiiiiiiiii', work: ([, , , , , , , kp, , count]: number[]): Work => ({ items: count, cost: 4 * kp }) },
  matmul_i2s_i8: { kinds: 'iiifiiii', work: ([, , , , , rows, kp, ntok]: number[]): Work => ({ items: groups(rows, 4), cost: 4 * kp * ntok }) },
  // Weighed as 8 per element, a batch's 32 rows were cut into two uneven chunks (13 and 19 rows).
  rmsnorm_quantize_rows_f32_i8: {
    kinds: 'iiiifiiiii',
    work: ([, , , dim, , , , , , rows]: number[]): Work => ({ items: rows, cost: NORM_ROW_COST * dim }),
  },
  gated_rmsnorm_quantize_rows_f32_i8: {
    kinds: 'iiiiifiiiii',
    work: ([, , , , dim, , , , , , rows]: number[]): Work => ({ items: rows, cost: (NORM_ROW_COST + 16) * dim }),
  },
  attention_partial_f32: ATTENTION_PARTIAL,
  attention_partial_f16: ATTENTION_PARTIAL,
  attention_partial_f32_ref: ATTENTION_PARTIAL,
  attention_partial_f16_ref: ATTENTION_PARTIAL,
  // Load-time conversions (model/load.ts), weighed by bytes written: a repack moves a group's
  // codes (first touches of fresh pages, mostly), a quantization converts a row of f16.
  repack_i2s_c4: { kinds: 'iiii', work: ([, rows, k]: number[]): Work => ({ items: groups(rows, 4), cost: k }) },
  repack_i2s_tl: { kinds: 'iiii', work: ([, rows, k]: number[]): Work => ({ items: groups(rows, 16), cost: 4 * k }) },
  quantize_rows_f16_q8b: QUANTIZE_ROWS,
  quantize_rows_f16_q6b: QUANTIZE_ROWS,
  quantize_rows_f16_q4b: QUANTIZE_ROWS,
  dequantize_rows_q8_0_f16: DEQUANTIZE_ROWS,
  dequantize_rows_q6_k_f16: DEQUANTIZE_ROWS,
  // First touches of the KV cache's next pages (assembly/ops/prefault.ts): items are 4 KiB
  // pages, a fault each (12–15 µs in the project's VM, ~2 of the smallest chunks).
  prefault_pages: { kinds: 'ii', work: ([, pages]: number[]): Work => ({ items: pages, cost: 512 * 1024 }) },
} as const

export type OpName = keyof typeof OPS
const OP_NAMES = Object.keys(OPS) as OpName[]
export const OP_CODE = Object.fromEntries(OP_NAMES.map((name, i) => [name, i])) as Record<OpName, number>

/** A kernel's arguments without the trailing (first, end), as its signature in `Kernels` names them. */
type ArgsOf<K extends OpName> = Kernels[K] extends (...a: [...infer A, number, number]) => void ? A : never
/** A job: a round kernel and its arguments, checked against the kernel's signature. */
export type Job = { [K in OpName]: [K, ...ArgsOf<K>] }[OpName]

// The arguments of a job, reused (no array per call): a decode step makes ~150 rounds, and
// every array a round allocates is young-generation garbage, whose fresh pages cost first-touch
// faults until the heap has grown (~1 MB of garbage a token made the first ~100 tokens after
// loading pay ~1 ms each). Made with a non-number so that it holds tagged values: an array of
// doubles would box every argument anew for each call.
const callArgs: unknown[] = [undefined]

/** The work of a job (OPS table). */
export function jobWork(job: Job): Work {
  callArgs.length = job.length - 1
  for (let a = 0; a < job.length - 1; a++) callArgs[a] = job[a + 1]
  return OPS[job[0]].work(callArgs as number[])
}

/** Calls job's kernel on items [first, end), without allocating. */
export function callJob(kernels: object, job: Job, first: number, end: number): void {
  const n = job.length - 1
  for (let a = 0; a < n; a++) callArgs[a] = job[a + 1]
  callArgs[n] = first
  callArgs[n + 1] = end
  callArgs.length = n + 2
  ;(kernels as Record<OpName, (...a: unknown[]) => void>)[job[0]].apply(null, callArgs)
}

/** Writes the jobs of one round (`work[j]` is job j's) and its chunk table; returns the chunk total. */
export function writeJobs(i32: Int32Array, f32: Float32Array, ctl: number, jobs: readonly Job[], work: readonly Work[],
  chunks: readonly number[]): number {
  if (jobs.length > MAX_JOBS) throw new RangeError(`a round holds at most ${MAX_JOBS} jobs, got ${jobs.length}`)
  if (chunks.length > MAX_CHUNKS) throw new RangeError(`a round holds at most ${MAX_CHUNKS} chunks, got ${chunks.length}`)
  const base = ctl >>> 2
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j], name = job[0]
    if (work[j].items > ITEM_MASK) throw new RangeError(`a job holds at most ${ITEM_MASK} items, got ${work[j].items}`)
    const o = base + CTL_JOBS + j * JOB_WORDS
    const kinds = OPS[name].kinds
    i32[o] = OP_CODE[name]
    i32[o + 1] = work[j].items
    for (let a = 0; a < job.length - 1; a++) {
      if (kinds[a] === 'f') f32[o + JOB_HEADER + a] = job[a + 1] as number
      else i32[o + JOB_HEADER + a] = job[a + 1] as number
    }
  }
  i32.set(chunks, base + CTL_CHUNKS)
  i32[base + CTL_NJOBS] = jobs.length
  i32[base + CTL_TOTAL] = chunks.length
  return chunks.length
}

/** A decoded job: the kernel bound to its arguments (a bound call is cheaper than a spread), waiting for its item range. */
export interface Bound { run: (first: number, end: number) => void; items: number }

/** Reads the current round's jobs from the control block. */
export function readJobs(kernels: object, i32: Int32Array, f32: Float32Array, ctl: number): Bound[] {
  const base = ctl >>> 2
  const k = kernels as Record<OpName, (...a: number[]) => void>
  const out: Bound[] = []
  for (let j = 0; j < i32[base + CTL_NJOBS]; j++) {
    const o = base + CTL_JOBS + j * JOB_WORDS
    const name = OP_NAMES[i32[o]]
    const kinds = OPS[name].kinds
    const args: number[] = []
    for (let a = 0; a < kinds.length; a++) args.push(kinds[a] === 'f' ? f32[o + JOB_HEADER + a] : i32[o + JOB_HEADER + a])
    out.push({ run: k[name].bind(null, ...args), items: i32[o + 1] })
  }
  return out
}

/** The CLAIM word that opens a share of `chunks` chunks in round `gen`. */
export function claimStart(gen: number, chunks: number): number {
  return ((gen & GEN_MASK) << 12) | chunks
}

/** A share's CLAIM holds `front` in bits 6–11 and `back` in bits 0–5 (schedule.ts: MAX_SHARE_CHUNKS). */
const FRONT = 1 << 6
const SHARE_MASK = FRONT - 1

/** What one thread did in a round: chunks run, and their share of the round's work. */
export interface ClaimStats { chunks: number; units: number; errors?: unknown[] }

/**
 * Claims and runs chunks of round `gen` until none are left (or the round is over), then
 * adds them to DONE (notifying the leader when that completes the round): first of the
 * thread's own share from its front, then of every other share from its back. A kernel that
 * traps still counts its chunk as done, so the round ends; the error is returned and the
 * thread's index + 1 is put in ERROR. `work[j]` (leader only) is job j's work, to count this thread's share.
 */
export function runChunks(jobs: Bound[], i32: Int32Array, ctl: number, gen: number, ith: number, work?: readonly Work[]): ClaimStats {
  const base = ctl >>> 2
  const total = i32[base + CTL_TOTAL]
  const shares = i32[base + CTL_SHARES]
  const own = (ith + i32[base + CTL_ORDER]) % shares
  const stats: ClaimStats = { chunks: 0, units: 0 }
  const want = gen & GEN_MASK
  for (let s = 0; s < shares; s++) {
    const line = base + CTL_SHARE_LINES + ((own + s) % shares) * SHARE_WORDS
    for (;;) {
      const w = Atomics.load(i32, line)
      const front = (w >>> 6) & SHARE_MASK, back = w & SHARE_MASK
      if (w >>> 12 !== want || front >= back) break
      if (Atomics.compareExchange(i32, line, w, s === 0 ? w + FRONT : w - 1) !== w) continue
      // The claim succeeded, so the round was still open: `total`, `shares`, the order and the
      // jobs read before it are this round's, and so are the share's first chunk and the table.
      const c = i32[line + 1] + (s === 0 ? front : back - 1)
      const word = i32[base + CTL_CHUNKS + c]
      const j = word >>> ITEM_BITS, first = word & ITEM_MASK
      const next = c + 1 < total ? i32[base + CTL_CHUNKS + c + 1] : -1
      const end = next >>> ITEM_BITS === j ? next & ITEM_MASK : jobs[j].items
      try {
        jobs[j].run(first, end)
      } catch (e) {
        ;(stats.errors ??= []).push(e)
        Atomics.store(i32, base + CTL_ERROR, ith + 1)
      }
      stats.chunks++
      if (work) stats.units += (end - first) * work[j].cost
    }
  }
  if (stats.chunks && Atomics.add(i32, base + CTL_DONE, stats.chunks) + stats.chunks === total) {
    Atomics.notify(i32, base + CTL_DONE)
  }
  return stats
}

const now = () => performance.now()

/**
 * Waits while `i32[index]` equals `v`: spins up to `spinUs` µs, then sleeps in
 * Atomics.wait slices of `sliceMs`, calling `onSleep` before each (a watchdog may throw
 * from it). Where the thread may not block (`canBlock` false: a browser page's main
 * thread, on which Atomics.wait throws) it keeps spinning and calls `onSleep` every
 * slice. Returns the new value and whether it came while spinning.
 */
export function waitChange(i32: Int32Array, index: number, v: number, spinUs: number, canBlock: boolean,
  sliceMs = 50, onSleep?: () => void): { value: number; spun: boolean } {
  let x = Atomics.load(i32, index)
  if (x !== v) return { value: x, spun: true }
  const t0 = now()
  const spinEnd = t0 + spinUs / 1000
  // performance.now() costs ~50 ns: look at the clock every 64 loads.
  for (let i = 1; ; i++) {
    x = Atomics.load(i32, index)
    if (x !== v) return { value: x, spun: true }
    if ((i & 63) === 0 && now() >= spinEnd) break
  }
  for (;;) {
    onSleep?.()
    if (canBlock) Atomics.wait(i32, index, v, sliceMs)
    else for (const end = now() + sliceMs; now() < end && Atomics.load(i32, index) === v;);
    x = Atomics.load(i32, index)
    if (x !== v) return { value: x, spun: false }
  }
}

/** What a compute worker is started with (Node: workerData; Web Workers: the first message). */
/** `memories`: the model's segments (one instance of the module each); the control block is in the first. */
export interface WorkerInit { module: WasmModule; memories: WasmMemory[]; ctl: number; ith: number; nth: number }
