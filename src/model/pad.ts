/**
 * Exact zero-padding of a model to larger dimensions: the padded network computes the same
 * function (up to float rounding), so a trained model can be stored in formats whose rows must
 * be multiples of 256 (TQ1_0/TQ2_0: tiny-dev's rows are 128 and 384 wide) and run by engines
 * that only take those (upstream llama.cpp, bench/tq-agreement.mjs).
 *
 * Every width is multiplied by the same integer `factor` f; every tensor keeps its values in its
 * top-left corner, zeros elsewhere ([K, M] → [f·K, f·M], the vocabulary axis unchanged):
 * - the residual stream (nEmbd → f·nEmbd): the new dims are 0 forever (zero embedding columns,
 *   zero wo / ffn_down output rows);
 * - attention (f× the heads and KV heads, same head_dim, so the same heads per KV head): query
 *   head h ≥ nHead reads KV head h / group ≥ nHeadKv, whose K and V rows are zero, so its output
 *   is exactly 0 and the attn sub-norm sees only zeros beside the real heads;
 * - the FFN (nFf → f·nFf): zero gate/up rows give act(0)·0 = 0 for ReLU² and SiLU alike.
 * RMSNorm over f·n dims of which n are real: rms' = rms/√f with ε' = ε/f (written into the file,
 * one ε for all norms: hence one factor for all widths). Every norm weight is multiplied by 1/√f
 * so each norm's output is unchanged: BitLinear is linear in its input (y = W·q/s), the scale
 * does not cancel (q·k scores, SiLU, the residual adds). f = 4 makes that exact in floating
 * point (×1/2, ε/4); f = 2 rounds 1/√2 to f32.
 * Ternary weights keep their codes and their per-tensor scale (no absmean over the zeros).
 */
import { InvalidArgumentError, UnsupportedFeatureError } from '../errors.js'
import { quantizeBf16, quantizeF16, quantizeF32 } from '../formats/float.js'
import { encodeI2s } from '../formats/i2s.js'
import { decodeTernary, dequantizeRows, FORMATS, tensorByteSize, type FormatName } from '../formats/index.js'
import type { GgufMetadata } from '../gguf/types.js'
import { metaStr } from '../gguf/writer.js'
import { configMetadata } from '../convert/metadata.js'
import type { Activation, ModelConfig } from './config.js'
import type { ModelContents, ModelTensor } from './contents.js'
import { tensorKind } from './tensors.js'

/** How to pad. */
export interface PadOptions {
  /** Integer ≥ 1 multiplying nEmbd, nFf, nHead and nHeadKv. */
  factor: number
  /**
   * Declares another FFN activation (the network is then a different one). For engines that
   * ignore `hidden_activation`: the upstream llama.cpp in node-llama-cpp 3.22.1 always runs SiLU.
   */
  activation?: Activation
}

/**
 * Which axes of a tensor ([ne0, ne1]) are padded: every width but the vocabulary. Tensors of the
 * embedding families' traits (per-head norms, an embedding scale from n_embd) are not placed.
 */
function paddedAxes(name: string): boolean[] | undefined {
  const kind = tensorKind(name)
  if (!kind || (kind.trait && kind.trait !== 'subNorms')) return undefined
  return kind.dims.map((w) => w !== 'vocab')
}
const FLOAT_FORMATS: readonly FormatName[] = ['F32', 'F16', 'BF16']

/**
 * `contents` with every width zero-padded `factor` times (tensors are computed when read:
 * ternary ones whole, as I2_S; float ones by rows, in their own format, Q8_0/Q6_K as F32).
 * Write it with `convertToGguf`, then load or run the file.
 * @throws InvalidArgumentError for a factor that is not an integer ≥ 1; UnsupportedFeatureError
 *         for a tensor it cannot place.
 * @example
 * const tiny = await openModelContents('test/fixtures/tiny-dev/ggml-model-i2_s.gguf')
 * const padded = padModelContents(tiny, { factor: 2, activation: 'silu' }) // 256 / 768, 8 heads, 2 KV heads
 * await writeFile('tiny-x2.gguf', Buffer.concat(await Array.fromAsync(convertToGguf(padded, { to: 'tq2_0' }))))
 */
