/**
 * `loadModel()`: the package's entry point from a model source to a ready model.
 * Sources: a local path, a URL, an `hf:` id, a Blob/File, bytes, or any ByteSource/ModelFolder.
 */
import { BitnetModel, checkModelOptions, type ModelOptions } from './bitnet-model.js'
import { BASE_URL, HAS_FS } from './env.js'
import { InvalidArgumentError } from './errors.js'
import { blobSource } from './io/blob.js'
import { DEFAULT_MODEL } from './io/hub.js'
import { isRemote, openRemote, type RemoteOptions } from './io/remote.js'
import { bytesSource, type ByteSource } from './io/source.js'
import { ggufContents, type ModelContents } from './model/contents.js'
import { hfContents, type ModelFolder } from './model/load-hf.js'

/**
 * Where a model comes from: a local path (a GGUF file or a Hugging Face folder), an http(s)
 * URL, an `hf:owner/repo[/file | :quant]` id, a `Blob`/`File`, bytes in memory, any
 * random-access source (GGUF), or a ModelFolder (Hugging Face layout).
 */
export type ModelSource = string | URL | Blob | Uint8Array | ArrayBuffer | ByteSource | ModelFolder

/** Options of {@link loadModel}: the model's, plus where remote files come from and are cached. */
export interface LoadModelOptions extends ModelOptions, RemoteOptions {}

/**
 * Loads a BitNet b1.58 model: GGUF (I2_S, TQ1_0, TQ2_0, TL1, TL2, or F16/BF16/F32 weights
 * ternarized at load) or a Hugging Face folder (packed 2B4T / Falcon3 weights, bf16 masters).
 * Remote models are downloaded into the cache first (resumable, verified) and read from
 * there; without a source, the official 2B4T GGUF ({@link DEFAULT_MODEL}).
 *
 * @example
 * ```ts
 * import { loadModel } from 'bitnet-wasm'
 * const model = await loadModel('hf:microsoft/bitnet-b1.58-2B-4T-gguf/ggml-model-i2_s.gguf', {
 *   onProgress: (p) => console.log(p.phase, p.file, p.loaded, p.total),
 * })
 * const { text } = await model.generate('In the beginning', { maxTokens: 32, temperature: 0 })
 * const hf = await loadModel('models/bitnet-b1.58-2B-4T')   // config.json + model.safetensors + tokenizer.json
 * ```
 */
export async function loadModel(source: ModelSource = DEFAULT_MODEL, opts: LoadModelOptions = {}): Promise<BitnetModel> {
  checkModelOptions(opts)
  const contents = await openModelContents(source, opts)
  try {
    return await BitnetModel.load(contents, opts)
  } finally {
    await contents.close?.()
  }
}

/**
 * Opens a model source (as {@link loadModel} takes) without loading its weights: config,
 * tensor directory, tokenizer. Remote sources are fetched into the cache first.
 * `close()` releases what was opened.
 * @example
 * const contents = await openModelContents('models/bitnet-b1.58-2B-4T')
 * console.log(contents.config.nLayer, contents.tensors.length)
 * await contents.close?.()
 */
export async function openModelContents(source: ModelSource, opts: RemoteOptions = {}): Promise<ModelContents> {
  const src = await openSource(source, opts)
  try {
    const contents = 'open' in src ? await hfContents(src) : await ggufContents(src)
    const close = contents.close
    contents.close = async () => {
      await close?.()
      if ('read' in src) await src.close?.()
    }
    return contents
  } catch (e) {
    if ('read' in src) await src.close?.()
    throw e
  }
}

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

async function openSource(source: ModelSource, opts: RemoteOptions): Promise<ByteSource | ModelFolder> {
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
    const { fileSource, folderSource, isDirectory } = await import('./io/file.js')
    return await isDirectory(source) ? folderSource(source) : fileSource(source)
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesSource(source)
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobSource(source)
  if (source && typeof source === 'object' && (typeof (source as ByteSource).read === 'function' || typeof (source as ModelFolder).open === 'function')) return source as ByteSource | ModelFolder
  throw new InvalidArgumentError('model source must be a path, URL, hf: id, Blob, Uint8Array/ArrayBuffer, ByteSource or ModelFolder')
}
