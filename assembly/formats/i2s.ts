// I2_S ternary weights × int8 activations: matrix-vector product.
//
// Host-side layout, packing and the on-disk format: src/formats/i2s.ts (canonical
// bitnet.cpp 128/32 layout) and src/formats/i2s-x4.ts (this kernel's "x4" layout).
//
// Kernel layout "i2s_x4" (what this file reads), K padded to KP = ⌈K/128⌉·128 and
// rows padded to ⌈M/4⌉·4; zero-padding columns of the activation make padding free:
//
//   group g (rows 4g..4g+3), KP/128 blocks, each block = 4 × 32 bytes, rows adjacent:
//   ┌──────── block 0 ────────┬──────── block 1 ────────┬ …
//   │ r0[32] r1[32] r2[32] r3[32] │ r0[32] r1[32] r2[32] r3[32] │
//   └─────────────────────────┴─────────────────────────┴ …    group stride = KP bytes
//
//   a 32-byte block holds 128 codes c = w + 1 ∈ {0,1,2}; byte p:
//   ┌─────┬─────┬─────┬─────┐
//   │ 7:6 │ 5:4 │ 3:2 │ 1:0 │   = columns p, p+32, p+64, p+96 of the block
//   └─────┴─────┴─────┴─────┘
//
// Each group of 4 rows is one sequential stream, and the 4 rows share every activation
// load. y[r] = (Σ c·q − Σ q) / s · γ   (docs/architecture.md#bitlinear: dot of codes, minus Σq, over scale).
//
// Arguments shared by both kernels:
//   w     i2s_x4 weights, (M4/4) · KP bytes
//   q     int8 activations [KP] (zero beyond K)
//   meta  activation meta: f32 s (scale = 127/absmax) at +0, i32 Σq at +4
//   gamma per-tensor weight scale
//   y     f32 output [M]
//   rows  M (output rows; rows ≥ M in the padded group are computed but not stored)
//   kp    padded K (multiple of 128)
//   first, end  the 4-row groups [first, end) this call computes (a chunk of the thread pool).

import { span } from '../ops/split'

const BLOCK_ELEMS: i32 = 128 // weights per 32-byte block
const BLOCK_BYTES: i32 = 32

/**
 * Canonical I2_S codes (bitnet.cpp's file: row r's 32-byte block b at (r·K/128 + b)·32, K a
 * multiple of 128) → i2s_x4 at dst: the load-time repack of official files. A canonical
 * block already has the kernel's in-block order, so this moves 32-byte blocks; rows that pad
 * the last group get code 1 (weight 0) everywhere. Items: the 4-row groups [first, end) (a
 * thread-pool round at load: mostly first touches of fresh pages, which threads share).
 */
export function repack_i2s_x4(src: usize, rows: i32, k: i32, dst: usize, first: i32, end: i32): void {
  const nb = k / BLOCK_ELEMS
  const one = i8x16.splat(0x55)
  const range = span((rows + 3) >> 2, first, end)
  for (let r = <i32>(range >> 32) << 2; r < <i32>range << 2; r++) {
    let d = dst + <usize>(r >> 2) * <usize>k + <usize>((r & 3) * BLOCK_BYTES)
    let s = src + <usize>r * <usize>(nb * BLOCK_BYTES)
    for (let b = 0; b < nb; b++) {
      if (r < rows) {
        v128.store(d, v128.load(s))
        v128.store(d, v128.load(s, 16), 16)
      } else {
        v128.store(d, one)
        v128.store(d, one, 16)
      }
      d += 4 * BLOCK_BYTES
      s += BLOCK_BYTES
    }
  }
}

// @ts-ignore: decorator
@inline function storeRow(y: usize, r: i32, rows: i32, dot: i32, sumq: i32, s: f32, gamma: f32): void {
  if (r < rows) store<f32>(y + (<usize>r << 2), <f32>(dot - sumq) / s * gamma)
}

