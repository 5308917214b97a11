// Element-wise f32 ops of the transformer block: residual add, FFN activations.

import { f16ToF32, f32ToF16, half4 } from './half'

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

/**
 * g[i] = relu(g[i])² · u[i]  (2B4T FFN: ReLU² gate, docs/architecture.md#ffn-activation).
 * pmax(g, 0) = g < 0 ? 0 : g is one instruction where max's NaN and ±0 rules cost several; it keeps
 * a NaN (as max does) and a −0, which squares to the +0 max gives.
 */
export function relu2_mul_f32(g: usize, u: usize, n: i32): void {
  const zero = f32x4.splat(0)
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    const r = f32x4.pmax(v128.load(g + o), zero)
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

/**
 * g[i] = gelu(g[i]) · u[i] with GELU's tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 * (Gemma's `gelu_pytorch_tanh`, ggml_gelu).
 */
export function gelu_mul_f32(g: usize, u: usize, n: i32): void {
  const c: f32 = <f32>0.7978845608028654 // √(2/π)
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2
    const v = load<f32>(g + o)
    store<f32>(g + o, <f32>0.5 * v * (<f32>1 + Mathf.tanh(c * (v + <f32>0.044715 * v * v * v))) * load<f32>(u + o))
  }
}

/** x[i] *= s (Gemma's embedding scale √n_embd). */
export function scale_f32(x: usize, n: i32, s: f32): void {
  const vs = f32x4.splat(s)
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(x + o, f32x4.mul(v128.load(x + o), vs))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(x + o, load<f32>(x + o) * s)
  }
}

/**
 * Index of the first NaN or ±Inf among the n f32 at src (exponent bits all ones), or −1: a step's
 * logits check. The largest exponent field over 16 words a step (four i32x4.max_u chains, no
 * branch in the loop); only a failing step, whose logits hold a hit, then looks for its index.
 */
export function find_nonfinite_f32(src: usize, n: i32): i32 {
  const exp = i32x4.splat(0x7f800000)
  let e0 = i32x4.splat(0), e1 = e0, e2 = e0, e3 = e0
  let i = 0
  for (; i + 16 <= n; i += 16) {
    const p = src + (<usize>i << 2)
    e0 = i32x4.max_u(e0, v128.and(v128.load(p), exp))
    e1 = i32x4.max_u(e1, v128.and(v128.load(p, 16), exp))
    e2 = i32x4.max_u(e2, v128.and(v128.load(p, 32), exp))
    e3 = i32x4.max_u(e3, v128.and(v128.load(p, 48), exp))
  }
  const hit = v128.any_true(i32x4.eq(i32x4.max_u(i32x4.max_u(e0, e1), i32x4.max_u(e2, e3)), exp))
  for (let j = hit ? 0 : i; j < n; j++) if ((load<u32>(src + (<usize>j << 2)) & 0x7f800000) == 0x7f800000) return j
  return -1
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

/** dst[0..n) = half(src[0..n)), round to nearest even (keys and values into an f16 KV cache). */
export function f32_to_f16(src: usize, dst: usize, n: i32): void {
  const signBit = i32x4.splat(0x80000000), one = i32x4.splat(1)
  let i = 0
  for (; i + 8 <= n; i += 8) {
    const lo = half4(v128.load(src + (<usize>i << 2)), signBit, one)
    const hi = half4(v128.load(src + (<usize>i << 2), 16), signBit, one)
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(lo, hi))
  }
  for (; i < n; i++) store<u16>(dst + (<usize>i << 1), f32ToF16(load<f32>(src + (<usize>i << 2))))
}

/** Scalar twin of f32_to_f16 (bit-identical). */
export function f32_to_f16_ref(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), f32ToF16(load<f32>(src + (<usize>i << 2))))
}
