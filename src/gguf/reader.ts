/**
 * GGUF reader: header, metadata and tensor directory (never the tensor data itself).
 *
 * The byte-level format (gguf.h; all integers little-endian):
 *
 *  1. magic: 4 bytes "GGUF" (0x47 0x47 0x55 0x46).
 *  2. version: u32. 2 and 3 are supported (identical for little-endian files; v3 only added
 *     big-endian files, which are not supported). v1 used u32 counts and lengths: unsupported.
 *  3. tensor_count: u64.
 *  4. kv_count: u64.
 *  5. kv_count KV pairs, each:
 *     a. key: string = u64 byte length + UTF-8 bytes (no terminator);
 *     b. value type: u32 (`GgufType`: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool,
 *        8 string, 9 array, 10 u64, 11 i64, 12 f64);
 *     c. value: the scalar (bool = 1 byte, 0 or 1), a string, or an array = u32 item type +
 *        u64 count + count items (items of type array nest: each is again type + count + items).
 *  6. tensor_count tensor infos, each:
 *     a. name: string;
 *     b. n_dims: u32 (1..4, GGML_MAX_DIMS);
 *     c. dims: n_dims × u64, ne0 first (ne0 = the contiguous dimension);
 *     d. type: u32 (ggml type id, resolved in src/formats/index.ts);
 *     e. offset: u64, relative to the data section, a multiple of the alignment.
 *  7. padding with zeros to a multiple of `general.alignment` (u32 metadata, a power of two;
 *     default 32).
 *  8. tensor data: each tensor at data start + offset (tensors padded to the alignment).
 *
 * Every length, count and dimension is checked against the bytes left in the FILE before
 * anything is allocated, so a corrupt or hostile header fails with a ModelFormatError naming
 * the file, the offset of the offending field, and expected vs found — never a RangeError or
 * an out-of-memory. The parser is synchronous over a prefix of the file; `readGguf` grows
 * the prefix on demand (`NeedMoreBytes`) so it never reads tensor data.
 */

import { ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { resolveTensorType, tensorByteSize } from '../formats/index.js'
import type { ByteSource } from '../io/source.js'
import {
  GgufType, type GgufArray, type GgufFile, type GgufMetadata, type GgufScalar, type GgufTensorInfo, type GgufValue,
} from './types.js'

/** Default `general.alignment`. */
export const GGUF_DEFAULT_ALIGNMENT = 32
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4
/** Nested arrays deeper than this are rejected (keeps recursion bounded; real files use 1). */
export const GGUF_MAX_ARRAY_DEPTH = 32

/** The first prefix `readGguf` reads; headers of real models are 1–10 MB (2B4T: ~8 MB, mostly vocabulary). */
const INITIAL_PREFIX = 1 << 20

/**
 * Thrown by {@link parseGguf} when the header continues past the given prefix but still
 * fits in the file: read at least `needed` bytes from the start and parse again.
 * Internal protocol between `parseGguf` and `readGguf`, exported for custom loaders.
 */
export class NeedMoreBytes extends Error {
  constructor(readonly needed: number) {
    super(`GGUF header needs at least ${needed} bytes of the file`)
    this.name = 'NeedMoreBytes'
  }
}

// Smallest encoding of each value type: bounds array counts before allocation.
const MIN_VALUE_BYTES: Record<GgufType, number> = {
  [GgufType.UINT8]: 1, [GgufType.INT8]: 1, [GgufType.BOOL]: 1,
  [GgufType.UINT16]: 2, [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4, [GgufType.INT32]: 4, [GgufType.FLOAT32]: 4,
  [GgufType.UINT64]: 8, [GgufType.INT64]: 8, [GgufType.FLOAT64]: 8,
  [GgufType.STRING]: 8, // u64 length, empty string
  [GgufType.ARRAY]: 12, // u32 item type + u64 count, empty array
}
const MIN_KV_BYTES = 8 + 4 + 1 // empty key, type, 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8 // empty name, n_dims (0 dims), type, offset

// ignoreBOM: a GGUF string is its bytes; a token that starts with U+FEFF keeps it
const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/** String arrays already decoded, by the offset of their first string: the array and its end. */
type DecodedArrays = Map<number, { array: GgufArray; end: number }>

/** Bounds-checked little-endian reads over a prefix of a file of `fileSize` bytes. */
class Cursor {
  pos = 0
  private readonly dv: DataView

  constructor(
    private readonly bytes: Uint8Array,
    readonly fileSize: number,
    readonly file: string,
    /** String arrays decoded by an earlier parse of a shorter prefix, by offset (see readGguf). */
    readonly decoded: DecodedArrays = new Map(),
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get remaining(): number {
    return this.fileSize - this.pos
  }

  /** A ModelFormatError at `offset` (default: the current position). */
  error(problem: string, expected?: string, found?: string, offset = this.pos): ModelFormatError {
    return new ModelFormatError(problem, { file: this.file, offset, expected, found })
  }

  /** Ensures `n` bytes at the cursor: truncated file → error; past the prefix → NeedMoreBytes. */
  need(n: number, field: string): void {
    if (n > this.remaining) {
      throw this.error(`truncated: ${field} runs past the end of the file`, `${n} bytes`, `${Math.max(0, this.remaining)} bytes left`)
    }
    if (this.pos + n > this.bytes.byteLength) throw new NeedMoreBytes(this.pos + n)
  }

  u8(field: string): number { this.need(1, field); return this.bytes[this.pos++] }
  i8(field: string): number { this.need(1, field); return this.dv.getInt8(this.pos++) }
  u16(field: string): number { this.need(2, field); const v = this.dv.getUint16(this.pos, true); this.pos += 2; return v }
  i16(field: string): number { this.need(2, field); const v = this.dv.getInt16(this.pos, true); this.pos += 2; return v }
  u32(field: string): number { this.need(4, field); const v = this.dv.getUint32(this.pos, true); this.pos += 4; return v }
  i32(field: string): number { this.need(4, field); const v = this.dv.getInt32(this.pos, true); this.pos += 4; return v }
  f32(field: string): number { this.need(4, field); const v = this.dv.getFloat32(this.pos, true); this.pos += 4; return v }
  f64(field: string): number { this.need(8, field); const v = this.dv.getFloat64(this.pos, true); this.pos += 8; return v }
  u64(field: string): bigint { this.need(8, field); const v = this.dv.getBigUint64(this.pos, true); this.pos += 8; return v }
  i64(field: string): bigint { this.need(8, field); const v = this.dv.getBigInt64(this.pos, true); this.pos += 8; return v }

  /**
   * Reads a u64 count of items of at least `minItemBytes` each and checks that many items
   * can fit in the rest of the file. Returns it as a number. (`field` + `suffix` name the
   * field in errors; they are only concatenated on error, this runs once per string.)
   */
  count(field: string, minItemBytes: number, suffix = ''): number {
    const at = this.pos
    this.need(8, field)
    const max = Math.floor((this.remaining - 8) / minItemBytes)
    // Two u32 halves, not a BigInt: this runs for each of 10^5 vocabulary strings.
    const lo = this.dv.getUint32(at, true)
    if (this.dv.getUint32(at + 4, true) === 0 && lo <= max) {
      this.pos += 8
      return lo
    }
    const n = this.u64(field)
    if (n > BigInt(max)) {
      throw this.error(`${field}${suffix} is larger than the rest of the file can hold`,
        `<= ${max} (${this.remaining} bytes left, >= ${minItemBytes} bytes each)`, String(n), at)
    }
    return Number(n)
  }

  string(field: string): string {
    const len = this.count(field, 1, ' length')
    this.need(len, field)
    const start = this.pos
    this.pos += len
    return decodeUtf8(this.bytes, start, len)
  }

  /**
   * Throws NeedMoreBytes if `n` strings at the cursor run past the prefix, walking their lengths
   * without decoding, so a vocabulary is decoded only once the prefix holds all of it. Lengths
   * that overrun the file are left to string(), which reports them.
   */
  needStrings(n: number): void {
    const limit = this.bytes.byteLength
    let p = this.pos
    for (let i = 0; i < n; i++) {
      if (p + 8 > this.fileSize) return
      if (p + 8 > limit) throw new NeedMoreBytes(Math.min(this.fileSize, p + 8 * (n - i)))
      const end = p + 8 + this.dv.getUint32(p, true) + this.dv.getUint32(p + 4, true) * 2 ** 32
      if (end > this.fileSize) return
      if (end > limit) throw new NeedMoreBytes(Math.min(this.fileSize, end + 8 * (n - i - 1)))
      p = end
    }
  }

  /** Reads `n` fixed-size numbers of `type` (the caller has checked the bytes with need()). */
  numbers(type: GgufType, n: number): GgufScalar[] {
    const out: GgufScalar[] = new Array(n)
    const dv = this.dv
    let p = this.pos
    switch (type) {
      case GgufType.UINT8: for (let i = 0; i < n; i++) out[i] = dv.getUint8(p++); break
      case GgufType.INT8: for (let i = 0; i < n; i++) out[i] = dv.getInt8(p++); break
      case GgufType.UINT16: for (let i = 0; i < n; i++, p += 2) out[i] = dv.getUint16(p, true); break
      case GgufType.INT16: for (let i = 0; i < n; i++, p += 2) out[i] = dv.getInt16(p, true); break
      case GgufType.UINT32: for (let i = 0; i < n; i++, p += 4) out[i] = dv.getUint32(p, true); break
      case GgufType.INT32: for (let i = 0; i < n; i++, p += 4) out[i] = dv.getInt32(p, true); break
      case GgufType.FLOAT32: for (let i = 0; i < n; i++, p += 4) out[i] = dv.getFloat32(p, true); break
      case GgufType.UINT64: for (let i = 0; i < n; i++, p += 8) out[i] = dv.getBigUint64(p, true); break
      case GgufType.INT64: for (let i = 0; i < n; i++, p += 8) out[i] = dv.getBigInt64(p, true); break
      case GgufType.FLOAT64: for (let i = 0; i < n; i++, p += 8) out[i] = dv.getFloat64(p, true); break
      default: throw new Error(`numbers(): ${GgufType[type]} is not a fixed-size number type`)
    }
    this.pos = p
    return out
  }
}

/** UTF-16 units of the string being decoded, reused: 10^5 strings would allocate 10^5 arrays. */
const scratchUnits: number[] = []

/**
 * UTF-8 → string. Vocabularies hold ~10^5 short strings, mostly ASCII or 2-byte sequences
 * (GPT-2 byte-level 'Ġ'); for those a hand decoder is ~1.5× faster than a TextDecoder call
 * per string. Anything else (long strings, 3/4-byte sequences, invalid bytes) goes to
 * TextDecoder, so its replacement-character behaviour applies to all invalid input.
 */
function decodeUtf8(bytes: Uint8Array, start: number, len: number): string {
  const end = start + len
  if (len > 64) return utf8.decode(bytes.subarray(start, end))
  const units = scratchUnits
  units.length = 0
  for (let i = start; i < end;) {
    const b = bytes[i]
    if (b < 0x80) {
      units.push(b)
      i += 1
    } else if (b >= 0xc2 && b < 0xe0 && i + 1 < end && (bytes[i + 1] & 0xc0) === 0x80) {
      units.push(((b & 0x1f) << 6) | (bytes[i + 1] & 0x3f))
      i += 2
    } else {
      return utf8.decode(bytes.subarray(start, end))
    }
  }
  return String.fromCharCode.apply(null, units)
}

/** A key or tensor name as shown in error messages: as is when short printable ASCII, else quoted and cut. */
function printable(s: string): string {
  return s.length <= 96 && /^[\x20-\x7e]*$/.test(s) ? s : JSON.stringify(s.slice(0, 96)) + (s.length > 96 ? '…' : '')
}

function isValueType(t: number): t is GgufType {
  return Number.isInteger(t) && t >= GgufType.UINT8 && t <= GgufType.FLOAT64
}

/** Reads one scalar of a non-array type. */
function readScalar(c: Cursor, type: Exclude<GgufType, GgufType.ARRAY>, field: string): GgufScalar {
  switch (type) {
    case GgufType.UINT8: return c.u8(field)
    case GgufType.INT8: return c.i8(field)
    case GgufType.UINT16: return c.u16(field)
    case GgufType.INT16: return c.i16(field)
    case GgufType.UINT32: return c.u32(field)
    case GgufType.INT32: return c.i32(field)
    case GgufType.FLOAT32: return c.f32(field)
    case GgufType.UINT64: return c.u64(field)
    case GgufType.INT64: return c.i64(field)
    case GgufType.FLOAT64: return c.f64(field)
    case GgufType.STRING: return c.string(field)
    case GgufType.BOOL: {
      const at = c.pos
      const b = c.u8(field)
      if (b > 1) throw c.error(`${field}: invalid bool`, '0 or 1', String(b), at)
      return b === 1
    }
  }
}

/** Reads an array body (item type + count + items), the cursor being at the item type. */
function readArray(c: Cursor, field: string, depth: number): GgufArray {
  if (depth > GGUF_MAX_ARRAY_DEPTH) throw c.error(`${field}: arrays nested too deeply`, `<= ${GGUF_MAX_ARRAY_DEPTH} levels`, `${depth}`)
  const typeAt = c.pos
  const itemType = c.u32(`${field} item type`)
  if (!isValueType(itemType)) throw c.error(`${field}: unknown array item type`, 'a GGUF value type (0..12)', String(itemType), typeAt)
  const n = c.count(`${field} count`, MIN_VALUE_BYTES[itemType])
  c.need(n * MIN_VALUE_BYTES[itemType], field) // ask for the whole minimal body at once
  if (itemType === GgufType.ARRAY) {
    const items: GgufArray[] = new Array(n)
    for (let i = 0; i < n; i++) items[i] = readArray(c, `${field}[${i}]`, depth + 1)
    return { type: GgufType.ARRAY, itemType, value: items }
  }
  if (itemType === GgufType.STRING) return readStrings(c, field, n)
  if (itemType === GgufType.BOOL) {
    const items: GgufScalar[] = new Array(n)
    for (let i = 0; i < n; i++) items[i] = readScalar(c, itemType, field)
    return { type: GgufType.ARRAY, itemType, value: items }
  }
  return { type: GgufType.ARRAY, itemType, value: c.numbers(itemType, n) } // size checked above
}

/**
 * Reads `n` strings, or takes them from `c.decoded` when an earlier parse of a shorter prefix
 * decoded this array (the bytes of a prefix do not change as it grows).
 */
function readStrings(c: Cursor, field: string, n: number): GgufArray {
  const start = c.pos
  const earlier = c.decoded.get(start)
  if (earlier) {
    c.pos = earlier.end
    return earlier.array
  }
  c.needStrings(n)
  const items: string[] = new Array(n)
  for (let i = 0; i < n; i++) items[i] = c.string(field)
  const array: GgufArray = { type: GgufType.ARRAY, itemType: GgufType.STRING, value: items }
  c.decoded.set(start, { array, end: c.pos })
  return array
}

function readValue(c: Cursor, key: string): GgufValue {
  const typeAt = c.pos
  const type = c.u32(`type of ${key}`)
  if (!isValueType(type)) throw c.error(`metadata ${key}: unknown value type`, 'a GGUF value type (0..12)', String(type), typeAt)
  if (type === GgufType.ARRAY) return readArray(c, `metadata ${key}`, 1)
  return { type, value: readScalar(c, type, `metadata ${key}`) }
}

/** Reads and checks magic and version; returns the version. */
function readPreamble(c: Cursor): number {
  c.need(4, 'magic')
  const magic = String.fromCharCode(c.u8('magic'), c.u8('magic'), c.u8('magic'), c.u8('magic'))
  if (magic !== 'GGUF') throw c.error('not a GGUF file: bad magic', '"GGUF"', JSON.stringify(magic), 0)
  const version = c.u32('version')
  if (version === 1) {
    throw new UnsupportedFeatureError(`${c.file}: GGUF version 1 is not supported (only 2 and 3); re-convert the model with a current converter`)
  }
  // A big-endian v2/v3 file shows its version byte-swapped.
  if (version === 0x02000000 || version === 0x03000000) {
    throw new UnsupportedFeatureError(`${c.file}: big-endian GGUF files are not supported`)
  }
  if (version !== 2 && version !== 3) throw c.error('unsupported GGUF version', '2 or 3', String(version), 4)
  return version
}

/**
 * Parses a GGUF header from a prefix of a file.
 * @param bytes the first bytes of the file (any length up to `fileSize`)
 * @param fileSize the size of the whole file, for bounds checks
 * @param fileName used in error messages
 * @throws NeedMoreBytes when the header extends past `bytes` (read more and call again),
 *         ModelFormatError / UnsupportedFeatureError for invalid or unsupported files.
 * @example
 * const gguf = parseGguf(bytes, bytes.length, 'model.gguf')
 */
export function parseGguf(bytes: Uint8Array, fileSize: number, fileName: string): GgufFile {
  return parseHeader(new Cursor(bytes, fileSize, fileName))
}

function parseHeader(c: Cursor): GgufFile {
  const fileSize = c.fileSize
  const fileName = c.file
  const version = readPreamble(c)
  const tensorCount = c.count('tensor_count', MIN_TENSOR_INFO_BYTES)
  const kvCount = c.count('kv_count', MIN_KV_BYTES)

  // 5. Metadata.
  const metadata: GgufMetadata = new Map()
  let alignmentAt = 0 // offset of general.alignment's type field, for errors
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos
    const key = c.string(`key of metadata entry ${i}`)
    if (metadata.has(key)) throw c.error('duplicate metadata key', 'unique keys', JSON.stringify(key), keyAt)
    if (key === 'general.alignment') alignmentAt = c.pos
    metadata.set(key, readValue(c, printable(key)))
  }
  const alignment = readAlignment(metadata, c, alignmentAt)
  const archValue = metadata.get('general.architecture')
  const arch = archValue?.type === GgufType.STRING ? String(archValue.value) : ''
  const fileTypeValue = metadata.get('general.file_type')?.value
  const fileType = typeof fileTypeValue === 'number' ? fileTypeValue : undefined

  // 6. Tensor infos.
  const tensors: GgufTensorInfo[] = []
  const names = new Set<string>()
  const offsetFields: number[] = [] // file offset of each tensor's offset field, for errors
  for (let i = 0; i < tensorCount; i++) {
    const nameAt = c.pos
    const rawName = c.string(`name of tensor ${i}`)
    const name = printable(rawName)
    if (names.has(rawName)) throw c.error('duplicate tensor name', 'unique names', JSON.stringify(name), nameAt)
    names.add(rawName)
    const nDimsAt = c.pos
    const nDims = c.u32(`n_dims of ${name}`)
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) throw c.error(`tensor ${name}: bad n_dims`, `1..${GGUF_MAX_DIMS}`, String(nDims), nDimsAt)
    const dims: number[] = []
    let elements = 1
    for (let d = 0; d < nDims; d++) {
      const dimAt = c.pos
      const dim = c.u64(`dims of ${name}`)
      elements *= Number(dim)
      if (dim > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isSafeInteger(elements)) {
        throw c.error(`tensor ${name}: element count overflows`, '< 2^53 elements', `dims [${[...dims, dim].join(', ')}]`, dimAt)
      }
      dims.push(Number(dim))
    }
    const typeAt = c.pos
    const typeId = c.u32(`type of ${name}`)
    const format = resolveTensorType(typeId, { arch, fileType, tensorName: name, file: fileName, offset: typeAt })
    const byteSize = tensorByteSize(format, dims, { file: fileName, offset: nDimsAt })
    if (byteSize > fileSize) {
      throw c.error(`tensor ${name} is larger than the file`, `<= ${fileSize} bytes`, `${byteSize} bytes (${format} [${dims.join(', ')}])`, nDimsAt)
    }
    offsetFields.push(c.pos)
    const offset = c.u64(`offset of ${name}`)
    if (offset % BigInt(alignment) !== 0n) {
      throw c.error(`tensor ${name}: misaligned data offset`, `a multiple of ${alignment}`, String(offset), c.pos - 8)
    }
    if (offset > BigInt(fileSize)) throw c.error(`tensor ${name}: data offset past the end of the file`, `<= ${fileSize}`, String(offset), c.pos - 8)
    tensors.push({ name: rawName, dims, typeId, format, offset: Number(offset), byteSize })
  }

  // 7./8. The data section starts at the next multiple of the alignment.
  const dataOffset = Math.ceil(c.pos / alignment) * alignment
  tensors.forEach((t, i) => {
    const end = dataOffset + t.offset + t.byteSize
    if (end > fileSize) {
      throw c.error(`tensor ${t.name}: data runs past the end of the file`, `end <= ${fileSize}`,
        `data section ${dataOffset} + offset ${t.offset} + ${t.byteSize} bytes = ${end}`, offsetFields[i])
    }
  })
  return { version, metadata, tensors, alignment, dataOffset }
}

/** `general.alignment` (value type field at `at`): must be a u32 power of two; default 32. */
function readAlignment(metadata: GgufMetadata, c: Cursor, at: number): number {
  const v = metadata.get('general.alignment')
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT
  if (v.type !== GgufType.UINT32) throw c.error('general.alignment has the wrong type', 'UINT32', describe(v), at)
  const a = v.value as number
  if (a === 0 || (a & (a - 1)) !== 0) throw c.error('general.alignment must be a power of two', 'a power of two', String(a), at + 4)
  return a
}

/** Whether `bytes` (a file's first four or more) begin with the GGUF magic. */
export function isGguf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]) === 'GGUF'
}