/** Scalar reference: the definition the SIMD kernel must equal bit for bit. */
export function matvec_i2s_i8_ref(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                                  rows: i32, kp: i32, first: i32, end: i32): void {
  const s = load<f32>(meta)
  const sumq = load<i32>(meta, 4)
  const range = span((rows + 3) >> 2, first, end) // 4-row groups
  const nblocks = kp / BLOCK_ELEMS
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    for (let j = 0; j < 4; j++) {
      let dot = 0
      for (let b = 0; b < nblocks; b++) {
        const blk = w + <usize>g * kp + <usize>(b * 4 * BLOCK_BYTES + j * BLOCK_BYTES)
        const xb = q + <usize>(b * BLOCK_ELEMS)
        for (let p = 0; p < 32; p++) {
          const byte = <i32>load<u8>(blk + p)
          dot += ((byte >> 6) & 3) * <i32>load<i8>(xb + p)
          dot += ((byte >> 4) & 3) * <i32>load<i8>(xb + p + 32)
          dot += ((byte >> 2) & 3) * <i32>load<i8>(xb + p + 64)
          dot += (byte & 3) * <i32>load<i8>(xb + p + 96)
        }
      }
      storeRow(y, g * 4 + j, rows, dot, sumq, s, gamma)
    }
  }
}

// Σ over one 16-byte half-block of one row: 64 codes × 64 activations, as i16 lanes.
// Products are ≤ 2·128 = 256 in magnitude, 8 per lane here, so i16 cannot overflow;
// the caller widens to i32 after every block.
// @ts-ignore: decorator
@inline function halfDot(v: v128, m3: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const c0 = v128.and(i16x8.shr_u(v, 6), m3)
  const c1 = v128.and(i16x8.shr_u(v, 4), m3)
  const c2 = v128.and(i16x8.shr_u(v, 2), m3)
  const c3 = v128.and(v, m3)
  let acc = i16x8.add(i16x8.extmul_low_i8x16_s(c0, x0), i16x8.extmul_high_i8x16_s(c0, x0))
  acc = i16x8.add(acc, i16x8.add(i16x8.extmul_low_i8x16_s(c1, x1), i16x8.extmul_high_i8x16_s(c1, x1)))
  acc = i16x8.add(acc, i16x8.add(i16x8.extmul_low_i8x16_s(c2, x2), i16x8.extmul_high_i8x16_s(c2, x2)))
  return i16x8.add(acc, i16x8.add(i16x8.extmul_low_i8x16_s(c3, x3), i16x8.extmul_high_i8x16_s(c3, x3)))
}

// @ts-ignore: decorator
@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3)
}

/**
 * SIMD kernel, 4 rows per pass sharing every activation load.
 * Relaxed build: `i32x4.relaxed_dot_i8x16_i7x16_add_s` (codes 0..2 as its 7-bit operand: one
 * vpdpbusd with AVX-VNNI, one sdot on ARM, pmaddubsw + pmaddwd + add elsewhere, exact: a pair
 * is at most 2·128·2) straight into i32 accumulators, two chains per row. Measured 1.16× the
 * i16-accumulator form it replaced (bench/ceiling/kernel.mjs, Zen 5, 1 thread).
 * Baseline build: `extmul` products widened every block (~2× slower than the LUT kernel in
 * tl.ts, docs/kernels.md#which-ternary-kernel; it stays as the simplest exact SIMD path).
 */
