// Q8B: the 8-bit copy of the output projection (the tied embedding, 128256 × 2560 in
// 2B4T), made at load. Half the bytes of F16 per token (the projection is the largest
// single read of a decode step, spec §0.3) and an exact integer inner loop.
//
//   weights  int8 [rows][KP]           KP = K padded to 128 (zeros)
//   wscale   f32  [rows][KP/128]       per 128-block: max|w| / 127
//   x        i16  [KP]                 activations quantized per 128-block to −127..127,
//   xscale   f32  [KP/128]             kept widened to i16 (the dot instruction's type)
//
//   y[r] = Σ_b wscale[r][b] · xscale[b] · Σ_{i∈b} w[r][i]·x[i]      (block dots exact in i32)
//
// Blocks of 128 like ggml's Q8_0 × Q8_0 (blocks of 32; PPL cost +0.06 % on 2B4T, spec
// §3.1): per-block activation scales keep the error far below per-token scaling.

import { f16ToF32 } from '../ops/half'
import { share } from '../ops/split'

// @ts-ignore: decorator
@inline const BLOCK: i32 = 128

/**
 * Quantizes x[0..n) per 128-block into xq (i16, zero beyond n up to kp) and xs (f32 per
 * block): s_b = max|x_b|/127, q = RNE(x/s_b) computed in f64.
 */
export function quantize_blocks_f32_i16(x: usize, n: i32, kp: i32, xq: usize, xs: usize): void {
  for (let b = 0; b < kp / BLOCK; b++) {
    const i0 = b * BLOCK, i1 = min(n, i0 + BLOCK)
    let amax: f64 = 0
    for (let i = i0; i < i1; i++) amax = max(amax, <f64>abs(load<f32>(x + (<usize>i << 2))))
    const d = amax / 127
    const inv: f64 = d > 0 ? 1 / d : 0
    for (let i = i0; i < i0 + BLOCK; i++) {
      const v = i < i1 ? <i16>nearest<f64>(<f64>load<f32>(x + (<usize>i << 2)) * inv) : <i16>0
      store<i16>(xq + (<usize>i << 1), v)
    }
    store<f32>(xs + (<usize>b << 2), <f32>d)
  }
}

/** Scalar reference of matvec_q8b_i16. */
export function matvec_q8b_i16_ref(w: usize, ws: usize, xq: usize, xs: usize, y: usize,
                                   rows: i32, kp: i32, ith: i32, nth: i32): void {
  const nb = kp / BLOCK
  const range = share(rows, ith, nth)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    let acc: f32 = 0
    for (let b = 0; b < nb; b++) {
      let dot = 0
      for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
        dot += <i32>load<i8>(w + <usize>r * kp + i) * <i32>load<i16>(xq + (<usize>i << 1))
      }
      acc += load<f32>(ws + ((<usize>r * nb + b) << 2)) * load<f32>(xs + (<usize>b << 2)) * <f32>dot
    }
    store<f32>(y + (<usize>r << 2), acc)
  }
}

/**
 * SIMD kernel: `i32x4.dot_i16x8_s` on sign-extended weights, 4 rows per pass sharing every
 * activation load; the 4 block dots are reduced together (one transpose, not 4 horizontal
 * sums) and scaled as one f32x4, in the _ref's order: bit-exact with it.
 */
