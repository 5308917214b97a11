/**
 * The bounded output head (outputType 'q4+q8'): a decode row's logits from the 4-bit copy of
 * the output matrix (0.6× the bytes of the 8-bit one), then the rows that can still be among
 * what the sampler reads rescored with the 8-bit copy, bit for bit as the full 8-bit pass
 * computes them. Every other token gets −Infinity, which the sampler skips: greedy and top-k
 * (with top-p, min-p, typical-p after it) pick exactly the tokens the q8 head picks.
 *
 * Why it is exact: per row r the loader stores e[r] with |logit8[r] − logit4[r]| ≤ e[r]·‖x̂‖₂
 * for any activation (assembly/formats/q4b.ts, bound_rows_q4b_q8b), so every logit8 lies in
 * [logit4 − B, logit4 + B]. If T is the k-th largest lower bound, k tokens have logit8 ≥ T,
 * and a token whose upper bound is below T has logit8 < T: it is neither among the k largest
 * nor tied with the k-th. Tokens whose logits the sampler changes (logit bias, penalties) are
 * rescored always and left out of T, which only lowers it.
 *
 * Cost: one q4 pass over the matrix, one O(vocab) scan here, and 4·kp bytes per candidate's
 * 4-row group. When the candidates would take more than MAX_GROUP_SHARE of the groups (an
 * untrained model's flat logits), the full q8 pass runs instead.
 */

import type { Kernels } from '../runtime/wasm.js'

/** What a row's sampler reads of its logits (BatchRow.need): without it, all of them. */
export interface LogitNeed {
  /** The k largest logits, exactly (1: greedy). */
  topK: number
  /** Tokens the sampler changes (logit bias, penalties): always exact, left out of the threshold. */
  exactIds: readonly number[]
}

/** Past this share of the 4-row groups, rescoring reads more than the full q8 pass is worth. */
export const MAX_GROUP_SHARE = 1 / 8

/** ‖x̂‖₂ of one row's int8 blocks (x̂_i = scale[i/128] · q[i]: q [kp] i8, scales [kp/128] f32), in f64. */
export function activationNorm(q: Int8Array, scales: Float32Array): number {
  let sum = 0
  for (let b = 0; b < scales.length; b++) {
    let s = 0
    for (let i = b * 128; i < b * 128 + 128; i++) s += q[i] * q[i]
    sum += scales[b] * scales[b] * s
  }
  return Math.sqrt(sum)
}

/** Candidate selection: the group indices to rescore (the first `count` of the list) and the tokens that passed. */
export interface Candidates { count: number; tokens: number }

/** Where the selection works, in wasm memory: the q4 logits (overwritten), the row bounds, the group list (i32 [rows/4]), 8·rows bytes of scratch. */
export interface HeadBuffers { logits: number; bounds: number; groups: number; scratch: number }

/**
 * Picks the rows of the q4 logits (`rows` of them at b.logits) that can be among `need`, with
 * row bounds e · `xnorm`: lists their 4-row groups (ascending, then the forced tokens' groups)
 * and writes −Infinity over every other logit. Returns undefined (logits partly overwritten)
 * when more than `maxGroups` groups would be needed.
 */
export function selectCandidates(k: Kernels, memory: ArrayBufferLike, b: HeadBuffers, rows: number, xnorm: number, need: LogitNeed,
  maxGroups: number): Candidates | undefined {
  const y = new Float32Array(memory, b.logits, rows)
  const forced = [...new Set(need.exactIds)].filter((j) => Number.isInteger(j) && j >= 0 && j < rows)
  // forced tokens are left out of the threshold: −∞ while it is taken
  const saved = forced.map((j) => y[j])
  for (const j of forced) y[j] = -Infinity
  const t = k.kth_lower_bound_f32(b.logits, b.bounds, rows, xnorm, need.topK, b.scratch)
  forced.forEach((j, i) => { y[j] = saved[i] })
  let count = k.select_groups_f32(b.logits, b.bounds, rows, xnorm, t, b.groups, maxGroups, b.scratch)
  if (count < 0) return undefined
  let tokens = new Int32Array(memory, b.scratch, 1)[0]
  // a forced token that did not pass: its group too (its logit was just set to −∞; the rescoring rewrites it)
  const list = new Int32Array(memory, b.groups, Math.ceil(rows / 4))
  const added = new Set<number>()
  for (const j of forced) {
    if (y[j] !== -Infinity || added.has(j >> 2)) continue
    if (count === maxGroups) return undefined
    added.add(j >> 2)
    list[count++] = j >> 2
    tokens++
  }
  return { count, tokens }
}
