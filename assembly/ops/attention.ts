// Causal multi-head attention over one layer's KV cache, split over kv heads AND positions
// (flash-decoding), in one thread round. For n queries of n consecutive positions of one
// cache (a decode step: n = 1; a prompt chunk: n ≤ 32):
//
//   q      [n][n_head][head_dim]          f32, after RoPE; row r sees positions 0..n_pos + r)
//   kc, vc [ctx][n_head_kv][head_dim]     the layer's cache, f32 or IEEE half (T = f32 | u16)
//   att    [items][n·group][block] f32    scratch: scores, then weights; one slice per item
//   part   [n][n_head][n_blocks][4 + head_dim] f32   per (row, head, block): m, l, w, –, acc
//   count  [n_head_kv] i32                blocks done per kv head: zero before the round
//   tiles  slots for widened tiles (below), or 0
//   out    [n][n_head][head_dim]          f32
//
// Items = n_head_kv × n_blocks, item (g, b) = kv head g over positions [b·block, (b+1)·block).
// Its queries are the n·group pairs (row r, head j of the group) sharing kv head g (GQA: query
// head h uses kv head h / group), taken G at a time in (r, j) order: 6 from a widened tile (a
// prompt chunk on an f16 cache) in the relaxed build, else 4. A tile of TILE positions at a
// time it computes scores G queries × 2 keys in registers (each key vector serves G queries,
// each query vector 2 keys), keeping each query's max as it goes, and weighted values G
// queries × 8 dims, per query
//   s_t = q·k_t / √head_dim,   m = max s_t,   l = Σ e^(s_t − m),   acc = Σ e^(s_t − m) · v_t
// over the positions t of the block that the query sees. The item that finishes the last
// block of kv head g (count[g]) then combines its heads exactly:
//   out = Σ_b e^(m_b − M) · acc_b / Σ_b e^(m_b − M) · l_b,   M = max_b m_b
// With one block (n_pos + n − 1 ≤ block), the item writes out = acc / l itself.
// The blocks are fixed by `block`, not by the thread count, and the combine adds them in
// block order whichever item runs it: results do not depend on how items are cut into chunks
// nor on their order.
//
// An f16 cache is widened to f32 by integer ops (lo4, lo8). When its rows serve more than one
// group of queries (a prompt chunk), each tile of key rows, then of value rows, is widened once
// into a slot of `tiles` that every group then reads: tiles = [slots, floats per slot] (i32),
// from byte 64 one claim flag per slot on its own 64-byte line, then the slots. A call claims a
// free slot for its items; with none free (more calls in flight than slots) or none given it
// widens in registers: the same values, so the same bytes.
//
// Every score is one f32x4 sum over head_dim in ascending order, reduced (s0 + s2) + (s1 + s3),
// every acc lane adds its positions in ascending order, and a max is exact in any order,
// whatever the group: a query gets the same bytes alone (a decode step) or in any batch. The
// SIMD kernels need head_dim % 8 == 0 (8 dims = 16 bytes of halves per load); the scalar _ref
// twins take any head_dim and agree with them to float rounding (dot products and sums are
// accumulated in another order).

import { f16ToF32 } from './half'
import { span } from './split'

