/**
 * The kernel module: where its binary lives, how it is compiled and instantiated on a
 * shared memory, and the typed view of its exports (the ABI of assembly/index.ts).
 *
 * This file sits directly under src/ on purpose: `../build/…` resolves to the package's
 * build/ folder both from src/ (tests) and from dist/ (the published bundle).
 */
import { WasmFeatureError } from './errors.js'
import { readUrlBytes } from './io/url.js'

type Ptr = number

/** Exports of build/bitnet-*.wasm. Pointers are byte offsets into the shared memory. */
export interface Kernels {
  matvec_i2s_i8(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  matvec_i2s_i8_ref(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  matmul_i2s_i8(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ntok: number, ith: number, nth: number): void
  matmul_i2s_i8_ref(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ntok: number, ith: number, nth: number): void
  lut_build_i8(q: Ptr, kp: number, lut: Ptr): void
  matvec_tl_i8(w: Ptr, lut: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  matvec_tl_i8_ref(w: Ptr, lut: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  rmsnorm_quantize_f32_i8(x: Ptr, w: Ptr, n: number, eps: number, np: number, q: Ptr, meta: Ptr): void
  rmsnorm_quantize_rows_f32_i8(x: Ptr, w: Ptr, n: number, eps: number, np: number, q: Ptr, meta: Ptr, lut: Ptr, rows: number, ith: number, nth: number): void
  rmsnorm_f32(x: Ptr, w: Ptr, y: Ptr, n: number, eps: number): void
  add_f32(y: Ptr, x: Ptr, n: number): void
  relu2_mul_f32(g: Ptr, u: Ptr, n: number): void
  silu_mul_f32(g: Ptr, u: Ptr, n: number): void
  f16_to_f32(src: Ptr, dst: Ptr, n: number): void
  rope_neox_f32(x: Ptr, nHeads: number, headDim: number, nRot: number, cs: Ptr): void
  attention_f32(q: Ptr, kc: Ptr, vc: Ptr, out: Ptr, att: Ptr, nHead: number, nHeadKv: number,
    headDim: number, ctx: number, nPos: number, ith: number, nth: number): void
  matvec_f16_f32(w: Ptr, x: Ptr, y: Ptr, rows: number, k: number, ith: number, nth: number): void
  matvec_f32_f32(w: Ptr, x: Ptr, y: Ptr, rows: number, k: number, ith: number, nth: number): void
  quantize_blocks_f32_i16(x: Ptr, n: number, kp: number, xq: Ptr, xs: Ptr): void
  matvec_q8b_i16(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  matvec_q8b_i16_ref(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  quantize_blocks_f32_i8(x: Ptr, n: number, kp: number, xq: Ptr, xs: Ptr, xsum8: Ptr): void
  matvec_q4b_i8(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  matvec_q4b_i8_ref(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, ith: number, nth: number): void
  quantize_rows_f16_q4b(src: Ptr, rows: number, k: number, kp: number, w: Ptr, ws: Ptr, ith: number, nth: number): void
  dequantize_row_q4b(w: Ptr, ws: Ptr, r: number, n: number, kp: number, dst: Ptr): void
  quantize_rows_f16_q8b(src: Ptr, rows: number, k: number, kp: number, w: Ptr, ws: Ptr, ith: number, nth: number): void
  dequantize_row_q8b(w: Ptr, ws: Ptr, r: number, n: number, kp: number, dst: Ptr): void
}

/** First byte the host may allocate: below it sit the module's read-only data segments. */
export const HEAP_BASE = 1 << 16
/** The module's declared maximum (asconfig.json maximumMemory), in 64 KiB pages. */
export const MAX_PAGES = 65536

/**
 * Build variants (asconfig.json targets), fastest first. Both export the same ABI; they
 * differ in the instructions the kernels use:
 * - `relaxed`: SIMD128 + threads + relaxed SIMD (Node ≥ 22, Deno, Bun, Chrome/Edge ≥ 114, Firefox ≥ 146)
 * - `simd`: SIMD128 + threads (everywhere else, e.g. Safari, Node 20)
 */
export type KernelVariant = 'relaxed' | 'simd'
export const KERNEL_VARIANTS: readonly KernelVariant[] = ['relaxed', 'simd']

const WASM_URLS: Record<KernelVariant, URL> = {
  relaxed: new URL('../build/bitnet-relaxed.wasm', import.meta.url),
  simd: new URL('../build/bitnet-simd.wasm', import.meta.url),
}

const compiled = new Map<KernelVariant, Promise<WebAssembly.Module | undefined>>()

/**
 * Compiles a variant once per process; resolves undefined when this runtime cannot run it
 * (WebAssembly.validate fails: no relaxed SIMD, no SIMD or no threads).
 */
function compileVariant(variant: KernelVariant): Promise<WebAssembly.Module | undefined> {
  let p = compiled.get(variant)
  if (!p) {
    p = readUrlBytes(WASM_URLS[variant]).then((b: Uint8Array<ArrayBuffer>) =>
      WebAssembly.validate(b) ? WebAssembly.compile(b) : undefined)
    compiled.set(variant, p)
  }
  return p
}

/** Variants this runtime can run, fastest first. */
export async function availableVariants(): Promise<KernelVariant[]> {
  const ok = await Promise.all(KERNEL_VARIANTS.map(async (v) => ((await compileVariant(v)) ? v : undefined)))
  return ok.filter((v): v is KernelVariant => v !== undefined)
}

/**
 * The compiled kernel module: the requested variant, or the fastest this runtime runs.
 * `bytes` overrides the packaged binary (unusual hosting).
 */
export async function compileKernels(opts: { variant?: KernelVariant; bytes?: Uint8Array } = {}): Promise<{ module: WebAssembly.Module; variant: KernelVariant }> {
  if (opts.bytes) return { module: await WebAssembly.compile(opts.bytes as Uint8Array<ArrayBuffer>), variant: opts.variant ?? 'simd' }
  for (const variant of opts.variant ? [opts.variant] : KERNEL_VARIANTS) {
    const module = await compileVariant(variant)
    if (module) return { module, variant }
  }
  throw new WasmFeatureError(opts.variant
    ? `this runtime cannot run the '${opts.variant}' kernels (WebAssembly ${opts.variant === 'relaxed' ? 'relaxed SIMD' : 'SIMD128 with threads'} missing)`
    : 'this runtime cannot run WebAssembly SIMD128 with threads (shared memory)')
}

/** Instantiates the module on `memory`. Every thread does this on the same memory. */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): Kernels {
  const instance = new WebAssembly.Instance(module, {
    env: { memory, abort: () => { throw new Error('wasm abort') } },
  })
  return instance.exports as unknown as Kernels
}

/**
 * A shared memory of `bytes` (rounded up to pages), sized before any thread starts. It may
 * grow later (sessions' KV caches, `growMemory`) up to 4 GiB where the runtime can reserve
 * that much address space, else it is fixed at its initial size.
 */
export function createMemory(bytes: number): WebAssembly.Memory {
  const pages = Math.ceil(bytes / 65536)
  if (pages > MAX_PAGES) {
    throw new WasmFeatureError(`model needs ${(bytes / 2 ** 30).toFixed(2)} GiB of wasm memory; the limit is 4 GiB`)
  }
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true })
  } catch {
    try {
      return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
    } catch (e) {
      throw new WasmFeatureError(`cannot allocate ${(bytes / 2 ** 20).toFixed(0)} MiB of shared wasm memory: ${(e as Error).message}`)
    }
  }
}

/** Grows `memory` to at least `bytes`; a typed error names the size when it cannot. */
export function growMemory(memory: WebAssembly.Memory, bytes: number): void {
  const have = memory.buffer.byteLength
  if (bytes <= have) return
  const pages = Math.ceil((bytes - have) / 65536)
  try {
    memory.grow(pages)
  } catch (e) {
    throw new WasmFeatureError(`cannot grow wasm memory from ${(have / 2 ** 20).toFixed(0)} MiB to ${((have + pages * 65536) / 2 ** 20).toFixed(0)} MiB: ${(e as Error).message}`)
  }
}
