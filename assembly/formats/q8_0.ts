// Q8_0 (ggml type 8) rows → f16 rows, at load: the embedding / output matrix of a file
// quantized with `--token-embedding-type Q8_0`, made into f16 rows the output copies (Q8B,
// Q6B, Q4B) are built from. Each weight is ggml's `dequantize_row_q8_0` value in f32,
// qs · d (exact: 8- × 11-bit mantissas), then rounded to f16 (nearest even), bit for bit what
// src/formats/q8_0.ts then f32ToF16 give.
//
//   block, 32 weights in 34 bytes (k a multiple of 32):
//   ┌─ d (fp16 LE) ─┬────────── qs[32] (int8) ──────────┐
//   0               2                                    34
//   weight i = qs[i] · d
//
//   src u8 [rows][k/32][34]  →  dst u16 [rows][k] (f16 bits)

import { f16ScaleToF32, f32ToF16, storeScaledHalves16 } from '../ops/half'
import { span } from '../ops/split'

// @ts-ignore: decorator
@inline const BLOCK_BYTES: i32 = 34

// Scalar reference of dequantize_rows_q8_0_f16: rows [first, end) of `rows`.
export function dequantize_rows_q8_0_f16_ref(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const range = span(rows, first, end), nb = k >> 5
  for (let b = <i32>(range >> 32) * nb; b < <i32>range * nb; b++) {
    const blk = src + <usize>b * BLOCK_BYTES, y = dst + (<usize>b << 6)
    const d = f16ScaleToF32(load<u16>(blk))
    for (let i = 0; i < 32; i++) store<u16>(y + (<usize>i << 1), f32ToF16(<f32>load<i8>(blk + 2 + <usize>i) * d))
  }
}

/** Rows [first, end) of a Q8_0 matrix [rows][k] as f16 rows (SIMD, a block per step): bit-identical to the _ref. */
export function dequantize_rows_q8_0_f16(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const range = span(rows, first, end), nb = k >> 5
  const z = k >>> 31, signBit = i32x4.splat(z | 0x80000000), one = i32x4.splat(z | 1) // runtime-built constants (see matvec_i2s_i8)
  for (let b = <i32>(range >> 32) * nb; b < <i32>range * nb; b++) {
    const blk = src + <usize>b * BLOCK_BYTES, y = dst + (<usize>b << 6)
    const d = f16ScaleToF32(load<u16>(blk))
    storeScaledHalves16(v128.load(blk, 2), d, 128, y, signBit, one)
    storeScaledHalves16(v128.load(blk, 18), d, 128, y + 32, signBit, one)
  }
}