/** Attention on an f32 cache (SIMD), items [first, end) of n_head_kv × n_blocks; see the file comment. */
export function attention_partial_f32(q: usize, kc: usize, vc: usize, att: usize, part: usize, count: usize, tiles: usize, out: usize,
                                      n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                      first: i32, end: i32): void {
  partial<f32>(q, kc, vc, att, part, count, tiles, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Attention on an f16 cache (SIMD). */
export function attention_partial_f16(q: usize, kc: usize, vc: usize, att: usize, part: usize, count: usize, tiles: usize, out: usize,
                                      n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                      first: i32, end: i32): void {
  partial<u16>(q, kc, vc, att, part, count, tiles, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Scalar twin of attention_partial_f32 (any head_dim; `tiles` unused). */
export function attention_partial_f32_ref(q: usize, kc: usize, vc: usize, att: usize, part: usize, count: usize, tiles: usize, out: usize,
                                          n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                          first: i32, end: i32): void {
  partial_ref<f32>(q, kc, vc, att, part, count, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

/** Scalar twin of attention_partial_f16 (any head_dim; `tiles` unused). */
export function attention_partial_f16_ref(q: usize, kc: usize, vc: usize, att: usize, part: usize, count: usize, tiles: usize, out: usize,
                                          n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                                          first: i32, end: i32): void {
  partial_ref<u16>(q, kc, vc, att, part, count, out, n, n_head, n_head_kv, head_dim, n_pos, block, first, end)
}

// A finished item's block of kv head g counted; true for the item that finishes the last
// block of g, which then combines them. count[g] is zero before the round; the atomic add
// orders every other block's slot stores before this item's reads of them.
// @ts-ignore: decorator
@inline function lastBlock(count: usize, g: i32, n_blocks: i32): bool {
  const c = count + (<usize>g << 2)
  if (ASC_FEATURE_THREADS) return atomic.add<i32>(c, 1) == n_blocks - 1
  const done = load<i32>(c) + 1 // one thread: no other item runs meanwhile
  store<i32>(c, done)
  return done == n_blocks
}

// out[r][h] for the heads h0..h0+heads of every row from their n_blocks partial results,
// the blocks in order whoever runs it: out = Σ_b e^(m_b − M)·acc_b / Σ_b e^(m_b − M)·l_b.
// 4 dims per vector, each lane summing over b as a scalar loop would (the same bytes).
// @ts-ignore: decorator
@inline function combine(part: usize, out: usize, n: i32, n_head: i32, h0: i32, heads: i32, head_dim: i32, n_blocks: i32): void {
  const slot = <usize>(4 + head_dim) << 2
  for (let r = 0; r < n; r++) {
    for (let h = h0; h < h0 + heads; h++) {
      const p = slotPtr(part, r, h, 0, n_head, n_blocks, head_dim)
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
      const o = out + (<usize>((r * n_head + h) * head_dim) << 2)
      let i = 0
      for (; i + 4 <= head_dim; i += 4) {
        let acc = f32x4.splat(0)
        for (let b = 0; b < n_blocks; b++) {
          const s = p + <usize>b * slot
          acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(s + 8), v128.load(s + 16 + (<usize>i << 2))))
        }
        v128.store(o + (<usize>i << 2), f32x4.mul(acc, f32x4.splat(inv)))
      }
      for (; i < head_dim; i++) {
        let acc: f32 = 0
        for (let b = 0; b < n_blocks; b++) {
          const s = p + <usize>b * slot
          acc += load<f32>(s, 8) * load<f32>(s + 16 + (<usize>i << 2))
        }
        store<f32>(o + (<usize>i << 2), acc * inv)
      }
    }
  }
}

// Where query (r, head j of the group) of item (g, b) finds its inputs and puts its results.
// @ts-ignore: decorator
@inline function qPtr(q: usize, r: i32, g: i32, j: i32, n_head: i32, group: i32, head_dim: i32): usize {
  return q + (<usize>((r * n_head + g * group + j) * head_dim) << 2)
}
// The slot of query Q (row Q / group, head g·group + Q % group) of item (g, b).
// @ts-ignore: decorator
@inline function slotOf(part: usize, Q: i32, g: i32, group: i32, b: i32, n_head: i32, n_blocks: i32, head_dim: i32): usize {
  return slotPtr(part, Q / group, g * group + Q % group, b, n_head, n_blocks, head_dim)
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

// softmaxBlock in SIMD: Σ 4 lanes at a time, e^x by exp4; the tail (cnt % 4) scalar. The
// max over the block is the one the scores phase kept in the slot (scoreRows) when the query
// sees all len positions, else (a row before the last of a chunk, in the last block) taken
// here: a max is exact in any order, so the query gets the same m, and the same bytes, in a
// batch or alone. The weights are stored × wscale (l is their plain sum).
// @ts-ignore: decorator
@inline function softmaxBlock4(s: usize, cnt: i32, len: i32, slot: usize, wscale: f32): f32 {
  let mx = load<f32>(slot)
  if (cnt < len) {
    let vmx = f32x4.splat(-Infinity)
    let t = 0
    for (; t + 4 <= cnt; t += 4) vmx = f32x4.pmax(vmx, v128.load(s + (<usize>t << 2))) // one maxps (max() is a NaN-exact sequence)
    mx = max(max(f32x4.extract_lane(vmx, 0), f32x4.extract_lane(vmx, 1)), max(f32x4.extract_lane(vmx, 2), f32x4.extract_lane(vmx, 3)))
    for (; t < cnt; t++) mx = max(mx, load<f32>(s + (<usize>t << 2)))
  }
  let t = 0
  const vm = f32x4.splat(mx), vw = f32x4.splat(wscale)
  let vl = f32x4.splat(0)
  for (; t + 4 <= cnt; t += 4) {
    const p = s + (<usize>t << 2)
    const e = exp4(f32x4.sub(v128.load(p), vm))
    v128.store(p, f32x4.mul(e, vw))
    vl = f32x4.add(vl, e)
  }
  let l = hsum(vl)
  for (; t < cnt; t++) {
    const p = s + (<usize>t << 2)
    const e = Mathf.exp(load<f32>(p) - mx)
    store<f32>(p, e * wscale)
    l += e
  }
  store<f32>(slot, mx)
  store<f32>(slot, l, 4)
  return l
}

// e^x for x ≤ 0 on 4 lanes (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, degree-5 minimax
// polynomial, × 2^n built in the exponent bits): ≤ 2 ulp; x < −87 (weights below 1e-38) is
// clamped to e^−87. Single instructions on x64 only (pmax, no trunc_sat): the integer n + 127
// is the low mantissa bits of n + 2^23 + 127, which << 23 puts in the exponent field.
// @ts-ignore: decorator
@inline function exp4(x: v128): v128 {
  x = f32x4.pmax(x, f32x4.splat(-87))
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)))
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)))
  let p = f32x4.splat(1.9875691500e-4)
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1))
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1))
  return f32x4.mul(y, i32x4.shl(f32x4.add(n, f32x4.splat(8388735)), 23)) // 2^23 + 127
}

