// Wasm SIMD i8 multiply-add ceiling: loops of independent dot-product chains, from registers
// and with one 16-byte load per dot, for each instruction form the I2_S kernels can use.
// Compiled by ceiling.mjs for baseline SIMD and for relaxed SIMD; pure compute on its own memory.
// Every loop does 8 dots per iteration on 8 accumulators (independent chains, so latency hides).

// Operands built from a runtime value so neither binaryen nor V8 folds them into constants.
@inline function operand(seed: i32, k: i32): v128 { return i8x16.splat(<i8>((seed + k) & 3)) }

// One i8 × i8 → i32 partial dot of 16 lanes in each form (8 lanes for dot_i16x8).
@inline function dotRelaxed16(acc: v128, x: v128, c: v128): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return acc
  return i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(x, c))
}
@inline function dotRelaxed32(acc: v128, x: v128, c: v128): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return acc
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, c, acc)
}
@inline function dotExtmul(acc: v128, x: v128, c: v128): v128 {
  return i16x8.add(acc, i16x8.add(i16x8.extmul_low_i8x16_s(x, c), i16x8.extmul_high_i8x16_s(x, c)))
}
@inline function dotI16(acc: v128, x: v128, c: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(x, c))
}
// Ternary without a multiply: w·x = (x & pos) − (x & neg), widened pairwise into i16.
@inline function dotMask(acc: v128, x: v128, c: v128): v128 {
  const pos = i8x16.eq(c, i8x16.splat(2)), neg = i8x16.eq(c, i8x16.splat(0))
  return i16x8.add(acc, i16x8.extadd_pairwise_i8x16_s(i8x16.sub(v128.and(x, pos), v128.and(x, neg))))
}

// 8 chains, operands in registers: 4 activations × 2 codes.
@inline function regs(form: i32, n: i32, seed: i32): i32 {
  const x0 = operand(seed, 0), x1 = operand(seed, 1), x2 = operand(seed, 2), x3 = operand(seed, 3)
  const c0 = operand(seed, 5), c1 = operand(seed, 6)
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
  for (let i = 0; i < n; i++) {
    if (form == 0) {
      a0 = dotRelaxed16(a0, x0, c0); a1 = dotRelaxed16(a1, x1, c0); a2 = dotRelaxed16(a2, x2, c0); a3 = dotRelaxed16(a3, x3, c0)
      a4 = dotRelaxed16(a4, x0, c1); a5 = dotRelaxed16(a5, x1, c1); a6 = dotRelaxed16(a6, x2, c1); a7 = dotRelaxed16(a7, x3, c1)
    } else if (form == 1) {
      a0 = dotRelaxed32(a0, x0, c0); a1 = dotRelaxed32(a1, x1, c0); a2 = dotRelaxed32(a2, x2, c0); a3 = dotRelaxed32(a3, x3, c0)
      a4 = dotRelaxed32(a4, x0, c1); a5 = dotRelaxed32(a5, x1, c1); a6 = dotRelaxed32(a6, x2, c1); a7 = dotRelaxed32(a7, x3, c1)
    } else if (form == 2) {
      a0 = dotExtmul(a0, x0, c0); a1 = dotExtmul(a1, x1, c0); a2 = dotExtmul(a2, x2, c0); a3 = dotExtmul(a3, x3, c0)
      a4 = dotExtmul(a4, x0, c1); a5 = dotExtmul(a5, x1, c1); a6 = dotExtmul(a6, x2, c1); a7 = dotExtmul(a7, x3, c1)
    } else if (form == 3) {
      a0 = dotI16(a0, x0, c0); a1 = dotI16(a1, x1, c0); a2 = dotI16(a2, x2, c0); a3 = dotI16(a3, x3, c0)
      a4 = dotI16(a4, x0, c1); a5 = dotI16(a5, x1, c1); a6 = dotI16(a6, x2, c1); a7 = dotI16(a7, x3, c1)
    } else {
      a0 = dotMask(a0, x0, c0); a1 = dotMask(a1, x1, c0); a2 = dotMask(a2, x2, c0); a3 = dotMask(a3, x3, c0)
      a4 = dotMask(a4, x0, c1); a5 = dotMask(a5, x1, c1); a6 = dotMask(a6, x2, c1); a7 = dotMask(a7, x3, c1)
    }
  }
  const s = i32x4.add(i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3)), i32x4.add(i32x4.add(a4, a5), i32x4.add(a6, a7)))
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 3)
}