export function matvec_q8b_i16(w: usize, ws: usize, xq: usize, xs: usize, y: usize,
                               rows: i32, kp: i32, ith: i32, nth: i32): void {
  const nb = kp / BLOCK
  const range = share(rows, ith, nth)
  const r1 = <i32>range
  let r = <i32>(range >> 32)
  for (; r + 4 <= r1; r += 4) {
    let acc = f32x4.splat(0)
    const w0 = w + <usize>r * kp, w1 = w0 + kp, w2 = w1 + kp, w3 = w2 + kp
    const s0 = ws + ((<usize>r * nb) << 2), sstride = <usize>nb << 2
    for (let b = 0; b < nb; b++) {
      let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0
      const o = <usize>(b * BLOCK)
      for (let j: usize = 0; j < <usize>BLOCK; j += 16) {
        const xl = v128.load(xq + ((o + j) << 1)), xh = v128.load(xq + ((o + j) << 1), 16)
        let v = v128.load(w0 + o + j)
        d0 = i32x4.add(d0, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh)))
        v = v128.load(w1 + o + j)
        d1 = i32x4.add(d1, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh)))
        v = v128.load(w2 + o + j)
        d2 = i32x4.add(d2, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh)))
        v = v128.load(w3 + o + j)
        d3 = i32x4.add(d3, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh)))
      }
      // [Σd0, Σd1, Σd2, Σd3]: pairwise sums of lanes, then of pairs (exact integer adds)
      const t0 = i32x4.add(i32x4.shuffle(d0, d1, 0, 1, 4, 5), i32x4.shuffle(d0, d1, 2, 3, 6, 7))
      const t1 = i32x4.add(i32x4.shuffle(d2, d3, 0, 1, 4, 5), i32x4.shuffle(d2, d3, 2, 3, 6, 7))
      const dots = i32x4.add(i32x4.shuffle(t0, t1, 0, 2, 4, 6), i32x4.shuffle(t0, t1, 1, 3, 5, 7))
      const sb = s0 + (<usize>b << 2)
      let sc = f32x4.splat(load<f32>(sb))
      sc = f32x4.replace_lane(sc, 1, load<f32>(sb + sstride))
      sc = f32x4.replace_lane(sc, 2, load<f32>(sb + 2 * sstride))
      sc = f32x4.replace_lane(sc, 3, load<f32>(sb + 3 * sstride))
      // acc += (ws · xs) · dot, per row
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(sc, f32x4.splat(load<f32>(xs + (<usize>b << 2)))), f32x4.convert_i32x4_s(dots)))
    }
    v128.store(y + (<usize>r << 2), acc)
  }
  for (; r < r1; r++) { // the last < 4 rows of this share
    let acc: f32 = 0
    const wr = w + <usize>r * kp
    for (let b = 0; b < nb; b++) {
      let d = i32x4.splat(0)
      const o = <usize>(b * BLOCK)
      for (let j: usize = 0; j < <usize>BLOCK; j += 16) {
        const v = v128.load(wr + o + j)
        d = i32x4.add(d, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), v128.load(xq + ((o + j) << 1))))
        d = i32x4.add(d, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), v128.load(xq + ((o + j) << 1), 16)))
      }
      const dot = i32x4.extract_lane(d, 0) + i32x4.extract_lane(d, 1) + i32x4.extract_lane(d, 2) + i32x4.extract_lane(d, 3)
      acc += load<f32>(ws + ((<usize>r * nb + b) << 2)) * load<f32>(xs + (<usize>b << 2)) * <f32>dot
    }
    store<f32>(y + (<usize>r << 2), acc)
  }
}

/**
 * Builds the Q8B copy from an F16 matrix [rows][k] already in memory (rows split across
 * threads: this runs once at load, over 328 M weights for 2B4T).
 */
export function quantize_rows_f16_q8b(src: usize, rows: i32, k: i32, kp: i32, w: usize, ws: usize, ith: i32, nth: i32): void {
  const nb = kp / BLOCK
  const range = share(rows, ith, nth)
  for (let r = <i32>(range >> 32); r < <i32>range; r++) {
    const row = src + (<usize>r * k << 1)
    for (let b = 0; b < nb; b++) {
      const i0 = b * BLOCK, i1 = min(k, i0 + BLOCK)
      let amax: f32 = 0
      for (let i = i0; i < i1; i++) amax = max(amax, abs(f16ToF32(load<u16>(row + (<usize>i << 1)))))
      const d = amax / 127
      const inv: f32 = d > 0 ? 1 / d : 0
      for (let i = i0; i < i0 + BLOCK; i++) {
        const v = i < i1 ? <i8>nearest<f32>(f16ToF32(load<u16>(row + (<usize>i << 1))) * inv) : <i8>0
        store<i8>(w + <usize>r * kp + i, v)
      }
      store<f32>(ws + ((<usize>r * nb + b) << 2), d)
    }
  }
}

/** dst[0..n) = row r of the Q8B matrix, dequantized (embedding lookup from the copy). */
export function dequantize_row_q8b(w: usize, ws: usize, r: i32, n: i32, kp: i32, dst: usize): void {
  const nb = kp / BLOCK
  for (let i = 0; i < n; i++) {
    const d = load<f32>(ws + ((<usize>r * nb + i / BLOCK) << 2))
    store<f32>(dst + (<usize>i << 2), d * <f32>load<i8>(w + <usize>r * kp + i))
  }
}
