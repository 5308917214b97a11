/**
 * Sampler tests: greedy, seeding, the support of top-k / top-p / min-p, penalties, and that plain
 * temperature-1 sampling follows the softmax.
 */
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, NumericalError } from '../src/errors.js'
import { argmax, DEFAULT_SAMPLER_OPTIONS, Sampler, type SamplerOptions } from '../src/generation/sampler.js'

const OFF = { topK: 0, topP: 1, minP: 0 } // all truncation disabled

/** Logits whose softmax is exactly `probs`. */
const logitsOf = (probs: number[]) => Float32Array.from(probs, Math.log)

/** Deterministic pseudo-random logits (LCG), roughly N(0, 2)-spread like a real model's. */
function randomLogits(n: number, seed: number): Float32Array {
  let s = seed >>> 0
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = 2 * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u())
  return out
}

const draw = (sampler: Sampler, logits: Float32Array, times: number, history: number[] = []) =>
  Array.from({ length: times }, () => sampler.sample(logits, history))

describe('sampler: greedy', () => {
  it('temperature 0 is argmax, ties to the lowest id', () => {
    const s = new Sampler({ temperature: 0 })
    expect(s.sample(new Float32Array([0.1, 3, -2, 2.9]))).toBe(1)
    expect(s.sample(new Float32Array([1, 5, 5, 5]))).toBe(1)
    expect(argmax([NaN, -1, NaN])).toBe(1)
  })

  it("greedy asks the engine's argmax first: its pick, its −1 as the all-masked error, undefined falls back", () => {
    const logits = new Float32Array([0.1, 3, -2, 2.9])
    const seen: Float32Array[] = []
    const engine = (pick: number | undefined) => (l: Float32Array) => { seen.push(l); return pick }
    expect(new Sampler({ temperature: 0 }, engine(2)).sample(logits)).toBe(2) // the engine's word is taken
    expect(seen[0]).toBe(logits) // the logits themselves, no copy
    expect(new Sampler({ temperature: 0 }, engine(undefined)).sample(logits)).toBe(1)
    expect(() => new Sampler({ temperature: 0 }, engine(-1)).sample(logits)).toThrow(NumericalError)
    // penalties work on a copy: the engine sees that copy (and, not holding it, declines)
    seen.length = 0
    expect(new Sampler({ temperature: 0, repeatPenalty: 10 }, engine(undefined)).sample(logits, [1])).toBe(3)
    expect(seen[0]).not.toBe(logits)
    seen.length = 0
    new Sampler({ temperature: 0.7, seed: 1 }, engine(0)).sample(logits)
    expect(seen).toEqual([]) // only greedy asks
  })

  it('top-k = 1 equals greedy', () => {
    for (let seed = 0; seed < 20; seed++) {
      const logits = randomLogits(1000, seed)
      const s = new Sampler({ temperature: 1.5, topK: 1, seed })
      expect(s.sample(logits)).toBe(argmax(logits))
    }
  })

  it('all -Infinity/NaN logits is a NumericalError', () => {
    const bad = new Float32Array([-Infinity, NaN])
    expect(() => new Sampler({ temperature: 0 }).sample(bad)).toThrow(NumericalError)
    expect(() => new Sampler({ seed: 1 }).sample(bad)).toThrow(NumericalError)
    expect(() => new Sampler({ seed: 1, topK: 0 }).sample(bad)).toThrow(NumericalError)
  })
})

describe('sampler: seeding', () => {
  const logits = randomLogits(128256, 7)

  it.each([{}, { topK: 0 }, { topK: 0, topP: 1 }, { ...OFF }])('same seed, same tokens (%j)', (opts) => {
    const a = draw(new Sampler({ ...opts, temperature: 1.2, seed: 1234 }), logits, 50)
    const b = draw(new Sampler({ ...opts, temperature: 1.2, seed: 1234 }), logits, 50)
    const c = draw(new Sampler({ ...opts, temperature: 1.2, seed: 1235 }), logits, 50)
    expect(a).toEqual(b)
    expect(c).not.toEqual(a)
  })

  it('exposes a random seed when none is given', () => {
    const s = new Sampler()
    expect(Number.isInteger(s.seed)).toBe(true)
    const again = new Sampler({ seed: s.seed })
    expect(draw(again, logits, 10)).toEqual(draw(new Sampler({ seed: s.seed }), logits, 10))
  })

  it('does not modify the logits', () => {
    const copy = logits.slice()
    new Sampler({ seed: 1, repeatPenalty: 1.3, frequencyPenalty: 0.5 }).sample(logits, [1, 2, 3])
    expect(logits).toEqual(copy)
  })
})

