/**
 * `loadModel()`: the package's entry point from a model source to a ready model.
 */
import { BitnetModel, checkModelOptions, type ModelOptions } from './bitnet-model.js'
import { HAS_FS } from './env.js'
import { InvalidArgumentError } from './errors.js'
import { blobSource } from './io/blob.js'
import { bytesSource, type ByteSource } from './io/source.js'
import { ggufContents, type ModelContents } from './model/contents.js'
import { hfContents, type ModelFolder } from './model/load-hf.js'

/**
 * Where a model comes from: a local path (a GGUF file or a Hugging Face folder), bytes in
 * memory, a Blob/File (GGUF), any random-access source (GGUF), or a ModelFolder (Hugging Face layout).
 */
export type ModelSource = string | Uint8Array | ArrayBuffer | Blob | ByteSource | ModelFolder

/**
 * Loads a BitNet b1.58 model: GGUF (I2_S, TQ1_0, TQ2_0, TL1, TL2, or F16/BF16/F32 weights
 * ternarized at load) or a Hugging Face folder (packed 2B4T / Falcon3 weights, bf16 masters).
 *
 * @example
 * ```ts
 * import { loadModel } from 'bitnet-wasm'
 * const model = await loadModel('ggml-model-i2_s.gguf', { contextSize: 2048 })
 * const { text } = await model.generate('In the beginning', { maxTokens: 32, temperature: 0 })
 * const hf = await loadModel('models/bitnet-b1.58-2B-4T')   // config.json + model.safetensors + tokenizer.json
 * ```
 */
export async function loadModel(source: ModelSource, opts: ModelOptions = {}): Promise<BitnetModel> {
  checkModelOptions(opts)
  const contents = await openModelContents(source)
  try {
    return await BitnetModel.load(contents, opts)
  } finally {
    await contents.close?.()
  }
}

/**
 * Opens a model source (as {@link loadModel} takes) without loading its weights: config,
 * tensor directory, tokenizer. `close()` releases what was opened.
 * @example
 * const contents = await openModelContents('models/bitnet-b1.58-2B-4T')
 * console.log(contents.config.nLayer, contents.tensors.length)
 * await contents.close?.()
 */
export async function openModelContents(source: ModelSource): Promise<ModelContents> {
  const src = await openSource(source)
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

async function openSource(source: ModelSource): Promise<ByteSource | ModelFolder> {
  if (typeof source === 'string') {
    if (!HAS_FS) throw new InvalidArgumentError('a file path needs a runtime with a file system; pass bytes or a URL instead')
    const { fileSource, folderSource, isDirectory } = await import('./io/file.js')
    return await isDirectory(source) ? folderSource(source) : fileSource(source)
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesSource(source)
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobSource(source)
  if (source && typeof source === 'object' && !(source instanceof Blob) && (typeof (source as ByteSource).read === 'function' || typeof (source as ModelFolder).open === 'function')) return source
  throw new InvalidArgumentError('model source must be a path, a Uint8Array/ArrayBuffer, a Blob, a ByteSource or a ModelFolder')
}