// Positions per tile: scores and weighted values run over the block a tile at a time, all
// queries per tile, so the tile's key (then value) rows stay in L1 (32 × head_dim floats:
// 16 KB at head_dim 128) while every group of queries uses them.
const TILE = 32
// An f16 cache widens to k·2^−112 (lo4, lo8); the queries are taken ×2^100 (score × 2^−12, undone
// in the scale) and the weights ×2^112, so that every product is that of the true values.
const Q_SCALE: f32 = 1.2676506002282294e30 // 2^100
const W_SCALE: f32 = 5.192296858534828e33 // 2^112

// A free slot of `tiles` claimed for a call (its index), or −1: none free, none given, or too
// small for a tile of head_dim. The flag of a slot is 1 while a call holds it.
// @ts-ignore: decorator
@inline function claimTile(tiles: usize, head_dim: i32): i32 {
  if (!tiles || TILE * head_dim > load<i32>(tiles, 4)) return -1
  const slots = load<i32>(tiles)
  for (let i = 0; i < slots; i++) {
    const flag = tiles + 64 + (<usize>i << 6)
    if (ASC_FEATURE_THREADS) {
      if (atomic.cmpxchg<i32>(flag, 0, 1) == 0) return i
    } else if (!load<i32>(flag)) { // one thread: no other call runs meanwhile
      store<i32>(flag, 1)
      return i
    }
  }
  return -1
}
// @ts-ignore: decorator
@inline function tileAt(tiles: usize, i: i32): usize {
  return tiles + 64 + (<usize>load<i32>(tiles) << 6) + (<usize>(i * load<i32>(tiles, 4)) << 2)
}
// @ts-ignore: decorator
@inline function releaseTile(tiles: usize, i: i32): void {
  if (ASC_FEATURE_THREADS) atomic.store<i32>(tiles + 64 + (<usize>i << 6), 0)
  else store<i32>(tiles + 64 + (<usize>i << 6), 0)
}