describe('sampler: truncation', () => {
  const probs = [0.5, 0.3, 0.15, 0.05]

  it.each([0, 40])('top-p keeps the smallest prefix reaching p (topK %i)', (topK) => {
    const s = new Sampler({ ...OFF, topK, topP: 0.75, temperature: 1, seed: 3 })
    const seen = new Set(draw(s, logitsOf(probs), 3000))
    expect([...seen].sort()).toEqual([0, 1])
  })

  it.each([0, 40])('min-p drops tokens below minP x max prob (topK %i)', (topK) => {
    const s = new Sampler({ ...OFF, topK, minP: 0.2, temperature: 1, seed: 4 })
    const seen = new Set(draw(s, logitsOf(probs), 3000))
    expect([...seen].sort()).toEqual([0, 1, 2]) // 0.05 < 0.2 * 0.5
  })

  it('top-k keeps the k best', () => {
    const s = new Sampler({ ...OFF, topK: 2, temperature: 5, seed: 5 })
    expect(new Set(draw(s, logitsOf(probs), 2000))).toEqual(new Set([0, 1]))
  })

  /** The top-p nucleus by brute force: sort the whole vocabulary, walk until the mass reaches p. */
  function nucleusOf(logits: Float32Array, p: number): Set<number> {
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b)
    const weights = order.map((id) => Math.exp(logits[id] - logits[order[0]]))
    const total = weights.reduce((x, y) => x + y, 0)
    const nucleus = new Set<number>()
    for (let i = 0, cum = 0; cum < p * total; i++) { cum += weights[i]; nucleus.add(order[i]) }
    return nucleus
  }

  it.each([
    ['peaked', 14, 400],
    ['flat', 0, 40], // ~10^5 tokens in the nucleus: exercises the big sort
  ])('top-p without top-k on a full vocabulary stays inside the brute-force nucleus (%s)', (_, boost, times) => {
    const logits = randomLogits(128256, 11)
    for (let i = 0; i < 50; i++) logits[i * 997] += boost // a handful of likely tokens over a long tail
    const nucleus = nucleusOf(logits, 0.9)
    const s = new Sampler({ topK: 0, topP: 0.9, minP: 0, temperature: 1, seed: 6 })
    const seen = new Set(draw(s, logits, times))
    for (const id of seen) expect(nucleus.has(id)).toBe(true)
    expect(seen.size).toBeGreaterThan(boost > 0 ? 5 : 30)
    if (boost > 0) expect(nucleus.size).toBeLessThan(60)
  })

  it('top-p and min-p use temperature-1 probabilities (llama.cpp order)', () => {
    // A high temperature flattens the draw but must not admit token 3.
    const s = new Sampler({ ...OFF, topP: 0.95, temperature: 50, seed: 8 })
    const seen = new Set(draw(s, logitsOf(probs), 3000))
    expect([...seen].sort()).toEqual([0, 1, 2])
  })
})

