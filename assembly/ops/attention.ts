// Causal multi-head attention over one layer's KV cache, split over kv heads AND positions
// (flash-decoding), in two thread rounds. For n queries of n consecutive positions of one
// cache (a decode step: n = 1; a prompt chunk: n ≤ 8):
//
//   q      [n][n_head][head_dim]          f32, after RoPE; row r sees positions 0..n_pos + r)
//   kc, vc [ctx][n_head_kv][head_dim]     the layer's cache, f32 or IEEE half (T = f32 | u16)
//   att    [items][n·group][block] f32    scratch: scores, then weights; one slice per item
//   part   [n][n_head][n_blocks][4 + head_dim] f32   per (row, head, block): m, l, –, –, acc
//   out    [n][n_head][head_dim]          f32
//
// Round 1, attention_partial_*: items = n_head_kv × n_blocks, item (g, b) = kv head g over
// positions [b·block, (b+1)·block). It reads each key row of its block once for the n·group
// queries sharing kv head g (GQA: query head h uses kv head h / group; the row stays in L1
// while 4 heads at a time use it), each value row once per query row and 4 heads, and writes,
// s_t = q·k_t / √head_dim over the positions t of the block that the query sees:
//   m = max s_t,   l = Σ e^(s_t − m),   acc = Σ e^(s_t − m) · v_t
// Round 2, attention_combine_f32: items = n × n_head, exact combine of the blocks:
//   out = Σ_b e^(m_b − M) · acc_b / Σ_b e^(m_b − M) · l_b,   M = max_b m_b
// With one block (n_pos + n − 1 ≤ block), round 1 writes out = acc / l and round 2 is not run.
// An item writes only its own att slice and part slots, and the blocks are fixed by `block`,
// not by the thread count: results do not depend on how items are cut into chunks nor on their order.
//
// The SIMD kernels need head_dim % 8 == 0 (8 dims = 16 bytes of halves per load); the
// scalar _ref twins take any head_dim and agree with them to float rounding (dot products
// and sums are accumulated in another order).

import { f16ToF32 } from './half'
import { span } from './split'

