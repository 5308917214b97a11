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

import { ModelFormatError } from '../errors.js'
import { checkCodes, type TensorContext, type TernaryTensor } from './i2s.js'
import { BlockScaleCheck, tqElementCount, tqScaleBits } from './tq2_0.js'

/** Weights per block (ggml QK_K). */
export const BLOCK_ELEMS = 256
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

/**
 * Decodes a TQ1_0 tensor of `rows` × `cols` into codes and its per-tensor scale.
 * Throws UnsupportedFeatureError if non-zero blocks have different scales.
 */
export function decodeTq1_0(bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext): TernaryTensor {
  const n = tqElementCount('TQ1_0', rows, cols, 'decode', ctx)
  const blocks = n / BLOCK_ELEMS
  if (bytes.byteLength < blocks * BLOCK_BYTES) {
    throw new ModelFormatError('TQ1_0 tensor is too short', { ...ctx, expected: `${blocks * BLOCK_BYTES} bytes`, found: `${bytes.byteLength} bytes` })
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const codes = new Int8Array(n)
  const scales = new BlockScaleCheck('TQ1_0', ctx)
  for (let b = 0; b < blocks; b++) {
    const src = b * BLOCK_BYTES
    const dst = b * BLOCK_ELEMS
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
    // A block whose d is ±0 holds zero weights whatever its trits say: keep codes·scale exact.
    if (!scales.add(dv.getUint16(src + 52, true), b, BLOCK_BYTES, 52, anyNonZero)) codes.fill(0, dst, dst + BLOCK_ELEMS)
  }
  return { codes, scale: scales.scale }
}

/**
 * Packs row-major ternary codes into TQ1_0. Every block with a non-zero code gets d = fp16(scale);
 * all-zero blocks get d = 0 (their absmax, as ggml's `quantize_row_tq1_0_ref` would write).
 */
export function encodeTq1_0(codes: ArrayLike<number>, rows: number, cols: number, scale: number): Uint8Array {
  const n = tqElementCount('TQ1_0', rows, cols, 'encode')
  checkCodes(codes, n, 'TQ1_0')
  const d = tqScaleBits('TQ1_0', scale)
  const blocks = n / BLOCK_ELEMS
  const out = new Uint8Array(blocks * BLOCK_BYTES)
  const dv = new DataView(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const src = b * BLOCK_ELEMS
    const dst = b * BLOCK_BYTES
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
    dv.setUint16(dst + 52, anyNonZero ? d : 0, true)
  }
  return out
}
