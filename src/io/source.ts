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
  /** Reads exactly `length` bytes at `offset` (fewer only past the end). */
  read(offset: number, length: number): Promise<Uint8Array>
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

/**
 * A source over a `Blob` or `File` (browsers; Node's `fs.openAsBlob`): reads slices on demand.
 *
 * @example
 * ```ts
 * input.onchange = async () => { model = await loadModel(blobSource(input.files[0])) } // or pass the File itself
 * ```
 */
export function blobSource(blob: Blob, name = (blob as File).name || '<blob>'): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  }
}
