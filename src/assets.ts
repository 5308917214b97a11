/**
 * Where the package's own files are: the kernel binaries and the worker scripts. This file's
 * only job. Every location is written inline in the one form bundlers (Vite, webpack 5,
 * Rollup, Parcel) recognise, emit and rewrite: `new URL('…', import.meta.url)` and
 * `new Worker(new URL('…', import.meta.url), { type: 'module' })`; and nothing is evaluated
 * at module load, so a bundle loaded from a `data:` or `blob:` URL does not trip over a
 * relative URL it never uses. Paths are relative to dist/ (this file is bundled into
 * dist/*.js; from src/ in tests, `../dist` is the same folder). Browser bundles get
 * assets.browser.ts instead (scripts/build-js.mjs), which names the browser worker scripts.
 */
import type { KernelVariant } from './runtime/kernel-variant.js'

/** The kernel binary of each build. */
export const WASM_URL: Record<KernelVariant, () => URL> = {
  relaxed: () => new URL('../build/bitnet-relaxed.wasm', import.meta.url),
  simd: () => new URL('../build/bitnet-simd.wasm', import.meta.url),
  single: () => new URL('../build/bitnet-single.wasm', import.meta.url),
}

/** The compute worker script, for Node's `worker_threads`. */
export const computeWorkerUrl = (): URL => new URL('../dist/bitnet-worker.js', import.meta.url)

/** A compute worker as a module Web Worker (Deno, Bun; browsers: assets.browser.ts), or at `url`. */
export const startComputeWorker = (url?: URL): Worker =>
  url ? new Worker(url, { type: 'module' }) : new Worker(new URL('../dist/bitnet-worker.js', import.meta.url), { type: 'module' })

/** The engine worker of `bitnet-wasm/worker` in Deno and Bun (it reads paths), or the script at `url`. */
export const startEngineWorker = (url?: URL): Worker =>
  url ? new Worker(url, { type: 'module' }) : new Worker(new URL('../dist/engine-worker.node.js', import.meta.url), { type: 'module' })