// The partial kernels' item loop: item (g, b), its n·group queries, three phases (scores,
// block softmax, weighted values), the first and last a tile of positions at a time.
// @ts-ignore: decorator
@inline function partial<T>(q: usize, kc: usize, vc: usize, att: usize, part: usize, count: usize, tiles: usize, out: usize,
                            n: i32, n_head: i32, n_head_kv: i32, head_dim: i32, n_pos: i32, block: i32,
                            first: i32, end: i32): void {
  const half = sizeof<T>() == 2
  const group = n_head / n_head_kv, nq = n * group
  const kv_dim = n_head_kv * head_dim
  const scale = f32x4.splat(<f32>1 / sqrt<f32>(<f32>head_dim) * (half ? <f32>4096 : 1)) // × 2^12 with Q_SCALE
  const n_blocks = (n_pos + n - 1 + block - 1) / block
  const items = span(n_head_kv * n_blocks, first, end)
  // 0x8fffffff for half → float, from a runtime value (V8 ≥ 14 re-materialises v128 constants per use)
  const mask = i32x4.splat(0x8fffffff | (<u32>head_dim >>> 31))
  const ss = <usize>(n_blocks * (4 + head_dim)) << 2 // from a head's slot to the next head's
  const ws = <usize>block << 2 // from a query's scores to the next query's
  const rowStride = <usize>kv_dim * sizeof<T>(), tileRow = <usize>head_dim << 2
  // an f16 cache whose rows serve more than 4 queries: widened once per tile into a slot
  const held = half && nq > 4 ? claimTile(tiles, head_dim) : -1
  const tiled = held >= 0, tile = tiled ? tileAt(tiles, held) : 0
  // queries per key (value) load: 6 from an f32 tile with fused multiply-adds (12 sums + 2
  // keys + 1 query: 15 of the 16 x64 vector registers), else 4 (the mask of halves, or the
  // product between multiply and add, takes a register: 6 would spill)
  const six = tiled && ASC_FEATURE_RELAXED_SIMD, G = six ? 6 : 4
  for (let it = <i32>(items >> 32); it < <i32>items; it++) {
    const g = it / n_blocks, b = it % n_blocks
    const t0 = b * block, len = min(block, n_pos + n - 1 - t0)
    const sc = att + (<usize>(it * nq * block) << 2)
    const kb = kc + <usize>(t0 * kv_dim + g * head_dim) * sizeof<T>()
    const vb = vc + <usize>(t0 * kv_dim + g * head_dim) * sizeof<T>()
    touchRows(kb, rowStride, len, <usize>head_dim * sizeof<T>(), sc)
    touchRows(vb, rowStride, len, <usize>head_dim * sizeof<T>(), sc)
    // query (r, j) at qb + r·qr + j·qs: q itself, or (f16) q × 2^100 in the acc of the item's
    // slots, which the values phase overwrites only after the last score
    let qb = qPtr(q, 0, g, 0, n_head, group, head_dim), qs = <usize>head_dim << 2, qr = <usize>(n_head * head_dim) << 2
    if (half) {
      qb = slotPtr(part, 0, g * group, b, n_head, n_blocks, head_dim) + 16
      qr = <usize>n_head * ss
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < group; j++) scaleRow(qPtr(q, r, g, j, n_head, group, head_dim), qb + <usize>r * qr + <usize>j * ss, head_dim)
      }
      qs = ss
    }
    // scores of every query over all len positions (a query reads only those it sees), and
    // their max in each query's slot (m); the queries G at a time, the last group repeating
    // its last query where nq % G ≠ 0 (the same bytes stored twice)
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < group; j++) store<f32>(slotPtr(part, r, g * group + j, b, n_head, n_blocks, head_dim), -Infinity)
    }
    for (let tt = 0; tt < len; tt += TILE) {
      const rows = min(len, tt + TILE) - tt, k = kb + <usize>tt * rowStride
      if (tiled) widen(k, rowStride, rows, head_dim, tile, mask)
      for (let Q = 0; Q < nq; Q += G) {
        const Q1 = min(Q + 1, nq - 1), Q2 = min(Q + 2, nq - 1), Q3 = min(Q + 3, nq - 1), Q4 = min(Q + 4, nq - 1), Q5 = min(Q + 5, nq - 1)
        const p0 = queryAt(qb, qr, qs, Q, group), p1 = queryAt(qb, qr, qs, Q1, group), p2 = queryAt(qb, qr, qs, Q2, group)
        const p3 = queryAt(qb, qr, qs, Q3, group), p4 = queryAt(qb, qr, qs, Q4, group), p5 = queryAt(qb, qr, qs, Q5, group)
        const s = sc + (<usize>tt << 2)
        const s0 = s + <usize>Q * ws, s1 = s + <usize>Q1 * ws, s2 = s + <usize>Q2 * ws, s3 = s + <usize>Q3 * ws, s4 = s + <usize>Q4 * ws, s5 = s + <usize>Q5 * ws
        const z0 = slotOf(part, Q, g, group, b, n_head, n_blocks, head_dim), z1 = slotOf(part, Q1, g, group, b, n_head, n_blocks, head_dim)
        const z2 = slotOf(part, Q2, g, group, b, n_head, n_blocks, head_dim), z3 = slotOf(part, Q3, g, group, b, n_head, n_blocks, head_dim)
        const z4 = slotOf(part, Q4, g, group, b, n_head, n_blocks, head_dim), z5 = slotOf(part, Q5, g, group, b, n_head, n_blocks, head_dim)
        if (tiled) scoreRows<f32>(tile, tileRow, rows, p0, p1, p2, p3, p4, p5, s0, s1, s2, s3, s4, s5, z0, z1, z2, z3, z4, z5, head_dim, scale, mask, ASC_FEATURE_RELAXED_SIMD)
        else scoreRows<T>(k, rowStride, rows, p0, p1, p2, p3, p4, p5, s0, s1, s2, s3, s4, s5, z0, z1, z2, z3, z4, z5, head_dim, scale, mask, false)
      }
    }
    // weights (0 past the positions a query sees), and what each query's sum is multiplied
    // by: 1, or with one block 1 / l (into out)
    for (let r = 0; r < n; r++) {
      const cnt = max(0, min(len, n_pos + r - t0)) // positions of the block row r sees
      for (let j = 0; j < group; j++) {
        const slot = slotPtr(part, r, g * group + j, b, n_head, n_blocks, head_dim), w = sc + <usize>(r * group + j) * ws
        const l = softmaxBlock4(w, cnt, len, slot, half ? W_SCALE : 1)
        for (let t = cnt; t < len; t++) store<f32>(w + (<usize>t << 2), 0)
        store<f32>(slot, n_blocks == 1 ? <f32>1 / l : 1, 8)
      }
    }
    // values: each value row of a tile once per 8 dims and group of queries, over the positions
    // its last query sees (the others' weights past theirs are 0: exact zeros added); the sums
    // go on from tile to tile in their destination, so they add the positions in order as in one pass
    for (let tt = 0; tt < len; tt += TILE) {
      const te = min(len, tt + TILE), v = vb + <usize>tt * rowStride
      if (tiled) widen(v, rowStride, te - tt, head_dim, tile, mask)
      for (let Q = 0; Q < nq; Q += G) {
        const Q1 = min(Q + 1, nq - 1), Q2 = min(Q + 2, nq - 1), Q3 = min(Q + 3, nq - 1), Q4 = min(Q + 4, nq - 1), Q5 = min(Q + 5, nq - 1)
        const cnt = max(0, min(len, n_pos + min(Q + G - 1, nq - 1) / group - t0))
        if (tt > 0 && tt >= cnt) continue
        const e = min(cnt, te)
        const span = <i32>(tt == 0) | <i32>(e == cnt) << 1 // first tile: sums from 0; last: × multiplier
        const z0 = slotOf(part, Q, g, group, b, n_head, n_blocks, head_dim), z1 = slotOf(part, Q1, g, group, b, n_head, n_blocks, head_dim)
        const z2 = slotOf(part, Q2, g, group, b, n_head, n_blocks, head_dim), z3 = slotOf(part, Q3, g, group, b, n_head, n_blocks, head_dim)
        const z4 = slotOf(part, Q4, g, group, b, n_head, n_blocks, head_dim), z5 = slotOf(part, Q5, g, group, b, n_head, n_blocks, head_dim)
        const w = sc + (<usize>tt << 2)
        const w0 = w + <usize>Q * ws, w1 = w + <usize>Q1 * ws, w2 = w + <usize>Q2 * ws, w3 = w + <usize>Q3 * ws, w4 = w + <usize>Q4 * ws, w5 = w + <usize>Q5 * ws
        const d0 = dest(z0, out, Q / group, g * group + Q % group, n_head, n_blocks, head_dim)
        const d1 = dest(z1, out, Q1 / group, g * group + Q1 % group, n_head, n_blocks, head_dim)
        const d2 = dest(z2, out, Q2 / group, g * group + Q2 % group, n_head, n_blocks, head_dim)
        const d3 = dest(z3, out, Q3 / group, g * group + Q3 % group, n_head, n_blocks, head_dim)
        const d4 = dest(z4, out, Q4 / group, g * group + Q4 % group, n_head, n_blocks, head_dim)
        const d5 = dest(z5, out, Q5 / group, g * group + Q5 % group, n_head, n_blocks, head_dim)
        if (tiled) valuesRows<f32>(tile, tileRow, e - tt, w0, w1, w2, w3, w4, w5, z0, z1, z2, z3, z4, z5, d0, d1, d2, d3, d4, d5, span, head_dim, mask, ASC_FEATURE_RELAXED_SIMD)
        else valuesRows<T>(v, rowStride, e - tt, w0, w1, w2, w3, w4, w5, z0, z1, z2, z3, z4, z5, d0, d1, d2, d3, d4, d5, span, head_dim, mask, false)
      }
    }
    if (n_blocks > 1 && lastBlock(count, g, n_blocks)) combine(part, out, n, n_head, g * group, group, head_dim, n_blocks)
  }
  if (tiled) releaseTile(tiles, held)
}

