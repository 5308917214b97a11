// tiny-dev fixtures and golden.json (an independent float64 reference; see test/fixtures/tiny-dev).
import { readFileSync } from 'node:fs'

export const TINY_DIR = new URL('../fixtures/tiny-dev/', import.meta.url).pathname
export const TINY_GGUF = TINY_DIR + 'ggml-model-i2_s.gguf'

export interface GoldenPrompt {
  text: string
  ids: number[]
  top20_ids: number[][]
  top20_logits: number[][]
  last_logits: number[]
  greedy32_ids: number[]
  greedy32_text: string
  greedy32_top1_top2_margins: number[]
}

export interface Golden {
  prompts: GoldenPrompt[]
  /** ppl over span_ids in chunks of `chunk`; chunk_mean_nll: each chunk's mean NLL. */
  val_ppl: { span_ids: number[]; chunk: number; ppl: number; chunk_mean_nll: number[] }
}

let golden: Golden | undefined
export function loadGolden(): Golden {
  golden ??= JSON.parse(readFileSync(TINY_DIR + 'golden.json', 'utf8')) as Golden
  return golden
}

/** The golden chat prompt's text starts with <|begin_of_text|> and gets no second BOS. */
export const promptAddsBos = (p: GoldenPrompt): boolean => !p.text.startsWith('<|begin_of_text|>')

/** Number of greedy steps that must match: up to the first step whose golden margin < 0.02. */
export function greedyComparable(p: GoldenPrompt): number {
  const i = p.greedy32_top1_top2_margins.findIndex((m) => m < 0.02)
  return i < 0 ? p.greedy32_ids.length : i
}

/** Compares logits at every position with the golden top-20 per the stated tolerances. */
export function compareTop20(p: GoldenPrompt, logits: ArrayLike<number>[]): {
  entries: number; over: number; maxDiff: number; argmaxChecked: number; argmaxWrong: number
} {
  let entries = 0, over = 0, maxDiff = 0, argmaxChecked = 0, argmaxWrong = 0
  p.top20_ids.forEach((ids, pos) => {
    const ours = logits[pos]
    ids.forEach((id, j) => {
      const d = Math.abs(ours[id] - p.top20_logits[pos][j])
      entries++
      if (d > 0.05) over++
      maxDiff = Math.max(maxDiff, d)
    })
    if (p.top20_logits[pos][0] - p.top20_logits[pos][1] > 0.2) {
      argmaxChecked++
      let best = 0
      for (let i = 1; i < ours.length; i++) if (ours[i] > ours[best]) best = i
      if (best !== ids[0]) argmaxWrong++
    }
  })
  return { entries, over, maxDiff, argmaxChecked, argmaxWrong }
}

/**
 * '' when a and b are bit-identical, else where and how they first differ. Logits are compared
 * with this, not toEqual: vitest's deep equality takes ~0.5 s per 32k floats on a busy machine,
 * seconds a row of tiny-dev's 128k-token vocabulary.
 */
export function firstDifference(a: Float32Array, b: Float32Array): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length)
  const i = ua.findIndex((x, j) => x !== ub[j])
  return i < 0 ? '' : `logit ${i}: ${a[i]} vs ${b[i]} (${ua.filter((x, j) => x !== ub[j]).length} differ)`
}
