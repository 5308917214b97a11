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

import { ModelFormatError } from '../errors.js'
import type { TensorContext, TernaryTensor } from './i2s.js'
import { decodeTqBlocks, encodeTqBlocks, type TqBlock } from './tq-blocks.js'

export { BLOCK_ELEMS } from './tq-blocks.js'
/** Bytes per block: qs[64] + fp16 d. */
export const BLOCK_BYTES = 66

/** Element of byte 32c + m, bits 2l: 128c + 32l + m (the diagram above). */
const elementOf = (c: number, m: number, l: number) => 128 * c + 32 * l + m

const TQ2_0_BLOCK: TqBlock = {
  name: 'TQ2_0',
  bytes: BLOCK_BYTES,
  scaleAt: 64,
  decode(bytes, src, codes, dst, at) {
    let anyNonZero = false
    for (let c = 0; c < 2; c++) {
      for (let m = 0; m < 32; m++) {
        const byte = bytes[src + 32 * c + m]
        for (let l = 0; l < 4; l++) {
          const q = (byte >> (2 * l)) & 3
          if (q === 3) {
            throw new ModelFormatError('TQ2_0 code 3 (weight +2) is not ternary', {
              ...at(src + 32 * c + m), expected: 'codes 0..2', found: `byte 0x${byte.toString(16)}`,
            })
          }
          codes[dst + elementOf(c, m, l)] = q - 1
          anyNonZero ||= q !== 1
        }
      }
    }
    return anyNonZero
  },
  encode(codes, src, out, dst) {
    let anyNonZero = false
    for (let c = 0; c < 2; c++) {
      for (let m = 0; m < 32; m++) {
        let byte = 0
        for (let l = 0; l < 4; l++) {
          const code = codes[src + elementOf(c, m, l)]
          byte |= (code + 1) << (2 * l)
          anyNonZero ||= code !== 0
        }
        out[dst + 32 * c + m] = byte
      }
    }
    return anyNonZero
  },
}

/**
 * Decodes a TQ2_0 tensor of `rows` × `cols` into codes and its per-tensor scale.
 * Throws UnsupportedFeatureError if non-zero blocks have different scales.
 */
export const decodeTq2_0 = (bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext): TernaryTensor =>
  decodeTqBlocks(TQ2_0_BLOCK, bytes, rows, cols, ctx)

/** Packs row-major ternary codes into TQ2_0 (d = fp16(scale) in blocks with a non-zero code, else 0). */
export const encodeTq2_0 = (codes: ArrayLike<number>, rows: number, cols: number, scale: number): Uint8Array =>
  encodeTqBlocks(TQ2_0_BLOCK, codes, rows, cols, scale)