/**
 * Reads the header of a GGUF file through a ByteSource, reading a prefix that starts at
 * 1 MiB and grows only as far as the header needs (never the tensor data).
 * @example
 * const gguf = await readGguf(await fileSource('ggml-model-i2_s.gguf'))
 * console.log(metaString(gguf.metadata, 'general.architecture'), gguf.tensors.length)
 */
export async function readGguf(source: ByteSource): Promise<GgufFile> {
  let prefix = new Uint8Array(0)
  let want = Math.min(source.size, INITIAL_PREFIX)
  const decoded: DecodedArrays = new Map()
  for (;;) {
    if (want > prefix.byteLength) {
      const more = await source.read(prefix.byteLength, want - prefix.byteLength)
      if (more.byteLength !== want - prefix.byteLength) {
        throw new ModelFormatError('short read', { file: source.name, offset: prefix.byteLength, expected: `${want - prefix.byteLength} bytes`, found: `${more.byteLength} bytes` })
      }
      const grown = new Uint8Array(want)
      grown.set(prefix)
      grown.set(more, prefix.byteLength)
      prefix = grown
    }
    try {
      return parseHeader(new Cursor(prefix, source.size, source.name, decoded))
    } catch (e) {
      if (!(e instanceof NeedMoreBytes) || e.needed <= prefix.byteLength) throw e
      // Grow 4× at a time: each retry re-parses from the start, so few big steps beat many.
      want = Math.min(source.size, Math.max(e.needed, prefix.byteLength * 4))
    }
  }
}

