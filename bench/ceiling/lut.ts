// Lookup-table (LUT) ternary inner loops of 16 rows, from L1: the loop of the `tl16` kernel
// (assembly/formats/tl.ts) and two sign-symmetric 3-weight candidates (bitnet.cpp TL2's idea),
// each in the baseline build (`i8x16.swizzle`: V8 adds a saturating `paddusb` fix-up before
// every `pshufb`) and the relaxed one (`i8x16.relaxed_swizzle`: one `pshufb`). Compiled and
// timed by ceiling.mjs; pure compute, the values are arbitrary (only the speed is measured).
//
// Sign symmetry: T(−w) = −T(w), so the 27 sums of 3 weights need 14 table entries (a 4-bit
// index) and a sign per lookup. T ∈ [−381, 381] splits as 32·hi + lo, hi ∈ [−12, 11],
// lo ∈ [−16, 15]; the sign applies as x ^ s (s = 0 or −1: −x − 1, the −1s being a count per
// row added once), so 8 lookups still sum in byte lanes. A lookup does 48 MACs (tl16: 32) but
// costs a sign mask and two xors more.
//
// A step = one byte-sum block of 16 rows: the lookups summed in byte lanes before one widening
// to i16. An iteration = the 64 steps of one tile: 16 KiB of tables at `lut`, 4–8 KiB of weights
// at `w` (all in L1), read in order as the kernel does.
const TILE_STEPS = 64

// @ts-ignore: decorator
@inline function look(table: v128, idx: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(table, idx)
  return i8x16.swizzle(table, idx)
}

// Masks from a runtime value (not v128 constants, which V8 14+ rematerialises in the loop).
// @ts-ignore: decorator
@inline function nibbleMask(seed: i32): v128 { return i8x16.splat(<i8>((seed >>> 31) | 15)) }

// A lookup of 16 rows in the table at lp + off; lks: with the sign mask s applied.
// @ts-ignore: decorator
@inline function lk(lp: usize, off: i32, i: v128): v128 { return look(v128.load(lp + <usize>off), i) }
// @ts-ignore: decorator
@inline function lks(lp: usize, off: i32, i: v128, s: v128): v128 { return v128.xor(lk(lp, off, i), s) }

// The accumulators folded into the result: keeps the loop's work live.
// @ts-ignore: decorator
@inline function fold(a: v128, b: v128): i32 {
  const s = i16x8.add(a, b)
  return i16x8.extract_lane_s(s, 0) + i16x8.extract_lane_s(s, 7)
}

// tl16: 8 pairs (2 weights each) = 4 vectors of two 4-bit indices; 2 lookups (hi, lo bytes of
// T = 16·hi + lo) per pair; 256 MACs per step.
export function tl16(n: i32, seed: i32, w: usize, lut: usize): i32 {
  const m15 = nibbleMask(seed), zero = v128.xor(m15, m15)
  let hi0 = zero, hi1 = zero, lo0 = zero, lo1 = zero
  for (let k = 0; k < n; k++) {
    let wp = w, lp = lut
    for (let u = 0; u < TILE_STEPS; u++) {
      const v0 = v128.load(wp), v1 = v128.load(wp, 16), v2 = v128.load(wp, 32), v3 = v128.load(wp, 48)
      let i = v128.and(v0, m15)
      let bh = lk(lp, 0, i), bl = lk(lp, 16, i)
      i = v128.and(i16x8.shr_u(v0, 4), m15)
      bh = i8x16.add(bh, lk(lp, 32, i)); bl = i8x16.add(bl, lk(lp, 48, i))
      i = v128.and(v1, m15)
      bh = i8x16.add(bh, lk(lp, 64, i)); bl = i8x16.add(bl, lk(lp, 80, i))
      i = v128.and(i16x8.shr_u(v1, 4), m15)
      bh = i8x16.add(bh, lk(lp, 96, i)); bl = i8x16.add(bl, lk(lp, 112, i))
      i = v128.and(v2, m15)
      bh = i8x16.add(bh, lk(lp, 128, i)); bl = i8x16.add(bl, lk(lp, 144, i))
      i = v128.and(i16x8.shr_u(v2, 4), m15)
      bh = i8x16.add(bh, lk(lp, 160, i)); bl = i8x16.add(bl, lk(lp, 176, i))
      i = v128.and(v3, m15)
      bh = i8x16.add(bh, lk(lp, 192, i)); bl = i8x16.add(bl, lk(lp, 208, i))
      i = v128.and(i16x8.shr_u(v3, 4), m15)
      bh = i8x16.add(bh, lk(lp, 224, i)); bl = i8x16.add(bl, lk(lp, 240, i))
      hi0 = i16x8.add(hi0, i16x8.extend_low_i8x16_s(bh)); hi1 = i16x8.add(hi1, i16x8.extend_high_i8x16_s(bh))
      lo0 = i16x8.add(lo0, i16x8.extend_low_i8x16_u(bl)); lo1 = i16x8.add(lo1, i16x8.extend_high_i8x16_u(bl))
      wp += 64; lp += 256
    }
  }
  return fold(i16x8.add(hi0, lo0), i16x8.add(hi1, lo1))
}

