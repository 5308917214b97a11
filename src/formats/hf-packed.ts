/**
 * Hugging Face packed ternary weights (2B4T `model.safetensors`, Falcon3-1.58bit,
 * Llama3-8B-1.58; transformers `integrations/bitnet.py`): U8 tensor [out/4, in]
 * (docs/formats.md#hugging-face-folders).
 *
 * ```
 *  packed row r (0 ≤ r < out/4), column c:  byte = f3 << 6 | f2 << 4 | f1 << 2 | f0
 *  field f_i (bits 2i+1:2i, LSB first) = code of weight row i·(out/4) + r, column c
 *  code = w + 1 ∈ {0, 1, 2}   (3 is invalid)
 * ```
 * Row-blocked, not interleaved along K (unlike I2_S). The scale is a separate
 * `weight_scale` tensor: a multiplier for `autobitlinear` checkpoints (2B4T), a divisor for
 * `bitlinear` ones (Falcon3 etc.); the caller passes the multiplier.
 */
import { ModelFormatError } from '../errors.js'
import type { TensorContext, TernaryTensor } from './i2s.js'

/**
 * Decodes a packed [rows/4, cols] U8 tensor into row-major codes of rows × cols.
 * @example const { codes } = decodeHfPacked(bytes, 2560, 2560, 1.25)
 */
export function decodeHfPacked(bytes: Uint8Array, rows: number, cols: number, scale: number, ctx?: TensorContext): TernaryTensor {
  const q = rows / 4
  if (!Number.isInteger(q) || bytes.byteLength < q * cols) {
    throw new ModelFormatError('packed ternary tensor has the wrong size', { ...ctx, expected: `${rows}/4 × ${cols} bytes`, found: `${bytes.byteLength} bytes` })
  }
  const codes = new Int8Array(rows * cols)
  for (let r = 0; r < q; r++) {
    for (let c = 0; c < cols; c++) {
      const b = bytes[r * cols + c]
      for (let i = 0; i < 4; i++) {
        const f = (b >> (2 * i)) & 3
        if (f === 3) {
          throw new ModelFormatError('packed ternary code 3 is not a weight', {
            ...ctx, offset: ctx?.offset !== undefined ? ctx.offset + r * cols + c : undefined, expected: 'codes 0..2', found: `byte 0x${b.toString(16)}`,
          })
        }
        codes[(i * q + r) * cols + c] = f - 1
      }
    }
  }
  return { codes, scale }
}