// ─── Metadata accessors ──────────────────────────────────────────────────────────────────

/** The raw value of `key`, or undefined. */
export function getMeta(meta: GgufMetadata, key: string): GgufValue | undefined {
  return meta.get(key)
}

function describe(v: GgufValue): string {
  return v.type === GgufType.ARRAY ? `ARRAY of ${GgufType[v.itemType]}` : GgufType[v.type]
}

function missing(key: string, file: string | undefined, expected: string): ModelFormatError {
  return new ModelFormatError(`missing metadata key ${key}`, { file, expected, found: 'nothing' })
}

function wrongType(key: string, v: GgufValue, file: string | undefined, expected: string): ModelFormatError {
  return new ModelFormatError(`metadata ${key} has the wrong type`, { file, expected, found: describe(v) })
}

/** A string value, or undefined if absent. @throws ModelFormatError if not a string. */
export function metaStringOpt(meta: GgufMetadata, key: string, file?: string): string | undefined {
  const v = meta.get(key)
  if (v === undefined) return undefined
  if (v.type !== GgufType.STRING) throw wrongType(key, v, file, 'STRING')
  return v.value as string
}

/** A required string value. @throws ModelFormatError if absent or not a string. */
export function metaString(meta: GgufMetadata, key: string, file?: string): string {
  const s = metaStringOpt(meta, key, file)
  if (s === undefined) throw missing(key, file, 'STRING')
  return s
}

