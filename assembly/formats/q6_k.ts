// Q6_K (ggml type 14) rows → f16 rows, at load: bitnet.cpp's 2B4T files made with
// `--token-embedding-type Q6_K` store the tied embedding / output matrix (128256 × 2560) so,
// and the output copies (Q8B, Q6B, Q4B) are made from f16 rows. Each weight is ggml's
// `dequantize_row_q6_K` value in f32, d · scale · (L − 32) in that order (d · scale is exact
// in f32: 11- × 8-bit mantissas, so the one rounding is the product's), then rounded to f16
// (nearest even), bit for bit what src/formats/q6_k.ts then f32ToF16 give.
//
//   super-block, 256 weights in 210 bytes (k a multiple of 256):
//   ┌──── ql[128] ────┬──── qh[64] ────┬─ scales[16] (int8) ─┬─ d (fp16 LE) ─┐
//   0                 128              192                   208             210
//
//   half h = 0, 1 (weights 128h .. 128h+127) reads ql[64h ..], qh[32h ..], scales[8h ..];
//   for l = 0..31 its 6-bit values L (weight i of the half: scale 8h + i/16):
//
//   weight   low 4 bits          high 2 bits
//   l        ql[l]    bits 3:0   qh[l] bits 1:0
//   l + 32   ql[l+32] bits 3:0   qh[l] bits 3:2
//   l + 64   ql[l]    bits 7:4   qh[l] bits 5:4
//   l + 96   ql[l+32] bits 7:4   qh[l] bits 7:6
//
//   src u8 [rows][k/256][210]  →  dst u16 [rows][k] (f16 bits)

import { f16ScaleToF32, f32ToF16, storeScaledHalves16 } from '../ops/half'
import { span } from '../ops/split'

// @ts-ignore: decorator
@inline const BLOCK_BYTES: i32 = 210

// Scalar reference of dequantize_rows_q6_k_f16: rows [first, end) of `rows`.
export function dequantize_rows_q6_k_f16_ref(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const range = span(rows, first, end), nb = k >> 8
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    for (let b = 0; b < nb; b++) {
      const blk = src + <usize>(r * nb + b) * BLOCK_BYTES, y = dst + ((<usize>r * <usize>k + <usize>(b << 8)) << 1)
      const d = f16ScaleToF32(load<u16>(blk + 208))
      for (let i = 0; i < 256; i++) {
        const h = i >> 7, j = (i >> 5) & 3, l = i & 31
        const lo = <i32>load<u8>(blk + <usize>(64 * h + l + 32 * (j & 1))) >> (4 * (j >> 1)) & 15
        const hi = (<i32>load<u8>(blk + <usize>(128 + 32 * h + l)) >> (2 * j)) & 3
        const scale = <f32>load<i8>(blk + <usize>(192 + 8 * h + 2 * j + (l >> 4)))
        store<u16>(y + (<usize>i << 1), f32ToF16(d * scale * <f32>((lo | (hi << 4)) - 32)))
      }
    }
  }
}

/**
 * Rows [first, end) of a Q6_K matrix [rows][k] as f16 rows (SIMD: 16 weights of one scale
 * per step, unpacked with byte ands and shifts, no shuffle): bit-identical to the _ref.
 */
export function dequantize_rows_q6_k_f16(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const range = span(rows, first, end), nb = k >> 8
  // runtime-built constants (see matvec_i2s_i8): z = 0
  const z = k >>> 31, m4 = i8x16.splat(<i8>(z | 15)), m2 = i8x16.splat(<i8>(z | 3)), off = i8x16.splat(<i8>(z | 32))
  const signBit = i32x4.splat(z | 0x80000000), one = i32x4.splat(z | 1)
  let blk = src + <usize>(<i32>(range >> 32) * nb) * BLOCK_BYTES
  let y = dst + ((<usize>(range >> 32) * <usize>k) << 1)
  for (let b = <i32>(range >> 32) * nb; b < <i32>range * nb; b++) {
    const d = f16ScaleToF32(load<u16>(blk + 208))
    for (let h = 0; h < 2; h++) {
      const ql = blk + <usize>(64 * h), qh = blk + <usize>(128 + 32 * h), sc = blk + <usize>(192 + 8 * h)
      for (let c = 0; c < 2; c++) { // l = 16c .. 16c+15
        const a = v128.load(ql + <usize>(16 * c)), bb = v128.load(ql + <usize>(16 * c + 32)), q = v128.load(qh + <usize>(16 * c))
        const yc = y + <usize>((128 * h + 16 * c) << 1)
        weights16(v128.or(v128.and(a, m4), i8x16.shl(v128.and(q, m2), 4)), d * <f32>load<i8>(sc + <usize>c), yc, off, signBit, one)
        weights16(v128.or(v128.and(bb, m4), i8x16.shl(v128.and(i8x16.shr_u(q, 2), m2), 4)), d * <f32>load<i8>(sc + <usize>(2 + c)), yc + 64, off, signBit, one)
        weights16(v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(q, 4), m2), 4)), d * <f32>load<i8>(sc + <usize>(4 + c)), yc + 128, off, signBit, one)
        weights16(v128.or(i8x16.shr_u(bb, 4), i8x16.shl(i8x16.shr_u(q, 6), 4)), d * <f32>load<i8>(sc + <usize>(6 + c)), yc + 192, off, signBit, one)
      }
    }
    blk += BLOCK_BYTES
    y += 512
  }
}

// The 16 values L (bytes) of one scale → 16 halves at y: ds · (L − 32), rounded to f16.
// @ts-ignore: decorator
@inline function weights16(levels: v128, ds: f32, y: usize, off: v128, signBit: v128, one: v128): void {
  storeScaledHalves16(i8x16.sub(levels, off), ds, 32, y, signBit, one)
}
