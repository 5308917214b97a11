// A random synthetic model loaded twice, by the engine (one thread) and by the float64
// reference, with random tokens to run both on: the setup of the engine-vs-reference tests.
import { loadModel, type BitnetModel } from '../../src/index.js'
import { writeGguf } from '../../src/gguf/writer.js'
import { bytesSource } from '../../src/io/source.js'
import { loadReferenceModel, ReferenceTransformer } from '../../src/model/reference.js'
import { syntheticGguf, type SyntheticOptions, type SyntheticShape } from '../../src/model/synthetic.js'
import { rng } from './kernels.js'

export async function engineAndReference(shape: SyntheticShape, opts: SyntheticOptions, kernel: 'i2s' | 'tl', length: number):
  Promise<{ model: BitnetModel; ref: ReferenceTransformer; tokens: number[] }> {
  const bytes = writeGguf(syntheticGguf(shape, opts))
  const model = await loadModel(bytes, { kernel, threads: 1 })
  const ref = new ReferenceTransformer(await loadReferenceModel(bytesSource(bytes)))
  const rand = rng(opts.seed! + 100)
  const tokens = Array.from({ length }, () => Math.floor(rand() * shape.vocab))
  return { model, ref, tokens }
}
