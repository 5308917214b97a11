// Per-token int8 absmax activation quantization (spec §1.3):
//   s = 127 / max(max|x|, 1e-5),  q_i = clamp(RNE(x_i · s), −128, 127)
// RNE = round half to even (f64.nearest), as torch.round and bitnet.cpp's nearest_int;
// JS Math.round (half up) would differ on exact .5 cases.
//
// Every BitLinear input except o_proj's is an RMSNorm output, so the norm is fused in
// and computed in f64 from the f32 input: the normed values never round to f32 before
// being scaled. That matters at near-ties: on tiny-dev a layer-0 value has x·s =
// 58.50000000000001 in f64 but exactly 58.5 after f32 rounding, and the int8 that flips
// (59 vs 58) moves a logit by 0.03 — enough to leave golden prompt 4's greedy path at a
// 0.0204 margin. Cost: O(n) scalar work per token and site, next to O(n·m) matvecs.

/**
 * q[0..np) = quantize(rmsnorm(x[0..n)) ⊙ w), zero-filled beyond n so padded columns
 * contribute nothing; meta: f32 s at +0, i32 Σq at +4. `w = 0` skips the norm
 * (quantizes x itself, for o_proj when there is no attn_sub_norm).
 */
export function rmsnorm_quantize_f32_i8(x: usize, w: usize, n: i32, eps: f32, np: i32, q: usize, meta: usize): void {
  // inv = 1/sqrt(mean(x²) + eps), or 1 with no norm
  let inv: f64 = 1
  if (w != 0) {
    let ss: f64 = 0
    for (let i = 0; i < n; i++) { const v = <f64>load<f32>(x + (<usize>i << 2)); ss += v * v }
    inv = 1.0 / Math.sqrt(ss / <f64>n + <f64>eps)
  }
  // absmax of the normed vector
  let amax: f64 = 0
  for (let i = 0; i < n; i++) amax = max(amax, Math.abs(normed(x, w, i, inv)))
  const s: f64 = 127.0 / max(amax, 1e-5)
  let sum = 0
  for (let i = 0; i < n; i++) {
    const v = <i32>min(127.0, max(-128.0, nearest<f64>(normed(x, w, i, inv) * s)))
    store<i8>(q + <usize>i, <i8>v)
    sum += v
  }
  memory.fill(q + <usize>n, 0, <usize>(np - n))
  store<f32>(meta, <f32>s)
  store<i32>(meta, sum, 4)
}

// x[i]·inv·w[i] in f64 (w = 0: no norm weight)
// @ts-ignore: decorator
@inline function normed(x: usize, w: usize, i: i32, inv: f64): f64 {
  const v = <f64>load<f32>(x + (<usize>i << 2)) * inv
  return w != 0 ? v * <f64>load<f32>(w + (<usize>i << 2)) : v
}
