/**
 * GGUF writer: the inverse of reader.ts (see there for the byte-level format). Used by tests
 * and by `bitnet convert`. `ggufChunks` yields the file piece by piece so a caller can stream
 * a multi-GB model to disk; `writeGguf` concatenates the pieces.
 *
 * The writer does not check tensor data against its type (it cannot resolve bitnet.cpp's
 * colliding type ids without the architecture, and tests need to write bad files); it lays the
 * data out exactly as given, each tensor padded to the alignment. The reader validates.
 */

import { InvalidArgumentError } from '../errors.js'
import { GgufType, type GgufArray, type GgufMetadata, type GgufScalar, type GgufValue } from './types.js'

const DEFAULT_ALIGNMENT = 32

/** One tensor to write: its data must already be in the type's on-disk layout. */
export interface GgufWriteTensor {
  name: string
  /** ne0 first. */
  dims: number[]
  /** ggml type id written as is (e.g. 36 for I2_S). */
  typeId: number
  data: Uint8Array
}

/** What to write. */
export interface GgufWriteInput {
  /** GGUF version; 2 and 3 differ only in the version field for little-endian files. Default 3. */
  version?: 2 | 3
  /**
   * Tensor data alignment (a power of two). Default: `general.alignment` from the metadata, or 32.
   * A non-default value is written into `general.alignment` (the input map is not modified).
   */
  alignment?: number
  metadata: GgufMetadata
  tensors: GgufWriteTensor[]
}

const encoder = new TextEncoder()

/** Little-endian byte builder for the header. */
class ByteBuilder {
  private buf = new Uint8Array(4096)
  private dv = new DataView(this.buf.buffer)
  length = 0

  private reserve(n: number): number {
    if (this.length + n > this.buf.byteLength) {
      const grown = new Uint8Array(Math.max(this.buf.byteLength * 2, this.length + n))
      grown.set(this.buf.subarray(0, this.length))
      this.buf = grown
      this.dv = new DataView(grown.buffer)
    }
    const at = this.length
    this.length += n
    return at
  }

  // Note: reserve() first, then read this.dv — reserve may replace the buffer and its view.
  u8(v: number): void { const at = this.reserve(1); this.dv.setUint8(at, v) }
  i8(v: number): void { const at = this.reserve(1); this.dv.setInt8(at, v) }
  u16(v: number): void { const at = this.reserve(2); this.dv.setUint16(at, v, true) }
  i16(v: number): void { const at = this.reserve(2); this.dv.setInt16(at, v, true) }
  u32(v: number): void { const at = this.reserve(4); this.dv.setUint32(at, v, true) }
  i32(v: number): void { const at = this.reserve(4); this.dv.setInt32(at, v, true) }
  f32(v: number): void { const at = this.reserve(4); this.dv.setFloat32(at, v, true) }
  f64(v: number): void { const at = this.reserve(8); this.dv.setFloat64(at, v, true) }
  u64(v: bigint): void { const at = this.reserve(8); this.dv.setBigUint64(at, v, true) }
  i64(v: bigint): void { const at = this.reserve(8); this.dv.setBigInt64(at, v, true) }
  bytes(b: Uint8Array): void { const at = this.reserve(b.byteLength); this.buf.set(b, at) }
  string(s: string): void {
    const b = encoder.encode(s)
    this.u64(BigInt(b.byteLength))
    this.bytes(b)
  }
  zeros(n: number): void { this.reserve(n) } // fresh bytes are already 0 (the buffer only grows)

  result(): Uint8Array {
    return this.buf.slice(0, this.length)
  }
}

function checkInt(v: GgufScalar, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`GGUF writer: ${what} must be an integer in [${min}, ${max}], got ${String(v)}`)
  }
  return v
}

function checkBig(v: GgufScalar, min: bigint, max: bigint, what: string): bigint {
  const b = typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v
  if (typeof b !== 'bigint' || b < min || b > max) {
    throw new InvalidArgumentError(`GGUF writer: ${what} must be an integer in [${min}, ${max}], got ${String(v)}`)
  }
  return b
}