export function matvec_i2s_i8(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                              rows: i32, kp: i32, first: i32, end: i32): void {
  const s = load<f32>(meta)
  const sumq = load<i32>(meta, 4)
  const range = span((rows + 3) >> 2, first, end) // 4-row groups
  // Built from a runtime value so neither binaryen nor V8 turns it into a constant
  // re-materialised at every use (docs/kernels.md#v128-constants-in-hot-loops).
  const m3 = i8x16.splat(<i8>((kp >>> 31) | 3))
  const nblocks = kp / BLOCK_ELEMS
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0
    let blk = w + <usize>g * kp
    let xb = q
    if (ASC_FEATURE_RELAXED_SIMD) {
      // i32 dot-adds straight into the accumulators, the two 16-byte halves of a block in
      // separate chains (8 in flight: one dot-add's latency is several cycles)
      let e0 = a0, e1 = a0, e2 = a0, e3 = a0
      for (let b = 0; b < nblocks; b++) {
        let x0 = v128.load(xb), x1 = v128.load(xb, 32), x2 = v128.load(xb, 64), x3 = v128.load(xb, 96)
        a0 = dotAdd4(a0, v128.load(blk), m3, x0, x1, x2, x3)
        a1 = dotAdd4(a1, v128.load(blk, 32), m3, x0, x1, x2, x3)
        a2 = dotAdd4(a2, v128.load(blk, 64), m3, x0, x1, x2, x3)
        a3 = dotAdd4(a3, v128.load(blk, 96), m3, x0, x1, x2, x3)
        x0 = v128.load(xb, 16); x1 = v128.load(xb, 48); x2 = v128.load(xb, 80); x3 = v128.load(xb, 112)
        e0 = dotAdd4(e0, v128.load(blk, 16), m3, x0, x1, x2, x3)
        e1 = dotAdd4(e1, v128.load(blk, 48), m3, x0, x1, x2, x3)
        e2 = dotAdd4(e2, v128.load(blk, 80), m3, x0, x1, x2, x3)
        e3 = dotAdd4(e3, v128.load(blk, 112), m3, x0, x1, x2, x3)
        blk += 4 * BLOCK_BYTES
        xb += BLOCK_ELEMS
      }
      a0 = i32x4.add(a0, e0); a1 = i32x4.add(a1, e1); a2 = i32x4.add(a2, e2); a3 = i32x4.add(a3, e3)
    } else {
      for (let b = 0; b < nblocks; b++) {
        for (let h = 0; h < 2; h++) {
          const xo = xb + (<usize>h << 4)
          const x0 = v128.load(xo), x1 = v128.load(xo, 32), x2 = v128.load(xo, 64), x3 = v128.load(xo, 96)
          const wo = blk + (<usize>h << 4)
          a0 = i32x4.add(a0, i32x4.extadd_pairwise_i16x8_s(halfDot(v128.load(wo), m3, x0, x1, x2, x3)))
          a1 = i32x4.add(a1, i32x4.extadd_pairwise_i16x8_s(halfDot(v128.load(wo, 32), m3, x0, x1, x2, x3)))
          a2 = i32x4.add(a2, i32x4.extadd_pairwise_i16x8_s(halfDot(v128.load(wo, 64), m3, x0, x1, x2, x3)))
          a3 = i32x4.add(a3, i32x4.extadd_pairwise_i16x8_s(halfDot(v128.load(wo, 96), m3, x0, x1, x2, x3)))
        }
        blk += 4 * BLOCK_BYTES
        xb += BLOCK_ELEMS
      }
    }
    const r = g * 4
    storeRow(y, r, rows, hsum(a0), sumq, s, gamma)
    storeRow(y, r + 1, rows, hsum(a1), sumq, s, gamma)
    storeRow(y, r + 2, rows, hsum(a2), sumq, s, gamma)
    storeRow(y, r + 3, rows, hsum(a3), sumq, s, gamma)
  }
}

// acc + the four code groups of 16 packed bytes dotted with their 16 activations each:
// `i32x4.relaxed_dot_i8x16_i7x16_add_s` per group (codes 0..2 as the 7-bit operand).
// @ts-ignore: decorator
@inline function dotAdd4(acc: v128, v: v128, m3: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return acc
  acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.and(i16x8.shr_u(v, 6), m3), acc)
  acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x1, v128.and(i16x8.shr_u(v, 4), m3), acc)
  acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x2, v128.and(i16x8.shr_u(v, 2), m3), acc)
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x3, v128.and(v, m3), acc)
}

// ── Matrix × matrix: several tokens per pass over the weights (prompt, batched decode) ──
//
// Activations of T tokens: q [T][KP] int8, meta [T] × 8 bytes (f32 s, i32 Σq),
// y [T][M] f32. The kernel walks each 4-row group once and, while its KP bytes sit in
// L1, runs every token of the batch over them: DRAM traffic is one weight pass per
// batch (prompts come in batches of 32 tokens).
//
// Register tile: 2 rows × 4 tokens = 8 i32x4 accumulators, 2 code vectors (one per row),
// one activation vector and the mask: 12 of x64's 16 vector registers, no spills. Each
// unpacked code vector serves 4 tokens and each activation load 2 rows, so a dot costs
// 0.56 loads instead of 1.06 (1 row × 4 tokens): bench/ceiling measures one load per
// dot as the limit of the i8 dot forms, not the dot itself.
//   relaxed: a step is 16 columns of one code group (16 packed bytes per row, 4 groups);
//            `i32x4.relaxed_dot_i8x16_i7x16_add_s`, the codes 0..2 as the 7-bit operand
//            (one vpdpbusd with AVX-VNNI, one sdot on ARM): 16 MACs, i32 sums, no overflow.
//   baseline: a step is 8 columns: `v128.load8x8_u/_s` widen 8 packed bytes / 8 activations
//            to i16 as they load, then `i32x4.dot_i16x8_s` (pmaddwd): 8 MACs, i32 sums.
//            Measured (bench/ceiling) ~1.5× the i8 extmul form the kernel used before.
// A batch whose size is not a multiple of 4 ends with a smaller tile (see
// `tile`); the padding rows of the last group are computed, not stored.

