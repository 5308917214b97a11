/**
 * Runtime sniffing, in one place (transformers.js `env.js`). Nothing else in the
 * package inspects globals to decide which runtime it is in.
 */
import { memory64 } from 'wasm-feature-detect'

const g = globalThis as unknown as {
  process?: { versions?: { node?: string; bun?: string }; arch?: string }
  Deno?: { version?: { deno?: string } }
  Bun?: unknown
}

export const IS_DENO = typeof g.Deno?.version?.deno === 'string'
export const IS_BUN = typeof g.Bun !== 'undefined' || typeof g.process?.versions?.bun === 'string'
/** Node itself (not Deno/Bun's Node compatibility layer). */
export const IS_NODE = !IS_DENO && !IS_BUN && typeof g.process?.versions?.node === 'string'
/** A runtime with a file system reachable through `node:fs` (Node, Deno, Bun). */
export const HAS_FS = IS_NODE || IS_DENO || IS_BUN

/** The page's (or worker's) own URL in a browser, against which relative URLs resolve; undefined elsewhere. */
export const BASE_URL: string | undefined = HAS_FS ? undefined : (globalThis as { location?: { href?: string } }).location?.href

/** Web Crypto's native digest (browsers in secure contexts, and Node/Deno/Bun). */
export const HAS_SUBTLE = typeof globalThis.crypto?.subtle?.digest === 'function'

/**
 * Whether this thread may block in Atomics.wait: everywhere but a web page's main thread
 * (the one with a `document`, Electron renderers included), where it throws.
 */
export const CAN_BLOCK = typeof (globalThis as { document?: unknown }).document === 'undefined'

const setImmediateFn = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate

/**
 * Runs `fn` in a new macrotask, after the pending microtasks (and, in Node, the I/O callbacks
 * due): setImmediate where there is one (Node, Bun: ~5 µs), else a MessageChannel round trip
 * (browsers, Deno). Never setTimeout(0), which is clamped to 1–4 ms. In Node a new channel per
 * call cost ~80 µs (creating the ports), paid once per decoded token by the step scheduler.
 */
export function macrotask(fn: () => void): void {
  if (setImmediateFn) {
    setImmediateFn(fn)
    return
  }
  // The port is closed once it fires, so it keeps no process alive.
  const { port1, port2 } = new MessageChannel()
  port1.onmessage = () => { port1.close(); fn() }
  port2.postMessage(0)
}

/** Logical CPU cores available to this process. */
export async function hardwareConcurrency(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency
  if (HAS_FS) {
    const os = await import('node:os')
    return os.availableParallelism?.() ?? os.cpus().length
  }
  return 1
}

/**
 * The machine's RAM in bytes (Node, Deno, Bun: `os.totalmem()`); undefined where it cannot be
 * known: in a browser, which does not say (`navigator.deviceMemory` is rounded and capped at
 * 8 GiB) and whose wasm memory allocation itself refuses what the tab cannot have, and in Deno
 * without `--allow-sys` (the question is not worth a permission error).
 */
export async function machineMemoryBytes(): Promise<number | undefined> {
  if (!HAS_FS) return undefined
  try {
    const os = await import('node:os')
    return os.totalmem()
  } catch {
    return undefined
  }
}

/**
 * What this runtime tells about its memory before anything is allocated: the inputs of the
 * memory checks a load makes before reserving (model/segments.ts), and of their errors.
 */
export interface MemoryLimits {
  /** A browser (no `node:fs`): RAM unknown, the page's own limits apply. */
  browser: boolean
  /** The machine's RAM in bytes (machineMemoryBytes); undefined in browsers. */
  ram?: number
  /**
   * `navigator.deviceMemory` in bytes (Chromium, secure contexts): the RAM rounded to the nearest
   * power of two, so the RAM is at most 1.5× it; capped (8 GiB in the spec), so a value of 8 GiB
   * or more bounds nothing.
   */
  deviceMemory?: number
  /**
   * The browser's or process's pointer width (`navigator.userAgentData` bitness in Chromium,
   * `process.arch` elsewhere); undefined where nothing says. A 32-bit process has 4 GiB of
   * address space in all, so it cannot reserve a 4 GiB memory.
   */
  bits?: 32 | 64
  /**
   * Whether WebAssembly memory64 validates here (V8: yes, capped at 16 GiB; Safari: no). Reported
   * only: the engine's memories are wasm32 ones (segments), which every runtime has.
   */
  memory64: boolean
}

/**
 * This runtime's {@link MemoryLimits}. `performance.memory.jsHeapSizeLimit` (Chromium) is not
 * among them: it bounds the JS heap (4 GiB on 64-bit Chromium whatever the RAM), and wasm
 * memories live outside it.
 * @example
 * const { ram, deviceMemory, bits, memory64 } = await memoryLimits()
 */
export async function memoryLimits(): Promise<MemoryLimits> {
  const nav = (globalThis as {
    navigator?: { deviceMemory?: number; userAgentData?: { getHighEntropyValues?(hints: string[]): Promise<{ bitness?: string }> } }
  }).navigator
  const bitness = HAS_FS
    ? g.process?.arch
    : await nav?.userAgentData?.getHighEntropyValues?.(['bitness']).then((v) => v.bitness, () => undefined)
  const device = !HAS_FS && typeof nav?.deviceMemory === 'number' && nav.deviceMemory > 0 ? nav.deviceMemory * 2 ** 30 : undefined
  return {
    browser: !HAS_FS,
    ram: await machineMemoryBytes(),
    deviceMemory: device,
    bits: bitness === undefined || bitness === '' ? undefined : /64/.test(bitness) ? 64 : 32,
    memory64: await memory64(),
  }
}

/** An environment variable (Node/Deno/Bun `process.env`); undefined in browsers or when unset/empty. */
export function readEnv(name: string): string | undefined {
  const v = (g.process as { env?: Record<string, string | undefined> } | undefined)?.env?.[name]
  return v === undefined || v === '' ? undefined : v
}

/** The most threads a default picks: rounds wait for their last chunk, and more threads make more waiting. */
const MAX_DEFAULT_THREADS = 16

/**
 * The default compute thread count: the cores this process may use, capped at 16; in a
 * browser (no `node:fs`) one fewer, left to the page's UI and compositor. Browsers may
 * report fewer cores than there are (privacy caps) or more than a page gets; the pool's
 * adaptation (runtime/governor.ts) corrects both ways at run time, within this count.
 */
export async function defaultThreads(): Promise<number> {
  const cores = Math.max(1, Math.floor(await hardwareConcurrency()) || 1)
  return Math.min(MAX_DEFAULT_THREADS, HAS_FS ? cores : Math.max(1, cores - 1))
}