// One load per 64-byte line of `rows` rows of `bytes` each (stride apart), before an item reads
// its keys and values: a layer's cache is cold at every visit (the whole model's weights stream
// through the caches between two), and the kernel's own loads, a few per step of its FMA
// chains, have too few misses in flight to hide DRAM latency; these independent loads have
// many. Decode (n = 1, 2B4T, f16 cache, 160 positions, cold): 0.82× the kernel's time alone,
// 57-67 µs a layer against 67-83 in the engine; n = 32 prompt rows: unchanged (bench/README.md,
// session 13). What they read is OR-ed into *sink, scratch that the scores overwrite (the
// store keeps the loads from being optimised away).
// @ts-ignore: decorator
@inline function touchRows(p: usize, stride: usize, rows: i32, bytes: usize, sink: usize): void {
  let x = 0
  for (let t = 0; t < rows; t++) {
    const r = p + <usize>t * stride
    for (let o: usize = 0; o < bytes; o += 64) x |= load<i32>(r + o)
  }
  store<i32>(sink, x)
}

// Query Q = (row Q / group, head Q % group of the group) of an item.
// @ts-ignore: decorator
@inline function queryAt(qb: usize, qr: usize, qs: usize, Q: i32, group: i32): usize {
  return qb + <usize>(Q / group) * qr + <usize>(Q % group) * qs
}