/** Round 1 on an f32 cache (SIMD): per (query, head, block) m, l, acc; see the file comment. */
export function attention_partial_f32(q: usize, kc: usize, vc: usize, att: usize, part: usize, out: usize,
                                      n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                      first: i32, end: i32): void {
  partial<f32>(q, kc, vc, att, part, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Round 1 on an f16 cache (SIMD). */
export function attention_partial_f16(q: usize, kc: usize, vc: usize, att: usize, part: usize, out: usize,
                                      n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                      first: i32, end: i32): void {
  partial<u16>(q, kc, vc, att, part, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Scalar twin of attention_partial_f32 (any head_dim). */
export function attention_partial_f32_ref(q: usize, kc: usize, vc: usize, att: usize, part: usize, out: usize,
                                          n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                          first: i32, end: i32): void {
  partial_ref<f32>(q, kc, vc, att, part, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Scalar twin of attention_partial_f16 (any head_dim). */
export function attention_partial_f16_ref(q: usize, kc: usize, vc: usize, att: usize, part: usize, out: usize,
                                          n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                          first: i32, end: i32): void {
  partial_ref<u16>(q, kc, vc, att, part, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Round 2: out[r][h] from the n_blocks partial results of (r, h); items = n × n_head. */
export function attention_combine_f32(part: usize, out: usize, n: i32, n_head: i32, head_dim: i32, n_blocks: i32,
                                      first: i32, end: i32): void {
  const slot = <usize>(4 + head_dim) << 2
  const items = span(n * n_head, first, end)
  for (let it = <i32>(items >> 32); it < <i32>items; it++) {
    const p = part + <usize>(it * n_blocks) * slot
    let mx: f32 = -Infinity
    for (let b = 0; b < n_blocks; b++) mx = max(mx, load<f32>(p + <usize>b * slot))
    let l: f32 = 0
    for (let b = 0; b < n_blocks; b++) {
      const s = p + <usize>b * slot
      const w = Mathf.exp(load<f32>(s) - mx) // a block the query does not see: m = −∞, w = 0
      store<f32>(s + 8, w)
      l += w * load<f32>(s, 4)
    }
    const inv: f32 = <f32>1 / l
    const o = out + (<usize>(it * head_dim) << 2)
    for (let i = 0; i < head_dim; i++) {
      let acc: f32 = 0
      for (let b = 0; b < n_blocks; b++) {
        const s = p + <usize>b * slot
        acc += load<f32>(s, 8) * load<f32>(s + 16 + (<usize>i << 2))
      }
      store<f32>(o + (<usize>i << 2), acc * inv)
    }
  }
}

// Where query (r, head j of the group) of item (g, b) finds its inputs and puts its results.
// @ts-ignore: decorator
@inline function qPtr(q: usize, r: i32, g: i32, j: i32, n_head: i32, group: i32, head_dim: i32): usize {
  return q + (<usize>((r * n_head + g * group + j) * head_dim) << 2)
}
// @ts-ignore: decorator
@inline function slotPtr(part: usize, r: i32, h: i32, b: i32, n_head: i32, n_blocks: i32, head_dim: i32): usize {
  return part + (<usize>(((r * n_head + h) * n_blocks + b) * (4 + head_dim)) << 2)
}

// Weights of one query over the first cnt scores of its block at s, the positions it sees
// (scalar): s_t ← e^(s_t − m); writes m and l into the slot, returns l. With cnt = 0 (a block
// past the query): m = −∞, l = 0, which the combine weighs by 0.
// @ts-ignore: decorator
@inline function softmaxBlock(s: usize, cnt: i32, slot: usize): f32 {
  let mx: f32 = -Infinity
  for (let t = 0; t < cnt; t++) mx = max(mx, load<f32>(s + (<usize>t << 2)))
  let l: f32 = 0
  for (let t = 0; t < cnt; t++) {
    const p = s + (<usize>t << 2)
    const e = Mathf.exp(load<f32>(p) - mx)
    store<f32>(p, e)
    l += e
  }
  store<f32>(slot, mx)
  store<f32>(slot, l, 4)
  return l
}

// softmaxBlock in SIMD: max and Σ 4 lanes at a time, e^x by exp4; the tail (cnt % 4) scalar.
// Nothing depends on the block's length, so a query gets the same bytes in a batch or alone.
// @ts-ignore: decorator
@inline function softmaxBlock4(s: usize, cnt: i32, slot: usize): f32 {
  let vmx = f32x4.splat(-Infinity)
  let t = 0
  for (; t + 4 <= cnt; t += 4) vmx = f32x4.max(vmx, v128.load(s + (<usize>t << 2)))
  let mx = max(max(f32x4.extract_lane(vmx, 0), f32x4.extract_lane(vmx, 1)), max(f32x4.extract_lane(vmx, 2), f32x4.extract_lane(vmx, 3)))
  for (; t < cnt; t++) mx = max(mx, load<f32>(s + (<usize>t << 2)))
  const vm = f32x4.splat(mx)
  let vl = f32x4.splat(0)
  for (t = 0; t + 4 <= cnt; t += 4) {
    const p = s + (<usize>t << 2)
    const e = exp4(f32x4.sub(v128.load(p), vm))
    v128.store(p, e)
    vl = f32x4.add(vl, e)
  }
  let l = hsum(vl)
  for (; t < cnt; t++) {
    const p = s + (<usize>t << 2)
    const e = Mathf.exp(load<f32>(p) - mx)
    store<f32>(p, e)
    l += e
  }
  store<f32>(slot, mx)
  store<f32>(slot, l, 4)
  return l
}

// e^x for x ≤ 0 on 4 lanes (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, degree-5 minimax
// polynomial, × 2^n built in the exponent bits): ≤ 2 ulp; x < −87 (weights below 1e-38) is
// clamped to e^−87.
// @ts-ignore: decorator
@inline function exp4(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(-87))
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)))
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)))
  let p = f32x4.splat(1.9875691500e-4)
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1))
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1))
  return f32x4.mul(y, i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23))
}

