/**
 * safetensors reader: the header only (tensor data is read later through the ByteSource).
 *
 * ```
 *  ┌ u64 LE N ┬ N bytes: UTF-8 JSON header (may end in spaces) ┬ tensor data ┐
 *  0          8                                                  8 + N
 *  header: { "<name>": { "dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end] },
 *            …, "__metadata__": { "<key>": "<string>" } }
 *  data_offsets are relative to the data start 8 + N; end − begin = Π shape · dtype size.
 * ```
 * Every field is checked (header inside the file and ≤ 100 MB as the format caps it, known
 * dtypes, integral shapes, offsets inside the data and consistent with shape × dtype) before
 * anything is allocated; a bad file gives a ModelFormatError naming file, offset, expected, found.
 */
import { ModelFormatError } from '../errors.js'
import type { ByteSource } from '../io/source.js'

/** Bytes per element of each safetensors dtype. */
export const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
}

/** The format's own cap on the header size. */
export const MAX_HEADER_BYTES = 100_000_000

export interface SafetensorsTensor {
  name: string
  dtype: string
  /** As stored: outermost dimension first (PyTorch order). */
  shape: number[]
  /** Absolute file offset of the data. */
  offset: number
  byteSize: number
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>
  metadata: Record<string, string>
}

/**
 * Reads and validates the header of a safetensors file.
 * @example
 * const st = await readSafetensors(await fileSource('model.safetensors'))
 * st.tensors.get('model.embed_tokens.weight') // { dtype: 'BF16', shape: [128256, 2560], … }
 */
export async function readSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name
  const head = await source.read(0, 8)
  if (head.byteLength < 8) throw new ModelFormatError('file too short for a safetensors header', { file, offset: 0, expected: '≥ 8 bytes', found: `${source.size} bytes` })
  const n = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true))
  if (n < 2 || n > MAX_HEADER_BYTES || 8 + n > source.size) {
    throw new ModelFormatError('bad safetensors header length', { file, offset: 0, expected: `2..${Math.min(MAX_HEADER_BYTES, source.size - 8)}`, found: String(n) })
  }
  const bytes = await source.read(8, n)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (e) {
    throw new ModelFormatError(`safetensors header is not valid JSON: ${(e as Error).message}`, { file, offset: 8 })
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ModelFormatError('safetensors header must be a JSON object', { file, offset: 8 })
  const dataStart = 8 + n
  const dataSize = source.size - dataStart
  const tensors = new Map<string, SafetensorsTensor>()
  let metadata: Record<string, string> = {}
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (v && typeof v === 'object' ? v : {}) as Record<string, string>
      continue
    }
    const bad = (expected: string, found: unknown): never => {
      throw new ModelFormatError(`safetensors tensor '${name}' has a bad entry`, { file, offset: 8, expected, found: JSON.stringify(found)?.slice(0, 100) })
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (!e || typeof e !== 'object') bad('an object', v)
    const size = typeof e.dtype === 'string' ? DTYPE_BYTES[e.dtype] : undefined
    if (size === undefined) bad(`dtype one of ${Object.keys(DTYPE_BYTES).join(', ')}`, e.dtype)
    const shape = e.shape
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad('shape: up to 8 non-negative integers', shape)
    const off = e.data_offsets
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1] || off[1] > dataSize) {
      bad(`data_offsets [begin, end] with begin ≤ end ≤ ${dataSize}`, off)
    }
    const [begin, end] = off as number[]
    const elements = (shape as number[]).reduce((a, b) => a * b, 1)
    if (elements * size! !== end - begin) bad(`${elements} × ${size} bytes for shape [${(shape as number[]).join(', ')}]`, off)
    tensors.set(name, { name, dtype: e.dtype as string, shape: shape as number[], offset: dataStart + begin, byteSize: end - begin })
  }
  return { tensors, metadata }
}
