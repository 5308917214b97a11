// Speculative decoding from the prompt (`draft: 'prompt-lookup'`) on tiny-dev: the draft
// source alone, then the output against plain decoding: greedy and seeded sampling give the
// same tokens (every sampler option, grammar, logprobs), rejected drafts leave no trace in the
// cache, and the emitted tokens follow the exact sampling distribution (a chi-square test
// against the model's own probabilities).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, loadModel, type BitnetModel, type GenerateOptions } from '../src/index.js'
import { longestEarlierMatch, PASS_COST, PromptLookup } from '../src/generation/prompt-lookup.js'
import { TINY_GGUF } from './helpers/golden.js'

describe('the draft source', () => {
  it('finds the longest earlier occurrence of the end, the most recent on a tie', () => {
    //                    0  1  2  3  4  5  6  7  8  9
    expect(longestEarlierMatch([1, 2, 3, 9, 2, 3, 8, 1, 2, 3])).toEqual({ end: 2, length: 3 }) // beats "2 3" at 4..5
    expect(longestEarlierMatch([5, 7, 1, 5, 8, 5])).toEqual({ end: 3, length: 1 }) // the most recent "5"
    expect(longestEarlierMatch([1, 2, 3, 4]).end).toBe(-1)
    expect(longestEarlierMatch([4]).end).toBe(-1)
    expect(longestEarlierMatch([4, 4, 4, 4])).toEqual({ end: 2, length: 3 }) // overlapping
  })

  it('drafts what followed a match of 3+ tokens, within the room, as long as it pays', () => {
    const lookup = new PromptLookup(7)
    const history = [10, 11, 12, 13, 14, 15, 16, 17, 10, 11, 12]
    // Expected tokens per unit of pass time of n drafts at the running rate.
    const gain = (n: number) => Array.from({ length: n + 1 }, (_, i) => lookup.rate ** i).reduce((a, b) => a + b) / PASS_COST[n]
    // Start rate 0.9: 3 drafts (a pass of 4 rows) give the most tokens per unit of time ...
    expect(lookup.draft(history, 7)).toEqual([13, 14, 15])
    // ... and within less room, the best length that fits (2 rows pay: PASS_COST[1] < 1.9 steps)
    const two = lookup.draft(history, 2)
    expect(two).toEqual([13, 14].slice(0, two.length))
    for (let n = 0; n <= 2; n++) expect(gain(two.length)).toBeGreaterThanOrEqual(gain(n))
    expect(lookup.draft(history, 1)).toEqual([13])
    expect(lookup.draft(history, 0)).toEqual([])
    expect(lookup.draft([1, 2, 3, 1, 2], 7)).toEqual([]) // a 2-token match is too weak
    // Rejections lower the rate until no draft pays ...
    while (lookup.rate > 0.2) lookup.record(3, 0) // well below the rate a 2-row pass needs: PASS_COST[1] − 1
    expect(lookup.draft(history, 7)).toEqual([])
    // ... steps without a draft let it drift back until it probes again ...
    let steps = 0
    while (lookup.draft(history, 7).length === 0) steps++
    expect(steps).toBeGreaterThan(2)
    expect(steps).toBeLessThan(40)
    // ... and a rate near 1 makes drafts as long as they pay.
    for (let i = 0; i < 6; i++) lookup.record(3, 3)
    expect(lookup.rate).toBeGreaterThan(0.95)
    const k = lookup.draft(history, 7).length
    for (let n = 0; n < 8; n++) expect(gain(k)).toBeGreaterThanOrEqual(gain(n))
  })
})

const VERSES = 'And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness.'
const PROMPTS = [
  `${VERSES}\n${VERSES.slice(0, 37)}`, // copies its input
  'And the LORD spake unto Moses, saying,', // tiny-dev repeats its own output
  'In the beginning God created the heaven and the earth.', // free text
  'the the the the the the the the', // degenerate repetition
]

let model: BitnetModel
beforeAll(async () => { model = await loadModel(TINY_GGUF, { threads: 1, contextSize: 256 }) })
afterAll(() => model?.dispose())

