/**
 * The kernel module: where its binary lives, how it is compiled and instantiated on a
 * shared memory, and the typed view of its exports (the ABI of assembly/index.ts).
 *
 * This file sits directly under src/ on purpose: `../build/…` resolves to the package's
 * build/ folder both from src/ (tests) and from dist/ (the published bundle).
 */
import { ResourceLimitError, WasmFeatureError } from '../errors.js'
import { WASM_URL } from '../assets.js'
import type { KernelVariant } from './kernel-variant.js'
import { BASE_URL } from '../env.js'
import { readUrlBytes } from '../io/url.js'
import { relaxedSimd, simd, threads } from 'wasm-feature-detect'

type Ptr = number

/**
 * `WasmModule` and `WasmMemory` as the published .d.ts files name them: a
 * consumer compiling with `lib: ["es2022"]` and `@types/node` has no `WebAssembly`
 * namespace. Structurally the same as the DOM lib's (so either passes for the other).
 */
export interface WasmModule {}
export interface WasmMemory { readonly buffer: ArrayBuffer; grow(delta: number): number }

/** Exports of build/bitnet-*.wasm. Pointers are byte offsets into the shared memory. */
export interface Kernels {
  matvec_i2s_i8(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, first: number, end: number): void
  matvec_i2s_i8_ref(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, first: number, end: number): void
  repack_i2s_c4(src: Ptr, rows: number, k: number, dst: Ptr, first: number, end: number): void
  repack_i2s_tl(src: Ptr, rows: number, k: number, dst: Ptr, first: number, end: number): void
  find_nonfinite_f16(src: Ptr, n: number): number
  find_nonfinite_f32(src: Ptr, n: number): number
  matmul_i2s_i8(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ntok: number, first: number, end: number): void
  matmul_i2s_i8_ref(w: Ptr, q: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, ntok: number, first: number, end: number): void
  lut_build_i8(q: Ptr, kp: number, lut: Ptr): void
  matvec_tl_i8(w: Ptr, lut: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, first: number, end: number): void
  matvec_tl_i8_ref(w: Ptr, lut: Ptr, meta: Ptr, gamma: number, y: Ptr, rows: number, kp: number, first: number, end: number): void
  rmsnorm_quantize_f32_i8(x: Ptr, w0: Ptr, w: Ptr, n: number, eps: number, np: number, q: Ptr, meta: Ptr): void
  rmsnorm_quantize_rows_f32_i8(x: Ptr, w0: Ptr, w: Ptr, n: number, eps: number, np: number, q: Ptr, meta: Ptr, lut: Ptr, rows: number, first: number, end: number): void
  gated_rmsnorm_quantize_rows_f32_i8(act: number, g: Ptr, u: Ptr, w: Ptr, n: number, eps: number, np: number, q: Ptr, meta: Ptr, lut: Ptr, rows: number,
    first: number, end: number): void
  rmsnorm_f32(x: Ptr, w: Ptr, y: Ptr, n: number, eps: number): void
  add_f32(y: Ptr, x: Ptr, n: number): void
  relu2_mul_f32(g: Ptr, u: Ptr, n: number): void
  silu_mul_f32(g: Ptr, u: Ptr, n: number): void
  gelu_mul_f32(g: Ptr, u: Ptr, n: number): void
  scale_f32(x: Ptr, n: number, s: number): void
  f16_to_f32(src: Ptr, dst: Ptr, n: number): void
  rope_neox_f32(x: Ptr, nHeads: number, headDim: number, nRot: number, cs: Ptr): void
  f32_to_f16(src: Ptr, dst: Ptr, n: number): void
  f32_to_f16_ref(src: Ptr, dst: Ptr, n: number): void
  attention_partial_f32: AttentionPartial
  attention_partial_f16: AttentionPartial
  attention_partial_f32_ref: AttentionPartial
  attention_partial_f16_ref: AttentionPartial
  matvec_f16_f32(w: Ptr, x: Ptr, y: Ptr, rows: number, k: number, first: number, end: number): void
  matvec_f32_f32(w: Ptr, x: Ptr, y: Ptr, rows: number, k: number, first: number, end: number): void
  matmul_q8b_i8(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, ntok: number, first: number, end: number): void
  matmul_q8b_i8_ref(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, ntok: number, first: number, end: number): void
  matmul_q6b_i8(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, ntok: number, first: number, end: number): void
  matmul_q6b_i8_ref(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, ntok: number, first: number, end: number): void
  quantize_rows_f16_q6b(src: Ptr, rows: number, k: number, kp: number, w: Ptr, ws: Ptr, first: number, end: number): void
  dequantize_row_q6b(w: Ptr, ws: Ptr, r: number, n: number, kp: number, dst: Ptr): void
  dequantize_rows_q6_k_f16(src: Ptr, rows: number, k: number, dst: Ptr, first: number, end: number): void
  dequantize_rows_q6_k_f16_ref(src: Ptr, rows: number, k: number, dst: Ptr, first: number, end: number): void
  dequantize_rows_q8_0_f16(src: Ptr, rows: number, k: number, dst: Ptr, first: number, end: number): void
  dequantize_rows_q8_0_f16_ref(src: Ptr, rows: number, k: number, dst: Ptr, first: number, end: number): void
  quantize_blocks_f32_i8(x: Ptr, n: number, kp: number, xq: Ptr, xs: Ptr, xsum8: Ptr): void
  matvec_q4b_i8(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, first: number, end: number): void
  matvec_q4b_i8_ref(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, first: number, end: number): void
  quantize_rows_f16_q4b(src: Ptr, rows: number, k: number, kp: number, w: Ptr, ws: Ptr, first: number, end: number): void
  dequantize_row_q4b(w: Ptr, ws: Ptr, r: number, n: number, kp: number, dst: Ptr): void
  quantize_rows_f16_q8b(src: Ptr, rows: number, k: number, kp: number, w: Ptr, ws: Ptr, first: number, end: number): void
  rescore_q8b_i8(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, groups: Ptr, count: number, first: number, end: number): void
  rescore_q8b_i8_ref(w: Ptr, ws: Ptr, xq: Ptr, xs: Ptr, xsum8: Ptr, y: Ptr, rows: number, kp: number, groups: Ptr, count: number, first: number, end: number): void
  kth_lower_bound_f32(y: Ptr, e: Ptr, n: number, xnorm: number, k: number, heap: Ptr): number
  select_groups_f32(y: Ptr, e: Ptr, n: number, xnorm: number, t: number, groups: Ptr, maxGroups: number, rowsOut: Ptr): number
  argmax_f32(x: Ptr, n: number): number
  argmax_f32_ref(x: Ptr, n: number): number
  bound_rows_q4b_q8b(w4: Ptr, ws4: Ptr, w8: Ptr, ws8: Ptr, rows: number, k: number, kp: number, tmp: Ptr, e: Ptr, first: number, end: number): void
  dequantize_row_q8b(w: Ptr, ws: Ptr, r: number, n: number, kp: number, dst: Ptr): void
  prefault_pages(start: Ptr, pages: number, first: number, end: number): void
}

