import { HAS_FS } from '../env.js'

/** Reads the whole resource at `url` (file: URLs from disk where there is a file system, else fetch). */
export async function readUrlBytes(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === 'file:' && HAS_FS) {
    const { readFileBytes } = await import('./file.js')
    return readFileBytes(url)
  }
  const res = await fetch(url)
  if (!res.ok) throw new Error(`fetching ${url.href} failed: HTTP ${res.status}`)
  return new Uint8Array(await res.arrayBuffer())
}
