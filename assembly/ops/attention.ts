// Causal multi-head attention over the KV cache of one layer, for one query token.
// GQA: query head h reads kv head h / (n_head / n_head_kv) (spec §1.2).
//
//   q      [n_head][head_dim]           query of the current token (after RoPE)
//   kc, vc [ctx][kv_dim]                this layer's cache; rows 0..n_pos) are valid
//   out    [n_head][head_dim]
//   att    [n_head][ctx] scratch        scores, then softmax weights
// Heads are split across threads by (ith, nth).

import { share } from './split'

/** out_h = softmax(q_h·Kᵀ / √head_dim) · V over positions 0..n_pos). */
export function attention_f32(q: usize, kc: usize, vc: usize, out: usize, att: usize,
                              n_head: i32, n_head_kv: i32, head_dim: i32, ctx: i32, n_pos: i32,
                              ith: i32, nth: i32): void {
  const kv_dim = n_head_kv * head_dim
  const group = n_head / n_head_kv
  const scale: f32 = <f32>1 / sqrt<f32>(<f32>head_dim)
  const heads = share(n_head, ith, nth)
  for (let h = <i32>(heads >> 32); h < <i32>heads; h++) {
    const qh = q + (<usize>(h * head_dim) << 2)
    const kvo = <usize>((h / group) * head_dim) << 2
    const a = att + (<usize>(h * ctx) << 2)
    let mx: f32 = -Infinity
    for (let t = 0; t < n_pos; t++) {
      const sc = dot_f32(qh, kc + (<usize>(t * kv_dim) << 2) + kvo, head_dim) * scale
      store<f32>(a + (<usize>t << 2), sc)
      mx = max(mx, sc)
    }
    let sum: f32 = 0
    for (let t = 0; t < n_pos; t++) {
      const e = Mathf.exp(load<f32>(a + (<usize>t << 2)) - mx)
      store<f32>(a + (<usize>t << 2), e)
      sum += e
    }
    const inv: f32 = <f32>1 / sum
    const oh = out + (<usize>(h * head_dim) << 2)
    memory.fill(oh, 0, <usize>head_dim << 2)
    for (let t = 0; t < n_pos; t++) {
      axpy_f32(oh, vc + (<usize>(t * kv_dim) << 2) + kvo, load<f32>(a + (<usize>t << 2)) * inv, head_dim)
    }
  }
}

// Σ a[i]·b[i] over n floats.
// @ts-ignore: decorator
@inline function dot_f32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0)
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(b + o)))
  }
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2))
  return s
}

// y[i] += alpha · x[i]
// @ts-ignore: decorator
@inline function axpy_f32(y: usize, x: usize, alpha: f32, n: i32): void {
  const va = f32x4.splat(alpha)
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(v128.load(x + o), va)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o) * alpha)
  }
}
