/**
 * Q8_0: ggml's 8-bit block format (type id 8), 32 weights per 34-byte block (8.5 bits per
 * weight). Layout per ggml-common.h `block_q8_0`. Used here for the output projection
 * (a smaller copy of the tied F16 embedding, docs/formats.md#q8_0).
 *
 * ```
 *  block (34 bytes):  ┌─ d (fp16 LE) ─┬────────── qs[32] (int8) ──────────┐
 *                     0               2                                    34
 *  weight i = qs[i] · d,   d = absmax / 127
 * ```
 */

import { blockCount } from './block-count.js'
import { f16ToF32, f32ToF16 } from './float.js'

/** Weights per block (ggml QK8_0). */
export const BLOCK_ELEMS = 32
/** Bytes per block: fp16 d + 32 int8. */
export const BLOCK_BYTES = 34

/** Decodes `n` Q8_0 weights (exactly as ggml's `dequantize_row_q8_0`). */
export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  const blocks = blockCount('Q8_0', 'dequantize', n, BLOCK_ELEMS, { byteLength: bytes.byteLength, blockBytes: BLOCK_BYTES })
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Float32Array(n)
  for (let b = 0; b < blocks; b++) {
    const src = b * BLOCK_BYTES
    const d = f16ToF32(dv.getUint16(src, true))
    for (let j = 0; j < BLOCK_ELEMS; j++) out[b * BLOCK_ELEMS + j] = dv.getInt8(src + 2 + j) * d
  }
  return out
}

/**
 * Quantizes to Q8_0 (a port of the arithmetic of ggml's `quantize_row_q8_0_ref`: f32 math,
 * d = absmax/127, q = roundf(x/d) with ties away from zero).
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const blocks = blockCount('Q8_0', 'quantize', x.length, BLOCK_ELEMS)
  const out = new Uint8Array(blocks * BLOCK_BYTES)
  const dv = new DataView(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const base = b * BLOCK_ELEMS
    let amax = 0
    for (let j = 0; j < BLOCK_ELEMS; j++) amax = Math.max(amax, Math.abs(x[base + j]))
    const d = Math.fround(amax / 127)
    const id = d ? Math.fround(1 / d) : 0
    dv.setUint16(b * BLOCK_BYTES, f32ToF16(d), true)
    for (let j = 0; j < BLOCK_ELEMS; j++) {
      const v = Math.fround(x[base + j] * id)
      dv.setInt8(b * BLOCK_BYTES + 2 + j, Math.sign(v) * Math.round(Math.abs(v))) // roundf: half away from zero
    }
  }
  return out
}