describe('sampler: penalties', () => {
  const greedy = (opts: object, logits: number[], history: number[]) =>
    new Sampler({ temperature: 0, ...opts }).sample(Float32Array.from(logits), history)

  it('repetition penalty divides positive and multiplies negative logits', () => {
    expect(greedy({}, [2.0, 1.9], [0])).toBe(0)
    expect(greedy({ repeatPenalty: 1.1 }, [2.0, 1.9], [0])).toBe(1) // 2/1.1 = 1.82 < 1.9
    expect(greedy({ repeatPenalty: 1.1 }, [-1.0, -1.05], [0])).toBe(1) // -1.1 < -1.05
    expect(greedy({ repeatPenalty: 1.1 }, [2.0, 1.9], [])).toBe(0)
  })

  it('frequency penalty scales with the count inside the window', () => {
    expect(greedy({ frequencyPenalty: 0.2 }, [1, 0.5], [0, 0, 0])).toBe(1) // 1 - 0.6 < 0.5
    expect(greedy({ frequencyPenalty: 0.2, penaltyLastN: 2 }, [1, 0.5], [0, 0, 0])).toBe(0) // 1 - 0.4 > 0.5
    expect(greedy({ frequencyPenalty: 0.2, penaltyLastN: 2 }, [1, 0.5], [0, 0, 1, 1])).toBe(0) // 0 outside window
  })

  it('presence penalty applies once', () => {
    expect(greedy({ presencePenalty: 0.6 }, [1, 0.5], [0])).toBe(1)
    expect(greedy({ presencePenalty: 0.4 }, [1, 0.5], [0, 0, 0, 0])).toBe(0) // 1 - 0.4 > 0.5
  })

  it('penaltyLastN 0 disables, -1 covers all history', () => {
    const history = [0, ...Array(100).fill(1)]
    expect(greedy({ repeatPenalty: 2, penaltyLastN: 0 }, [2, 0, 1.5], history)).toBe(0)
    expect(greedy({ repeatPenalty: 2, penaltyLastN: 64 }, [2, 0, 1.5], history)).toBe(0) // token 0 is 101 back
    expect(greedy({ repeatPenalty: 2, penaltyLastN: -1 }, [2, 0, 1.5], history)).toBe(2) // 2 -> 1 < 1.5
  })

  it('rejects ids outside the vocabulary in history', () => {
    expect(() => greedy({ repeatPenalty: 1.1 }, [1, 2], [2])).toThrow(InvalidArgumentError)
  })
})

describe('sampler: distribution', () => {
  /** Pearson chi-square of observed counts against expected probabilities. */
  const chiSquare = (counts: number[], probs: number[], n: number) =>
    counts.reduce((acc, c, i) => acc + (c - n * probs[i]) ** 2 / (n * probs[i]), 0)

  it.each([1, 0.5, 2])('follows softmax(logits / T) at T = %f', (temperature) => {
    const logits = Float32Array.from([1.2, 0.3, -0.5, 2.0, 0.0, -1.5, 0.8, 1.0])
    const scaled = Array.from(logits, (z) => Math.exp(z / temperature))
    const total = scaled.reduce((a, b) => a + b, 0)
    const probs = scaled.map((w) => w / total)
    const n = 40_000
    const counts = new Array(logits.length).fill(0)
    const s = new Sampler({ ...OFF, temperature, seed: 2024 })
    for (let i = 0; i < n; i++) counts[s.sample(logits)]++
    // 7 degrees of freedom: P(chi2 > 30) ~ 1e-4; a fixed seed makes this deterministic anyway.
    expect(chiSquare(counts, probs, n)).toBeLessThan(30)
  })
})

describe('sampler: options', () => {
  it('documents its defaults', () => {
    expect(DEFAULT_SAMPLER_OPTIONS).toEqual({
      temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
      repeatPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, penaltyLastN: 64, typicalP: 1,
    })
    expect(new Sampler({ seed: 1, topK: 10 }).options).toMatchObject({ ...DEFAULT_SAMPLER_OPTIONS, topK: 10, seed: 1 })
  })

  it.each([
    { temperature: -0.1 }, { temperature: NaN }, { topK: -1 }, { topK: 1.5 }, { topP: 0 }, { topP: 1.01 },
    { minP: -0.1 }, { minP: 2 }, { repeatPenalty: 0 }, { frequencyPenalty: Infinity }, { penaltyLastN: -2 },
    { seed: -1 }, { seed: 0.5 }, { typicalP: 0 }, { typicalP: 1.5 },
    { logitBias: { 1: NaN } }, { logitBias: { 1: Infinity } }, { logitBias: { '-1': 2 } }, { logitBias: { x: 1 } },
    { logitBias: new Map([[1.5, 1]]) },
  ])('rejects %j', (opts) => {
    expect(() => new Sampler(opts as SamplerOptions)).toThrow(InvalidArgumentError)
  })

  it('rejects empty logits', () => {
    expect(() => new Sampler({ seed: 1 }).sample(new Float32Array(0))).toThrow(InvalidArgumentError)
  })
})

