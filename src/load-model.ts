/**
 * `loadModel()`: the package's entry point from a model source to a ready model.
 * Sources: a local path, a URL, an `hf:` id, a Blob/File, bytes, or any ByteSource.
 */
import { BitnetModel, type ModelOptions } from './bitnet-model.js'
import { HAS_FS } from './env.js'
import { InvalidArgumentError, UnsupportedFeatureError } from './errors.js'
import { DEFAULT_MODEL } from './io/hub.js'
import { isRemote, openRemote, type RemoteOptions } from './io/remote.js'
import { blobSource, bytesSource, type ByteSource } from './io/source.js'

/**
 * Where a model comes from: a local path, an http(s) URL, an `hf:owner/repo[/file | :quant]`
 * id, a `Blob`/`File`, bytes in memory, or any random-access source.
 */
export type ModelSource = string | URL | Blob | Uint8Array | ArrayBuffer | ByteSource

/** Options of {@link loadModel}: the model's, plus where remote files come from and are cached. */
export interface LoadModelOptions extends ModelOptions, RemoteOptions {}

/**
 * Loads a BitNet b1.58 GGUF model (I2_S, TQ1_0 or TQ2_0 ternary weights). Remote models
 * are downloaded into the cache first (resumable, verified) and read from there; without
 * a source, the official 2B4T model ({@link DEFAULT_MODEL}).
 *
 * @example
 * ```ts
 * import { loadModel } from 'bitnet-wasm'
 * const model = await loadModel('hf:microsoft/bitnet-b1.58-2B-4T-gguf/ggml-model-i2_s.gguf', {
 *   onProgress: (p) => console.log(p.phase, p.file, p.loaded, p.total),
 * })
 * const { text } = await model.generate('In the beginning', { maxTokens: 32, temperature: 0 })
 * ```
 */
export async function loadModel(source: ModelSource = DEFAULT_MODEL, opts: LoadModelOptions = {}): Promise<BitnetModel> {
  const src = await openModelSource(source, opts)
  try {
    return await BitnetModel.load(src, opts)
  } finally {
    await src.close?.()
  }
}

/**
 * Opens any {@link ModelSource} as a ByteSource (remote ones through the cache), without loading it.
 *
 * @example
 * ```ts
 * const src = await openModelSource('hf:microsoft/bitnet-b1.58-2B-4T-gguf:i2_s')
 * const gguf = await readGguf(src)
 * await src.close?.()
 * ```
 */
export async function openModelSource(source: ModelSource, opts: RemoteOptions = {}): Promise<ByteSource> {
  if (source instanceof URL) {
    if (source.protocol !== 'file:') return openModelSource(source.href, opts)
    const { fileURLToPath } = await import('node:url')
    return openModelSource(fileURLToPath(source), opts)
  }
  if (typeof source === 'string') {
    if (isRemote(source)) {
      const r = await openRemote(source, opts)
      if (!r.source) throw new UnsupportedFeatureError(`${source} is a safetensors folder (downloaded to ${r.path}); loadModel reads GGUF files: convert it with 'bitnet convert'`)
      return r.source
    }
    if (!HAS_FS) throw new InvalidArgumentError('a file path needs a runtime with a file system; pass a URL, a File/Blob or bytes instead')
    const { fileSource } = await import('./io/file.js')
    return fileSource(source)
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesSource(source)
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobSource(source)
  if (source && typeof source === 'object' && typeof (source as ByteSource).read === 'function') return source as ByteSource
  throw new InvalidArgumentError('model source must be a path, URL, hf: id, Blob, Uint8Array/ArrayBuffer or ByteSource')
}