function writeScalar(out: ByteBuilder, type: GgufType, v: GgufScalar, what: string): void {
  switch (type) {
    case GgufType.UINT8: return out.u8(checkInt(v, 0, 0xff, what))
    case GgufType.INT8: return out.i8(checkInt(v, -0x80, 0x7f, what))
    case GgufType.UINT16: return out.u16(checkInt(v, 0, 0xffff, what))
    case GgufType.INT16: return out.i16(checkInt(v, -0x8000, 0x7fff, what))
    case GgufType.UINT32: return out.u32(checkInt(v, 0, 0xffffffff, what))
    case GgufType.INT32: return out.i32(checkInt(v, -0x80000000, 0x7fffffff, what))
    case GgufType.UINT64: return out.u64(checkBig(v, 0n, 0xffffffffffffffffn, what))
    case GgufType.INT64: return out.i64(checkBig(v, -0x8000000000000000n, 0x7fffffffffffffffn, what))
    case GgufType.FLOAT32:
    case GgufType.FLOAT64:
      if (typeof v !== 'number') throw new InvalidArgumentError(`GGUF writer: ${what} must be a number, got ${typeof v}`)
      return type === GgufType.FLOAT32 ? out.f32(v) : out.f64(v)
    case GgufType.BOOL:
      if (typeof v !== 'boolean') throw new InvalidArgumentError(`GGUF writer: ${what} must be a boolean, got ${typeof v}`)
      return out.u8(v ? 1 : 0)
    case GgufType.STRING:
      if (typeof v !== 'string') throw new InvalidArgumentError(`GGUF writer: ${what} must be a string, got ${typeof v}`)
      return out.string(v)
    default:
      throw new InvalidArgumentError(`GGUF writer: ${what} has unknown value type ${String(type)}`)
  }
}

/** Writes item type + count + items (the array body; the caller wrote the ARRAY type tag). */
function writeArray(out: ByteBuilder, a: GgufArray, what: string): void {
  out.u32(a.itemType)
  out.u64(BigInt(a.value.length))
  if (a.itemType === GgufType.ARRAY) {
    a.value.forEach((inner, i) => {
      if (typeof inner !== 'object' || inner.type !== GgufType.ARRAY) {
        throw new InvalidArgumentError(`GGUF writer: ${what}[${i}] must be an array value (itemType is ARRAY)`)
      }
      writeArray(out, inner, `${what}[${i}]`)
    })
  } else {
    for (const v of a.value) writeScalar(out, a.itemType, v as GgufScalar, `${what} item`)
  }
}

function writeValue(out: ByteBuilder, v: GgufValue, what: string): void {
  out.u32(v.type)
  if (v.type === GgufType.ARRAY) writeArray(out, v, what)
  else writeScalar(out, v.type, v.value, what)
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 0x80000000 && (n & (n - 1)) === 0
}

/** A tensor's header entry when its data is produced later: its byte size instead of the data. */
export interface GgufHeaderTensor {
  name: string
  /** ne0 first. */
  dims: number[]
  typeId: number
  byteSize: number
}

/** What {@link ggufHeader} writes: like GgufWriteInput, with sizes instead of tensor data. */
export interface GgufHeaderInput extends Omit<GgufWriteInput, 'tensors'> {
  tensors: GgufHeaderTensor[]
}

/**
 * The header of a GGUF file (magic … tensor infos, padded to the alignment), for callers that
 * stream the tensor data themselves: after it, write each tensor's `byteSize` bytes followed by
 * `padding(byteSize)` zero bytes, in order (what {@link ggufChunks} does).
 * @example
 * const { header, padding } = ggufHeader({ metadata, tensors: [{ name, dims, typeId: 36, byteSize }] })
 */
export function ggufHeader(file: GgufHeaderInput): { header: Uint8Array; padding: (byteSize: number) => number } {
  const version = file.version ?? 3
  if (version !== 2 && version !== 3) throw new InvalidArgumentError(`GGUF writer: version must be 2 or 3, got ${String(version)}`)

  // Effective alignment and the metadata that records it.
  const existing = file.metadata.get('general.alignment')
  const alignment = file.alignment ?? (existing?.type === GgufType.UINT32 ? (existing.value as number) : DEFAULT_ALIGNMENT)
  if (!isPowerOfTwo(alignment)) throw new InvalidArgumentError(`GGUF writer: alignment must be a power of two, got ${alignment}`)
  let metadata = file.metadata
  if (existing !== undefined ? existing.value !== alignment || existing.type !== GgufType.UINT32 : alignment !== DEFAULT_ALIGNMENT) {
    metadata = new Map(file.metadata) // keeps the key's position if present, else appends
    metadata.set('general.alignment', metaU32(alignment))
  }

  const pad = (n: number) => (alignment - (n % alignment)) % alignment
  const h = new ByteBuilder()
  h.bytes(encoder.encode('GGUF'))
  h.u32(version)
  h.u64(BigInt(file.tensors.length))
  h.u64(BigInt(metadata.size))
  for (const [key, value] of metadata) {
    h.string(key)
    writeValue(h, value, `metadata ${key}`)
  }
  let offset = 0
  for (const t of file.tensors) {
    if (t.dims.length < 1 || t.dims.length > 4) throw new InvalidArgumentError(`GGUF writer: tensor ${t.name} must have 1..4 dims`)
    h.string(t.name)
    h.u32(t.dims.length)
    for (const d of t.dims) h.u64(checkBig(d, 0n, 0xffffffffffffffffn, `dim of ${t.name}`))
    h.u32(checkInt(t.typeId, 0, 0xffffffff, `type of ${t.name}`))
    h.u64(BigInt(offset))
    offset += t.byteSize + pad(t.byteSize)
  }
  h.zeros(pad(h.length))
  return { header: h.result(), padding: pad }
}

