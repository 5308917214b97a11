/**
 * Draft tokens for speculative decoding, taken from the text itself (prompt lookup, n-gram
 * drafts): when the last tokens of prompt + generated text occurred earlier, the tokens that
 * followed them there are a guess of what follows now. Input-grounded answers (summaries,
 * edits, JSON extracted from a given text) copy spans of their prompt, so the guess is often
 * right for several tokens in a row. The session verifies a draft in one batched pass over
 * [last token, drafts…] at consecutive positions (each weight is read once for all rows) and
 * keeps the tokens the model itself picks; a wrong guess costs time, never output.
 *
 * Drafts come only from an earlier occurrence of at least MIN_MATCH tokens (free text rarely
 * repeats three tokens; a copy in progress matches many). How many tokens to draft weighs
 * the expected gain against the measured cost of a wider pass: with a the running rate at
 * which a drafted token is accepted when the ones before it were, k drafts yield
 * 1 + a + … + aᵏ tokens for a pass of k + 1 rows, which costs PASS_COST[k] one-row steps; the
 * k with the most tokens per step wins (0: plain decoding). Steps without a draft let the rate
 * drift back up, so a rate that fell too low to draft recovers and probes again.
 */

/** Longest suffix (in tokens) compared when looking for an earlier occurrence. */
const MAX_NGRAM = 16
/** Shortest earlier occurrence a draft is taken from. */
const MIN_MATCH = 3
/**
 * Time of a pass of k + 1 rows of one cache relative to a one-row step, k = 0..7: tiny-dev
 * padded to the 2B4T shape, 2 threads (the default), relaxed build, wall time (`bench/lookup.mjs
 * --rows`, medians of 5 runs on a quiet machine, 2026-12-05 14:32 UTC, with the Q6B head's 4-
 * and 2-token tiles). The batched ternary kernel unpacks each weight once for 2 tokens (4-row ×
 * 2-token tiles) and the head once for 4, yet the multiply-adds are the same per row, so an
 * extra row still costs ~0.5–0.7 of a step; a pass of 4 rows is the cheapest per row. Re-measure
 * when the kernels change.
 */
export const PASS_COST = [1, 1.51, 2.26, 2.63, 3.33, 4.01, 4.61, 5.25]
/** Weight of the newest verification in the running acceptance rate. */
const RATE_WEIGHT = 0.25
/** Steps without a draft move the rate back towards its start by this fraction. */
const RATE_RELAX = 0.05
const RATE_START = 0.9

/**
 * Prompt-lookup draft source of one generation (it keeps the running acceptance rate).
 *
 * @example
 * ```ts
 * const lookup = new PromptLookup(7)
 * const drafts = lookup.draft([4, 5, 6, 7, 8, 4, 5, 6], 3) // [7, 8, 4]: what followed "4 5 6" before (rate permitting)
 * lookup.record(drafts.length, 2)                    // the model accepted the first two
 * ```
 */
export class PromptLookup {
  /** Running probability that a drafted token is accepted after its predecessors were. */
  #rate = RATE_START

  /** @param maxDraft most tokens per draft (a pass holds the last token + the drafts). */
  constructor(readonly maxDraft: number) {}

  /** The running acceptance rate per drafted token. */
  get rate(): number {
    return this.#rate
  }

  /**
   * Up to `room` tokens that followed the longest earlier occurrence (the most recent among
   * equally long ones) of the end of `history`; none when nothing recurs or the acceptance
   * rate says a draft would not pay.
   */
  draft(history: readonly number[], room: number): number[] {
    const want = this.#worthwhile(Math.min(room, this.maxDraft, PASS_COST.length - 1))
    const { end, length } = want > 0 ? longestEarlierMatch(history) : { end: -1, length: 0 }
    if (length < MIN_MATCH) {
      this.#rate += RATE_RELAX * (RATE_START - this.#rate)
      return []
    }
    return history.slice(end + 1, end + 1 + want)
  }

  /** Updates the acceptance rate after a verification: `accepted` of `drafted` tokens kept. */
  record(drafted: number, accepted: number): void {
    // Trials: every accepted token, plus the one that was rejected (if any).
    const trials = accepted + (accepted < drafted ? 1 : 0)
    for (let i = 0; i < trials; i++) this.#rate += RATE_WEIGHT * ((i < accepted ? 1 : 0) - this.#rate)
  }

  // The draft length k ≤ max with the most expected tokens per unit of pass time.
  #worthwhile(max: number): number {
    let best = 0, bestRate = 1, expected = 1, p = 1
    for (let k = 1; k <= max; k++) {
      p *= this.#rate
      expected += p
      if (expected / PASS_COST[k] > bestRate) { best = k; bestRate = expected / PASS_COST[k] }
    }
    return best
  }
}

/**
 * The earlier occurrence of history's longest recurring suffix (≤ MAX_NGRAM tokens; the most
 * recent on a tie): its end index (< history.length − 1) and length, or end −1. A backward
 * scan: O(length × match) per token, tens of µs at a few thousand tokens next to a decode
 * step of tens of ms.
 */
export function longestEarlierMatch(history: readonly number[]): { end: number; length: number } {
  const n = history.length
  let end = -1, length = 0
  for (let e = n - 2; e >= 0 && length < MAX_NGRAM; e--) {
    let len = 0
    while (len < MAX_NGRAM && len <= e && history[e - len] === history[n - 1 - len]) len++
    if (len > length) { end = e; length = len }
  }
  return { end, length }
}
