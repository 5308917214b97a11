/**
 * Incremental SHA-256 for verifying downloads and cache entries without holding a file in
 * memory: `node:crypto` where it exists (Node, Deno, Bun: native, ~1-2 GB/s), `@noble/hashes`
 * in browsers (Web Crypto's `digest()` takes only a whole buffer).
 */
import { HAS_FS } from '../env.js'
import type { ByteSource } from './source.js'

export interface Sha256 {
  update(bytes: Uint8Array): void
  /** Lower-case hex digest; the hasher is finished afterwards. */
  hex(): string
}

/** A fresh SHA-256 hasher. */
export async function createSha256(): Promise<Sha256> {
  if (HAS_FS) {
    const { createHash } = await import('node:crypto')
    const h = createHash('sha256')
    return { update: (b) => { h.update(b) }, hex: () => h.digest('hex') }
  }
  const { sha256 } = await import('@noble/hashes/sha2.js')
  const { bytesToHex } = await import('@noble/hashes/utils.js')
  const h = sha256.create()
  return { update: (b) => { h.update(b) }, hex: () => bytesToHex(h.digest()) }
}

/** Bytes read per step when hashing a source (bounded memory). */
const HASH_CHUNK = 8 << 20

/** SHA-256 of a whole byte source, read in 8 MiB steps; `onBytes` reports progress. */
export async function sha256OfSource(src: ByteSource, signal?: AbortSignal, onBytes?: (done: number) => void): Promise<string> {
  const h = await createSha256()
  for (let off = 0; off < src.size; off += HASH_CHUNK) {
    signal?.throwIfAborted()
    h.update(await src.read(off, Math.min(HASH_CHUNK, src.size - off)))
    onBytes?.(Math.min(src.size, off + HASH_CHUNK))
  }
  return h.hex()
}

/** A sha256 hex string from a header or user value (`"…"`, `W/"…"`, `sha256:…`), or undefined if it is not one. */
export function parseSha256(value: string | null | undefined): string | undefined {
  const m = /^(?:W\/)?"?(?:sha256:)?([0-9a-fA-F]{64})"?$/.exec(value?.trim() ?? '')
  return m ? m[1].toLowerCase() : undefined
}
