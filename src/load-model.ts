/**
 * `loadModel()`: the package's entry point from a model source to a ready model.
 */
import { BitnetModel, type ModelOptions } from './bitnet-model.js'
import { HAS_FS } from './env.js'
import { InvalidArgumentError } from './errors.js'
import { blobSource } from './io/blob.js'
import { bytesSource, type ByteSource } from './io/source.js'

/** Where a model comes from: a local path, bytes in memory, a Blob/File, or any random-access source. */
export type ModelSource = string | Uint8Array | ArrayBuffer | Blob | ByteSource

/**
 * Loads a BitNet b1.58 GGUF model (I2_S, TQ1_0 or TQ2_0 ternary weights).
 *
 * @example
 * ```ts
 * import { loadModel } from 'bitnet-wasm'
 * const model = await loadModel('ggml-model-i2_s.gguf', { contextSize: 2048 })
 * const { text } = await model.generate('In the beginning', { maxTokens: 32, temperature: 0 })
 * ```
 */
export async function loadModel(source: ModelSource, opts: ModelOptions = {}): Promise<BitnetModel> {
  const src = await openSource(source)
  try {
    return await BitnetModel.load(src, opts)
  } finally {
    await src.close?.()
  }
}

async function openSource(source: ModelSource): Promise<ByteSource> {
  if (typeof source === 'string') {
    if (!HAS_FS) throw new InvalidArgumentError('a file path needs a runtime with a file system; pass bytes or a URL instead')
    const { fileSource } = await import('./io/file.js')
    return fileSource(source)
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesSource(source)
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobSource(source)
  if (source && typeof source === 'object' && 'read' in source && typeof source.read === 'function') return source
  throw new InvalidArgumentError('model source must be a path, a Uint8Array/ArrayBuffer, a Blob or a ByteSource')
}