/** Scalar reference: T independent matvecs. */
export function matmul_i2s_i8_ref(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                                  rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  for (let t = 0; t < ntok; t++) {
    matvec_i2s_i8_ref(w, q + <usize>(t * kp), meta + <usize>(t << 3), gamma, y + <usize>(t * rows << 2), rows, kp, first, end)
  }
}

// Packed bytes per row and step: 16 (relaxed, i8 lanes) or 8 (baseline, i16 lanes).
const STEP: i32 = ASC_FEATURE_RELAXED_SIMD ? 16 : 8

// A step's packed bytes of one row: as bytes (relaxed) or widened to i16 lanes (baseline).
// Either way `(v >> shift) & 3` per lane (i16 shifts, byte mask) gives that code group.
// @ts-ignore: decorator
@inline function loadPacked(p: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(p) : v128.load8x8_u(p)
}

// The step's activations of one token, in the lanes the codes use.
// @ts-ignore: decorator
@inline function loadAct(p: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(p) : v128.load8x8_s(p)
}

// acc + Σ x·c into i32 lanes (4 products per lane relaxed, 2 baseline).
// @ts-ignore: decorator
@inline function dotAcc(acc: v128, x: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, c, acc)
  return i32x4.add(acc, i32x4.dot_i16x8_s(x, c))
}

/** SIMD kernel, bit-identical to the reference (integer sums, same final expression). */
export function matmul_i2s_i8(w: usize, q: usize, meta: usize, gamma: f32, y: usize,
                              rows: i32, kp: i32, ntok: i32, first: i32, end: i32): void {
  const range = span((rows + 3) >> 2, first, end)
  const m3 = i8x16.splat(<i8>((kp >>> 31) | 3)) // runtime-built constant (see matvec_i2s_i8)
  for (let g = <i32>(range >> 32); g < <i32>range; g++) {
    // rows 4g+j: 32 bytes apart in every 128-byte block, which starts at the group's byte b
    // for column b (4 rows × 32 bytes per 128 columns)
    const wg = w + <usize>g * kp, r = g * 4
    let t0 = 0
    for (; t0 + 4 <= ntok; t0 += 4) {
      tile(wg, m3, q, meta, y, gamma, rows, kp, r, t0, 2, 4)
      tile(wg + BLOCK_BYTES * 2, m3, q, meta, y, gamma, rows, kp, r + 2, t0, 2, 4)
    }
    const rest = ntok - t0
    if (rest === 3) {
      tile(wg, m3, q, meta, y, gamma, rows, kp, r, t0, 2, 3)
      tile(wg + BLOCK_BYTES * 2, m3, q, meta, y, gamma, rows, kp, r + 2, t0, 2, 3)
    } else if (rest === 2) {
      tile(wg, m3, q, meta, y, gamma, rows, kp, r, t0, 2, 2)
      tile(wg + BLOCK_BYTES * 2, m3, q, meta, y, gamma, rows, kp, r + 2, t0, 2, 2)
    } else if (rest === 1) {
      tile(wg, m3, q, meta, y, gamma, rows, kp, r, t0, 4, 1)
    }
  }
}