// The partial kernels' item loop: item (g, b), its n·group queries, three phases (scores,
// block softmax, weighted values). `score` and `values` are the SIMD or scalar inner parts.
// @ts-ignore: decorator
@inline function partial<T>(q: usize, kc: usize, vc: usize, att: usize, part: usize, out: usize,
                            n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                            first: i32, end: i32): void {
  const group = n_head / n_head_kv
  const kv_dim = n_head_kv * head_dim
  const scale: f32 = <f32>1 / sqrt<f32>(<f32>head_dim)
  const n_blocks = (n_pos + n - 1 + block - 1) / block
  const items = span(n_head_kv * n_blocks, first, end)
  // 2^112 for half → float, from a runtime value (V8 ≥ 14 re-materialises v128 constants per use)
  const magic = f32x4.splat(reinterpret<f32>(0x77800000 | (<u32>head_dim >>> 31)))
  for (let it = <i32>(items >> 32); it < <i32>items; it++) {
    const g = it / n_blocks, b = it % n_blocks
    const t0 = b * block, len = min(block, n_pos + n - 1 - t0)
    const sc = att + (<usize>(it * n * group * block) << 2)
    const kb = kc + <usize>(t0 * kv_dim + g * head_dim) * sizeof<T>()
    const vb = vc + <usize>(t0 * kv_dim + g * head_dim) * sizeof<T>()
    const rowStride = <usize>kv_dim * sizeof<T>()
    // scores: every key row once, for every row that sees it, 4 heads of the group at a time
    for (let t = 0; t < len; t++) {
      const k = kb + <usize>t * rowStride
      for (let r = max(0, t0 + t + 1 - n_pos); r < n; r++) {
        let j = 0
        for (; j + 4 <= group; j += 4) {
          score4<T>(k, qPtr(q, r, g, j, n_head, group, head_dim), head_dim, scale,
                    sc + (<usize>(((r * group + j) * block) + t) << 2), <usize>block << 2, magic)
        }
        for (; j < group; j++) {
          store<f32>(sc + (<usize>(((r * group + j) * block) + t) << 2),
                     dot8<T>(k, qPtr(q, r, g, j, n_head, group, head_dim), head_dim, magic) * scale)
        }
      }
    }
    for (let r = 0; r < n; r++) {
      const cnt = max(0, min(len, n_pos + r - t0)) // positions of the block row r sees
      // weights, and where each head's result goes: its slot (acc) or, with one block, out (acc / l)
      for (let j = 0; j < group; j++) {
        const slot = slotPtr(part, r, g * group + j, b, n_head, n_blocks, head_dim)
        const l = softmaxBlock4(sc + (<usize>((r * group + j) * block) << 2), cnt, slot)
        store<f32>(slot, n_blocks == 1 ? <f32>1 / l : 1, 8) // multiplier of acc, read by values*
      }
      // values: every value row it sees once per 8 dims, for 4 heads at a time
      let j = 0
      for (; j + 4 <= group; j += 4) values4<T>(vb, rowStride, cnt, sc + (<usize>((r * group + j) * block) << 2), <usize>block << 2,
                                                 part, out, r, g * group + j, b, n_head, n_blocks, head_dim, magic)
      for (; j < group; j++) values1<T>(vb, rowStride, cnt, sc + (<usize>((r * group + j) * block) << 2),
                                         part, out, r, g * group + j, b, n_head, n_blocks, head_dim, magic)
    }
  }
}

// Dims i..i+4 (lo) and i+4..i+8 (hi) of a row as f32x4: loads of f32, or exact half → float
// (magnitude bits << 13, × 2^112, sign bit moved to bit 31: the trick of half.ts in SIMD, by
// shifts only, so that one constant register is all it takes next to 8 accumulators).
// @ts-ignore: decorator
@inline function lo8<T>(row: usize, i: i32, magic: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(row + (<usize>i << 2))
  return h2f(i32x4.extend_low_i16x8_u(v128.load(row + (<usize>i << 1))), magic)
}
// @ts-ignore: decorator
@inline function hi8<T>(row: usize, i: i32, magic: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(row + (<usize>i << 2), 16)
  return h2f(i32x4.extend_high_i16x8_u(v128.load(row + (<usize>i << 1))), magic)
}
// @ts-ignore: decorator
@inline function h2f(x: v128, magic: v128): v128 { // x: halves zero-extended to 32 bits
  return v128.or(f32x4.mul(i32x4.shr_u(i32x4.shl(x, 17), 4), magic), i32x4.shl(i32x4.shr_u(x, 15), 31))
}
// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3)
}

// q·k over head_dim (a multiple of 8) for one query.
// @ts-ignore: decorator
@inline function dot8<T>(k: usize, qh: usize, head_dim: i32, magic: v128): f32 {
  let a0 = f32x4.splat(0), a1 = a0
  for (let i = 0; i < head_dim; i += 8) {
    const p = qh + (<usize>i << 2)
    a0 = f32x4.add(a0, f32x4.mul(v128.load(p), lo8<T>(k, i, magic)))
    a1 = f32x4.add(a1, f32x4.mul(v128.load(p, 16), hi8<T>(k, i, magic)))
  }
  return hsum(f32x4.add(a0, a1))
}

