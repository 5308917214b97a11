/**
 * `bitnet bench --kernels`: a micro-benchmark of the matvec kernels in GB/s of weights
 * per thread (for the batched kernel: weight bytes × tokens, i.e. as if each token had
 * streamed the matrix), at an L2-resident size (the matrix is re-read hot) and a DRAM-resident one
 * (larger than L3), on 1 thread and on N (ggml test-quantize-perf style).
 */
import { ThreadPool } from '../runtime/thread-pool.js'
import { CTL_BYTES, type Job } from '../runtime/protocol.js'
import { availableVariants, compileKernels, isSharedVariant, createMemory, instantiateKernels, type KernelVariant } from '../runtime/wasm.js'
import { Arena } from '../model/arena.js'
import { MAX_BATCH } from '../model/transformer.js'

interface KernelCase {
  name: string
  /** Bytes of weights per row of K = 2560. */
  rowBytes: number
  /** The job for `rows` rows, given buffers. */
  job: (b: Buffers, rows: number) => Job
  /** Tokens per call (batched kernels); default 1. */
  tokens?: number
  /** Work done once per input vector before the matvec (LUT build), if any. */
  prep?: (k: ReturnType<typeof instantiateKernels>, b: Buffers) => void
  /** Bytes of a row's weights when f32 block scales follow the rows (the rest of rowBytes). */
  scalesAfter?: number
}

interface Buffers { w: number; q: number; meta: number; lut: number; xq: number; xs: number; xsum: number; ws: number; x: number; y: number }

const K = 2560
const BATCH = MAX_BATCH // a prompt pass
const CASES: KernelCase[] = [
  { name: 'i2s (ternary MAD)', rowBytes: K / 4, job: (b, rows) => ['matvec_i2s_i8', b.w, b.q, b.meta, 1, b.y, rows, K] },
  {
    name: `i2s ×${BATCH} tokens (prompt)`, rowBytes: K / 4, tokens: BATCH,
    job: (b, rows) => ['matmul_i2s_i8', b.w, b.q, b.meta, 1, b.y, rows, K, BATCH],
  },
  {
    name: 'tl (ternary LUT)', rowBytes: K / 4, job: (b, rows) => ['matvec_tl_i8', b.w, b.lut, b.meta, 1, b.y, rows, K],
    prep: (k, b) => k.lut_build_i8(b.q, K, b.lut),
  },
  { name: 'q8b (output)', rowBytes: K + (K / 128) * 4, scalesAfter: K, job: (b, rows) => ['matmul_q8b_i8', b.w, b.ws, b.xq, b.xs, b.xsum, b.y, rows, K, 1] },
  { name: 'q6b (output)', rowBytes: K * 3 / 4 + (K / 64) * 4, scalesAfter: K * 3 / 4, job: (b, rows) => ['matmul_q6b_i8', b.w, b.ws, b.xq, b.xs, b.xsum, b.y, rows, K, 1] },
  {
    name: 'q4b (output, q4+q8 pass)', rowBytes: K / 2 + (K / 32) * 4, scalesAfter: K / 2,
    job: (b, rows) => ['matvec_q4b_i8', b.w, b.ws, b.xq, b.xs, b.xsum, b.y, rows, K],
  },
  { name: 'f16 (output)', rowBytes: K * 2, job: (b, rows) => ['matvec_f16_f32', b.w, b.x, b.y, rows, K] },
]

const L2_BYTES = 640 << 10
const DRAM_BYTES = 96 << 20

export interface KernelResult { variant: KernelVariant; kernel: string; size: 'L2' | 'DRAM'; threads: number; gbPerSecPerThread: number; usPerCall: number }

/** Runs every kernel of every available build (or `variant`) on 1 and `threads` threads. */
export async function benchKernels(threads: number, variant?: KernelVariant, log?: (r: KernelResult) => void): Promise<KernelResult[]> {
  const results: KernelResult[] = []
  for (const v of variant ? [variant] : await availableVariants()) {
    const { module } = await compileKernels({ variant: v })
    const memory = createMemory(DRAM_BYTES + (48 << 20), v)
    const k = instantiateKernels(module, memory)
    const a = new Arena()
    const b: Buffers = {
      q: a.alloc(BATCH * K), meta: a.alloc(BATCH * 8), lut: a.alloc(K * 16), xq: a.alloc(K), xs: a.alloc(K / 32), xsum: a.alloc(K / 8),
      x: a.alloc(K * 4), y: a.alloc(BATCH << 20), ws: 0, w: 0,
    }
    const ctl = a.alloc(CTL_BYTES)
    b.w = a.alloc(DRAM_BYTES)
    const heap = new Uint8Array(memory.buffer)
    // Random weights and activations: every byte pattern is a valid weight in each layout.
    const random = (p: number, n: number) => { for (let i = 0; i < n; i += 4096) crypto.getRandomValues(heap.subarray(p + i, p + Math.min(n, i + 4096))) }
    random(b.w, DRAM_BYTES)
    random(b.q, BATCH * K)
    for (let t = 0; t < BATCH; t++) new Float32Array(memory.buffer, b.meta + 8 * t, 1)[0] = 1
    new Float32Array(memory.buffer, b.x, K).fill(0.5)
    for (const n of [...new Set([1, isSharedVariant(v) ? threads : 1])]) {
      const pool = await ThreadPool.create(module, [memory], [k], ctl, n)
      for (const c of CASES) {
        for (const [size, bytes] of [['L2', L2_BYTES], ['DRAM', DRAM_BYTES]] as const) {
          const rows = Math.floor(bytes / c.rowBytes / 16) * 16
          // block scales after the weight rows, normal floats (random bits would hold denormals)
          b.ws = b.w + rows * (c.scalesAfter ?? 0)
          if (c.scalesAfter) new Float32Array(memory.buffer, b.ws, (rows * (c.rowBytes - c.scalesAfter)) / 4).fill(1 / 64)
          const job = c.job(b, rows)
          const us = timeMedian(() => { c.prep?.(k, b); pool.run([job]) })
          const r: KernelResult = { variant: v, kernel: c.name, size, threads: n, usPerCall: us, gbPerSecPerThread: (rows * c.rowBytes * (c.tokens ?? 1)) / (us * 1e3) / n }
          results.push(r)
          log?.(r)
        }
      }
      await pool.dispose()
    }
  }
  return results
}

/** Median µs per call over 7 samples of ≥ 50 ms each. */
function timeMedian(fn: () => void): number {
  fn()
  const samples: number[] = []
  for (let s = 0; s < 7; s++) {
    let calls = 0
    const t0 = performance.now()
    let t = t0
    while (t - t0 < 50) { fn(); calls++; t = performance.now() }
    samples.push(((t - t0) * 1000) / calls)
  }
  return samples.sort((x, y) => x - y)[3]
}
