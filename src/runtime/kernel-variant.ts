// In a file of its own: assets.ts (which wasm.ts imports) keys its table by it.
/**
 * Build variants (asconfig.json targets), fastest first. All export the same ABI; they
 * differ in the instructions the kernels use and in whether their memory is shared:
 * - `relaxed`: SIMD128 + threads + relaxed SIMD (Node ≥ 22, Deno, Bun, Chrome/Edge ≥ 114, Firefox ≥ 146)
 * - `simd`: SIMD128 + threads (e.g. Safari, Node 20)
 * - `single`: SIMD128 on a non-shared memory, one thread: pages without cross-origin
 *   isolation, where SharedArrayBuffer (and so a memory shared with workers) is missing
 */
export type KernelVariant = 'relaxed' | 'simd' | 'single'