// q_j·k · scale for 4 consecutive heads q_j = q0 + j·head_dim, one pass over k; score j at s + j·ss.
// @ts-ignore: decorator
@inline function score4<T>(k: usize, q0: usize, head_dim: i32, scale: f32, s: usize, ss: usize,
                           magic: v128): void {
  const qs = <usize>head_dim << 2
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0
  for (let i = 0; i < head_dim; i += 8) {
    const x0 = lo8<T>(k, i, magic), x1 = hi8<T>(k, i, magic)
    const p = q0 + (<usize>i << 2)
    a0 = f32x4.add(a0, f32x4.add(f32x4.mul(v128.load(p), x0), f32x4.mul(v128.load(p, 16), x1)))
    a1 = f32x4.add(a1, f32x4.add(f32x4.mul(v128.load(p + qs), x0), f32x4.mul(v128.load(p + qs, 16), x1)))
    a2 = f32x4.add(a2, f32x4.add(f32x4.mul(v128.load(p + 2 * qs), x0), f32x4.mul(v128.load(p + 2 * qs, 16), x1)))
    a3 = f32x4.add(a3, f32x4.add(f32x4.mul(v128.load(p + 3 * qs), x0), f32x4.mul(v128.load(p + 3 * qs, 16), x1)))
  }
  store<f32>(s, hsum(a0) * scale)
  store<f32>(s + ss, hsum(a1) * scale)
  store<f32>(s + 2 * ss, hsum(a2) * scale)
  store<f32>(s + 3 * ss, hsum(a3) * scale)
}

// Σ_t<cnt w_j[t] · v_t for heads h..h+4 (weights w_j = w + j·ws), 8 dims at a time in registers,
// then × the multiplier in the slot (1, or 1/l with one block) into the slot or out.
// @ts-ignore: decorator
@inline function values4<T>(vb: usize, rowStride: usize, cnt: i32, w: usize, ws: usize,
                            part: usize, out: usize, r: i32, h: i32, b: i32, n_head: i32, n_blocks: i32, head_dim: i32,
                            magic: v128): void {
  const s0 = slotPtr(part, r, h, b, n_head, n_blocks, head_dim), ss = <usize>(n_blocks * (4 + head_dim)) << 2 // next head's slot
  const d0 = dest(s0, out, r, h, n_head, n_blocks, head_dim), ds = n_blocks == 1 ? <usize>head_dim << 2 : ss
  const m0 = f32x4.splat(load<f32>(s0, 8)), m1 = f32x4.splat(load<f32>(s0 + ss, 8))
  const m2 = f32x4.splat(load<f32>(s0 + 2 * ss, 8)), m3 = f32x4.splat(load<f32>(s0 + 3 * ss, 8))
  for (let i = 0; i < head_dim; i += 8) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0
    for (let t = 0; t < cnt; t++) {
      const v = vb + <usize>t * rowStride
      const x0 = lo8<T>(v, i, magic), x1 = hi8<T>(v, i, magic)
      const wt = w + (<usize>t << 2)
      // one weight splat live at a time: 8 accumulators + 2 values + 1 weight + 2^112 fit the registers
      let p = v128.load32_splat(wt)
      a0 = f32x4.add(a0, f32x4.mul(p, x0)); c0 = f32x4.add(c0, f32x4.mul(p, x1))
      p = v128.load32_splat(wt + ws)
      a1 = f32x4.add(a1, f32x4.mul(p, x0)); c1 = f32x4.add(c1, f32x4.mul(p, x1))
      p = v128.load32_splat(wt + 2 * ws)
      a2 = f32x4.add(a2, f32x4.mul(p, x0)); c2 = f32x4.add(c2, f32x4.mul(p, x1))
      p = v128.load32_splat(wt + 3 * ws)
      a3 = f32x4.add(a3, f32x4.mul(p, x0)); c3 = f32x4.add(c3, f32x4.mul(p, x1))
    }
    const o = <usize>i << 2
    v128.store(d0 + o, f32x4.mul(a0, m0)); v128.store(d0 + o, f32x4.mul(c0, m0), 16)
    v128.store(d0 + ds + o, f32x4.mul(a1, m1)); v128.store(d0 + ds + o, f32x4.mul(c1, m1), 16)
    v128.store(d0 + 2 * ds + o, f32x4.mul(a2, m2)); v128.store(d0 + 2 * ds + o, f32x4.mul(c2, m2), 16)
    v128.store(d0 + 3 * ds + o, f32x4.mul(a3, m3)); v128.store(d0 + 3 * ds + o, f32x4.mul(c3, m3), 16)
  }
}

