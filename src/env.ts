/**
 * Runtime sniffing, in one place (transformers.js `env.js`). Nothing else in the
 * package inspects globals to decide which runtime it is in.
 */
const g = globalThis as unknown as {
  process?: { versions?: { node?: string; bun?: string } }
  Deno?: { version?: { deno?: string } }
  Bun?: unknown
}

export const IS_DENO = typeof g.Deno?.version?.deno === 'string'
export const IS_BUN = typeof g.Bun !== 'undefined' || typeof g.process?.versions?.bun === 'string'
/** Node itself (not Deno/Bun's Node compatibility layer). */
export const IS_NODE = !IS_DENO && !IS_BUN && typeof g.process?.versions?.node === 'string'
/** A runtime with a file system reachable through `node:fs` (Node, Deno, Bun). */
export const HAS_FS = IS_NODE || IS_DENO || IS_BUN

/** Web Crypto's native digest (browsers in secure contexts, and Node/Deno/Bun). */
export const HAS_SUBTLE = typeof globalThis.crypto?.subtle?.digest === 'function'

/**
 * Whether this thread may block in Atomics.wait: everywhere but a web page's main thread
 * (the one with a `document`, Electron renderers included), where it throws.
 */
export const CAN_BLOCK = typeof (globalThis as { document?: unknown }).document === 'undefined'

/** Logical CPU cores available to this process (the default thread count). */
export async function hardwareConcurrency(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency
  if (HAS_FS) {
    const os = await import('node:os')
    return os.availableParallelism?.() ?? os.cpus().length
  }
  return 1
}

/** An environment variable (Node/Deno/Bun `process.env`); undefined in browsers or when unset/empty. */
export function readEnv(name: string): string | undefined {
  const v = (g.process as { env?: Record<string, string | undefined> } | undefined)?.env?.[name]
  return v === undefined || v === '' ? undefined : v
}
