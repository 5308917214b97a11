/**
 * Q6_K: ggml's 6-bit k-quant (type id 14), 256 weights per 210-byte super-block (6.5625 bits
 * per weight). Layout per ggml-common.h `block_q6_K`; bitnet.cpp's Jan-2026 models use it for
 * the tied output projection (docs/formats.md#q6_k).
 *
 * ```
 *  super-block (210 bytes):
 *  ┌──── ql[128] ────┬──── qh[64] ────┬─ scales[16] (int8) ─┬─ d (fp16 LE) ─┐
 *  0                 128              192                   208             210
 *
 *  6-bit value L ∈ 0..63, weight = d · scales[s] · (L − 32), s = element / 16.
 *  Each half h = 0, 1 (elements 128h .. 128h+127) uses ql[64h ..], qh[32h ..], scales[8h ..];
 *  for l = 0..31 (element offsets within the half):
 *
 *           low 4 bits of L                    high 2 bits of L
 *   l      ql[l] bits 3:0   ql[l] = ─┐         qh[l] bits 1:0
 *   l + 32 ql[l+32] 3:0              │         qh[l] bits 3:2
 *   l + 64 ql[l] bits 7:4   ─────────┘         qh[l] bits 5:4
 *   l + 96 ql[l+32] 7:4                        qh[l] bits 7:6
 * ```
 */

import { blockCount } from './block-count.js'
import { f16ToF32, f32ToF16 } from './float.js'

/** Weights per super-block (ggml QK_K). */
export const BLOCK_ELEMS = 256
/** Bytes per super-block: ql[128] + qh[64] + scales[16] + fp16 d. */
export const BLOCK_BYTES = 210

/** Decodes `n` Q6_K weights (bit-exact with ggml's `dequantize_row_q6_K`). */
export function dequantizeQ6_K(bytes: Uint8Array, n: number): Float32Array {
  const blocks = blockCount('Q6_K', 'dequantize', n, BLOCK_ELEMS, { byteLength: bytes.byteLength, blockBytes: BLOCK_BYTES })
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Float32Array(n)
  for (let b = 0; b < blocks; b++) {
    const blk = b * BLOCK_BYTES
    const d = f16ToF32(dv.getUint16(blk + 208, true))
    for (let h = 0; h < 2; h++) {
      const ql = blk + 64 * h
      const qh = blk + 128 + 32 * h
      const sc = blk + 192 + 8 * h
      const y = b * BLOCK_ELEMS + 128 * h
      for (let l = 0; l < 32; l++) {
        const is = sc + (l >> 4)
        const lo0 = bytes[ql + l]
        const lo1 = bytes[ql + l + 32]
        const hi = bytes[qh + l]
        // Same evaluation order as ggml, (d·scale)·q: d·scale is exact in f32 (11- × 8-bit
        // mantissas) and the double product is exact, so the one rounding on store matches.
        out[y + l] = d * dv.getInt8(is) * (((lo0 & 0xf) | ((hi & 3) << 4)) - 32)
        out[y + l + 32] = d * dv.getInt8(is + 2) * (((lo1 & 0xf) | (((hi >> 2) & 3) << 4)) - 32)
        out[y + l + 64] = d * dv.getInt8(is + 4) * (((lo0 >> 4) | (((hi >> 4) & 3) << 4)) - 32)
        out[y + l + 96] = d * dv.getInt8(is + 6) * (((lo1 >> 4) | (((hi >> 6) & 3) << 4)) - 32)
      }
    }
  }
  return out
}

/** Round half to even (ggml's `nearest_int`). */
function nearestInt(x: number): number {
  const r = Math.round(x)
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/**
 * Best scale for one 16-element sub-block with 6-bit signed levels −32..31: tries a few
 * inverse scales around −32/max (max = the signed value of largest magnitude, so it maps to
 * −32, the end with room) and keeps the least-squares scale with the smallest error, in the
 * spirit of ggml's `make_qx_quants`.
 */
function subBlockScale(x: Float32Array, base: number): number {
  let max = 0
  for (let i = 0; i < 16; i++) if (Math.abs(x[base + i]) > Math.abs(max)) max = x[base + i]
  if (Math.abs(max) < 1e-30) return 0
  let bestScale = 0
  let bestGain = -1 // Σxl²/Σl² = the error reduction of the least-squares scale
  for (let step = -9; step <= 9; step++) {
    const iscale = -(32 + 0.1 * step) / max
    let sumlx = 0
    let suml2 = 0
    for (let i = 0; i < 16; i++) {
      const l = Math.max(-32, Math.min(31, nearestInt(iscale * x[base + i])))
      sumlx += x[base + i] * l
      suml2 += l * l
    }
    if (suml2 > 0 && (sumlx * sumlx) / suml2 > bestGain) {
      bestGain = (sumlx * sumlx) / suml2
      bestScale = sumlx / suml2
    }
  }
  return bestScale
}

/**
 * Quantizes to Q6_K: a simple reference (per-16 sub-block least-squares scales, 8-bit scale
 * quantization against the largest one, then levels recomputed with the stored scales, as
 * ggml's `quantize_row_q6_K_ref` does). Not bit-identical to ggml's search, but decodable by it.
 */
export function quantizeQ6_K(x: Float32Array): Uint8Array {
  const blocks = blockCount('Q6_K', 'quantize', x.length, BLOCK_ELEMS)
  const out = new Uint8Array(blocks * BLOCK_BYTES)
  const dv = new DataView(out.buffer)
  const scales = new Float64Array(16)
  const levels = new Uint8Array(BLOCK_ELEMS) // L = level + 32 ∈ 0..63
  for (let b = 0; b < blocks; b++) {
    const base = b * BLOCK_ELEMS
    const blk = b * BLOCK_BYTES
    let maxScale = 0
    for (let s = 0; s < 16; s++) {
      scales[s] = subBlockScale(x, base + 16 * s)
      if (Math.abs(scales[s]) > Math.abs(maxScale)) maxScale = scales[s]
    }
    levels.fill(32)
    if (maxScale === 0) {
      // All-zero block: d = 0, scales 0, levels 32 (ql/qh encode 32).
    } else {
      const iscale = -128 / maxScale
      const dBits = f32ToF16(1 / iscale)
      const d = f16ToF32(dBits)
      dv.setUint16(blk + 208, dBits, true)
      for (let s = 0; s < 16; s++) {
        const sc = Math.min(127, nearestInt(iscale * scales[s]))
        dv.setInt8(blk + 192 + s, sc)
        const step = d * sc
        if (step === 0) continue
        for (let i = 0; i < 16; i++) {
          const l = Math.max(-32, Math.min(31, nearestInt(x[base + 16 * s + i] / step)))
          levels[16 * s + i] = l + 32
        }
      }
    }
    // Pack: see the diagram (ql low nibbles l / l+32, high nibbles l+64 / l+96; qh 2 bits each).
    for (let h = 0; h < 2; h++) {
      const L = 128 * h
      for (let l = 0; l < 32; l++) {
        const q1 = levels[L + l], q2 = levels[L + l + 32], q3 = levels[L + l + 64], q4 = levels[L + l + 96]
        out[blk + 64 * h + l] = (q1 & 0xf) | ((q3 & 0xf) << 4)
        out[blk + 64 * h + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4)
        out[blk + 128 + 32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
      }
    }
  }
  return out
}
