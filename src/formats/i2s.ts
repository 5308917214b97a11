/**
 * I2_S: bitnet.cpp's per-tensor ternary format (GGUF type id 36 in the BitNet fork).
 * Canonical on-disk layout = the x86 / published-GGUF one, 128 weights in 32 bytes
 * (docs/formats.md#i2_s; the ARM-only 64/16 variant is not supported).
 *
 * ```
 *  code per weight (2 bits):  -1 → 00   0 → 01   +1 → 10   (11 unused, decodes to 0)
 *
 *  flat element e (rows concatenated, e = row·K + col):
 *    block b = e / 128, j = e % 128, group g = j / 32, position p = j % 32
 *
 *  block b (32 bytes):   byte b·32 + p, p = 0..31
 *                        ┌──── 7:6 ────┬──── 5:4 ────┬──── 3:2 ────┬──── 1:0 ────┐
 *                        │ elem  p     │ elem p + 32 │ elem p + 64 │ elem p + 96 │  (MSB-first)
 *                        └─────────────┴─────────────┴─────────────┴─────────────┘
 *  tensor:  ┌─ M·K/4 bytes of blocks ─┬─ f32 scale γ (LE) ─┬─ 28 pad bytes ─┐
 *           0                      M·K/4                M·K/4+4        M·K/4+32
 * ```
 *
 * 2 bits per weight (+ 32 bytes per tensor). Weight = code · γ, γ = the tensor's absmean.
 * The tensor size is M·K/4 + 32: it is NOT blocks × BLOCK_BYTES from type traits (the fork's
 * `ggml_nbytes` special-cases I2_S).
 */

import { InvalidArgumentError, ModelFormatError } from '../errors.js'

/** Weights per packing block. */
export const BLOCK_ELEMS = 128
/** Bytes per packing block. */
export const BLOCK_BYTES = 32
/** Bytes after the packed data: f32 scale + 28 pad bytes. */
export const TRAILER_BYTES = 32

/** Where a tensor came from, for error messages. */
export interface TensorContext {
  file?: string
  /** Absolute file offset of the tensor data. */
  offset?: number
}

/** Decoded per-tensor ternary weights: weight[r][c] = codes[r·cols + c] · scale. */
export interface TernaryTensor {
  /** Row-major codes in {-1, 0, +1}. */
  codes: Int8Array
  scale: number
}

// 2-bit code → weight; code 3 is unused and decodes to 0, as bitnet.cpp's dequantizer does.
const CODE_VALUE = new Int8Array([-1, 0, 1, 0])

function elementCount(rows: number, cols: number, what: string, ctx?: TensorContext): number {
  const n = rows * cols
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || n % BLOCK_ELEMS !== 0) {
    const message = `I2_S ${what}: rows·cols must be a multiple of ${BLOCK_ELEMS}`
    if (what === 'encode') throw new InvalidArgumentError(`${message} (got ${rows}×${cols})`)
    throw new ModelFormatError(message, { ...ctx, expected: `multiple of ${BLOCK_ELEMS}`, found: `${rows}×${cols}` })
  }
  return n
}

/** Byte size of an I2_S tensor with `n` elements: n/4 + 32 (the fork's `ggml_nbytes`). */
export function i2sByteSize(n: number): number {
  return Math.floor(n / 4) + TRAILER_BYTES
}

/**
 * Decodes an I2_S tensor of `rows` × `cols` (cols = ne0 = K) into codes and the scale γ.
 * @example
 * const { codes, scale } = decodeI2s(bytes, 2560, 2560)
 */
export function decodeI2s(bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext): TernaryTensor {
  const n = elementCount(rows, cols, 'decode', ctx)
  const dataBytes = n / 4
  if (bytes.byteLength < dataBytes + TRAILER_BYTES) {
    throw new ModelFormatError('I2_S tensor is too short', {
      ...ctx, expected: `${dataBytes + TRAILER_BYTES} bytes`, found: `${bytes.byteLength} bytes`,
    })
  }
  const scale = new DataView(bytes.buffer, bytes.byteOffset + dataBytes, 4).getFloat32(0, true)
  if (!Number.isFinite(scale)) {
    const offset = ctx?.offset !== undefined ? ctx.offset + dataBytes : undefined
    throw new ModelFormatError('I2_S scale is not finite', { ...ctx, offset, expected: 'a finite f32', found: String(scale) })
  }
  const codes = new Int8Array(n)
  for (let base = 0; base < n; base += BLOCK_ELEMS) {
    const blockByte = base / 4
    for (let p = 0; p < 32; p++) {
      const byte = bytes[blockByte + p]
      codes[base + p] = CODE_VALUE[(byte >> 6) & 3]
      codes[base + p + 32] = CODE_VALUE[(byte >> 4) & 3]
      codes[base + p + 64] = CODE_VALUE[(byte >> 2) & 3]
      codes[base + p + 96] = CODE_VALUE[byte & 3]
    }
  }
  return { codes, scale }
}

/**
 * Packs row-major ternary codes and a scale into a canonical I2_S tensor (M·K/4 + 32 bytes).
 * @example
 * const bytes = encodeI2s(codes, 128, 256, 0.0421)
 */
export function encodeI2s(codes: ArrayLike<number>, rows: number, cols: number, scale: number): Uint8Array {
  const n = elementCount(rows, cols, 'encode')
  checkCodes(codes, n, 'I2_S')
  if (!Number.isFinite(scale)) throw new InvalidArgumentError(`I2_S encode: scale must be finite, got ${scale}`)
  const dataBytes = n / 4
  const out = new Uint8Array(dataBytes + TRAILER_BYTES)
  for (let base = 0; base < n; base += BLOCK_ELEMS) {
    const blockByte = base / 4
    for (let p = 0; p < 32; p++) {
      out[blockByte + p] =
        ((codes[base + p] + 1) << 6) | ((codes[base + p + 32] + 1) << 4) |
        ((codes[base + p + 64] + 1) << 2) | (codes[base + p + 96] + 1)
    }
  }
  new DataView(out.buffer).setFloat32(dataBytes, scale, true) // pad bytes stay 0
  return out
}

/** Throws InvalidArgumentError unless `codes` has `n` entries, all in {-1, 0, +1}. */
export function checkCodes(codes: ArrayLike<number>, n: number, format: string): void {
  if (codes.length !== n) throw new InvalidArgumentError(`${format} encode: expected ${n} codes, got ${codes.length}`)
  for (let i = 0; i < n; i++) {
    const c = codes[i]
    if (c !== -1 && c !== 0 && c !== 1) throw new InvalidArgumentError(`${format} encode: code ${c} at index ${i} is not -1, 0 or +1`)
  }
}