// 8 chains, each dot with its own 16-byte activation load from a 4 KiB L1 buffer at `buf`;
// 2 codes in registers (the shape of a 1-row × T-token tile).
@inline function loads(form: i32, n: i32, seed: i32, buf: usize): i32 {
  const c0 = operand(seed, 5), c1 = operand(seed, 6)
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
  let p = buf
  const end = buf + 4096
  for (let i = 0; i < n; i++) {
    if (form == 0) {
      a0 = dotRelaxed16(a0, v128.load(p), c0); a1 = dotRelaxed16(a1, v128.load(p, 16), c0); a2 = dotRelaxed16(a2, v128.load(p, 32), c0); a3 = dotRelaxed16(a3, v128.load(p, 48), c0)
      a4 = dotRelaxed16(a4, v128.load(p, 64), c1); a5 = dotRelaxed16(a5, v128.load(p, 80), c1); a6 = dotRelaxed16(a6, v128.load(p, 96), c1); a7 = dotRelaxed16(a7, v128.load(p, 112), c1)
    } else if (form == 1) {
      a0 = dotRelaxed32(a0, v128.load(p), c0); a1 = dotRelaxed32(a1, v128.load(p, 16), c0); a2 = dotRelaxed32(a2, v128.load(p, 32), c0); a3 = dotRelaxed32(a3, v128.load(p, 48), c0)
      a4 = dotRelaxed32(a4, v128.load(p, 64), c1); a5 = dotRelaxed32(a5, v128.load(p, 80), c1); a6 = dotRelaxed32(a6, v128.load(p, 96), c1); a7 = dotRelaxed32(a7, v128.load(p, 112), c1)
    } else if (form == 2) {
      a0 = dotExtmul(a0, v128.load(p), c0); a1 = dotExtmul(a1, v128.load(p, 16), c0); a2 = dotExtmul(a2, v128.load(p, 32), c0); a3 = dotExtmul(a3, v128.load(p, 48), c0)
      a4 = dotExtmul(a4, v128.load(p, 64), c1); a5 = dotExtmul(a5, v128.load(p, 80), c1); a6 = dotExtmul(a6, v128.load(p, 96), c1); a7 = dotExtmul(a7, v128.load(p, 112), c1)
    } else if (form == 3) {
      a0 = dotI16(a0, v128.load(p), c0); a1 = dotI16(a1, v128.load(p, 16), c0); a2 = dotI16(a2, v128.load(p, 32), c0); a3 = dotI16(a3, v128.load(p, 48), c0)
      a4 = dotI16(a4, v128.load(p, 64), c1); a5 = dotI16(a5, v128.load(p, 80), c1); a6 = dotI16(a6, v128.load(p, 96), c1); a7 = dotI16(a7, v128.load(p, 112), c1)
    } else {
      a0 = dotMask(a0, v128.load(p), c0); a1 = dotMask(a1, v128.load(p, 16), c0); a2 = dotMask(a2, v128.load(p, 32), c0); a3 = dotMask(a3, v128.load(p, 48), c0)
      a4 = dotMask(a4, v128.load(p, 64), c1); a5 = dotMask(a5, v128.load(p, 80), c1); a6 = dotMask(a6, v128.load(p, 96), c1); a7 = dotMask(a7, v128.load(p, 112), c1)
    }
    p += 128
    if (p == end) p = buf
  }
  const s = i32x4.add(i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3)), i32x4.add(i32x4.add(a4, a5), i32x4.add(a6, a7)))
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 3)
}

// Each form is its own export so V8 compiles one straight loop per form.
export function regs_relaxed16(n: i32, seed: i32): i32 { return regs(0, n, seed) }
export function regs_relaxed32(n: i32, seed: i32): i32 { return regs(1, n, seed) }
export function regs_extmul(n: i32, seed: i32): i32 { return regs(2, n, seed) }
export function regs_dot_i16(n: i32, seed: i32): i32 { return regs(3, n, seed) }
export function regs_mask(n: i32, seed: i32): i32 { return regs(4, n, seed) }
export function loads_relaxed16(n: i32, seed: i32, buf: usize): i32 { return loads(0, n, seed, buf) }
export function loads_relaxed32(n: i32, seed: i32, buf: usize): i32 { return loads(1, n, seed, buf) }
export function loads_extmul(n: i32, seed: i32, buf: usize): i32 { return loads(2, n, seed, buf) }
export function loads_dot_i16(n: i32, seed: i32, buf: usize): i32 { return loads(3, n, seed, buf) }
export function loads_mask(n: i32, seed: i32, buf: usize): i32 { return loads(4, n, seed, buf) }

// A dependent chain of i32 multiplies (3 cycles of latency each on current x64 and ARM
// cores): n iterations take 3n cycles, which gives the clock the loops above ran at.
export function clock(n: i32, seed: i32): i32 {
  let x = seed | 1
  for (let i = 0; i < n; i++) x *= seed
  return x
}
