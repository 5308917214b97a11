/**
 * The weight-format traits table, ggml style: one row per tensor type this engine knows,
 * plus the type-id resolution that copes with the id collisions between bitnet.cpp's fork of
 * ggml and upstream ggml (docs/formats.md#tensor-types). The GGUF reader, the converter and the model
 * loader all go through here.
 */

import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { dequantizeBf16, dequantizeF16, dequantizeF32, quantizeBf16, quantizeF16, quantizeF32 } from './float.js'
import { decodeI2s, encodeI2s, i2sByteSize, type TensorContext, type TernaryTensor } from './i2s.js'
import { decodeHfPacked } from './hf-packed.js'
import { dequantizeQ6_K, quantizeQ6_K } from './q6_k.js'
import { dequantizeQ8_0, quantizeQ8_0 } from './q8_0.js'
import { decodeTq1_0, encodeTq1_0 } from './tq1_0.js'
import { decodeTq2_0, encodeTq2_0 } from './tq2_0.js'
import { ternarize } from './ternarize.js'
import { decodeTl, encodeTl, type TlTiling } from './tl.js'

export type { TensorContext, TernaryTensor } from './i2s.js'

/** Names of the formats this engine can size and decode. */
export type FormatName = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q6_K' | 'TQ1_0' | 'TQ2_0' | 'I2_S' | 'TL1' | 'TL2' | 'HF_PACKED'

/** One row of the traits table (ggml `type_traits`). */
export interface FormatTraits {
  name: FormatName
  /** GGUF type id as written by the format's origin (-1: not a GGUF type). */
  typeId: number
  /** Where the id is defined: upstream ggml or bitnet.cpp's fork (ids 36–39 collide); safetensors: HF only. */
  origin: 'ggml' | 'bitnet.cpp' | 'safetensors'
  /** Weights per block. For tensor-sized formats: the packing unit (informative only). */
  blockElems: number
  /** Bytes per block. For tensor-sized formats: the packing unit (informative only). */
  blockBytes: number
  /** True when weights are {-1, 0, +1} × a scale. */
  ternary: boolean
  /**
   * True when the tensor's byte size is NOT blocks × blockBytes but a whole-tensor formula
   * (I2_S, TL1, TL2: the fork's `ggml_nbytes` special cases); see {@link tensorByteSize}.
   */
  tensorSized: boolean
  /** Float-like formats: `n` weights → f32. */
  dequantize?: (bytes: Uint8Array, n: number) => Float32Array
  /** Float-like formats: f32 → the format's bytes (the converter's writer). */
  quantize?: (values: Float32Array) => Uint8Array
  /** Formats that hold ternary weights (or full-precision ones, ternarized): tensor bytes → codes + scale. */
  decode?: (bytes: Uint8Array, rows: number, cols: number, ctx: TensorContext | undefined, opts: TernaryCodecOptions) => TernaryTensor
  /** Ternary formats a file can be written in: codes + scale → tensor bytes. */
  encode?: (codes: ArrayLike<number>, rows: number, cols: number, scale: number, opts: TernaryCodecOptions) => Uint8Array
}

/** What some ternary formats need beyond the bytes: TL tiling and size, the HF packed tensor's scale. */
export interface TernaryCodecOptions {
  /** TL1/TL2 tiling (see findTlTiling in ./tl.ts). */
  tiling?: TlTiling
  /** TL1/TL2 encode: the tensor's byte size (tensorByteSize). */
  byteSize?: number
  /** HF_PACKED decode: the weight scale as a multiplier. */
  scale?: number
}

/** The codec of a format that dequantizes (F32, F16, BF16, Q8_0, Q6_K). */
const floatCodec = (dequantize: (bytes: Uint8Array, n: number) => Float32Array, quantize: (values: Float32Array) => Uint8Array) => ({ dequantize, quantize })

/** Full precision: a ternary projection stored in it is ternarized at load (./ternarize.ts). */
const fullPrecision = (dequantize: (bytes: Uint8Array, n: number) => Float32Array, quantize: (values: Float32Array) => Uint8Array) => ({
  ...floatCodec(dequantize, quantize),
  decode: (bytes: Uint8Array, rows: number, cols: number) => ternarize(dequantize(bytes, rows * cols)),
  encode: (codes: ArrayLike<number>, _rows: number, _cols: number, scale: number) => quantize(Float32Array.from(codes, (c) => c * scale)),
})