/** Attention (assembly/ops/attention.ts): partial softmax results per (kv head, block), combined by the last block of each kv head. */
type AttentionPartial = (q: Ptr, kc: Ptr, vc: Ptr, att: Ptr, part: Ptr, count: Ptr, tiles: Ptr, out: Ptr, n: number, nHead: number, nHeadKv: number,
  headDim: number, nPos: number, block: number, first: number, end: number) => void

/** First byte the host may allocate: below it sit the module's read-only data segments. */
export const HEAP_BASE = 1 << 16
/** The module's declared maximum (asconfig.json maximumMemory), in 64 KiB pages. */
export const MAX_PAGES = 65536

export type { KernelVariant }
export const KERNEL_VARIANTS: readonly KernelVariant[] = ['relaxed', 'simd', 'single']

/** Whether a variant imports a shared memory (and so can run on several threads). */
export function isSharedVariant(variant: KernelVariant): boolean {
  return variant !== 'single'
}

/**
 * What each variant needs, probed with tiny modules (wasm-feature-detect) before any
 * binary is fetched. `threads()` also checks that a SharedArrayBuffer can be posted to
 * a worker, which fails in a page that is not cross-origin isolated.
 */
const SUPPORTED: Record<KernelVariant, () => Promise<boolean>> = {
  relaxed: async () => (await relaxedSimd()) && (await threads()),
  simd: async () => (await simd()) && (await threads()),
  single: simd,
}

/**
 * Override of the kernel binaries (unusual hosting, e.g. a CDN or an app's own asset
 * folder): a folder URL holding `bitnet-{relaxed,simd,single}.wasm` (in a browser a path
 * such as '/static/bitnet/' resolves against the page), or the bytes of one build (give
 * its `variant` too; default 'simd').
 */
export type WasmSource = string | URL | Uint8Array

const compiled = new Map<string, Promise<WasmModule>>()

/** Compiles the binary at `url` once per process. */
function compileUrl(url: URL): Promise<WasmModule> {
  let p = compiled.get(url.href)
  if (!p) {
    p = readUrlBytes(url).then((b) => WebAssembly.compile(b))
    compiled.set(url.href, p)
    p.catch(() => compiled.delete(url.href)) // a failed fetch may succeed on the next load
  }
  return p
}

/** Variants this runtime can run, fastest first. */
export async function availableVariants(): Promise<KernelVariant[]> {
  const ok = await Promise.all(KERNEL_VARIANTS.map(async (v) => ((await SUPPORTED[v]()) ? v : undefined)))
  return ok.filter((v): v is KernelVariant => v !== undefined)
}

/**
 * The compiled kernel module: the requested variant, or the fastest this runtime runs.
 * `wasm` overrides where the binaries come from (see {@link WasmSource}).
 */