// Rows r .. r+R (packed at wr, 32 bytes apart) × tokens t0 .. t0+T. A batch runs quads of
// tokens 2 rows at a time (2 × 4: 8 accumulator chains, each unpacked code vector serving 4
// tokens), then its last tokens: 3 as a quad whose fourth token repeats the third (computed,
// not stored; measured faster than 2 + 1), 2 as 2 × 2 tiles (a 2-token batch, two sessions
// or one draft: ~1.2× the quad-with-copies it replaced), 1 as one 4 × 1 tile over the group.
// R and T are literals at every call: the branches on them fold away.
// @ts-ignore: decorator
@inline function tile(wr: usize, m3: v128, q: usize, meta: usize, y: usize, gamma: f32,
                      rows: i32, kp: i32, r: i32, t0: i32, R: i32, T: i32): void {
  const x0 = q + <usize>(t0 * kp), x1 = x0 + <usize>kp, x2 = x1 + <usize>kp, x3 = T > 3 ? x2 + <usize>kp : x2
  // a<row><token>
  let a00 = i32x4.splat(0), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00
  let a20 = a00, a21 = a00, a30 = a00, a31 = a00
  for (let b = 0; b < kp; b += BLOCK_ELEMS) {
    for (let h = 0; h < BLOCK_BYTES; h += STEP) {
      const o = <usize>(b + h) // byte of the packed block = column of code group 0
      let v0 = loadPacked(wr + o), v1 = loadPacked(wr + o + BLOCK_BYTES), v2 = v0, v3 = v0
      if (R > 2) { v2 = loadPacked(wr + o + 2 * BLOCK_BYTES); v3 = loadPacked(wr + o + 3 * BLOCK_BYTES) }
      // code groups 0..3 = bits 7:6, 5:4, 3:2, 1:0 = columns +0, +32, +64, +96. A loop,
      // not unrolled: V8 would compute all 8 code vectors first and spill the accumulators.
      for (let xo = o; xo < o + BLOCK_ELEMS; xo += 32) {
        const c0 = v128.and(i16x8.shr_u(v0, 6), m3), c1 = v128.and(i16x8.shr_u(v1, 6), m3)
        if (R > 2) {
          const c2 = v128.and(i16x8.shr_u(v2, 6), m3), c3 = v128.and(i16x8.shr_u(v3, 6), m3)
          let x = loadAct(x0 + xo)
          a00 = dotAcc(a00, x, c0); a10 = dotAcc(a10, x, c1); a20 = dotAcc(a20, x, c2); a30 = dotAcc(a30, x, c3)
          if (T > 1) {
            x = loadAct(x1 + xo)
            a01 = dotAcc(a01, x, c0); a11 = dotAcc(a11, x, c1); a21 = dotAcc(a21, x, c2); a31 = dotAcc(a31, x, c3)
          }
          v2 = i16x8.shl(v2, 2); v3 = i16x8.shl(v3, 2)
        } else {
          let x = loadAct(x0 + xo); a00 = dotAcc(a00, x, c0); a10 = dotAcc(a10, x, c1)
          x = loadAct(x1 + xo); a01 = dotAcc(a01, x, c0); a11 = dotAcc(a11, x, c1)
          if (T > 2) {
            x = loadAct(x2 + xo); a02 = dotAcc(a02, x, c0); a12 = dotAcc(a12, x, c1)
            x = loadAct(x3 + xo); a03 = dotAcc(a03, x, c0); a13 = dotAcc(a13, x, c1)
          }
        }
        v0 = i16x8.shl(v0, 2); v1 = i16x8.shl(v1, 2) // next group into bits 7:6
      }
    }
  }
  storeTok(y, meta, t0, rows, r, hsum(a00), gamma)
  storeTok(y, meta, t0, rows, r + 1, hsum(a10), gamma)
  if (T > 1) {
    storeTok(y, meta, t0 + 1, rows, r, hsum(a01), gamma)
    storeTok(y, meta, t0 + 1, rows, r + 1, hsum(a11), gamma)
  }
  if (T > 2) {
    storeTok(y, meta, t0 + 2, rows, r, hsum(a02), gamma)
    storeTok(y, meta, t0 + 2, rows, r + 1, hsum(a12), gamma)
  }
  if (T > 3) {
    storeTok(y, meta, t0 + 3, rows, r, hsum(a03), gamma)
    storeTok(y, meta, t0 + 3, rows, r + 1, hsum(a13), gamma)
  }
  if (R > 2) {
    storeTok(y, meta, t0, rows, r + 2, hsum(a20), gamma)
    storeTok(y, meta, t0, rows, r + 3, hsum(a30), gamma)
    if (T > 1) {
      storeTok(y, meta, t0 + 1, rows, r + 2, hsum(a21), gamma)
      storeTok(y, meta, t0 + 1, rows, r + 3, hsum(a31), gamma)
    }
  }
}

// Row r of token t.
// @ts-ignore: decorator
@inline function storeTok(y: usize, meta: usize, t: i32, rows: i32, r: i32, dot: i32, gamma: f32): void {
  const m = meta + <usize>(t << 3)
  storeRow(y + <usize>(t * rows << 2), r, rows, dot, load<i32>(m, 4), load<f32>(m), gamma)
}