// dst = src × 2^100 over head_dim (a multiple of 8) floats.
// @ts-ignore: decorator
@inline function scaleRow(src: usize, dst: usize, head_dim: i32): void {
  const f = f32x4.splat(Q_SCALE)
  for (let i = 0; i < head_dim; i += 4) v128.store(dst + (<usize>i << 2), f32x4.mul(v128.load(src + (<usize>i << 2)), f))
}

// Rows of halves (stride bytes apart) → rows of head_dim floats × 2^−112 at dst: a widened tile.
// @ts-ignore: decorator
@inline function widen(src: usize, stride: usize, rows: i32, head_dim: i32, dst: usize, mask: v128): void {
  for (let t = 0; t < rows; t++) {
    const s = src + <usize>t * stride, d = dst + (<usize>(t * head_dim) << 2)
    for (let i = 0; i < head_dim; i += 8) {
      v128.store(d + (<usize>i << 2), lo8<u16>(s, i, mask))
      v128.store(d + (<usize>i << 2), hi8<u16>(s, i, mask), 16)
    }
  }
}

// Dims i..i+4 of a row as f32x4: a load of f32, or 4 halves → float × 2^−112 exactly (sign-extended
// bits << 13, the three copies of the sign above the exponent cleared: one extending load, two
// integer ops and one constant register, no float multiply).
// @ts-ignore: decorator
@inline function lo4<T>(row: usize, i: i32, mask: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(row + (<usize>i << 2))
  return v128.and(i32x4.shl(v128.load16x4_s(row + (<usize>i << 1)), 13), mask)
}
// Dims i..i+4 (lo8) and i+4..i+8 (hi8) of a row, likewise from one 16-byte load of halves.
// @ts-ignore: decorator
@inline function lo8<T>(row: usize, i: i32, mask: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(row + (<usize>i << 2))
  return v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(v128.load(row + (<usize>i << 1))), 13), mask)
}
// @ts-ignore: decorator
@inline function hi8<T>(row: usize, i: i32, mask: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(row + (<usize>i << 2), 16)
  return v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(v128.load(row + (<usize>i << 1))), 13), mask)
}
// a·b + c: one fused multiply-add (relaxed build; x64 FMA3, arm64) or two operations. The
// rounding differs between builds, never between threads or runs of one build.
// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c)
  return f32x4.add(f32x4.mul(a, b), c)
}
// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3)
}
// [h(a), h(b), h(c), h(d)] with h(x) = (x0 + x2) + (x1 + x3): four dot products' lanes summed at once.
// @ts-ignore: decorator
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 4, 1, 5), f32x4.shuffle(a, b, 2, 6, 3, 7)) // a0+a2, b0+b2, a1+a3, b1+b3
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 4, 1, 5), f32x4.shuffle(c, d, 2, 6, 3, 7))
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 1, 4, 5), f32x4.shuffle(ab, cd, 2, 3, 6, 7))
}

// The max m of a query's scores so far (its slot's first float) and mx.
// @ts-ignore: decorator
@inline function keepMax(slot: usize, mx: f32): void {
  store<f32>(slot, max(load<f32>(slot), mx))
}

