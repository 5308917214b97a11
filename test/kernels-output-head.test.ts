// The bounded output head's parts (src/model/output-head.ts): the row bounds of the load
// (bound_rows_q4b_q8b) are never exceeded by |y8 − y4| on random activations, and are nearly
// reached by activations along a row's q8 − q4 difference (the bound is Cauchy–Schwarz, tight
// there); rescore_q8b_i8 gives the listed groups' logits bit for bit as the full q8 pass does
// (SIMD == _ref, any thread split); selectCandidates keeps every token of the true top k (ties
// included) against a brute force.
import { describe, expect, it } from 'vitest'
import { f32ToF16 } from '../src/formats/float.js'
import { activationNorm, selectCandidates } from '../src/model/output-head.js'
import { itemRanges, kernelBench, rng, VARIANTS } from './helpers/kernels.js'

describe.each(VARIANTS)('bounded output head kernels (%s build)', async (variant) => {
  const b = await kernelBench(variant)

  for (const [rows, k] of [[1, 128], [3, 130], [17, 256], [64, 2560], [9, 383], [6, 640]] as const) {
    it(`${rows}×${k}: |y8 − y4| ≤ e·‖x̂‖ on random and on aligned activations; rescored groups == the full pass`, () => {
      const rand = rng(rows * 7 + k)
      const kp = Math.ceil(k / 128) * 128, stored = Math.ceil(rows / 4) * 4, groups = stored / 4
      const half = Uint16Array.from({ length: rows * k }, (_, i) => f32ToF16(i % 89 === 0 ? 3 : (rand() - 0.5) * 4))
      const src = b.alloc(rows * k * 2), w8 = b.alloc(stored * kp), ws8 = b.alloc(stored * kp / 32)
      const w4 = b.alloc(stored * kp / 2), ws4 = b.alloc(stored * kp / 8), e = b.alloc(rows * 4), tmp = b.alloc(8 * k)
      new Uint16Array(b.heap.buffer, src, rows * k).set(half)
      b.k.quantize_rows_f16_q8b(src, rows, k, kp, w8, ws8, 0, rows)
      b.k.quantize_rows_f16_q4b(src, rows, k, kp, w4, ws4, 0, rows)
      for (const [first, end] of itemRanges(rows, 3, k)) b.k.bound_rows_q4b_q8b(w4, ws4, w8, ws8, rows, k, kp, tmp, e, first, end)
      const bound = Array.from(b.f32(e, rows))

      // each row's q8 − q4 difference, dequantized
      const d = b.alloc(k * 4)
      const diff = Array.from({ length: rows }, (_, r) => {
        b.k.dequantize_row_q8b(w8, ws8, r, k, kp, d)
        const d8 = Array.from(b.f32(d, k))
        b.k.dequantize_row_q4b(w4, ws4, r, k, kp, d)
        return Float32Array.from(b.f32(d, k), (v, i) => d8[i] - v)
      })
      const xp = b.alloc(k * 4), xq = b.alloc(kp), xs = b.alloc(kp / 32), xsum = b.alloc(kp / 8)
      const y8 = b.alloc(stored * 4), y4 = b.alloc(rows * 4), y = b.alloc(stored * 4), list = b.alloc(groups * 4)
      const score = (x: Float32Array) => {
        b.f32(xp, k).set(x)
        b.k.quantize_blocks_f32_i8(xp, k, kp, xq, xs, xsum)
        b.k.matmul_q8b_i8(w8, ws8, xq, xs, xsum, y8, rows, kp, 1, 0, groups)
        b.k.matvec_q4b_i8(w4, ws4, xq, xs, xsum, y4, rows, kp, 0, rows)
        const xnorm = activationNorm(b.i8(xq, kp), b.f32(xs, kp / 128))
        return Array.from({ length: rows }, (_, r) => Math.abs(b.f32(y8, rows)[r] - b.f32(y4, rows)[r]) / (bound[r] * xnorm))
      }
      let worst = 0
      for (let trial = 0; trial < 20; trial++) {
        const scale = 10 ** (trial % 5 - 2) // activations from 0.01 to 100
        worst = Math.max(worst, ...score(Float32Array.from({ length: k }, () => (rand() - 0.5) * scale)))
      }
      // along row r's difference the error reaches most of its bound, never more
      for (let r = 0; r < Math.min(rows, 4); r++) {
        const aligned = score(diff[r])[r]
        expect(aligned).toBeGreaterThan(0.9)
        worst = Math.max(worst, aligned)
      }
      expect(worst).toBeLessThanOrEqual(1)

      // rescoring a few groups in any order, split any way: the full pass's values, others untouched
      const picked = Array.from({ length: groups }, (_, g) => g).filter(() => rand() < 0.5).reverse()
      new Int32Array(b.heap.buffer, list, picked.length).set(picked)
      const full = Array.from(b.f32(y8, rows))
      for (const kernel of ['rescore_q8b_i8', 'rescore_q8b_i8_ref'] as const) {
        for (const parts of [1, 2, picked.length + 1]) {
          b.f32(y, rows).fill(NaN)
          for (const [first, end] of itemRanges(picked.length, parts, parts + rows)) b.k[kernel](w8, ws8, xq, xs, xsum, y, rows, kp, list, picked.length, first, end)
          const got = Array.from(b.f32(y, rows))
          got.forEach((v, r) => expect(v, `row ${r}`).toBe(picked.includes(r >> 2) ? full[r] : NaN))
        }
      }
    })
  }
})