function tlCodec(format: 'TL1' | 'TL2') {
  const tiling = (opts: TernaryCodecOptions, what: string): TlTiling => {
    if (!opts.tiling) throw new InvalidArgumentError(`${what}: ${format} needs a tiling`)
    return opts.tiling
  }
  return {
    decode: (bytes: Uint8Array, rows: number, cols: number, ctx: TensorContext | undefined, opts: TernaryCodecOptions) =>
      decodeTl(format, bytes, rows, cols, tiling(opts, 'decodeTernary'), bytes.byteLength, ctx),
    encode: (codes: ArrayLike<number>, rows: number, cols: number, scale: number, opts: TernaryCodecOptions) =>
      encodeTl(format, codes, rows, cols, scale, tiling(opts, 'encodeTernary'), opts.byteSize ?? tensorByteSize(format, [cols, rows])),
  }
}

const decodeHf = (bytes: Uint8Array, rows: number, cols: number, ctx: TensorContext | undefined, opts: TernaryCodecOptions) => {
  if (opts.scale === undefined) throw new InvalidArgumentError('decodeTernary: HF_PACKED needs the scale')
  return decodeHfPacked(bytes, rows, cols, opts.scale, ctx)
}

/** The traits table. */
export const FORMATS: Record<FormatName, FormatTraits> = {
  F32: { name: 'F32', typeId: 0, origin: 'ggml', blockElems: 1, blockBytes: 4, ternary: false, tensorSized: false, ...fullPrecision(dequantizeF32, quantizeF32) },
  F16: { name: 'F16', typeId: 1, origin: 'ggml', blockElems: 1, blockBytes: 2, ternary: false, tensorSized: false, ...fullPrecision(dequantizeF16, quantizeF16) },
  Q8_0: { name: 'Q8_0', typeId: 8, origin: 'ggml', blockElems: 32, blockBytes: 34, ternary: false, tensorSized: false, ...floatCodec(dequantizeQ8_0, quantizeQ8_0) },
  Q6_K: { name: 'Q6_K', typeId: 14, origin: 'ggml', blockElems: 256, blockBytes: 210, ternary: false, tensorSized: false, ...floatCodec(dequantizeQ6_K, quantizeQ6_K) },
  BF16: { name: 'BF16', typeId: 30, origin: 'ggml', blockElems: 1, blockBytes: 2, ternary: false, tensorSized: false, ...fullPrecision(dequantizeBf16, quantizeBf16) },
  TQ1_0: { name: 'TQ1_0', typeId: 34, origin: 'ggml', blockElems: 256, blockBytes: 54, ternary: true, tensorSized: false, decode: decodeTq1_0, encode: encodeTq1_0 },
  TQ2_0: { name: 'TQ2_0', typeId: 35, origin: 'ggml', blockElems: 256, blockBytes: 66, ternary: true, tensorSized: false, decode: decodeTq2_0, encode: encodeTq2_0 },
  // 128 weights / 32 bytes, plus a 32-byte trailer (f32 scale + pad) per tensor.
  I2_S: { name: 'I2_S', typeId: 36, origin: 'bitnet.cpp', blockElems: 128, blockBytes: 32, ternary: true, tensorSized: true, decode: decodeI2s, encode: encodeI2s },
  // Two weights per 4-bit LUT index: 4 weights / byte, plus a 32-byte trailer.
  TL1: { name: 'TL1', typeId: 38, origin: 'bitnet.cpp', blockElems: 4, blockBytes: 1, ternary: true, tensorSized: true, ...tlCodec('TL1') },
  // Three weights per 5 bits (4-bit index + sign) in the main part: 24 weights / 5 bytes.
  TL2: { name: 'TL2', typeId: 39, origin: 'bitnet.cpp', blockElems: 24, blockBytes: 5, ternary: true, tensorSized: true, ...tlCodec('TL2') },
  // HF packed U8 [out/4, in] (src/formats/hf-packed.ts): 4 weights / byte, scale in a separate tensor.
  HF_PACKED: { name: 'HF_PACKED', typeId: -1, origin: 'safetensors', blockElems: 4, blockBytes: 1, ternary: true, tensorSized: true, decode: decodeHf },
}

/**
 * Upstream ggml type names by id (ggml.h `ggml_type`, 2026), for error messages.
 * Ids marked "removed" were retired upstream; 36–39 are reused by bitnet.cpp.
 */
export const GGML_TYPE_NAMES: readonly string[] = [
  'F32', 'F16', 'Q4_0', 'Q4_1', 'Q4_2 (removed)', 'Q4_3 (removed)', 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1',
  'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K', 'IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S',
  'IQ4_NL', 'IQ3_S', 'IQ2_S', 'IQ4_XS', 'I8', 'I16', 'I32', 'I64', 'F64', 'IQ1_M',
  'BF16', 'Q4_0_4_4 (removed)', 'Q4_0_4_8 (removed)', 'Q4_0_8_8 (removed)', 'TQ1_0', 'TQ2_0',
  'IQ4_NL_4_4 (removed)', 'IQ4_NL_4_8 (removed)', 'IQ4_NL_8_8 (removed)', 'MXFP4', 'NVFP4', 'Q1_0', 'Q2_0',
]