// sign3, one byte per triple (2.67 bits per weight): bit 7 = sign, bits 3:0 = the index.
// 8 triples, 2 lookups each; 384 MACs per step.
export function sign3_bytes(n: i32, seed: i32, w: usize, lut: usize): i32 {
  const m15 = nibbleMask(seed), zero = v128.xor(m15, m15)
  let hi0 = zero, hi1 = zero, lo0 = zero, lo1 = zero
  for (let k = 0; k < n; k++) {
    let wp = w, lp = lut
    for (let u = 0; u < TILE_STEPS; u++) {
      let x = v128.load(wp)
      let i = v128.and(x, m15), s = i8x16.lt_s(x, zero)
      let bh = lks(lp, 0, i, s), bl = lks(lp, 16, i, s)
      x = v128.load(wp, 16); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 32, i, s)); bl = i8x16.add(bl, lks(lp, 48, i, s))
      x = v128.load(wp, 32); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 64, i, s)); bl = i8x16.add(bl, lks(lp, 80, i, s))
      x = v128.load(wp, 48); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 96, i, s)); bl = i8x16.add(bl, lks(lp, 112, i, s))
      x = v128.load(wp, 64); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 128, i, s)); bl = i8x16.add(bl, lks(lp, 144, i, s))
      x = v128.load(wp, 80); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 160, i, s)); bl = i8x16.add(bl, lks(lp, 176, i, s))
      x = v128.load(wp, 96); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 192, i, s)); bl = i8x16.add(bl, lks(lp, 208, i, s))
      x = v128.load(wp, 112); i = v128.and(x, m15); s = i8x16.lt_s(x, zero)
      bh = i8x16.add(bh, lks(lp, 224, i, s)); bl = i8x16.add(bl, lks(lp, 240, i, s))
      hi0 = i16x8.add(hi0, i16x8.extend_low_i8x16_s(bh)); hi1 = i16x8.add(hi1, i16x8.extend_high_i8x16_s(bh))
      lo0 = i16x8.add(lo0, i16x8.extend_low_i8x16_s(bl)); lo1 = i16x8.add(lo1, i16x8.extend_high_i8x16_s(bl))
      wp += 128; lp += 256
    }
  }
  return fold(i16x8.add(hi0, lo0), i16x8.add(hi1, lo1))
}

// sign3 at 5 bits per triple (1.67 bits per weight): two 4-bit indices per byte as tl16, and
// one byte per row holding the signs of 8 triples (bit j → the sign mask by a shift and a compare);
// 384 MACs per step.
export function sign3_packed(n: i32, seed: i32, w: usize, lut: usize): i32 {
  const m15 = nibbleMask(seed), zero = v128.xor(m15, m15)
  let hi0 = zero, hi1 = zero, lo0 = zero, lo1 = zero
  for (let k = 0; k < n; k++) {
    let wp = w, lp = lut
    for (let u = 0; u < TILE_STEPS; u++) {
      const sv = v128.load(wp, 64)
      const v0 = v128.load(wp), v1 = v128.load(wp, 16), v2 = v128.load(wp, 32), v3 = v128.load(wp, 48)
      let i = v128.and(v0, m15), s = i8x16.lt_s(i16x8.shl(sv, 7), zero)
      let bh = lks(lp, 0, i, s), bl = lks(lp, 16, i, s)
      i = v128.and(i16x8.shr_u(v0, 4), m15); s = i8x16.lt_s(i16x8.shl(sv, 6), zero)
      bh = i8x16.add(bh, lks(lp, 32, i, s)); bl = i8x16.add(bl, lks(lp, 48, i, s))
      i = v128.and(v1, m15); s = i8x16.lt_s(i16x8.shl(sv, 5), zero)
      bh = i8x16.add(bh, lks(lp, 64, i, s)); bl = i8x16.add(bl, lks(lp, 80, i, s))
      i = v128.and(i16x8.shr_u(v1, 4), m15); s = i8x16.lt_s(i16x8.shl(sv, 4), zero)
      bh = i8x16.add(bh, lks(lp, 96, i, s)); bl = i8x16.add(bl, lks(lp, 112, i, s))
      i = v128.and(v2, m15); s = i8x16.lt_s(i16x8.shl(sv, 3), zero)
      bh = i8x16.add(bh, lks(lp, 128, i, s)); bl = i8x16.add(bl, lks(lp, 144, i, s))
      i = v128.and(i16x8.shr_u(v2, 4), m15); s = i8x16.lt_s(i16x8.shl(sv, 2), zero)
      bh = i8x16.add(bh, lks(lp, 160, i, s)); bl = i8x16.add(bl, lks(lp, 176, i, s))
      i = v128.and(v3, m15); s = i8x16.lt_s(i16x8.shl(sv, 1), zero)
      bh = i8x16.add(bh, lks(lp, 192, i, s)); bl = i8x16.add(bl, lks(lp, 208, i, s))
      i = v128.and(i16x8.shr_u(v3, 4), m15); s = i8x16.lt_s(sv, zero)
      bh = i8x16.add(bh, lks(lp, 224, i, s)); bl = i8x16.add(bl, lks(lp, 240, i, s))
      hi0 = i16x8.add(hi0, i16x8.extend_low_i8x16_s(bh)); hi1 = i16x8.add(hi1, i16x8.extend_high_i8x16_s(bh))
      lo0 = i16x8.add(lo0, i16x8.extend_low_i8x16_s(bl)); lo1 = i16x8.add(lo1, i16x8.extend_high_i8x16_s(bl))
      wp += 80; lp += 256
    }
  }
  return fold(i16x8.add(hi0, lo0), i16x8.add(hi1, lo1))
}