// A generation with and without drafts, each on a fresh session.
async function both(prompt: string, opts: GenerateOptions) {
  const [a, b] = [model.createSession(), model.createSession()]
  const plain = await a.generate(prompt, { ...opts, draft: false })
  const drafted = await b.generate(prompt, { ...opts, draft: 'prompt-lookup' })
  const cached = [a.tokens, b.tokens]
  a.dispose(); b.dispose()
  return { plain, drafted, cached }
}

describe('output with drafts equals plain decoding', { timeout: 300_000 }, () => {
  it('greedy: same tokens, same cache, drafts accepted and rejected', async () => {
    let accepted = 0, rejected = 0
    for (const prompt of PROMPTS) {
      const { plain, drafted, cached } = await both(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true })
      expect(drafted.tokens).toEqual(plain.tokens)
      expect(drafted.text).toBe(plain.text)
      expect(drafted.usage).toEqual(plain.usage)
      expect(plain.timings.draftTokens).toBe(0)
      // The cache holds what plain decoding fed: the prompt and every token but the last.
      expect(cached[1]).toEqual(cached[0])
      accepted += drafted.timings.draftAccepted
      rejected += drafted.timings.draftTokens - drafted.timings.draftAccepted
    }
    expect(accepted).toBeGreaterThan(20)
    expect(rejected).toBeGreaterThan(0)
  })

  it('seeded sampling: same tokens with penalties, top-k/top-p/min-p, typical-p, logit bias, logprobs', async () => {
    const configs: GenerateOptions[] = [
      { temperature: 0.5, seed: 1 },
      { temperature: 1.3, topK: 0, topP: 1, minP: 0, seed: 2 },
      { temperature: 0.6, topK: 5, topP: 0.9, minP: 0.1, repeatPenalty: 1.1, frequencyPenalty: 0.1, presencePenalty: 0.1, seed: 3 },
      { temperature: 0.5, typicalP: 0.8, logitBias: { 279: -2, 323: 1.5 }, seed: 4, topLogprobs: 3 },
    ]
    let accepted = 0
    for (const opts of configs) {
      for (const prompt of [PROMPTS[1], PROMPTS[3]]) {
        const { plain, drafted, cached } = await both(prompt, { ...opts, maxTokens: 32 })
        expect(drafted.tokens).toEqual(plain.tokens)
        expect(drafted.logprobs).toEqual(plain.logprobs)
        expect(drafted.finishReason).toBe(plain.finishReason)
        expect(cached[1]).toEqual(cached[0])
        accepted += drafted.timings.draftAccepted
      }
    }
    expect(accepted).toBeGreaterThan(5)
  })

  it('structured output: the grammar state follows every accepted draft', async () => {
    const responseFormat = { type: 'json_schema', schema: { type: 'object', properties: { text: { type: 'string' }, again: { type: 'string' } }, required: ['text', 'again'] } } as const
    const prompt = `${VERSES}\nAs JSON: {"text": "${VERSES.slice(0, 30)}", "again": "${VERSES.slice(0, 12)}`
    for (const opts of [{ temperature: 0 }, { temperature: 0.9, seed: 7 }]) {
      const { plain, drafted } = await both(prompt, { ...opts, maxTokens: 48, responseFormat })
      expect(drafted.tokens).toEqual(plain.tokens)
      expect(drafted.finishReason).toBe(plain.finishReason)
    }
  })

  it('stop strings, maxTokens, streaming order and a later turn on the same session', async () => {
    const prompt = PROMPTS[0]
    const opts = { temperature: 0, maxTokens: 40, ignoreEos: true }
    const full = await model.createSession().generate(prompt, { ...opts, draft: false })
    // A stop string in the middle of a verified run of tokens: the text ends before it.
    const stop = full.text.slice(12, 18)
    const { plain, drafted, cached } = await both(prompt, { ...opts, stop: [stop] })
    expect(drafted.text).toBe(plain.text)
    expect(drafted.tokens).toEqual(plain.tokens)
    expect(drafted.finishReason).toBe('stop')
    expect(cached[1]).toEqual(cached[0])
    for (const maxTokens of [1, 2, 3, 9]) {
      const r = await both(prompt, { ...opts, maxTokens })
      expect(r.drafted.tokens).toEqual(r.plain.tokens)
      expect(r.drafted.tokens.length).toBe(maxTokens)
    }
    // Streaming yields the same chunks in the same order.
    const s = model.createSession()
    const chunks: number[] = []
    for await (const c of s.generate(prompt, { ...opts, draft: 'prompt-lookup' })) chunks.push(c.tokenId)
    expect(chunks.filter((t) => t >= 0)).toEqual(full.tokens)
    // The next turn reuses the cache: rejected drafts' keys/values must not be seen.
    const next = `${prompt}${full.text} And God said`
    const again = await s.generate(next, { ...opts, draft: 'prompt-lookup' })
    const fresh = await model.createSession().generate(next, { ...opts, draft: false })
    expect(again.tokens).toEqual(fresh.tokens)
    expect(again.usage.cachedTokens).toBeGreaterThan(0)
    s.dispose()
  })

  it('an abort stops within one token; a bad option is a typed error', async () => {
    const ac = new AbortController()
    const s = model.createSession()
    const seen: number[] = []
    for await (const c of s.generate(PROMPTS[0], { temperature: 0, maxTokens: 40, draft: 'prompt-lookup', signal: ac.signal })) {
      seen.push(c.tokenId)
      if (seen.length === 5) ac.abort()
    }
    expect(seen.filter((t) => t >= 0).length).toBe(5)
    // The cache holds the prompt and the tokens fed before the abort, nothing drafted after.
    expect(s.tokens.length).toBe(model.tokenize(PROMPTS[0]).length + 4)
    s.dispose()
    await expect(model.generate('x', { draft: 'ngram' as never })).rejects.toThrow(InvalidArgumentError)
  })
})