/** Architectures written by bitnet.cpp's converters (docs/formats.md#tensor-types); they own type ids 36–39. */
export const BITNET_ARCHS: readonly string[] = ['bitnet', 'bitnet-25', 'bitnet-b1.58']

const GGUF_FORMATS = Object.values(FORMATS).filter((t) => t.typeId >= 0)
const FORMAT_BY_ID = new Map<number, FormatName>(GGUF_FORMATS.map((t) => [t.typeId, t.name]))

/** Context for resolving a tensor's type id: the file's architecture and where the field is. */
export interface TypeContext {
  arch: string
  /** `general.file_type`, when the file has one. */
  fileType?: number
  tensorName: string
  file: string
  /** Absolute offset of the tensor's type field. */
  offset: number
}

/**
 * Maps a GGUF tensor type id to a format, resolving the fork/upstream collisions:
 * 36 → I2_S (upstream's 36, IQ4_NL_4_4, was a runtime repack type never written to disk),
 * 37 → error (bitnet.cpp's I8_S is an activation type, never on disk), 38 → TL1,
 * 39 → TL2 in bitnet archs and in 'llama' files of file_type 39 (bitnet.cpp's TL2 Llama family),
 * else upstream MXFP4 (unsupported).
 * @throws UnsupportedFeatureError for known ggml types this engine cannot run,
 *         ModelFormatError for ids no ggml version defines.
 * @example resolveTensorType(36, { arch: 'bitnet-b1.58', tensorName: 'blk.0.attn_q.weight', file, offset }) // 'I2_S'
 */
export function resolveTensorType(typeId: number, ctx: TypeContext): FormatName {
  const where = `tensor ${ctx.tensorName} in ${ctx.file} @ offset ${ctx.offset}`
  if (typeId === 37) {
    throw new ModelFormatError(`tensor ${ctx.tensorName} has type 37 (bitnet.cpp I8_S), an activation type that is never stored in a file`, {
      file: ctx.file, offset: ctx.offset, expected: 'a weight type', found: 'type 37 (I8_S)',
    })
  }
  // bitnet.cpp's converter writes Llama-family TL2 files as arch 'llama' with file_type 39
  // (its LLAMA_FTYPE_MOSTLY_TL2); upstream MXFP4 files say 38 (MOSTLY_MXFP4_MOE).
  const tl2Llama = ctx.arch === 'llama' && ctx.fileType === 39
  if (typeId === 39 && !BITNET_ARCHS.includes(ctx.arch) && !tl2Llama) {
    throw new UnsupportedFeatureError(
      `${where}: type 39 is MXFP4 in upstream ggml (it means TL2 only in bitnet.cpp files, arch ${BITNET_ARCHS.join('/')}; ` +
      `this file's arch is '${ctx.arch}'); MXFP4 is not supported`,
    )
  }
  const known = FORMAT_BY_ID.get(typeId)
  if (known) return known
  const upstream = Number.isInteger(typeId) && typeId >= 0 ? GGML_TYPE_NAMES[typeId] : undefined
  if (upstream) {
    throw new UnsupportedFeatureError(`${where}: tensor type ${upstream} (id ${typeId}) is not supported; supported: ${GGUF_FORMATS.map((t) => t.name).join(', ')}`)
  }
  throw new ModelFormatError(`tensor ${ctx.tensorName} has an unknown type id`, {
    file: ctx.file, offset: ctx.offset, expected: `a ggml type id (0..${GGML_TYPE_NAMES.length - 1})`, found: String(typeId),
  })
}

/**
 * Byte size of a tensor's data. dims = [ne0, ne1, ...] (ne0 contiguous).
 * - I2_S, TL1: elements/4 + 32 (fork `ggml_nbytes`; the 32 bytes hold the f32 scale + pad).
 * - TL2: the fork's `ggml_nbytes` formula, computed from the dims (not from the gap to the next
 *   tensor): (ne0−256)·ne1/3·5/8 + 256·ne1/2·4/8 with C integer division (truncating, also
 *   for ne0 < 256), padded to 32, + 32. It is an upper bound of the packed data (src/formats/tl.ts).
 * - HF_PACKED: elements/4 (ne1 = output rows must be a multiple of 4).
 * - others: ne0 must be a multiple of blockElems; (elements / blockElems) · blockBytes.
 * A tensor with a zero dimension has size 0, as in ggml.
 * @throws ModelFormatError if the shape does not fit the format or the size is not a safe integer.
 */
