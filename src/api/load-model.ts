/**
 * `loadModel()`: the package's entry point from a model source to a ready model.
 * Sources: a local path, a URL, an `hf:` id, a Blob/File, bytes, or any ByteSource/ModelFolder.
 */
import { BitnetModel, checkModelFits } from './bitnet-model.js'
import { checkModelOptions, type ModelOptions } from './options.js'
import { DEFAULT_MODEL } from '../io/hub.js'
import { openSource, type ModelSource } from '../io/open.js'
import type { ByteSource } from '../io/source.js'
import { isGguf } from '../gguf/reader.js'
import type { RemoteOptions } from '../io/remote.js'
import { ggufContents, ggufLayout, type ModelContents } from '../model/contents.js'
import { hfContents } from '../model/load-hf.js'

export type { ModelSource }

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
  const contents = await openModelContents(source, { ...opts, beforeDownload: preflight(opts) })
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
 * Files smaller than this are downloaded without a look at their header first: it can be a good
 * part of them (tiny-dev: 8 of 41 MB, a 128k-token vocabulary), and the check after the
 * download then costs hardly more. Models that can exceed a page are gigabytes.
 */
const PREFLIGHT_MIN_BYTES = 256 << 20

/**
 * What runs before a remote file is downloaded: the caller's own hook, then for a GGUF its
 * header (Range requests, no weight) planned as the load will plan it, so a model this runtime
 * cannot hold is refused (ResourceLimitError) before its weights are fetched. The tokenizer is
 * not built here: memory does not depend on it, and the load builds it from the downloaded file.
 */
function preflight(opts: LoadModelOptions): (file: ByteSource) => Promise<void> {
  return async (file) => {
    await opts.beforeDownload?.(file)
    if (file.size < PREFLIGHT_MIN_BYTES || !isGguf(await file.read(0, 4))) return
    await checkModelFits(await ggufLayout(file), opts) // the tokenizer is built once, by the load
  }
}
