/**
 * Plain floating-point tensor formats: F32 (ggml type 0), F16 (1), BF16 (30).
 *
 * ```
 *          bit 31  30       23 22                     0
 *   F32    ┌──────┬───────────┬────────────────────────┐   4 bytes, little-endian
 *          │ sign │ exp (8)   │ mantissa (23)          │
 *          └──────┴───────────┴────────────────────────┘
 *          bit 15  14    10 9          0
 *   F16    ┌──────┬────────┬────────────┐                   2 bytes, little-endian, bias 15
 *          │ sign │ exp (5)│ mant (10)  │
 *          └──────┴────────┴────────────┘
 *          bit 15  14      7 6      0
 *   BF16   ┌──────┬─────────┬────────┐                      2 bytes = the top half of an F32
 *          │ sign │ exp (8) │mant (7)│
 *          └──────┴─────────┴────────┘
 * ```
 *
 * Conversions to the narrow formats round to nearest, ties to even (as ggml's
 * `ggml_compute_fp32_to_fp16` / `ggml_compute_fp32_to_bf16` do), handle subnormals, overflow
 * to ±Inf, and keep NaN a (quiet) NaN. Readers accept unaligned `subarray`s: F16/BF16/F32 are
 * read through a DataView unless the view happens to be aligned.
 */

import { InvalidArgumentError } from '../errors.js'

/** Elements per block: plain formats are not blocked. */
export const BLOCK_ELEMS = 1
/** Bytes per element of each plain format. */
export const BLOCK_BYTES = { F32: 4, F16: 2, BF16: 2 } as const

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

// Scratch views for bit casts between f32 and u32.
const f32Scratch = new Float32Array(1)
const u32Scratch = new Uint32Array(f32Scratch.buffer)

/**
 * Converts IEEE binary16 bits to a number (exact).
 * @example f16ToF32(0x3c00) // 1
 */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24 // zero or subnormal
  if (exp === 0x1f) return mant ? NaN : sign * Infinity
  return sign * (0x400 + mant) * 2 ** (exp - 25)
}

/**
 * Converts a number to IEEE binary16 bits, rounding (via f32) to nearest even.
 * The value is first rounded to f32, matching C code that converts a `float`.
 * @example f32ToF16(1) // 0x3c00
 */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x
  const bits = u32Scratch[0]
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff
  let mant = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0) // Inf, quiet NaN
  const e = exp - 127 + 15 // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00 // overflow → Inf
  if (e <= 0) {
    // Subnormal half (or zero): value / 2^-24 = mant24 · 2^(e-14); drop (14 - e) bits.
    if (e < -10) return sign // below half of the smallest subnormal → ±0
    mant |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    const rem = mant & ((1 << shift) - 1)
    let h = mant >>> shift
    if (rem > half || (rem === half && h & 1)) h++ // may carry into the smallest normal: correct
    return sign | h
  }
  let h = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++ // a carry out of the mantissa bumps the exponent (→ Inf at the top)
  return sign | h
}

/** Converts bfloat16 bits to a number (exact). */
export function bf16ToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16
  return f32Scratch[0]
}

/** Converts a number to bfloat16 bits (round to nearest even via f32; NaN stays a quiet NaN). */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x
  const bits = u32Scratch[0]
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40 // NaN: keep sign, force quiet
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff
}

// All 65536 f16 values, built on first use: dequantizing a 16M-element embedding through a
// table is several times faster than the arithmetic path.
let f16Table: Float32Array | undefined
function getF16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536)
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h)
  }
  return f16Table
}

/** Views `bytes` as little-endian u16s (copying only if unaligned or on a big-endian host). */
function u16View(bytes: Uint8Array, n: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0 && LITTLE_ENDIAN) return new Uint16Array(bytes.buffer, bytes.byteOffset, n)
  const out = new Uint16Array(n)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2)
  for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true)
  return out
}

function checkLength(bytes: Uint8Array, n: number, elemBytes: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || bytes.byteLength < n * elemBytes) {
    throw new InvalidArgumentError(`${what}: need ${n * elemBytes} bytes for ${n} elements, got ${bytes.byteLength}`)
  }
}

/** Decodes `n` little-endian F16 values. */
export function dequantizeF16(bytes: Uint8Array, n: number): Float32Array {
  checkLength(bytes, n, 2, 'F16')
  const table = getF16Table()
  const src = u16View(bytes, n)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = table[src[i]]
  return out
}

/** Decodes `n` little-endian BF16 values. */
export function dequantizeBf16(bytes: Uint8Array, n: number): Float32Array {
  checkLength(bytes, n, 2, 'BF16')
  const src = u16View(bytes, n)
  const out = new Float32Array(n)
  const outBits = new Uint32Array(out.buffer)
  for (let i = 0; i < n; i++) outBits[i] = src[i] << 16 // bf16 is the top half of an f32
  return out
}

/** Decodes `n` little-endian F32 values (always a copy). */
export function dequantizeF32(bytes: Uint8Array, n: number): Float32Array {
  checkLength(bytes, n, 4, 'F32')
  if (bytes.byteOffset % 4 === 0 && LITTLE_ENDIAN) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + n * 4))
  const out = new Float32Array(n)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 4)
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true)
  return out
}

/** Encodes values as little-endian F16 (round to nearest even). */
export function quantizeF16(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length * 2)
  const dv = new DataView(out.buffer)
  for (let i = 0; i < x.length; i++) dv.setUint16(i * 2, f32ToF16(x[i]), true)
  return out
}

/** Encodes values as little-endian BF16 (round to nearest even). */
export function quantizeBf16(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length * 2)
  const dv = new DataView(out.buffer)
  for (let i = 0; i < x.length; i++) dv.setUint16(i * 2, f32ToBf16(x[i]), true)
  return out
}

/** Encodes values as little-endian F32. */
export function quantizeF32(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length * 4)
  const dv = new DataView(out.buffer)
  for (let i = 0; i < x.length; i++) dv.setFloat32(i * 4, x[i], true)
  return out
}