export function padModelContents(contents: ModelContents, opts: PadOptions): ModelContents {
  const f = opts.factor
  if (!Number.isInteger(f) || f < 1) throw new InvalidArgumentError(`pad: factor must be an integer ≥ 1, got ${f}`)
  const c = contents.config
  const config: ModelConfig = {
    ...c, nEmbd: c.nEmbd * f, nFf: c.nFf * f, nHead: c.nHead * f, nHeadKv: c.nHeadKv * f,
    normEps: c.normEps / f, activation: opts.activation ?? c.activation,
  }
  const tensors = contents.tensors.map((t) => {
    if (t.name.endsWith('.scale')) return t // 1bitLLM per-tensor scale: a scalar, folded by convert
    const padded = paddedAxes(t.name)
    if (!padded || padded.length !== t.dims.length) throw new UnsupportedFeatureError(`pad: cannot place tensor '${t.name}' [${t.dims.join(', ')}]`)
    const dims = t.dims.map((d, i) => (padded[i] ? d * f : d))
    if (FORMATS[t.format].ternary) return paddedTernary(t, dims)
    return paddedFloat(t, dims, padded.length === 1 ? 1 / Math.sqrt(f) : 1)
  })
  // convert reads only the metadata of `gguf` (the tensor directory is that of the source)
  const gguf = contents.gguf && { ...contents.gguf, metadata: paddedMetadata(contents.gguf.metadata, config) }
  return { ...contents, name: `${contents.name} (padded ×${f})`, config, tensors, gguf }
}

function paddedMetadata(src: GgufMetadata, c: ModelConfig): GgufMetadata {
  const m: GgufMetadata = new Map(src)
  const a = (k: string) => `${c.arch}.${k}`
  m.delete(a('attention.key_length'))
  for (const [k, v] of configMetadata(c)) m.set(k, v)
  m.set(a('hidden_activation'), metaStr(c.activation))
  return m
}

/** A ternary tensor as I2_S: its codes in the top-left corner, its own scale. */
function paddedTernary(src: ModelTensor, dims: number[]): ModelTensor {
  const [cols, rows] = src.dims, [cols2, rows2] = dims
  const bytes = async () => {
    const t = decodeTernary(src.format, await src.read(0, src.byteSize), rows, cols, { file: src.file, offset: src.offset }, src.decode)
    const codes = new Int8Array(rows2 * cols2)
    for (let r = 0; r < rows; r++) codes.set(t.codes.subarray(r * cols, (r + 1) * cols), r * cols2)
    return encodeI2s(codes, rows2, cols2, t.scale)
  }
  return { ...src, dims, format: 'I2_S', byteSize: tensorByteSize('I2_S', dims), decode: undefined, read: async (at, n) => (await bytes()).subarray(at, at + n) }
}

/**
 * A float tensor, computed by rows (the embedding is read in row chunks): a matrix (only its rows
 * widen) in its own format; a norm (× 1/√f) in F32, as `convert` writes norms.
 */
function paddedFloat(src: ModelTensor, dims: number[], mul: number): ModelTensor {
  const [cols, rows = 1] = src.dims, cols2 = dims[0]
  const format = dims.length === 2 && FLOAT_FORMATS.includes(src.format) ? src.format : 'F32'
  const quantize = format === 'F16' ? quantizeF16 : format === 'BF16' ? quantizeBf16 : quantizeF32
  const srcRow = src.byteSize / rows, row = tensorByteSize(format, [cols2])
  const read = async (at: number, n: number): Promise<Uint8Array> => {
    const r0 = Math.floor(at / row), r1 = Math.ceil((at + n) / row)
    const values = dequantizeRows(src.format, await src.read(r0 * srcRow, (r1 - r0) * srcRow), (r1 - r0) * cols)
    const out = new Float32Array((r1 - r0) * cols2)
    for (let r = 0; r < r1 - r0; r++) {
      for (let i = 0; i < cols; i++) out[r * cols2 + i] = values[r * cols + i] * mul
    }
    return quantize(out).subarray(at - r0 * row, at - r0 * row + n)
  }
  return { ...src, dims, format, byteSize: row * rows, read }
}
