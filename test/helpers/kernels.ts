// A kernel instance on a fresh memory, with a bump allocator, for kernel-level tests.
import { availableVariants, compileKernels, createMemory, instantiateKernels, type KernelVariant, type Kernels } from '../../src/runtime/wasm.js'
import { Arena } from '../../src/model/arena.js'

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
