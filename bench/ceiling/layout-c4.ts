// A candidate ternary layout, "c4": each byte holds ONE column of 4 rows (2 bits each),
// so one activation load serves the 4 rows and the rows come out of a code vector by
// masks alone. Compiled by layout-c4.mjs (relaxed SIMD) against the engine's i2s_x4 kernels.
//
//   group g (rows 4g..4g+3): KP bytes, byte k = column k:
//   ┌─────┬─────┬─────┬─────┐
//   │ 7:6 │ 5:4 │ 3:2 │ 1:0 │   = codes of rows 4g+3, 4g+2, 4g+1, 4g
//   └─────┴─────┴─────┴─────┘
//
// v & 0x03, v & 0x0C, v & 0x30 are 1·c, 4·c, 16·c (≤ 32: the 7-bit operand of the relaxed
// dot), (v >> 6) & 3 is c: the accumulators hold 1, 4, 16, 1 × Σ c·q, divided back exactly
// (|16 · Σ c·q| ≤ 16 · 2 · 127 · 36864 < 2^31 for every K up to 36864).

// Scalar definition: y[t][r] = Σ c·q − Σq as f32 (scales 1), groups [first, end).
export function matmul_c4_ref(w: usize, q: usize, meta: usize, y: usize, rows: i32, kp: i32,
                              ntok: i32, first: i32, end: i32): void {
  for (let t = 0; t < ntok; t++) {
    const xt = q + <usize>(t * kp), sumq = load<i32>(meta + <usize>(t << 3), 4)
    for (let g = first; g < end; g++) {
      for (let j = 0; j < 4; j++) {
        let dot = 0
        for (let k = 0; k < kp; k++) {
          dot += ((<i32>load<u8>(w + <usize>g * kp + k) >> (2 * j)) & 3) * <i32>load<i8>(xt + k)
        }
        store<f32>(y + (<usize>(t * rows + g * 4 + j) << 2), <f32>(dot - sumq))
      }
    }
  }
}

// @ts-ignore: decorator
@inline function dot(acc: v128, x: v128, c: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, c, acc)
}
// @ts-ignore: decorator
@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3)
}
// @ts-ignore: decorator
@inline function put(y: usize, meta: usize, t: i32, rows: i32, r: i32, dot: i32): void {
  store<f32>(y + (<usize>(t * rows + r) << 2), <f32>(dot - load<i32>(meta + <usize>(t << 3), 4)))
}

/** Decode: one token, 4 rows per group, two chains of 16 columns per row. */
export function matvec_c4(w: usize, q: usize, meta: usize, y: usize, rows: i32, kp: i32, first: i32, end: i32): void {
  const m0 = i8x16.splat(<i8>((kp >>> 31) | 0x03)), m1 = i8x16.splat(<i8>((kp >>> 31) | 0x0c))
  const m2 = i8x16.splat(<i8>((kp >>> 31) | 0x30))
  for (let g = first; g < end; g++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0
    let p = w + <usize>g * kp, x = q
    const stop = p + kp
    for (; p < stop; p += 32, x += 32) {
      let v = v128.load(p), xv = v128.load(x)
      a0 = dot(a0, xv, v128.and(v, m0)); a1 = dot(a1, xv, v128.and(v, m1))
      a2 = dot(a2, xv, v128.and(v, m2)); a3 = dot(a3, xv, v128.and(i16x8.shr_u(v, 6), m0))
      v = v128.load(p, 16); xv = v128.load(x, 16)
      e0 = dot(e0, xv, v128.and(v, m0)); e1 = dot(e1, xv, v128.and(v, m1))
      e2 = dot(e2, xv, v128.and(v, m2)); e3 = dot(e3, xv, v128.and(i16x8.shr_u(v, 6), m0))
    }
    const r = g * 4
    put(y, meta, 0, rows, r, hsum(i32x4.add(a0, e0)))
    put(y, meta, 0, rows, r + 1, hsum(i32x4.add(a1, e1)) >> 2)
    put(y, meta, 0, rows, r + 2, hsum(i32x4.add(a2, e2)) >> 4)
    put(y, meta, 0, rows, r + 3, hsum(i32x4.add(a3, e3)))
  }
}

/** Batch: tiles of 4 rows × 2 tokens (8 accumulators, 3 masks, code, 2 activations, 1 temp). */
export function matmul_c4(w: usize, q: usize, meta: usize, y: usize, rows: i32, kp: i32, ntok: i32,
                          first: i32, end: i32): void {
  const m0 = i8x16.splat(<i8>((kp >>> 31) | 0x03)), m1 = i8x16.splat(<i8>((kp >>> 31) | 0x0c))
  const m2 = i8x16.splat(<i8>((kp >>> 31) | 0x30))
  for (let g = first; g < end; g++) {
    const wg = w + <usize>g * kp, r = g * 4
    for (let t = 0; t < ntok; t += 2) {
      const x0 = q + <usize>(t * kp), x1 = t + 1 < ntok ? x0 + <usize>kp : x0
      let a00 = i32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00
      for (let k = 0; k < kp; k += 16) {
        const v = v128.load(wg + k), u = v128.load(x0 + k), z = v128.load(x1 + k)
        let c = v128.and(v, m0); a00 = dot(a00, u, c); a01 = dot(a01, z, c)
        c = v128.and(v, m1); a10 = dot(a10, u, c); a11 = dot(a11, z, c)
        c = v128.and(v, m2); a20 = dot(a20, u, c); a21 = dot(a21, z, c)
        c = v128.and(i16x8.shr_u(v, 6), m0); a30 = dot(a30, u, c); a31 = dot(a31, z, c)
      }
      put(y, meta, t, rows, r, hsum(a00)); put(y, meta, t, rows, r + 1, hsum(a10) >> 2)
      put(y, meta, t, rows, r + 2, hsum(a20) >> 4); put(y, meta, t, rows, r + 3, hsum(a30))
      if (t + 1 < ntok) {
        put(y, meta, t + 1, rows, r, hsum(a01)); put(y, meta, t + 1, rows, r + 1, hsum(a11) >> 2)
        put(y, meta, t + 1, rows, r + 2, hsum(a21) >> 4); put(y, meta, t + 1, rows, r + 3, hsum(a31))
      }
    }
  }
}