describe.each(VARIANTS)('selectCandidates (%s build)', async (variant) => {
  const b = await kernelBench(variant)
  // logits4 = the pass; logits8 somewhere within ±bound of it; the candidates, rescored (their
  // groups take logits8), must hold the same top k as logits8 whole.
  const topK = (v: ArrayLike<number>, k: number) => Array.from(v, (x, i) => [x, i]).filter(([x]) => x > -Infinity)
    .sort((a, c) => c[0] - a[0] || a[1] - c[1]).slice(0, k)
  for (const [vocab, k, tie, exact] of [[1000, 1, false, []], [1003, 40, false, []], [999, 1, true, []], [1000, 40, true, [3, 500, 998, 999]], [64, 63, false, []]] as const) {
    it(`vocab ${vocab}, top ${k}${tie ? ', tied logits' : ''}${exact.length ? ', forced ids' : ''}`, () => {
      const rand = rng(vocab + k)
      const at = { logits: b.alloc(vocab * 4), bounds: b.alloc(vocab * 4), groups: b.alloc(vocab), scratch: b.alloc(vocab * 8) }
      const y = b.f32(at.logits, vocab), bounds = b.f32(at.bounds, vocab), groups = new Int32Array(b.heap.buffer, at.groups, Math.ceil(vocab / 4))
      for (let trial = 0; trial < 30; trial++) {
        // tied: only 8 distinct true values, so the k-th is tied with many
        const logits8 = Float32Array.from({ length: vocab }, () => (tie ? Math.floor(rand() * 8) : (rand() - 0.5) * 20))
        bounds.set(Float32Array.from({ length: vocab }, () => rand() * 0.02))
        const xnorm = 1 + rand() * 10
        // up to the bound (every third trial at it), kept within it after rounding to f32
        const logits4 = Float32Array.from(logits8, (v, j) => v + (trial % 3 === 0 ? Math.sign(rand() - 0.5) : 2 * rand() - 1) * bounds[j] * xnorm)
        logits4.forEach((v, j) => { if (Math.abs(v - logits8[j]) > bounds[j] * xnorm) logits4[j] = logits8[j] })
        y.set(logits4)
        const c = selectCandidates(b.k, b.heap.buffer, at, vocab, xnorm, { topK: k, exactIds: exact }, groups.length)!
        expect(c.count).toBeGreaterThan(0)
        for (let i = 0; i < c.count; i++) for (let j = groups[i] * 4; j < Math.min(vocab, groups[i] * 4 + 4); j++) y[j] = logits8[j]
        expect(topK(y, k)).toEqual(topK(logits8, k))
        for (const j of exact) expect(y[j]).toBe(logits8[j])
        // every logit is exact or −Infinity
        y.forEach((v, j) => { if (v !== -Infinity) expect(v).toBe(logits8[j]) })
        // too many groups for the cap: undefined
        y.set(logits4)
        if (c.count > 1) expect(selectCandidates(b.k, b.heap.buffer, at, vocab, xnorm, { topK: k, exactIds: exact }, c.count - 1)).toBeUndefined()
      }
    })
  }
})
