// Rotary position embedding, NEOX style (rotate halves): within each head, dimension i
// pairs with i + n_rot/2 (docs/architecture.md#rope: the loader un-permutes NORM files' q/k rows).
// The host computes cos/sin for the position once per token (shared by q, k and all
// layers) into cs = [cos 0..n_rot/2) , sin 0..n_rot/2)].

/**
 * Rotates x = [n_heads][head_dim] in place; dims ≥ n_rot are left unrotated. Four pairs per
 * vector while they last (the same f32 multiplies and adds as the scalar tail, so the same bits).
 */
export function rope_neox_f32(x: usize, n_heads: i32, head_dim: i32, n_rot: i32, cs: usize): void {
  const half = n_rot >> 1
  const sn = cs + (<usize>half << 2)
  for (let h = 0; h < n_heads; h++) {
    const base = x + (<usize>(h * head_dim) << 2)
    let i = 0
    for (; i + 4 <= half; i += 4) {
      const o = <usize>i << 2
      const c = v128.load(cs + o), s = v128.load(sn + o)
      const pa = base + o, pb = pa + (<usize>half << 2)
      const a = v128.load(pa), b = v128.load(pb)
      v128.store(pa, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)))
      v128.store(pb, f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)))
    }
    for (; i < half; i++) {
      const c = load<f32>(cs + (<usize>i << 2)), s = load<f32>(sn + (<usize>i << 2))
      const pa = base + (<usize>i << 2), pb = base + (<usize>(i + half) << 2)
      const a = load<f32>(pa), b = load<f32>(pb)
      store<f32>(pa, a * c - b * s)
      store<f32>(pb, b * c + a * s)
    }
  }
}
