// Element-wise f32 ops of the transformer block: residual add, FFN activations.

import { f16ToF32 } from './half'

/** y[i] += x[i] (residual connection). */
export function add_f32(y: usize, x: usize, n: i32): void {
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o))
  }
}

/** g[i] = relu(g[i])² · u[i]  (2B4T FFN: ReLU² gate, spec §1.2). */
export function relu2_mul_f32(g: usize, u: usize, n: i32): void {
  const zero = f32x4.splat(0)
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    const r = f32x4.max(v128.load(g + o), zero)
    v128.store(g + o, f32x4.mul(f32x4.mul(r, r), v128.load(u + o)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    const r = max(load<f32>(g + o), <f32>0)
    store<f32>(g + o, r * r * load<f32>(u + o))
  }
}

/** g[i] = silu(g[i]) · u[i]  (1bitLLM / Llama FFN). */
export function silu_mul_f32(g: usize, u: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2
    const v = load<f32>(g + o)
    store<f32>(g + o, v / (<f32>1 + Mathf.exp(-v)) * load<f32>(u + o))
  }
}

/** Index of the first NaN or ±Inf among the n IEEE halves at src (exponent bits all ones), or −1. */
export function find_nonfinite_f16(src: usize, n: i32): i32 {
  const exp = i16x8.splat(0x7c00)
  let i = 0
  for (; i + 8 <= n; i += 8) { // vectors of 8 until one holds a hit, then the scalar loop finds it
    if (v128.any_true(i16x8.eq(v128.and(v128.load(src + (<usize>i << 1)), exp), exp))) break
  }
  for (; i < n; i++) if ((<i32>load<u16>(src + (<usize>i << 1)) & 0x7c00) == 0x7c00) return i
  return -1
}

/** dst[0..n) = f32(src[0..n)) for IEEE half src (embedding rows). */
export function f16_to_f32(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(load<u16>(src + (<usize>i << 1))))
}
