/**
 * TQ1_0: upstream ggml's base-3 ternary format (type id 34), 256 weights per 54-byte block
 * (1.6875 bits per weight). Layout per ggml-common.h `block_tq1_0` (docs/formats.md#tq1_0).
 *
 * ```
 *  trit per weight: t = w + 1 ∈ {0, 1, 2}
 *
 *  block (54 bytes):  ┌────── qs[48] ──────┬─ qh[4] ─┬─ d (fp16 LE) ─┐
 *                     0                    48        52              54
 *
 *  byte  │ holds block elements (trit n = 0 is the most significant base-3 digit)
 *  ──────┼──────────────────────────────────────────────────────────────────────
 *  qs[m]      m = 0..31 │ x[m + 32n],        n = 0..4   → elements   0..159
 *  qs[32 + m] m = 0..15 │ x[160 + m + 16n],  n = 0..4   → elements 160..239
 *  qh[j]      j = 0..3  │ x[240 + j + 4n],   n = 0..3   → elements 240..255
 *                       │ (value ×3 so the 4 trits fill the top of a 5-trit frame)
 *
 *  stored byte = ceil(q · 256 / 243), q = Σ tₙ · 3^(4−n)   (a base-3 fixed-point fraction)
 *  decode trit n:  ((uint8)(byte · 3ⁿ) · 3) >> 8            (multiply shifts the trit to the top)
 * ```
 *
 * Per-block fp16 d (ggml's `quantize_row_tq1_0_ref`: d = the block's absmax). As for TQ2_0,
 * decoding requires all non-zero blocks to share one d (per-tensor ternary weights).
 */

import type { TensorContext, TernaryTensor } from './i2s.js'
import { decodeTqBlocks, encodeTqBlocks, type TqBlock } from './tq-blocks.js'

export { BLOCK_ELEMS } from './tq-blocks.js'
/** Bytes per block: qs[48] + qh[4] + fp16 d. */
export const BLOCK_BYTES = 54

const POW3 = [1, 3, 9, 27, 81, 243]

/** Trit n (0 = most significant) of a stored TQ1_0 byte, as ggml's dequantizer extracts it. */
function trit(byte: number, n: number): number {
  return (((byte * POW3[n]) & 0xff) * 3) >> 8
}

/** Stores base-3 digits `q` (0..242) as the fixed-point byte ceil(q·256/243). */
function packTrits(q: number): number {
  return Math.floor((q * 256 + 242) / 243)
}

/**
 * Block element index for (byte i of the 52 trit bytes, trit n): the table form of the
 * layout above, shared by encoder and decoder so they cannot disagree.
 */
const ELEMENT_OF = (() => {
  const table: number[][] = []
  for (let m = 0; m < 32; m++) table.push([0, 1, 2, 3, 4].map((n) => m + 32 * n))
  for (let m = 0; m < 16; m++) table.push([0, 1, 2, 3, 4].map((n) => 160 + m + 16 * n))
  for (let j = 0; j < 4; j++) table.push([0, 1, 2, 3].map((n) => 240 + j + 4 * n))
  return table
})()

const TQ1_0_BLOCK: TqBlock = {
  name: 'TQ1_0',
  bytes: BLOCK_BYTES,
  scaleAt: 52,
  decode(bytes, src, codes, dst) {
    let anyNonZero = false
    for (let i = 0; i < 52; i++) {
      const byte = bytes[src + i]
      const elems = ELEMENT_OF[i]
      for (let t = 0; t < elems.length; t++) {
        const code = trit(byte, t) - 1
        codes[dst + elems[t]] = code
        anyNonZero ||= code !== 0
      }
    }
    return anyNonZero
  },
  encode(codes, src, out, dst) {
    let anyNonZero = false
    for (let i = 0; i < 52; i++) {
      const elems = ELEMENT_OF[i]
      let q = 0
      for (let t = 0; t < elems.length; t++) {
        const code = codes[src + elems[t]]
        q = q * 3 + code + 1
        anyNonZero ||= code !== 0
      }
      if (elems.length === 4) q *= 3 // qh: shift the first trit to the most significant position
      out[dst + i] = packTrits(q)
    }
    return anyNonZero
  },
}

/**
 * Decodes a TQ1_0 tensor of `rows` × `cols` into codes and its per-tensor scale.
 * Throws UnsupportedFeatureError if non-zero blocks have different scales.
 */
export const decodeTq1_0 = (bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext): TernaryTensor =>
  decodeTqBlocks(TQ1_0_BLOCK, bytes, rows, cols, ctx)

/** Packs row-major ternary codes into TQ1_0 (d = fp16(scale) in blocks with a non-zero code, else 0). */
export const encodeTq1_0 = (codes: ArrayLike<number>, rows: number, cols: number, scale: number): Uint8Array =>
  encodeTqBlocks(TQ1_0_BLOCK, codes, rows, cols, scale)
