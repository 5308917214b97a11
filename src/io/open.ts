/**
 * A model source, as loadModel() takes it, → the bytes to read: a ByteSource (one GGUF file)
 * or a ModelFolder (a Hugging Face folder). Remote sources go through the cache (remote.ts).
 */
import { BASE_URL, HAS_FS } from '../env.js'
import { InvalidArgumentError } from '../errors.js'
import type { ModelFolder } from '../model/load-hf.js'
import { blobSource } from './blob.js'
import { isRemote, openRemote, type RemoteOptions } from './remote.js'
import { bytesSource, type ByteSource } from './source.js'

/**
 * Where a model comes from: a local path (a GGUF file or a Hugging Face folder), an http(s)
 * URL, an `hf:owner/repo[/file | :quant]` id, a `Blob`/`File`, bytes in memory, any
 * random-access source (GGUF), or a ModelFolder (Hugging Face layout).
 */
export type ModelSource = string | URL | Blob | Uint8Array | ArrayBuffer | ByteSource | ModelFolder

/**
 * A file: URL in a browser page (one opened from file://, as Electron apps ship theirs): read
 * as a Blob, which the browser may keep on disk. fetch has no Range on file:, hence the Blob.
 */
async function fileUrlBlob(url: URL): Promise<ByteSource> {
  const res = await fetch(url).catch(() => undefined)
  if (!res?.ok) {
    throw new InvalidArgumentError(`cannot read ${url.href} from this page (browsers only let file:// pages read files with ` +
      `file access allowed, as in Electron); pass a File/Blob or bytes instead, or serve the model over http(s)`)
  }
  return blobSource(await res.blob(), decodeURIComponent(url.pathname.split('/').pop() ?? url.href))
}

/** Opens `source` for reading (see ModelSource). */
export async function openSource(source: ModelSource, opts: RemoteOptions): Promise<ByteSource | ModelFolder> {
  if (source instanceof URL) {
    if (source.protocol !== 'file:') return openSource(source.href, opts)
    if (!HAS_FS) return fileUrlBlob(source)
    const { fileURLToPath } = await import('node:url')
    return openSource(fileURLToPath(source), opts)
  }
  if (typeof source === 'string') {
    if (isRemote(source)) return openRemote(source, opts)
    // A file: URL as a string (what a URL becomes to cross into a Worker).
    if (/^file:/i.test(source)) return openSource(new URL(source), opts)
    // In a browser a string that is not a URL of its own is one relative to the page ('/models/x.gguf').
    if (!HAS_FS && BASE_URL) return openSource(new URL(source, BASE_URL), opts)
    if (!HAS_FS) throw new InvalidArgumentError('a file path needs a runtime with a file system; pass a URL, a File/Blob or bytes instead')
    const { fileSource, folderSource, isDirectory } = await import('./file.js')
    return await isDirectory(source) ? folderSource(source) : fileSource(source)
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesSource(source)
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobSource(source)
  if (source && typeof source === 'object' && (typeof (source as ByteSource).read === 'function' || typeof (source as ModelFolder).open === 'function')) return source as ByteSource | ModelFolder
  throw new InvalidArgumentError('model source must be a path, URL, hf: id, Blob, Uint8Array/ArrayBuffer, ByteSource or ModelFolder')
}