describe('sampled tokens follow the exact distribution', { timeout: 300_000 }, () => {
  // Temperature 1, no truncation: the sampler draws from softmax(logits). The second token is
  // always the verification pass's first row, where the drafted token is accepted with
  // probability p(d) and otherwise replaced by a draw from p without d. Over many seeds the
  // pairs (t1, t2) must fit p(t1)·p(t2 | t1), computed from the model's logits.
  it('chi-square of (t1, t2) against the model probabilities', async () => {
    const prompt = model.tokenize(`${VERSES}\n${VERSES.slice(0, 54)}`)
    const opts = { temperature: 1, topK: 0, topP: 1, minP: 0, maxTokens: 5, ignoreEos: true, draft: 'prompt-lookup' as const }
    const N = 200
    const s = model.createSession()
    const counts = new Map<string, number>()
    let drafted = 0
    for (let seed = 0; seed < N; seed++) {
      const r = await s.generate(prompt, { ...opts, seed })
      const key = r.tokens.slice(0, 2).join(',')
      counts.set(key, (counts.get(key) ?? 0) + 1)
      drafted += r.timings.draftTokens > 0 ? 1 : 0
    }
    s.dispose()
    expect(drafted).toBeGreaterThan(N / 5)
    const softmax = (l: Float32Array) => {
      let max = -Infinity
      for (const v of l) max = Math.max(max, v)
      let sum = 0
      for (const v of l) sum += Math.exp(v - max)
      return (id: number) => Math.exp(l[id] - max) / sum
    }
    const p1 = softmax(model.logits(prompt, { lastOnly: true })[0])
    const p2 = new Map<number, (id: number) => number>()
    const prob = (t1: number, t2: number) => {
      if (!p2.has(t1)) p2.set(t1, softmax(model.logits([...prompt, t1], { lastOnly: true })[0]))
      return p1(t1) * p2.get(t1)!(t2)
    }
    // Bins: observed pairs expected ≥ 5 times; everything else pooled.
    let chi = 0, bins = 0, restObs = N, restExp = N
    for (const [key, obs] of counts) {
      const [t1, t2] = key.split(',').map(Number)
      const exp = N * prob(t1, t2)
      if (exp < 5) continue
      chi += (obs - exp) ** 2 / exp
      bins++
      restObs -= obs
      restExp -= exp
    }
    const pooled = restExp > 1e-9
    if (pooled) chi += (restObs - restExp) ** 2 / restExp
    const df = bins - (pooled ? 0 : 1) // bins (+ the pooled one), minus one
    expect(df).toBeGreaterThan(1)
    // 0.999 quantile of chi-square(df), Wilson–Hilferty: a correct sampler fails 1 run in 1000.
    const h = 2 / (9 * df)
    expect(chi).toBeLessThan(df * (1 - h + 3.09 * Math.sqrt(h)) ** 3)
  })
})
