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

/** Bytes per piece of a piece-wise digest ({@link PieceHasher}). */
export const PIECE_BYTES = 16 << 20

async function digestHex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * SHA-256 of each {@link PIECE_BYTES} piece of a stream, by Web Crypto's native digest. A
 * store that cannot tell whether a file changed (browsers: no reliable modification time)
 * checks an entry against these on every use: ~10× the speed of hashing the whole file in
 * JavaScript, which is the only incremental SHA-256 there (`digest()` takes whole buffers).
 */
export class PieceHasher {
  readonly #hex: string[] = []
  /** The piece being filled; grows (doubling) up to PIECE_BYTES, so a small file holds little. */
  #buf = new Uint8Array(0)
  #fill = 0

  async update(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.byteLength;) {
      const n = Math.min(PIECE_BYTES - this.#fill, bytes.byteLength - at)
      if (this.#fill + n > this.#buf.length) {
        const grown = new Uint8Array(Math.min(PIECE_BYTES, Math.max(2 * this.#buf.length, this.#fill + n)))
        grown.set(this.#buf.subarray(0, this.#fill))
        this.#buf = grown
      }
      this.#buf.set(bytes.subarray(at, at + n), this.#fill)
      this.#fill += n
      at += n
      if (this.#fill === PIECE_BYTES) {
        this.#hex.push(await digestHex(this.#buf))
        this.#fill = 0
      }
    }
  }

  /** The pieces' digests (the last piece may be shorter). */
  async digests(): Promise<string[]> {
    if (this.#fill > 0) this.#hex.push(await digestHex(this.#buf.subarray(0, this.#fill)))
    this.#fill = 0
    return this.#hex
  }
}

/** True if every PIECE_BYTES piece of `src` has its digest in `pieces`; `onBytes` reports progress. */
export async function piecesMatch(src: ByteSource, pieces: readonly string[], signal?: AbortSignal, onBytes?: (done: number) => void): Promise<boolean> {
  if (pieces.length !== Math.ceil(src.size / PIECE_BYTES)) return false
  for (let i = 0; i < pieces.length; i++) {
    signal?.throwIfAborted()
    const off = i * PIECE_BYTES
    if (await digestHex(await src.read(off, Math.min(PIECE_BYTES, src.size - off))) !== pieces[i]) return false
    onBytes?.(Math.min(src.size, off + PIECE_BYTES))
  }
  return true
}
