// `serve()` (what `bitnet serve` runs) driven by the official `openai` npm client on
// 127.0.0.1 with tiny-dev. Greedy requests are compared with the library's own output.
import { Ajv } from 'ajv'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, type BitnetModel, type ChatMessage } from '../src/index.js'
import { serve, type BitnetServer } from '../src/server/http.js'
import { TINY_GGUF } from './helpers/golden.js'

let model: BitnetModel
let srv: BitnetServer
let client: OpenAI
beforeAll(async () => {
  model = await loadModel(TINY_GGUF, { threads: 1, contextSize: 512 })
  srv = await serve(model, { port: 0, parallel: 4, maxQueue: 16, apiKey: 'sk-test', modelId: 'tiny-dev' })
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'sk-test', maxRetries: 0 })
})
afterAll(async () => { await srv?.close(); await model?.dispose() })

const QUESTIONS = ['Who led the children of Israel out of Egypt?', 'Who built the ark?', 'What is the first book?', 'Who slew Goliath?']
const chatOf = (q: string) => [{ role: 'user' as const, content: q }] satisfies ChatMessage[]
const library = async (messages: ChatMessage[], maxTokens: number) =>
  (await model.createSession().chat(messages, { temperature: 0, maxTokens })).text

describe('OpenAI client against bitnet serve', { timeout: 180_000 }, () => {
  it('lists the model; /health needs no key', async () => {
    const models = await client.models.list()
    expect(models.data.map((m) => m.id)).toEqual(['tiny-dev'])
    const health = await (await fetch(srv.url + '/health')).json()
    expect(health.status).toBe('ok')
    expect(health.slots.idle).toBe(4)
  })

  it('greedy chat returns the library text, with usage', async () => {
    const r = await client.chat.completions.create({ model: 'tiny-dev', messages: chatOf(QUESTIONS[0]), temperature: 0, max_tokens: 24 })
    expect(r.object).toBe('chat.completion')
    expect(r.choices[0].message.role).toBe('assistant')
    expect(r.choices[0].message.content).toBe(await library(chatOf(QUESTIONS[0]), 24))
    expect(r.usage!.completion_tokens).toBeGreaterThan(0)
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens)
  })

  it('streaming chat: deltas add up to the same text, finish_reason, then usage and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny-dev', messages: chatOf(QUESTIONS[1]), temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true },
    })
    let text = ''
    const finish: (string | null)[] = []
    let usage
    for await (const c of stream) {
      if (c.usage) usage = c.usage
      for (const ch of c.choices) { text += ch.delta.content ?? ''; finish.push(ch.finish_reason) }
    }
    expect(text).toBe(await library(chatOf(QUESTIONS[1]), 24))
    expect(finish.filter(Boolean)).toHaveLength(1)
    expect(['stop', 'length']).toContain(finish.at(-1))
    expect(usage!.completion_tokens).toBeGreaterThan(0)
  })

  it('completions, plain and streamed, continue the prompt like model.generate', async () => {
    const prompt = 'In the beginning God created'
    const want = (await model.createSession().generate(prompt, { temperature: 0, maxTokens: 16 })).text
    const r = await client.completions.create({ model: 'tiny-dev', prompt, temperature: 0, max_tokens: 16 })
    expect(r.choices[0].text).toBe(want)
    const stream = await client.completions.create({ model: 'tiny-dev', prompt, temperature: 0, max_tokens: 16, stream: true })
    let text = ''
    for await (const c of stream) text += c.choices[0]?.text ?? ''
    expect(text).toBe(want)
  })

  it('a stop string is honoured', async () => {
    const full = await library(chatOf(QUESTIONS[0]), 24)
    const stop = full.slice(6, 10)
    const r = await client.chat.completions.create({ model: 'tiny-dev', messages: chatOf(QUESTIONS[0]), temperature: 0, max_tokens: 24, stop })
    expect(r.choices[0].message.content).toBe(full.slice(0, full.indexOf(stop)))
    expect(r.choices[0].finish_reason).toBe('stop')
  })

  it('response_format json_schema: the content parses and validates', async () => {
    const schema = {
      type: 'object',
      properties: {
        book: { enum: ['Genesis', 'Exodus'] },
        chapter: { type: 'integer' },
        names: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 1, maxItems: 2 },
        note: { type: 'object', properties: { said: { type: 'string', maxLength: 12 } }, required: ['said'] },
      },
      required: ['book', 'chapter', 'names', 'note'],
      additionalProperties: false,
    }
    const r = await client.chat.completions.create({
      model: 'tiny-dev', messages: chatOf(QUESTIONS[0]), temperature: 0, max_tokens: 400,
      response_format: { type: 'json_schema', json_schema: { name: 'verse', schema } },
    })
    const value = JSON.parse(r.choices[0].message.content!)
    expect(new Ajv().compile(schema)(value)).toBe(true)
    expect(r.choices[0].finish_reason).toBe('stop')
    await expect(client.chat.completions.create({
      model: 'm', messages: chatOf('hi'), response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: 'http://elsewhere' } } } } },
    })).rejects.toMatchObject({ status: 400 })
  })

  it('logprobs: per token with top alternatives, plain and streamed', async () => {
    const r = await client.chat.completions.create({ model: 'tiny-dev', messages: chatOf(QUESTIONS[2]), temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 2 })
    const content = r.choices[0].logprobs!.content!
    expect(content).toHaveLength(r.usage!.completion_tokens)
    expect(content.map((c) => c.token).join('')).toBe(r.choices[0].message.content)
    for (const c of content) {
      expect(c.top_logprobs).toHaveLength(2)
      expect(c.top_logprobs[0].token).toBe(c.token) // greedy takes the most likely
      expect(c.logprob).toBeLessThanOrEqual(0)
    }
    const stream = await client.chat.completions.create({ model: 'tiny-dev', messages: chatOf(QUESTIONS[2]), temperature: 0, max_tokens: 6, logprobs: true, stream: true })
    const streamed = []
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []))
    expect(streamed.map((c) => c.logprob)).toEqual(content.map((c) => c.logprob))
    const text = await client.completions.create({ model: 'tiny-dev', prompt: 'In the beginning', temperature: 0, max_tokens: 4, logprobs: 3 })
    expect(text.choices[0].logprobs!.tokens!.join('')).toBe(text.choices[0].text)
    expect(Object.keys(text.choices[0].logprobs!.top_logprobs![0])).toHaveLength(3)
  })

  it('16 concurrent streaming clients each get their own greedy continuation', async () => {
    const prompts = Array.from({ length: 16 }, (_, i) => chatOf(`${QUESTIONS[i % 4]}${' Tell me.'.repeat(i >> 2)}`))
    const want: string[] = []
    for (const p of prompts) want.push(await library(p, 12))
    const got = await Promise.all(prompts.map(async (messages) => {
      const stream = await client.chat.completions.create({ model: 'tiny-dev', messages, temperature: 0, max_tokens: 12, stream: true })
      let text = ''
      for await (const c of stream) text += c.choices[0]?.delta.content ?? ''
      return text
    }))
    expect(got).toEqual(want)
  })

  it('draft: prompt-lookup answers the same as plain decoding', async () => {
    const drafting = await serve(model, { port: 0, parallel: 2, draft: 'prompt-lookup' })
    const c = new OpenAI({ baseURL: drafting.url + '/v1', apiKey: 'x', maxRetries: 0 })
    try {
      const r = await c.chat.completions.create({ model: 'm', messages: chatOf(QUESTIONS[3]), temperature: 0, max_tokens: 32 })
      expect(r.choices[0].message.content).toBe(await library(chatOf(QUESTIONS[3]), 32))
    } finally {
      await drafting.close()
    }
  })

  it('a client that disconnects mid-stream frees its slot', async () => {
    const one = await serve(model, { port: 0, parallel: 1, maxQueue: 0 })
    const c1 = new OpenAI({ baseURL: one.url + '/v1', apiKey: 'x', maxRetries: 0 })
    try {
      const stream = await c1.chat.completions.create({ model: 'm', messages: chatOf(QUESTIONS[0]), temperature: 0, max_tokens: 400, stream: true })
      let n = 0
      for await (const _ of stream) if (++n === 3) break // break closes the connection
      // The slot is busy until the server notices; then it is free for the next request.
      while ((await (await fetch(one.url + '/health')).json()).slots.processing > 0) await new Promise((r) => setTimeout(r, 20))
      const r = await c1.chat.completions.create({ model: 'm', messages: chatOf(QUESTIONS[2]), temperature: 0, max_tokens: 8 })
      expect(r.choices[0].message.content).toBe(await library(chatOf(QUESTIONS[2]), 8))
    } finally {
      await one.close()
    }
  })

  it('a full queue answers 429; a bad key 401; bad fields 400; a huge body 413', async () => {
    const one = await serve(model, { port: 0, parallel: 1, maxQueue: 0, maxBodyBytes: 4096 })
    const c1 = new OpenAI({ baseURL: one.url + '/v1', apiKey: 'x', maxRetries: 0 })
    try {
      const busy = await c1.chat.completions.create({ model: 'm', messages: chatOf(QUESTIONS[0]), temperature: 0, max_tokens: 400, stream: true })
      const it = busy[Symbol.asyncIterator]()
      await it.next() // the slot is taken
      await expect(c1.chat.completions.create({ model: 'm', messages: chatOf('hi'), max_tokens: 2 })).rejects.toMatchObject({ status: 429 })
      await it.return?.()
      const res = await fetch(one.url + '/v1/completions', { method: 'POST', body: JSON.stringify({ prompt: 'x'.repeat(5000) }) })
      expect(res.status).toBe(413)
      expect((await res.json()).error.code).toBe('payload_too_large')
    } finally {
      await one.close()
    }
    const wrongKey = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'nope', maxRetries: 0 })
    await expect(wrongKey.models.list()).rejects.toMatchObject({ status: 401 })
    await expect(client.chat.completions.create({ model: 'm', messages: chatOf('hi'), n: 2 })).rejects.toMatchObject({ status: 400, param: 'n' })
    await expect(client.chat.completions.create({ model: 'm', messages: [] })).rejects.toMatchObject({ status: 400 })
    await expect(client.completions.create({ model: 'm', prompt: 'And God said, '.repeat(200) })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' })
  })
})
