/**
 * `bitnet convert`: any model this engine loads (ModelContents: GGUF or Hugging Face folder)
 * → a GGUF file, streamed tensor by tensor (one source tensor in memory at a time; the
 * embedding in row chunks).
 *
 * Tensor names, order and types follow the official 2B4T I2_S file: token_embd, then per layer
 * attn_norm, attn_q, attn_k, attn_v, attn_output, attn_sub_norm, ffn_norm, ffn_gate, ffn_up,
 * ffn_down, ffn_sub_norm, then output_norm (and output when not tied). Norms are F32; ternary
 * projections in the target format (a 1bitLLM `.scale` tensor is folded into γ; a Llama-family
 * model's q/k rows permuted for NORM RoPE when they come in HF order); the embedding / output
 * matrix in `outputType`.
 */
import { ARCH_FAMILIES } from '../model/config.js'
import { allTensors, scaleTensorName } from '../model/tensors.js'
import { InvalidArgumentError } from '../errors.js'
import { decodeTernary, dequantizeRows, encodeTernary, FORMATS, quantizeRows, tensorByteSize, type FormatName } from '../formats/index.js'
import { defaultTlTiling, TL_TILING_KEY } from '../formats/tl.js'
import { GgufType, type GgufValue } from '../gguf/types.js'
import { ggufHeader, metaArr } from '../gguf/writer.js'
import type { ModelContents, ModelTensor } from '../model/contents.js'
import { permuteQkRows } from '../model/qk-permute.js'
import type { LoadProgress } from '../model/load.js'
import { convertMetadata, type ConvertTarget } from './metadata.js'

export { FILE_TYPES, type ConvertTarget } from './metadata.js'

/** Storage of the embedding / output matrix in the output file. */
export type MatrixTarget = 'f16' | 'q8_0' | 'q6_k'

export interface ConvertOptions {
  /** Format of the ternary projections. Default 'i2s' (the official file's). */
  to?: ConvertTarget
  /** Format of token_embd (and output.weight). Default 'f16' (the official file's). */
  outputType?: MatrixTarget
  /** Progress per tensor: phase 'repack', bytes of source tensors done / total. */
  onProgress?: (p: LoadProgress) => void
  signal?: AbortSignal
}

const TERNARY_FORMAT: Record<ConvertTarget, FormatName> = {
  i2s: 'I2_S', tq2_0: 'TQ2_0', tq1_0: 'TQ1_0', tl1: 'TL1', tl2: 'TL2', f32: 'F32', f16: 'F16', bf16: 'BF16',
}
const MATRIX_FORMAT: Record<MatrixTarget, FormatName> = { f16: 'F16', q8_0: 'Q8_0', q6_k: 'Q6_K' }

interface OutTensor {
  src: ModelTensor
  /** Optional 1bitLLM `.scale` tensor folded into γ. */
  scale?: ModelTensor
  kind: 'ternary' | 'matrix' | 'norm'
  format: FormatName
  dims: number[]
  byteSize: number
  tiling?: { BM: number; BK: number; bm: number }
  /** q/k of a Llama-family model from HF row order: heads to permute as llama.cpp's converters do. */
  permuteHeads?: number
}

/**
 * Converts `contents` to a GGUF file, yielded as chunks (header first).
 * @example
 * await writeChunksToFile('out.gguf', convertToGguf(await hfContents(folderSource('2B-4T')), { to: 'i2s' }))
 */
export async function* convertToGguf(contents: ModelContents, opts: ConvertOptions = {}): AsyncGenerator<Uint8Array> {
  const to = opts.to ?? 'i2s'
  if (!(to in TERNARY_FORMAT)) throw new InvalidArgumentError(`convert: unknown target '${to}' (one of ${Object.keys(TERNARY_FORMAT).join(', ')})`)
  const matrixFormat = MATRIX_FORMAT[opts.outputType ?? 'f16']
  if (!matrixFormat) throw new InvalidArgumentError(`convert: unknown output type '${opts.outputType}' (one of ${Object.keys(MATRIX_FORMAT).join(', ')})`)
  const plan = planOutput(contents, TERNARY_FORMAT[to], matrixFormat)
  const tilings = plan.flatMap((t) => (t.tiling ? [t.dims[1], t.dims[0], t.tiling.BM, t.tiling.BK, t.tiling.bm] : []))
  const extra: [string, GgufValue][] = tilings.length ? [[TL_TILING_KEY, metaArr(GgufType.UINT32, tilings)]] : []
  const { header, padding } = ggufHeader({
    metadata: convertMetadata(contents, to, extra),
    tensors: plan.map((t) => ({ name: t.src.name, dims: t.dims, typeId: FORMATS[t.format].typeId, byteSize: t.byteSize })),
  })
  yield header
  const total = plan.reduce((s, t) => s + t.src.byteSize, 0)
  let done = 0
  for (const t of plan) {
    opts.signal?.throwIfAborted()
    let written = 0
    for await (const chunk of convertTensor(t)) {
      written += chunk.byteLength
      yield chunk
    }
    if (written !== t.byteSize) throw new Error(`convert: ${t.src.name} produced ${written} bytes, planned ${t.byteSize}`)
    const p = padding(written)
    if (p) yield new Uint8Array(p)
    done += t.src.byteSize
    opts.onProgress?.({ phase: 'repack', file: contents.name, loaded: done, total })
  }
}

