/**
 * assets.ts for the browser bundles (scripts/build-js.mjs swaps it in): the same locations,
 * with the compute worker built for browsers (no `node:` imports for a bundler to trip on).
 */
import type { KernelVariant } from './runtime/kernel-variant.js'

/** The kernel binary of each build. */
export const WASM_URL: Record<KernelVariant, () => URL> = {
  relaxed: () => new URL('../build/bitnet-relaxed.wasm', import.meta.url),
  simd: () => new URL('../build/bitnet-simd.wasm', import.meta.url),
  single: () => new URL('../build/bitnet-single.wasm', import.meta.url),
}

/** Node's `worker_threads` never runs a browser bundle. */
export const computeWorkerUrl = (): URL => {
  throw new Error('the browser bundle has no worker_threads worker')
}

/** A compute worker as a module Web Worker, or the script at `url`. */
export const startComputeWorker = (url?: URL): Worker =>
  url ? new Worker(url, { type: 'module' }) : new Worker(new URL('../dist/bitnet-worker.browser.js', import.meta.url), { type: 'module' })

/** The engine worker of `bitnet-wasm/worker`, or the script at `url`. */
export const startEngineWorker = (url?: URL): Worker =>
  url ? new Worker(url, { type: 'module' }) : new Worker(new URL('../dist/engine-worker.js', import.meta.url), { type: 'module' })
