// Rotary position embedding, NEOX style (rotate halves): within each head, dimension i
// pairs with i + n_rot/2 (docs/architecture.md#rope: the loader un-permutes NORM files' q/k rows).
// The host computes cos/sin for the position once per token (shared by q, k and all
// layers) into cs = [cos 0..n_rot/2) , sin 0..n_rot/2)].

/** Rotates x = [n_heads][head_dim] in place; dims ≥ n_rot are left unrotated. */
export function rope_neox_f32(x: usize, n_heads: i32, head_dim: i32, n_rot: i32, cs: usize): void {
  const half = n_rot >> 1
  const sn = cs + (<usize>half << 2)
  for (let h = 0; h < n_heads; h++) {
    const base = x + (<usize>(h * head_dim) << 2)
    for (let i = 0; i < half; i++) {
      const c = load<f32>(cs + (<usize>i << 2)), s = load<f32>(sn + (<usize>i << 2))
      const pa = base + (<usize>i << 2), pb = base + (<usize>(i + half) << 2)
      const a = load<f32>(pa), b = load<f32>(pb)
      store<f32>(pa, a * c - b * s)
      store<f32>(pb, b * c + a * s)
    }
  }
}
