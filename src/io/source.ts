/**
 * Random-access byte sources. Parsers and loaders read model files through this one
 * interface, so the same code serves a local file, an in-memory buffer, a browser Blob
 * or (later) an HTTP range reader, and never needs the whole file in memory at once.
 */
export interface ByteSource {
  /** Name used in error messages (a path, URL or "<buffer>"). */
  readonly name: string
  /** Total size in bytes. */
  readonly size: number
  /**
   * Reads exactly `length` bytes at `offset` (fewer only past the end). `into` (≥ `length`
   * bytes, e.g. a view of wasm memory) may receive them, the result then being a view of it
   * and nothing allocated; sources that hold the bytes already return their own. Callers use
   * the result either way.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>
  /** Releases the underlying handle, if any. */
  close?(): Promise<void>
}

/** A source over bytes already in memory. */
export function bytesSource(bytes: Uint8Array | ArrayBuffer, name = '<buffer>'): ByteSource {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)
  return {
    name,
    size: view.byteLength,
    read: async (offset, length) => view.subarray(offset, Math.min(view.byteLength, offset + length)),
  }
}
