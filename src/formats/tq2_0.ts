/**
 * TQ2_0: upstream ggml's 2-bit ternary format (type id 35), 256 weights per 66-byte block
 * (2.0625 bits per weight). Layout per ggml-common.h `block_tq2_0` (docs/formats.md#tq2_0).
 *
 * ```
 *  code per weight: q = w + 1 ∈ {0, 1, 2}  (-1 → 00, 0 → 01, +1 → 10; 11 would be +2: rejected)
 *
 *  block (66 bytes):  ┌──────────── qs[64] ────────────┬── d (fp16 LE) ──┐
 *                     0                                64                66
 *  qs = two 32-byte chunks c = 0, 1; chunk c covers block elements 128c .. 128c + 127:
 *    byte 32c + m, m = 0..31
 *    ┌──── 7:6 ────┬──── 5:4 ────┬──── 3:2 ────┬──── 1:0 ────┐
 *    │ elem m + 96 │ elem m + 64 │ elem m + 32 │ elem  m     │   (+128c; LSB-first)
 *    └─────────────┴─────────────┴─────────────┴─────────────┘
 * ```
 *
 * Same codes and interleave as I2_S but LSB-first and with a per-block fp16 scale d (ggml's
 * `quantize_row_tq2_0_ref` sets d = the block's absmax). This engine models per-tensor ternary
 * weights, so decoding requires every non-zero block to carry the same d.
 */

import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { f16ToF32, f32ToF16 } from './float.js'
import { checkCodes, type TensorContext, type TernaryTensor } from './i2s.js'

/** Weights per block (ggml QK_K). */
export const BLOCK_ELEMS = 256
/** Bytes per block: qs[64] + fp16 d. */
export const BLOCK_BYTES = 66

/**
 * Tracks the per-block fp16 scales of a ternary tensor and returns the common one.
 * A block counts only if it decodes to something non-zero (some code ≠ 0 and d ≠ ±0).
 * Shared by TQ1_0 and TQ2_0.
 */
export class BlockScaleCheck {
  private common = -1
  constructor(private readonly format: string, private readonly ctx?: TensorContext) {}

  /** Records block `block`'s fp16 bits `d`; returns false if the block is effectively zero. */
  add(d: number, block: number, blockBytes: number, dOffset: number, anyNonZero: boolean): boolean {
    const offset = this.ctx?.offset !== undefined ? this.ctx.offset + block * blockBytes + dOffset : undefined
    if ((d & 0x7c00) === 0x7c00) {
      throw new ModelFormatError(`${this.format} block ${block} scale is not finite`, {
        ...this.ctx, offset, expected: 'a finite fp16', found: `0x${d.toString(16)}`,
      })
    }
    if (!anyNonZero || (d & 0x7fff) === 0) return false
    if (this.common === -1) this.common = d
    else if (this.common !== d) {
      throw new UnsupportedFeatureError(
        `${this.format}${this.ctx?.file ? ` in ${this.ctx.file}` : ''}: per-block scales vary: not a per-tensor ternary tensor ` +
        `(block ${block}${offset !== undefined ? ` @ offset ${offset}` : ''} has d = ${f16ToF32(d)}, earlier blocks ${f16ToF32(this.common)})`,
      )
    }
    return true
  }

  /** The common scale (0 if every block was zero). */
  get scale(): number {
    return this.common === -1 ? 0 : f16ToF32(this.common)
  }
}

/** Validates a TQ shape: cols (= ne0) must be a multiple of 256, as ggml requires for blocked types. */
export function tqElementCount(format: string, rows: number, cols: number, what: 'encode' | 'decode', ctx?: TensorContext): number {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || cols % 256 !== 0) {
    const message = `${format} ${what}: cols (ne0) must be a multiple of 256`
    if (what === 'encode') throw new InvalidArgumentError(`${message} (got ${rows}×${cols})`)
    throw new ModelFormatError(message, { ...ctx, expected: 'multiple of 256', found: `${rows}×${cols}` })
  }
  return rows * cols
}

/** fp16 bits of the per-block scale an encoder writes; rejects scales fp16 cannot hold. */
export function tqScaleBits(format: string, scale: number): number {
  const d = f32ToF16(scale)
  if (!Number.isFinite(scale) || (d & 0x7c00) === 0x7c00) {
    throw new InvalidArgumentError(`${format} encode: scale ${scale} is not representable as a finite fp16`)
  }
  return d
}

/**
 * Decodes a TQ2_0 tensor of `rows` × `cols` into codes and its per-tensor scale.
 * Throws UnsupportedFeatureError if non-zero blocks have different scales.
 */
export function decodeTq2_0(bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext): TernaryTensor {
  const n = tqElementCount('TQ2_0', rows, cols, 'decode', ctx)
  const blocks = n / BLOCK_ELEMS
  if (bytes.byteLength < blocks * BLOCK_BYTES) {
    throw new ModelFormatError('TQ2_0 tensor is too short', { ...ctx, expected: `${blocks * BLOCK_BYTES} bytes`, found: `${bytes.byteLength} bytes` })
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const codes = new Int8Array(n)
  const scales = new BlockScaleCheck('TQ2_0', ctx)
  for (let b = 0; b < blocks; b++) {
    const src = b * BLOCK_BYTES
    const dst = b * BLOCK_ELEMS
    let anyNonZero = false
    for (let c = 0; c < 2; c++) {
      for (let m = 0; m < 32; m++) {
        const byte = bytes[src + 32 * c + m]
        for (let l = 0; l < 4; l++) {
          const q = (byte >> (2 * l)) & 3
          if (q === 3) {
            throw new ModelFormatError('TQ2_0 code 3 (weight +2) is not ternary', {
              ...ctx, offset: ctx?.offset !== undefined ? ctx.offset + src + 32 * c + m : undefined,
              expected: 'codes 0..2', found: `byte 0x${byte.toString(16)}`,
            })
          }
          codes[dst + 128 * c + 32 * l + m] = q - 1
          anyNonZero ||= q !== 1
        }
      }
    }
    // A block whose d is ±0 holds zero weights whatever its codes say: keep codes·scale exact.
    if (!scales.add(dv.getUint16(src + 64, true), b, BLOCK_BYTES, 64, anyNonZero)) codes.fill(0, dst, dst + BLOCK_ELEMS)
  }
  return { codes, scale: scales.scale }
}

/**
 * Packs row-major ternary codes into TQ2_0. Every block with a non-zero code gets d = fp16(scale);
 * all-zero blocks get d = 0 (their absmax, as ggml's `quantize_row_tq2_0_ref` would write).
 */
export function encodeTq2_0(codes: ArrayLike<number>, rows: number, cols: number, scale: number): Uint8Array {
  const n = tqElementCount('TQ2_0', rows, cols, 'encode')
  checkCodes(codes, n, 'TQ2_0')
  const d = tqScaleBits('TQ2_0', scale)
  const blocks = n / BLOCK_ELEMS
  const out = new Uint8Array(blocks * BLOCK_BYTES)
  const dv = new DataView(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const src = b * BLOCK_ELEMS
    const dst = b * BLOCK_BYTES
    let anyNonZero = false
    for (let c = 0; c < 2; c++) {
      for (let m = 0; m < 32; m++) {
        let byte = 0
        for (let l = 0; l < 4; l++) {
          const code = codes[src + 128 * c + 32 * l + m]
          byte |= (code + 1) << (2 * l)
          anyNonZero ||= code !== 0
        }
        out[dst + 32 * c + m] = byte
      }
    }
    dv.setUint16(dst + 64, anyNonZero ? d : 0, true)
  }
  return out
}