// Scores q_j·k_t · scale of 4 queries, or with six 6 (rows p0..p5) × `rows` keys (k + t·ks,
// K = f32 or half), into s_j[t]: 2 keys at a time, 8 or 12 sums in registers; an odd last key
// is paired with itself. Each query's max over them goes into its slot's m (z_j), which saves
// softmaxBlock4 a pass over the scores. Each score is reduced alike in either width.
// @ts-ignore: decorator
@inline function scoreRows<K>(k: usize, ks: usize, rows: i32, p0: usize, p1: usize, p2: usize, p3: usize, p4: usize, p5: usize,
                              s0: usize, s1: usize, s2: usize, s3: usize, s4: usize, s5: usize,
                              z0: usize, z1: usize, z2: usize, z3: usize, z4: usize, z5: usize,
                              head_dim: i32, scale: v128, mask: v128, six: bool): void {
  let vmx = f32x4.splat(-Infinity), vmy = vmx
  for (let t = 0; t < rows; t += 2) {
    const u = min(t + 1, rows - 1)
    const k0 = k + <usize>t * ks, k1 = k + <usize>u * ks
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0
    for (let i = 0; i < head_dim; i += 4) {
      const x = lo4<K>(k0, i, mask), y = lo4<K>(k1, i, mask)
      const o = <usize>i << 2
      let p = v128.load(p0 + o)
      a0 = madd(p, x, a0); b0 = madd(p, y, b0)
      p = v128.load(p1 + o)
      a1 = madd(p, x, a1); b1 = madd(p, y, b1)
      p = v128.load(p2 + o)
      a2 = madd(p, x, a2); b2 = madd(p, y, b2)
      p = v128.load(p3 + o)
      a3 = madd(p, x, a3); b3 = madd(p, y, b3)
      if (six) {
        p = v128.load(p4 + o)
        a4 = madd(p, x, a4); b4 = madd(p, y, b4)
        p = v128.load(p5 + o)
        a5 = madd(p, x, a5); b5 = madd(p, y, b5)
      }
    }
    const sx = f32x4.mul(reduce4(a0, a1, a2, a3), scale), sy = f32x4.mul(reduce4(b0, b1, b2, b3), scale)
    vmx = f32x4.pmax(vmx, f32x4.pmax(sx, sy))
    const ot = <usize>t << 2, ou = <usize>u << 2
    v128.store32_lane(s0 + ot, sx, 0); v128.store32_lane(s1 + ot, sx, 1); v128.store32_lane(s2 + ot, sx, 2); v128.store32_lane(s3 + ot, sx, 3)
    v128.store32_lane(s0 + ou, sy, 0); v128.store32_lane(s1 + ou, sy, 1); v128.store32_lane(s2 + ou, sy, 2); v128.store32_lane(s3 + ou, sy, 3)
    if (six) {
      const sz = f32x4.mul(reduce4(a4, a5, b4, b5), scale) // s4(t), s5(t), s4(u), s5(u)
      vmy = f32x4.pmax(vmy, sz)
      v128.store32_lane(s4 + ot, sz, 0); v128.store32_lane(s5 + ot, sz, 1); v128.store32_lane(s4 + ou, sz, 2); v128.store32_lane(s5 + ou, sz, 3)
    }
  }
  keepMax(z0, f32x4.extract_lane(vmx, 0)); keepMax(z1, f32x4.extract_lane(vmx, 1))
  keepMax(z2, f32x4.extract_lane(vmx, 2)); keepMax(z3, f32x4.extract_lane(vmx, 3))
  if (six) {
    keepMax(z4, max(f32x4.extract_lane(vmy, 0), f32x4.extract_lane(vmy, 2)))
    keepMax(z5, max(f32x4.extract_lane(vmy, 1), f32x4.extract_lane(vmy, 3)))
  }
}

