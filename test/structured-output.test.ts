/**
 * Structured output and logprobs through the real model: tiny-dev (a Bible-trained model that has
 * never seen JSON) generating under a JSON schema, JSON mode, and logprobs/logit bias in chunks.
 */
import { Ajv } from 'ajv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, type BitnetModel } from '../src/index.js'
import { TINY_GGUF } from './helpers/golden.js'

const SCHEMA = {
  type: 'object',
  properties: {
    book: { enum: ['Genesis', 'Exodus', 'Psalms'] },
    chapter: { type: 'integer' },
    verse: { type: 'string', maxLength: 24 },
    holy: { type: 'boolean' },
    names: { type: 'array', items: { type: 'string', maxLength: 10 }, minItems: 1, maxItems: 3 },
    place: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, year: { type: ['number', 'null'] } }, required: ['city'] },
  },
  required: ['book', 'chapter', 'verse', 'names', 'place'],
  additionalProperties: false,
} as const

describe('structured output with tiny-dev', () => {
  let model: BitnetModel
  beforeAll(async () => { model = await loadModel(TINY_GGUF, { threads: 2, contextSize: 512 }) }, 60_000)
  afterAll(async () => { await model?.dispose() })
  const validate = new Ajv({ strict: false }).compile(SCHEMA)

  it.each([
    ['greedy', { temperature: 0 }],
    ['sampled', { temperature: 1.2, topK: 0, seed: 8 }],
  ])('json_schema (%s): the text parses, validates, and generation stops when it is complete', async (_, sampling) => {
    const r = await model.generate('And God said', { ...sampling, maxTokens: 600, responseFormat: { type: 'json_schema', schema: SCHEMA } })
    const value = JSON.parse(r.text)
    expect(validate(value), `${r.text}\n${JSON.stringify(validate.errors)}`).toBe(true)
    expect(r.finishReason).toBe('stop')
  }, 120_000)

  it('json_object: an object comes out (or the run hits maxTokens mid-object, never invalid text)', async () => {
    const r = await model.chat([{ role: 'user', content: 'Describe Moses as JSON.' }], { temperature: 0.8, seed: 3, maxTokens: 200, responseFormat: { type: 'json_object' } })
    expect(r.text.startsWith('{')).toBe(true)
    if (r.finishReason === 'stop') expect(JSON.parse(r.text)).toBeTypeOf('object')
    else expect(r.finishReason).toBe('length')
  }, 120_000)

  it('streams logprobs that match the model distribution; logit bias bans a token', async () => {
    const free = await model.generate('In the beginning', { temperature: 0, maxTokens: 4, topLogprobs: 3 })
    expect(free.logprobs).toHaveLength(4)
    const logits = model.logits([...free.promptTokens], { lastOnly: true })[0]
    let max = -Infinity
    for (const v of logits) max = Math.max(max, v)
    let sum = 0
    for (const v of logits) sum += Math.exp(v - max)
    const first = free.logprobs![0]
    expect(first.logprob).toBeCloseTo(logits[first.tokenId] - max - Math.log(sum), 4)
    expect(first.topLogprobs![0].token).toBe(first.tokenId) // greedy picks the top entry
    expect(first.topLogprobs!.map((t) => t.logprob)).toEqual([...first.topLogprobs!.map((t) => t.logprob)].sort((a, b) => b - a))

    const chunks = []
    for await (const c of model.generate('In the beginning', { temperature: 0, maxTokens: 4, logprobs: true, logitBias: { [first.tokenId]: -Infinity } })) chunks.push(c)
    expect(chunks[0].tokenId).not.toBe(first.tokenId)
    expect(chunks[0].tokenId).toBe(first.topLogprobs![1].token) // the runner-up
    expect(chunks.every((c) => c.logprob! <= 0)).toBe(true)
  }, 120_000)
})