export async function compileKernels(opts: { variant?: KernelVariant; wasm?: WasmSource } = {}): Promise<{ module: WasmModule; variant: KernelVariant }> {
  if (opts.wasm instanceof Uint8Array) {
    return { module: await WebAssembly.compile(opts.wasm as Uint8Array<ArrayBuffer>), variant: opts.variant ?? 'simd' }
  }
  const variant = opts.variant ?? (await availableVariants())[0]
  if (!variant || !(await SUPPORTED[variant]())) {
    throw new WasmFeatureError(opts.variant
      ? `this runtime cannot run the '${opts.variant}' kernels (${NEEDS[opts.variant]} missing)`
      : 'this runtime cannot run WebAssembly SIMD128')
  }
  // A folder given as a path ('/static/') is one on the page's origin.
  const url = opts.wasm ? new URL(`bitnet-${variant}.wasm`, new URL(opts.wasm, BASE_URL)) : WASM_URL[variant]()
  return { module: await compileUrl(url), variant }
}

const NEEDS: Record<KernelVariant, string> = {
  relaxed: 'WebAssembly relaxed SIMD or shared memory',
  simd: 'WebAssembly SIMD128 or shared memory (SharedArrayBuffer; in browsers: cross-origin isolation)',
  single: 'WebAssembly SIMD128',
}

/** Instantiates the module on `memory`. Every thread does this on the same memory. */
export function instantiateKernels(module: WasmModule, memory: WasmMemory): Kernels {
  try {
    const instance = new WebAssembly.Instance(module, {
      env: { memory, abort: () => { throw new Error('wasm abort') } },
    })
    return instance.exports as unknown as Kernels
  } catch (e) {
    // A LinkError here means a binary given as bytes is not the variant it was said to be.
    throw new WasmFeatureError(`cannot instantiate the kernel module: ${(e as Error).message}`)
  }
}

/**
 * The memory of `variant` (shared unless 'single') of `bytes` (rounded up to pages), sized
 * before any thread starts. It may grow later (sessions' KV caches, `growMemory`) up to
 * 4 GiB where the runtime can reserve that much address space, else it is fixed at its
 * initial size.
 * @throws ResourceLimitError (with `needed` = bytes) past the 4 GiB limit or when the runtime refuses it.
 */
export function createMemory(bytes: number, variant: KernelVariant): WasmMemory {
  const pages = Math.ceil(bytes / 65536)
  if (pages > MAX_PAGES) {
    throw new ResourceLimitError('wasmMemory', MAX_PAGES * 65536, `model needs ${(bytes / 2 ** 30).toFixed(2)} GiB of wasm memory; the limit is 4 GiB`, bytes)
  }
  const shared = isSharedVariant(variant)
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared })
  } catch {
    try {
      return new WebAssembly.Memory({ initial: pages, maximum: pages, shared })
    } catch (e) {
      throw new ResourceLimitError('wasmMemory', bytes, `cannot allocate ${(bytes / 2 ** 20).toFixed(0)} MiB of wasm memory: ${(e as Error).message}`, bytes)
    }
  }
}

/**
 * Memories of `sizes` bytes (a model's segments), all held at once, as createMemory makes
 * them; or the index of the first one the runtime refused (the ones before it are let go):
 * its own size is too large here, or the page (process) cannot hold it next to the others.
 */
export function createMemories(sizes: readonly number[], variant: KernelVariant): { memories: WasmMemory[] } | { refused: number } {
  const memories: WasmMemory[] = []
  for (const bytes of sizes) {
    try {
      memories.push(createMemory(bytes, variant))
    } catch (e) {
      if (e instanceof ResourceLimitError) return { refused: memories.length }
      throw e
    }
  }
  return { memories }
}

/** Smallest size largestMemory tries: below it a model's segments would be too many to matter. */
const LARGEST_MEMORY_FLOOR = 64 << 20

/**
 * The largest memory of a power of two below `bytes` (down to 64 MiB) that the runtime reserves,
 * each let go right after; 0 when none. Says what `maxMemoryBytes` can ask for where `bytes` failed.
 */
export function largestMemory(bytes: number, variant: KernelVariant): number {
  for (let n = 2 ** Math.floor(Math.log2(bytes - 1)); n >= LARGEST_MEMORY_FLOOR; n /= 2) {
    if ('memories' in createMemories([n], variant)) return n
  }
  return 0
}

/**
 * Grows `memory` to at least `bytes`.
 * @throws ResourceLimitError naming the size (`needed` = bytes) when the memory cannot grow that far.
 */
export function growMemory(memory: WasmMemory, bytes: number): void {
  const have = memory.buffer.byteLength
  if (bytes <= have) return
  const pages = Math.ceil((bytes - have) / 65536)
  const max = MAX_PAGES * 65536
  if (bytes > max) throw new ResourceLimitError('wasmMemory', max, `cannot grow wasm memory to ${(bytes / 2 ** 20).toFixed(0)} MiB: the limit is 4 GiB`, bytes)
  try {
    memory.grow(pages)
  } catch (e) {
    throw new ResourceLimitError('wasmMemory', have, `cannot grow wasm memory from ${(have / 2 ** 20).toFixed(0)} MiB to ${((have + pages * 65536) / 2 ** 20).toFixed(0)} MiB: ${(e as Error).message}`, bytes)
  }
}
