import type { ByteSource } from './source.js'

/**
 * A source over a Blob or File (a file the user picked in a browser, a fetched body):
 * only the ranges read are brought into memory.
 */
export function blobSource(blob: Blob, name = (blob as { name?: string }).name || '<blob>'): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  }
}