const NUMBER_TYPES = new Set([
  GgufType.UINT8, GgufType.INT8, GgufType.UINT16, GgufType.INT16, GgufType.UINT32, GgufType.INT32,
  GgufType.FLOAT32, GgufType.UINT64, GgufType.INT64, GgufType.FLOAT64,
])

/**
 * A numeric value of any integer or float type, or undefined if absent. 64-bit integers are
 * converted when they are safe integers. @throws ModelFormatError otherwise.
 */
export function metaNumberOpt(meta: GgufMetadata, key: string, file?: string): number | undefined {
  const v = meta.get(key)
  if (v === undefined) return undefined
  if (!NUMBER_TYPES.has(v.type)) throw wrongType(key, v, file, 'a number')
  if (typeof v.value === 'bigint') {
    const n = Number(v.value)
    if (!Number.isSafeInteger(n)) throw new ModelFormatError(`metadata ${key} is too large`, { file, expected: '|value| < 2^53', found: String(v.value) })
    return n
  }
  return v.value as number
}

/** A required numeric value (see {@link metaNumberOpt}). */
export function metaNumber(meta: GgufMetadata, key: string, file?: string): number {
  const n = metaNumberOpt(meta, key, file)
  if (n === undefined) throw missing(key, file, 'a number')
  return n
}

/** A bool value, or undefined if absent. @throws ModelFormatError if not a bool. */
export function metaBoolOpt(meta: GgufMetadata, key: string, file?: string): boolean | undefined {
  const v = meta.get(key)
  if (v === undefined) return undefined
  if (v.type !== GgufType.BOOL) throw wrongType(key, v, file, 'BOOL')
  return v.value as boolean
}

/**
 * An array value (with its item type), or undefined if absent.
 * @throws ModelFormatError if not an array.
 * @example const tokens = metaArrayOpt(meta, 'tokenizer.ggml.tokens')?.value as string[] | undefined
 */
export function metaArrayOpt(meta: GgufMetadata, key: string, file?: string): GgufArray | undefined {
  const v = meta.get(key)
  if (v === undefined) return undefined
  if (v.type !== GgufType.ARRAY) throw wrongType(key, v, file, 'ARRAY')
  return v
}

/** A required array value (see {@link metaArrayOpt}). */
export function metaArray(meta: GgufMetadata, key: string, file?: string): GgufArray {
  const a = metaArrayOpt(meta, key, file)
  if (a === undefined) throw missing(key, file, 'ARRAY')
  return a
}