export function tensorByteSize(format: FormatName, dims: readonly number[], ctx: TensorContext = {}): number {
  const t = FORMATS[format]
  let n = 1
  for (const d of dims) n *= d
  if (!Number.isSafeInteger(n) || n < 0 || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ModelFormatError(`${format} tensor element count is out of range`, { ...ctx, expected: '< 2^53 elements', found: `dims [${dims.join(', ')}]` })
  }
  if (n === 0) return 0
  if (format === 'I2_S' || format === 'TL1') return i2sByteSize(n)
  if (format === 'HF_PACKED') {
    if (dims.length !== 2 || dims[1] % 4 !== 0) throw new ModelFormatError('packed ternary tensor must be 2-D with rows % 4 == 0', { ...ctx, found: `dims [${dims.join(', ')}]` })
    return n / 4
  }
  if (format === 'TL2') {
    const [ne0, ne1 = 1] = dims
    if (n !== ne0 * ne1) {
      throw new ModelFormatError('TL2 tensor must be 2-D', { ...ctx, expected: '2-D', found: `dims [${dims.join(', ')}]` })
    }
    let size = Math.trunc(Math.trunc(Math.trunc((ne0 - 256) * ne1 / 3) * 5) / 8) + 64 * ne1
    if (size % 32 !== 0) size += 32 - (size % 32)
    return size + 32
  }
  if (dims[0] % t.blockElems !== 0) {
    throw new ModelFormatError(`${format} tensor row length must be a multiple of the block size`, {
      ...ctx, expected: `ne0 % ${t.blockElems} == 0`, found: `ne0 = ${dims[0]}`,
    })
  }
  const size = (n / t.blockElems) * t.blockBytes
  if (!Number.isSafeInteger(size)) throw new ModelFormatError(`${format} tensor is too large`, { ...ctx, found: `dims [${dims.join(', ')}]` })
  return size
}

/**
 * Dequantizes `n` weights of a float-like format (F32, F16, BF16, Q8_0, Q6_K) to f32.
 * @throws InvalidArgumentError for ternary formats (use {@link decodeTernary}).
 */
export function dequantizeRows(format: FormatName, bytes: Uint8Array, n: number): Float32Array {
  const dequantize = FORMATS[format].dequantize
  if (!dequantize) throw new InvalidArgumentError(`dequantizeRows: ${format} is a ternary format; use decodeTernary`)
  return dequantize(bytes, n)
}

/**
 * Quantizes f32 values to a float-like format's bytes (F32, F16, BF16, Q8_0, Q6_K).
 * @example quantizeRows('Q8_0', new Float32Array(64)) // 68 bytes
 */
export function quantizeRows(format: FormatName, values: Float32Array): Uint8Array {
  const quantize = FORMATS[format].quantize
  if (!quantize) throw new InvalidArgumentError(`quantizeRows: ${format} is a ternary format; use encodeTernary`)
  return quantize(values)
}

/** Full-precision formats that may hold ternary projections: ternarized at load (./ternarize.ts). */
export const TERNARIZABLE: readonly FormatName[] = Object.values(FORMATS).filter((t) => !t.ternary && t.decode).map((t) => t.name)

/**
 * Decodes a per-tensor ternary weight of `rows` × `cols` (cols = ne0) into codes and a scale.
 * {@link TERNARIZABLE} formats (F32, F16, BF16) are ternarized (./ternarize.ts). TL1/TL2
 * read γ at `bytes.byteLength − 32`, so pass exactly the tensor's bytes.
 * @throws UnsupportedFeatureError for TQ tensors whose block scales differ; InvalidArgumentError
 *         for Q8_0/Q6_K, TL without a tiling or HF_PACKED without a scale.
 * @example
 * const { codes, scale } = decodeTernary('I2_S', bytes, info.dims[1], info.dims[0])
 */
export function decodeTernary(format: FormatName, bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext,
  opts: TernaryCodecOptions = {}): TernaryTensor {
  const decode = FORMATS[format].decode
  if (!decode) throw new InvalidArgumentError(`decodeTernary: ${format} cannot hold ternary weights`)
  return decode(bytes, rows, cols, ctx, opts)
}

/**
 * Encodes ternary codes × `scale` as a `rows` × `cols` tensor of `format` (full-precision
 * formats get the values codes·scale). TL1/TL2 need `opts.tiling`.
 * @example const bytes = encodeTernary('TQ2_0', codes, 64, 256, 0.5)
 */
export function encodeTernary(format: FormatName, codes: ArrayLike<number>, rows: number, cols: number, scale: number,
  opts: TernaryCodecOptions = {}): Uint8Array {
  const encode = FORMATS[format].encode
  if (!encode) throw new InvalidArgumentError(`encodeTernary: ${format} cannot be written from ternary codes`)
  return encode(codes, rows, cols, scale, opts)
}