describe('sampler: typical-p (llama.cpp semantics)', () => {
  // p = [0.5, 0.3, 0.15, 0.05]: entropy H = 1.1423; |-ln p - H| = [0.449, 0.062, 0.755, 1.853],
  // so the typical order is 1, 0, 2, 3 with cumulative mass 0.3, 0.8, 0.95, 1.
  const probs = [0.5, 0.3, 0.15, 0.05]

  it.each([
    [0.2, [1]], // 0.3 > 0.2 already: the most likely token is not the most typical
    [0.3, [0, 1]], // strictly greater: 0.3 is not > 0.3
    [0.5, [0, 1]],
    [0.85, [0, 1, 2]],
  ])('typicalP %f keeps %j', (typicalP, expected) => {
    const s = new Sampler({ ...OFF, typicalP, temperature: 3, seed: 9 })
    expect([...new Set(draw(s, logitsOf(probs), 3000))].sort()).toEqual(expected)
  })

  it('renormalises over the survivors, then top-p and min-p see only them', () => {
    const n = 20_000
    const s = new Sampler({ ...OFF, typicalP: 0.5, temperature: 1, seed: 10 })
    const ones = draw(s, logitsOf(probs), n).filter((t) => t === 1).length
    expect(Math.abs(ones / n - 0.3 / 0.8)).toBeLessThan(0.015) // 5 sigma
    // survivors {0, 1} renormalised to [0.625, 0.375]: top-p 0.6 keeps 0 only; min-p 0.7 drops 1 (0.375 < 0.7 * 0.625)
    expect(new Set(draw(new Sampler({ ...OFF, typicalP: 0.5, topP: 0.6, temperature: 1, seed: 1 }), logitsOf(probs), 500))).toEqual(new Set([0]))
    expect(new Set(draw(new Sampler({ ...OFF, typicalP: 0.5, minP: 0.7, temperature: 1, seed: 1 }), logitsOf(probs), 500))).toEqual(new Set([0]))
  })

  it('applies after top-k (entropy of the k survivors)', () => {
    // top-k 2 leaves [0.625, 0.375]: H = 0.6616, shifted = [0.191, 0.319]: token 0 first, 0.625 > 0.5
    const s = new Sampler({ ...OFF, topK: 2, typicalP: 0.5, temperature: 3, seed: 11 })
    expect(new Set(draw(s, logitsOf(probs), 500))).toEqual(new Set([0]))
  })

  /** The typical set by brute force: full sort by |-ln p - H|, walk until the mass exceeds p. */
  function typicalSetOf(logits: Float32Array, p: number): Set<number> {
    const max = logits.reduce((a, b) => Math.max(a, b), -Infinity)
    const w = Array.from(logits, (z) => Math.exp(z - max))
    const total = w.reduce((a, b) => a + b, 0)
    const pr = w.map((x) => x / total)
    const h = -pr.reduce((acc, q) => acc + (q > 0 ? q * Math.log(q) : 0), 0)
    const dist = pr.map((q) => Math.abs(-Math.log(q) - h))
    const order = pr.map((_, i) => i).sort((a, b) => dist[a] - dist[b])
    const set = new Set<number>()
    for (let i = 0, cum = 0; i < order.length; i++) {
      cum += pr[order[i]]; set.add(order[i])
      if (cum > p) break
    }
    return set
  }

  it('on a full vocabulary stays inside the brute-force typical set', () => {
    const logits = randomLogits(128256, 12)
    for (let i = 0; i < 30; i++) logits[i * 4001] += 9
    const set = typicalSetOf(logits, 0.9)
    const seen = new Set(draw(new Sampler({ topK: 0, topP: 1, minP: 0, typicalP: 0.9, temperature: 1, seed: 13 }), logits, 60))
    for (const id of seen) expect(set.has(id)).toBe(true)
    expect(seen.size).toBeGreaterThan(20)
  })
})