// values4 for one head.
// @ts-ignore: decorator
@inline function values1<T>(vb: usize, rowStride: usize, cnt: i32, w: usize,
                            part: usize, out: usize, r: i32, h: i32, b: i32, n_head: i32, n_blocks: i32, head_dim: i32,
                            magic: v128): void {
  const s0 = slotPtr(part, r, h, b, n_head, n_blocks, head_dim)
  const d0 = dest(s0, out, r, h, n_head, n_blocks, head_dim)
  const m0 = f32x4.splat(load<f32>(s0, 8))
  for (let i = 0; i < head_dim; i += 8) {
    let a0 = f32x4.splat(0), c0 = a0
    for (let t = 0; t < cnt; t++) {
      const v = vb + <usize>t * rowStride
      const p0 = v128.load32_splat(w + (<usize>t << 2))
      a0 = f32x4.add(a0, f32x4.mul(p0, lo8<T>(v, i, magic)))
      c0 = f32x4.add(c0, f32x4.mul(p0, hi8<T>(v, i, magic)))
    }
    const o = <usize>i << 2
    v128.store(d0 + o, f32x4.mul(a0, m0)); v128.store(d0 + o, f32x4.mul(c0, m0), 16)
  }
}

// Where head h's weighted values go: its slot's acc, or with a single block out[r][h].
// @ts-ignore: decorator
@inline function dest(slot: usize, out: usize, r: i32, h: i32, n_head: i32, n_blocks: i32, head_dim: i32): usize {
  return n_blocks == 1 ? out + (<usize>((r * n_head + h) * head_dim) << 2) : slot + 16
}

// The scalar twin: same items, same outputs, plain loops, one query head at a time.
// @ts-ignore: decorator
@inline function partial_ref<T>(q: usize, kc: usize, vc: usize, att: usize, part: usize, out: usize,
                                n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                first: i32, end: i32): void {
  const group = n_head / n_head_kv
  const kv_dim = n_head_kv * head_dim
  const scale: f32 = <f32>1 / sqrt<f32>(<f32>head_dim)
  const n_blocks = (n_pos + n - 1 + block - 1) / block
  const items = span(n_head_kv * n_blocks, first, end)
  for (let it = <i32>(items >> 32); it < <i32>items; it++) {
    const g = it / n_blocks, b = it % n_blocks
    const t0 = b * block, len = min(block, n_pos + n - 1 - t0)
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < group; j++) {
        const h = g * group + j
        const qh = qPtr(q, r, g, j, n_head, group, head_dim)
        const sc = att + (<usize>((it * n * group + r * group + j) * block) << 2)
        const cnt = max(0, min(len, n_pos + r - t0))
        for (let t = 0; t < cnt; t++) {
          const k = kc + <usize>((t0 + t) * kv_dim + g * head_dim) * sizeof<T>()
          let s: f32 = 0
          for (let i = 0; i < head_dim; i++) s += load<f32>(qh + (<usize>i << 2)) * elem<T>(k, i)
          store<f32>(sc + (<usize>t << 2), s * scale)
        }
        const slot = slotPtr(part, r, h, b, n_head, n_blocks, head_dim)
        const l = softmaxBlock(sc, cnt, slot)
        const mul: f32 = n_blocks == 1 ? <f32>1 / l : 1
        const d = dest(slot, out, r, h, n_head, n_blocks, head_dim)
        for (let i = 0; i < head_dim; i++) {
          let acc: f32 = 0
          for (let t = 0; t < cnt; t++) {
            acc += load<f32>(sc + (<usize>t << 2)) * elem<T>(vc + <usize>((t0 + t) * kv_dim + g * head_dim) * sizeof<T>(), i)
          }
          store<f32>(d + (<usize>i << 2), acc * mul)
        }
      }
    }
  }
}

// Element i of a cache row as f32.
// @ts-ignore: decorator
@inline function elem<T>(row: usize, i: i32): f32 {
  if (sizeof<T>() == 4) return load<f32>(row + (<usize>i << 2))
  return f16ToF32(load<u16>(row + (<usize>i << 1)))
}
