// Pieces the 4-row-group output kernels (Q8B, Q6B) share: the byte-code × int8 dot, the
// reduction of a group's 4 row accumulators, the group's store, and the SIMD f16 widening of
// their load-time conversions. Not exported from the module: helpers inlined into the kernels.

// acc + Σ of c·x over 16 columns as 4 i32 lanes: one `i32x4.relaxed_dot_i8x16_i7x16_add_s`
// (relaxed; the codes, 0..127, are its 7-bit operand: one vpdpbusd with AVX-VNNI, one sdot on
// ARM, pmaddubsw + pmaddwd elsewhere, where |pair| ≤ 2·127·127 fits i16), or the i16
// multiply on operands widened to i16 (baseline; xl, xh: x widened).
// @ts-ignore: decorator
@inline export function dotAdd(acc: v128, c: v128, x: v128, xl: v128, xh: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, c, acc)
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(c), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(c), xh)))
}

// [Σd0, Σd1, Σd2, Σd3]: each row's 4 lanes summed, pairwise then pairs (exact integers).
// @ts-ignore: decorator
@inline export function rowSums(d0: v128, d1: v128, d2: v128, d3: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(d0, d1, 0, 1, 4, 5), i32x4.shuffle(d0, d1, 2, 3, 6, 7))
  const t1 = i32x4.add(i32x4.shuffle(d2, d3, 0, 1, 4, 5), i32x4.shuffle(d2, d3, 2, 3, 6, 7))
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 2, 4, 6), i32x4.shuffle(t0, t1, 1, 3, 5, 7))
}

// y[t][4g .. 4g+4) = acc (fewer in the last group).
// @ts-ignore: decorator
@inline export function storeGroup(y: usize, rows: i32, g: i32, t: i32, acc: v128): void {
  const r = g * 4, yt = y + (<usize>(t * rows) << 2)
  if (r + 4 <= rows) v128.store(yt + (<usize>r << 2), acc)
  else for (let j = 0; j < rows - r; j++) store<f32>(yt + (<usize>(r + j) << 2), lane(acc, j)) // last group
}

// Lane j of a f32x4 (j not constant).
// @ts-ignore: decorator
@inline export function lane(v: v128, j: i32): f32 {
  return j == 0 ? f32x4.extract_lane(v, 0) : j == 1 ? f32x4.extract_lane(v, 1) : f32x4.extract_lane(v, 2)
}

// 8 halves (lanes 0..3 or 4..7 of h) → 4 floats, exactly as f16ToF32 (ops/half.ts) does.
// @ts-ignore: decorator
@inline export function halves4(h: v128, high: bool, m15: v128, sign: v128, scale: v128): v128 {
  const u = high ? i32x4.extend_high_i16x8_u(h) : i32x4.extend_low_i16x8_u(h)
  const mag = f32x4.mul(i32x4.shl(v128.and(u, m15), 13), scale)
  return v128.or(mag, i32x4.shl(v128.and(u, sign), 16))
}

// 16 floats → 16 bytes c = clamp(RNE(v·inv), lo, hi) + off (lo, hi, off: i16 splats).
// @ts-ignore: decorator
@inline export function codes16(a: v128, b: v128, c: v128, d: v128, inv: v128, lo: v128, hi: v128, off: v128): v128 {
  const qa = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(a, inv))), qb = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(b, inv)))
  const qc = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(c, inv))), qd = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(d, inv)))
  const q = i16x8.add(i16x8.min_s(i16x8.max_s(i16x8.narrow_i32x4_s(qa, qb), lo), hi), off)
  const q2 = i16x8.add(i16x8.min_s(i16x8.max_s(i16x8.narrow_i32x4_s(qc, qd), lo), hi), off)
  return i8x16.narrow_i16x8_u(q, q2)
}