// Σ_{t<cnt} w_j[t] · v_t for 4 queries, or with six 6 (weights w0..w5, slots z0..z5, sums at
// d0..d5) over value rows v + t·vs (K = f32 or half), 8 dims at a time in registers: span bit 0
// (first tile) starts the sums at 0, else they go on from d_j; bit 1 (last tile) multiplies
// them by the slot's multiplier. A repeated query computes and stores the same bytes twice.
// @ts-ignore: decorator
@inline function valuesRows<K>(v: usize, vs: usize, cnt: i32, w0: usize, w1: usize, w2: usize, w3: usize, w4: usize, w5: usize,
                               z0: usize, z1: usize, z2: usize, z3: usize, z4: usize, z5: usize,
                               d0: usize, d1: usize, d2: usize, d3: usize, d4: usize, d5: usize,
                               span: i32, head_dim: i32, mask: v128, six: bool): void {
  for (let i = 0; i < head_dim; i += 8) {
    const o = <usize>i << 2
    let a0 = sum(d0 + o, span), c0 = sum(d0 + o + 16, span), a1 = sum(d1 + o, span), c1 = sum(d1 + o + 16, span)
    let a2 = sum(d2 + o, span), c2 = sum(d2 + o + 16, span), a3 = sum(d3 + o, span), c3 = sum(d3 + o + 16, span)
    let a4 = a0, c4 = a0, a5 = a0, c5 = a0
    if (six) {
      a4 = sum(d4 + o, span); c4 = sum(d4 + o + 16, span); a5 = sum(d5 + o, span); c5 = sum(d5 + o + 16, span)
    }
    for (let t = 0; t < cnt; t++) {
      const row = v + <usize>t * vs
      const x0 = lo8<K>(row, i, mask), x1 = hi8<K>(row, i, mask)
      const wt = <usize>t << 2
      // one weight splat live at a time: 8 accumulators + 2 values + 1 weight + the mask fit the registers
      let p = v128.load32_splat(w0 + wt)
      a0 = madd(p, x0, a0); c0 = madd(p, x1, c0)
      p = v128.load32_splat(w1 + wt)
      a1 = madd(p, x0, a1); c1 = madd(p, x1, c1)
      p = v128.load32_splat(w2 + wt)
      a2 = madd(p, x0, a2); c2 = madd(p, x1, c2)
      p = v128.load32_splat(w3 + wt)
      a3 = madd(p, x0, a3); c3 = madd(p, x1, c3)
      if (six) {
        p = v128.load32_splat(w4 + wt)
        a4 = madd(p, x0, a4); c4 = madd(p, x1, c4)
        p = v128.load32_splat(w5 + wt)
        a5 = madd(p, x0, a5); c5 = madd(p, x1, c5)
      }
    }
    // the multipliers after the loop: no register held through it
    storeSums(d0 + o, a0, c0, z0, span); storeSums(d1 + o, a1, c1, z1, span)
    storeSums(d2 + o, a2, c2, z2, span); storeSums(d3 + o, a3, c3, z3, span)
    if (six) { storeSums(d4 + o, a4, c4, z4, span); storeSums(d5 + o, a5, c5, z5, span) }
  }
}

// 8 sums of a query (a: dims 0..3, c: 4..7) stored at d × what its slot z says (multiplier).
// @ts-ignore: decorator
@inline function storeSums(d: usize, a: v128, c: v128, z: usize, span: i32): void {
  const m = multiplier(z, span)
  v128.store(d, f32x4.mul(a, m))
  v128.store(d, f32x4.mul(c, m), 16)
}

// A tile's starting sums: 0 on the first tile, else those the previous tile left at p.
// @ts-ignore: decorator
@inline function sum(p: usize, span: i32): v128 {
  return span & 1 ? f32x4.splat(0) : v128.load(p)
}
// What a tile's sums are stored × : the slot's multiplier on the last tile, else 1.
// @ts-ignore: decorator
@inline function multiplier(slot: usize, span: i32): v128 {
  return f32x4.splat(span & 2 ? load<f32>(slot, 8) : 1)
}

// Where head h's weighted values go: its slot's acc, or with a single block out[r][h].
// @ts-ignore: decorator
@inline function dest(slot: usize, out: usize, r: i32, h: i32, n_head: i32, n_blocks: i32, head_dim: i32): usize {
  return n_blocks == 1 ? out + (<usize>((r * n_head + h) * head_dim) << 2) : slot + 16
}

// The scalar twin: same items, same outputs, plain loops, one query head at a time.
// @ts-ignore: decorator
@inline function partial_ref<T>(q: usize, kc: usize, vc: usize, att: usize, part: usize, count: usize, out: usize,
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
    if (n_blocks > 1 && lastBlock(count, g, n_blocks)) combine(part, out, n, n_head, g * group, group, head_dim, n_blocks)
  }
}

// Element i of a cache row as f32.
// @ts-ignore: decorator
@inline function elem<T>(row: usize, i: i32): f32 {
  if (sizeof<T>() == 4) return load<f32>(row + (<usize>i << 2))
  return f16ToF32(load<u16>(row + (<usize>i << 1)))
}