describe('sampler: logit bias', () => {
  const greedy = (logitBias: SamplerOptions['logitBias'], logits: number[]) =>
    new Sampler({ temperature: 0, logitBias }).sample(Float32Array.from(logits))

  it('adds to the logits before the penalties; -Infinity bans', () => {
    expect(greedy({}, [1, 0.5, 0.2])).toBe(0)
    expect(greedy({ 1: 0.6 }, [1, 0.5, 0.2])).toBe(1)
    expect(greedy({ '2': 1 }, [1, 0.5, 0.2])).toBe(2)
    expect(greedy(new Map([[0, -Infinity]]), [1, 0.5, 0.2])).toBe(1)
    const banned = new Sampler({ ...OFF, temperature: 5, seed: 3, logitBias: { 0: -Infinity, 2: -Infinity } })
    expect(new Set(draw(banned, Float32Array.from([3, 0, 2, 1]), 500))).toEqual(new Set([1, 3]))
    // bias then repetition penalty: (1 + 1) / 2 = 1 < 1.5, while (1 / 2) + 1 would be 1.5 (tie -> id 0)
    expect(new Sampler({ temperature: 0, logitBias: { 0: 1 }, repeatPenalty: 2 }).sample(Float32Array.from([1, 1.4]), [0])).toBe(1)
  })

  it('rejects an id outside the vocabulary at sampling time', () => {
    expect(() => greedy({ 3: 1 }, [1, 0.5, 0.2])).toThrow(InvalidArgumentError)
  })
})

describe('sampler: logprobs', () => {
  const logits = logitsOf([0.6, 0.25, 0.1, 0.05])

  it('reports the log-softmax at temperature 1 before truncation, and the top n', () => {
    const r = new Sampler({ temperature: 0 }).sampleDetailed(logits, [], 3)
    expect(r.token).toBe(0)
    expect(r.logprob).toBeCloseTo(Math.log(0.6), 6)
    expect(r.top!.map((t) => t.token)).toEqual([0, 1, 2])
    r.top!.forEach((t, i) => expect(t.logprob).toBeCloseTo(Math.log([0.6, 0.25, 0.1][i]), 6))
    // temperature and top-k change the draw, not the reported distribution
    const hot = new Sampler({ temperature: 7, topK: 2, seed: 5 })
    for (let i = 0; i < 20; i++) {
      const d = hot.sampleDetailed(logits)
      expect(d.top).toBeUndefined()
      expect(d.logprob).toBeCloseTo(Math.log([0.6, 0.25, 0.1, 0.05][d.token]), 6)
    }
  })

  it('reflects logit bias and bans (OpenAI semantics); ties list the lower id first', () => {
    const r = new Sampler({ temperature: 0, logitBias: { 0: -Infinity } }).sampleDetailed(logits, [], 4)
    expect(r.token).toBe(1)
    expect(r.logprob).toBeCloseTo(Math.log(0.25 / 0.4), 6)
    expect(r.top!.map((t) => t.token)).toEqual([1, 2, 3]) // a banned token is never listed
    const tie = new Sampler({ temperature: 0 }).sampleDetailed(Float32Array.from([0, 2, 2, 1]), [], 2)
    expect(tie.top!.map((t) => t.token)).toEqual([1, 2])
    expect(tie.top![0].logprob).toBe(tie.top![1].logprob)
  })

  it('draws the same tokens as sample() for the same seed', () => {
    const big = randomLogits(5000, 3)
    const a = new Sampler({ seed: 77, temperature: 1 })
    const b = new Sampler({ seed: 77, temperature: 1 })
    for (let i = 0; i < 50; i++) expect(b.sampleDetailed(big, [], 5).token).toBe(a.sample(big))
  })

  it('rejects a bad topLogprobs', () => {
    expect(() => new Sampler({ seed: 1 }).sampleDetailed(logits, [], -1)).toThrow(InvalidArgumentError)
  })
})
