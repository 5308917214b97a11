// RMSNorm: y = x / sqrt(mean(x²) + eps) · w   (docs/architecture.md#rmsnorm; the output norm, in f32).

/** y[0..n) = rmsnorm(x) ⊙ w. y may alias x. */
export function rmsnorm_f32(x: usize, w: usize, y: usize, n: i32, eps: f32): void {
  let acc = f32x4.splat(0)
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2))
    acc = f32x4.add(acc, f32x4.mul(v, v))
  }
  let ss = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)
  for (; i < n; i++) { const v = load<f32>(x + (<usize>i << 2)); ss += v * v }
  const inv: f32 = <f32>1 / sqrt<f32>(ss / <f32>n + eps)
  const vinv = f32x4.splat(inv)
  i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(y + o, f32x4.mul(f32x4.mul(v128.load(x + o), vinv), v128.load(w + o)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(y + o, load<f32>(x + o) * inv * load<f32>(w + o))
  }
}
