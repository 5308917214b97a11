// A kernel instance on a fresh memory, with a bump allocator, for kernel-level tests.
import { expect } from 'vitest'
import { availableVariants, compileKernels, createMemory, instantiateKernels, type KernelVariant, type Kernels } from '../../src/runtime/wasm.js'
import { Arena } from '../../src/model/arena.js'
import { mulberry32 } from '../../src/model/synthetic.js'

export interface KernelBench {
  k: Kernels
  heap: Uint8Array
  alloc(bytes: number): number
  f32(ptr: number, n: number): Float32Array
  i8(ptr: number, n: number): Int8Array
}

/** Kernel builds this runtime runs: every kernel test runs once per variant. */
export const VARIANTS: KernelVariant[] = await availableVariants()

export async function kernelBench(variant: KernelVariant, bytes = 64 << 20): Promise<KernelBench> {
  const memory = createMemory(bytes, variant)
  const k = instantiateKernels((await compileKernels({ variant })).module, memory)
  const arena = new Arena()
  const buf = memory.buffer
  return {
    k,
    heap: new Uint8Array(buf),
    alloc: (n) => arena.alloc(n),
    f32: (p, n) => new Float32Array(buf, p, n),
    i8: (p, n) => new Int8Array(buf, p, n),
  }
}

/** Deterministic PRNG for test data. */
export { mulberry32 as rng } from '../../src/model/synthetic.js'

/** Round half to even, as f64.nearest / torch.round. */
export const roundHalfEven = (v: number): number => {
  const f = Math.floor(v), d = v - f
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f
}

/**
 * The float64 definition of a BitLinear input (docs/architecture.md, "Activation
 * quantization"): RMSNorm (when w is given), then s = 127 / max(max|v|, 1e-5),
 * q = clamp(RNE(v·s), −128, 127). The kernels follow it exactly.
 */
export function normQuantizeF64(x0: Float32Array, eps: number, w?: Float32Array, w0?: Float32Array): { s: number; q: number[] } {
  const invRms = (v: ArrayLike<number>) => 1 / Math.sqrt(Array.from(v).reduce((a, e) => a + e * e, 0) / v.length + eps)
  // With w0 (the BitNet-embedding models' per-projection norm): x is first normed with w0, in f64 too.
  const inv0 = w0 ? invRms(x0) : 1
  const x = w0 ? Array.from(x0, (xi, i) => xi * inv0 * w0[i]) : Array.from(x0)
  const inv = w ? invRms(x) : 1
  const v = x.map((xi, i) => xi * inv * (w ? w[i] : 1))
  const amax = v.reduce((m, e) => Math.max(m, Math.abs(e)), 0)
  const s = 127 / Math.max(amax, 1e-5)
  return { s, q: v.map((e) => Math.max(-128, Math.min(127, roundHalfEven(e * s)))) }
}

/**
 * `items` cut into `parts` contiguous ranges [first, end) of uneven, seeded sizes (some
 * empty when parts > items), in a shuffled order: how the thread pool may hand a kernel's
 * items out, whatever its schedule.
 */
export function itemRanges(items: number, parts: number, seed: number): [number, number][] {
  const rand = mulberry32(seed)
  const cuts = [0, items, ...Array.from({ length: parts - 1 }, () => Math.floor(rand() * (items + 1)))].sort((a, b) => a - b)
  const ranges = cuts.slice(1).map((end, i): [number, number] => [cuts[i], end])
  for (let i = ranges.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ranges[i], ranges[j]] = [ranges[j], ranges[i]]
  }
  return ranges
}

/** Token activations of the output kernels: int8 rows [T][kp], f32 scale per 128, 8·Σ per 32 (quantize_blocks_f32_i8). */
export interface BlockActivations { xq: number; xs: number; xsum: number }

/**
 * A batched output kernel over 4-row groups (matmul_q8b_i8's arguments) on T tokens: SIMD ==
 * _ref bit for bit, for every thread split, and each token alone gives what it gives in the
 * batch. Returns the [T][rows] logits.
 */
export function checkGroupMatmul(b: KernelBench, kernel: 'matmul_q8b_i8' | 'matmul_q6b_i8', w: number, ws: number, a: BlockActivations,
  rows: number, kp: number, T: number, seed: number): number[] {
  const groups = Math.ceil(rows / 4), y1 = b.alloc(T * rows * 4), y2 = b.alloc(T * rows * 4)
  b.k[kernel](w, ws, a.xq, a.xs, a.xsum, y1, rows, kp, T, 0, groups)
  b.k[`${kernel}_ref`](w, ws, a.xq, a.xs, a.xsum, y2, rows, kp, T, 0, groups)
  const all = Array.from(b.f32(y1, T * rows))
  expect(all).toEqual(Array.from(b.f32(y2, T * rows)))
  for (const parts of [2, 3, groups + 1]) {
    b.f32(y2, T * rows).fill(NaN)
    for (const [first, end] of itemRanges(groups, parts, parts + seed)) b.k[kernel](w, ws, a.xq, a.xs, a.xsum, y2, rows, kp, T, first, end)
    expect(Array.from(b.f32(y2, T * rows))).toEqual(all)
  }
  for (let t = 0; t < T; t++) {
    b.k[kernel](w, ws, a.xq + t * kp, a.xs + t * kp / 32, a.xsum + t * kp / 8, y2, rows, kp, 1, 0, groups)
    expect(Array.from(b.f32(y2, rows))).toEqual(all.slice(t * rows, (t + 1) * rows))
  }
  return all
}