/**
 * Yields a GGUF file as chunks: the header (with padding to the alignment), then each
 * tensor's data followed by its padding. Tensor offsets are assigned in order.
 * @example
 * const out = fs.createWriteStream('model.gguf')
 * for (const chunk of ggufChunks({ metadata, tensors })) out.write(chunk)
 */
export function* ggufChunks(file: GgufWriteInput): Generator<Uint8Array> {
  const { header, padding } = ggufHeader({ ...file, tensors: file.tensors.map((t) => ({ ...t, byteSize: t.data.byteLength })) })
  yield header
  for (const t of file.tensors) {
    yield t.data
    const p = padding(t.data.byteLength)
    if (p) yield new Uint8Array(p)
  }
}

/** Writes a whole GGUF file into memory (see {@link ggufChunks}). */
export function writeGguf(file: GgufWriteInput): Uint8Array {
  const chunks = [...ggufChunks(file)]
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

// ─── Metadata value builders ─────────────────────────────────────────────────────────────

/** A STRING value. @example meta.set('general.architecture', metaStr('bitnet-b1.58')) */
export const metaStr = (s: string): GgufValue => ({ type: GgufType.STRING, value: s })
/** A UINT8 value. */
export const metaU8 = (n: number): GgufValue => ({ type: GgufType.UINT8, value: n })
/** An INT8 value. */
export const metaI8 = (n: number): GgufValue => ({ type: GgufType.INT8, value: n })
/** A UINT16 value. */
export const metaU16 = (n: number): GgufValue => ({ type: GgufType.UINT16, value: n })
/** An INT16 value. */
export const metaI16 = (n: number): GgufValue => ({ type: GgufType.INT16, value: n })
/** A UINT32 value. */
export const metaU32 = (n: number): GgufValue => ({ type: GgufType.UINT32, value: n })
/** An INT32 value. */
export const metaI32 = (n: number): GgufValue => ({ type: GgufType.INT32, value: n })
/** A UINT64 value (stored as bigint, as the reader returns it). */
export const metaU64 = (n: number | bigint): GgufValue => ({ type: GgufType.UINT64, value: BigInt(n) })
/** An INT64 value (stored as bigint, as the reader returns it). */
export const metaI64 = (n: number | bigint): GgufValue => ({ type: GgufType.INT64, value: BigInt(n) })
/** A FLOAT32 value (rounded to f32 when written). */
export const metaF32 = (n: number): GgufValue => ({ type: GgufType.FLOAT32, value: n })
/** A FLOAT64 value. */
export const metaF64 = (n: number): GgufValue => ({ type: GgufType.FLOAT64, value: n })
/** A BOOL value. */
export const metaBool = (b: boolean): GgufValue => ({ type: GgufType.BOOL, value: b })

/**
 * An ARRAY value. For nested arrays pass `GgufType.ARRAY` and array values.
 * @example metaArr(GgufType.STRING, ['a', 'b'])
 * @example metaArr(GgufType.ARRAY, [metaArr(GgufType.INT32, [1, 2]), metaArr(GgufType.STRING, [])])
 */
export function metaArr(itemType: GgufType.ARRAY, values: GgufArray[]): GgufArray
export function metaArr(itemType: Exclude<GgufType, GgufType.ARRAY>, values: GgufScalar[]): GgufArray
export function metaArr(itemType: GgufType, values: GgufScalar[] | GgufArray[]): GgufArray
export function metaArr(itemType: GgufType, values: GgufScalar[] | GgufArray[]): GgufArray {
  return { type: GgufType.ARRAY, itemType, value: values }
}
