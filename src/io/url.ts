import { IS_NODE } from '../env.js'

/**
 * Reads the whole resource at `url`: file: URLs from disk in Node (whose fetch has no
 * file: scheme), everything else with fetch (Deno and Bun fetch file: URLs too, which
 * also serves their browser-built Workers, bundled without `node:fs`).
 */
export async function readUrlBytes(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === 'file:' && IS_NODE) {
    const { readFileBytes } = await import('./file.js')
    return readFileBytes(url)
  }
  const res = await fetch(url)
  if (!res.ok) throw new Error(`fetching ${url.href} failed: HTTP ${res.status}`)
  return new Uint8Array(await res.arrayBuffer())
}