/** Output tensors in the official order, with their formats and sizes. */
function planOutput(contents: ModelContents, ternary: FormatName, matrix: FormatName): OutTensor[] {
  const byName = new Map(contents.tensors.map((t) => [t.name, t]))
  const out: OutTensor[] = []
  const add = (name: string, kind: OutTensor['kind']) => {
    const src = byName.get(name)
    if (!src) return
    const dims = src.dims
    const format = kind === 'ternary' ? ternary : kind === 'matrix' ? matrix : 'F32'
    const t: OutTensor = { src, kind, format, dims, byteSize: 0 }
    if (format === 'TL1' || format === 'TL2') t.tiling = defaultTlTiling(format, dims[1], dims[0])
    try {
      t.byteSize = tensorByteSize(format, dims, { file: contents.name })
    } catch (e) {
      throw new InvalidArgumentError(`convert: tensor '${name}' [${dims.join(', ')}] cannot be stored as ${format}: ${(e as Error).message}`)
    }
    if (kind === 'ternary') t.scale = byName.get(scaleTensorName(name))
    const c = contents.config
    // arch 'llama' files carry q/k rows in NORM-RoPE order (./metadata.ts outputArch keeps the arch)
    if (c.arch === 'llama' && c.rope === 'neox' && /\.attn_[qk]\.weight$/.test(name)) t.permuteHeads = dims[1] / c.headDim
    out.push(t)
  }
  // Sub-norms of any family: a file may carry them (a Llama file with them is refused at load, not here)
  for (const t of allTensors(contents.config, { ...ARCH_FAMILIES[contents.config.arch], subNorms: true })) add(t.name, t.role)
  return out
}

const MATRIX_CHUNK_ROWS = 4096

async function readAll(t: ModelTensor, offset = 0, length = t.byteSize): Promise<Uint8Array> {
  const bytes = await t.read(offset, length)
  if (bytes.byteLength !== length) throw new InvalidArgumentError(`convert: ${t.file}: tensor '${t.name}' is truncated`)
  return bytes
}

/** One output tensor's bytes (in row chunks for matrices). */
async function* convertTensor(t: OutTensor): AsyncGenerator<Uint8Array> {
  const { src } = t
  const [cols, rows = 1] = t.dims
  if (t.kind === 'norm') {
    yield quantizeRows('F32', dequantizeRows(src.format, await readAll(src), cols * rows))
    return
  }
  if (t.kind === 'matrix') {
    const rowBytes = src.byteSize / rows
    for (let r0 = 0; r0 < rows; r0 += MATRIX_CHUNK_ROWS) {
      const n = Math.min(MATRIX_CHUNK_ROWS, rows - r0)
      const bytes = await readAll(src, r0 * rowBytes, n * rowBytes)
      if (src.format === t.format) { yield bytes; continue }
      const values = dequantizeRows(src.format, bytes, n * cols)
      yield quantizeRows(t.format, values)
    }
    return
  }
  const { codes, scale: gamma } = decodeTernary(src.format, await readAll(src), rows, cols, { file: src.file, offset: src.offset }, src.decode)
  if (t.permuteHeads) permuteQkRows(codes, t.permuteHeads, cols)
  const scale = t.scale ? gamma * dequantizeRows(t.scale.format, await readAll(t.scale), 1)[0] : gamma
  yield encodeTernary(t.format, codes, rows, cols, scale, { tiling: t.tiling, byteSize: t.byteSize })
}
