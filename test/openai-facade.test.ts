// model.openai(): the OpenAI client's shape in process. Its answers must be the ones
// `bitnet serve` gives the official `openai` client for the same request (ids and times
// aside): both run the same parser and response builders, and the same greedy tokens.
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, loadModel, type BitnetModel, type OpenAIFacade } from '../src/index.js'
import { serve, type BitnetServer } from '../src/server/http.js'
import { TINY_GGUF } from './helpers/golden.js'

let model: BitnetModel
let srv: BitnetServer
let client: OpenAI
let local: OpenAIFacade
beforeAll(async () => {
  model = await loadModel(TINY_GGUF, { threads: 1, contextSize: 512 })
  srv = await serve(model, { port: 0, modelId: 'tiny-dev' })
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'none', maxRetries: 0 })
  local = model.openai({ modelId: 'tiny-dev' })
})
afterAll(async () => { await srv?.close(); await model?.dispose() })

/** A response without its per-request identity (id, created). */
const plain = (v: object) => JSON.parse(JSON.stringify(v, (k, x) => (k === 'id' || k === 'created' ? undefined : x)))
const messages = [{ role: 'user' as const, content: 'Who built the ark?' }]

describe('model.openai()', { timeout: 120_000 }, () => {
  it('chat.completions.create: the same object as the server', async () => {
    const body = { model: 'tiny-dev', messages, temperature: 0, max_tokens: 20, logprobs: true, top_logprobs: 2 }
    const mine = await local.chat.completions.create(body)
    const theirs = await client.chat.completions.create(body)
    expect(mine.object).toBe('chat.completion')
    expect(mine.choices[0].message.content.length).toBeGreaterThan(0)
    expect(plain({ ...mine, usage: undefined })).toEqual(plain({ ...theirs, usage: undefined }))
    expect(mine.usage.completion_tokens).toBe(theirs.usage!.completion_tokens)
    expect(mine.usage.prompt_tokens).toBe(theirs.usage!.prompt_tokens)
  })

  it('stream: true gives the server\'s chunks in order, role first, usage last', async () => {
    const body = { model: 'tiny-dev', messages, temperature: 0, max_tokens: 20, stream: true as const, stream_options: { include_usage: true } }
    const mine = []
    for await (const c of await local.chat.completions.create(body)) mine.push(c)
    const theirs = []
    for await (const c of await client.chat.completions.create(body)) theirs.push(c)
    expect(mine[0].choices[0].delta.role).toBe('assistant')
    expect(mine.at(-1)!.choices).toEqual([])
    expect(mine.at(-1)!.usage!.completion_tokens).toBeGreaterThan(0)
    const noUsage = (cs: object[]) => cs.map((c) => plain({ ...c, usage: undefined }))
    expect(noUsage(mine)).toEqual(noUsage(theirs))
  })

  it('completions.create with token logprobs: the same as the server', async () => {
    const body = { model: 'tiny-dev', prompt: 'In the beginning', temperature: 0, max_tokens: 12, logprobs: 2 }
    const mine = await local.completions.create(body)
    const theirs = await client.completions.create(body)
    expect(mine.object).toBe('text_completion')
    expect(plain({ ...mine, usage: undefined })).toEqual(plain({ ...theirs, usage: undefined }))
  })

  it('a bad request is an InvalidArgumentError naming the field, before any work', async () => {
    await expect(local.chat.completions.create({ messages, temperture: 0 } as never)).rejects.toMatchObject({ param: 'temperture' })
    await expect(local.chat.completions.create({ messages, max_tokens: 512 })).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(local.completions.create({ prompt: [1, 999_999] })).rejects.toMatchObject({ param: 'prompt' })
    await expect(local.chat.completions.create({ messages, response_format: { type: 'json_schema', json_schema: { schema: null as never } } }))
      .rejects.toMatchObject({ param: 'response_format.json_schema.schema' })
  })

  it('an AbortSignal ends the stream within a token, with finish_reason length', async () => {
    const ac = new AbortController()
    let texts = 0
    let finish: string | null = null
    for await (const c of await local.chat.completions.create({ messages, temperature: 0, max_tokens: 200, stream: true }, { signal: ac.signal })) {
      if (c.choices[0]?.delta.content) { texts++; if (texts === 2) ac.abort() }
      finish = c.choices[0]?.finish_reason ?? finish
    }
    expect(texts).toBe(2)
    expect(finish).toBe('length')
  })

  it('models.list names the model', async () => {
    expect((await local.models.list()).data.map((m) => m.id)).toEqual(['tiny-dev'])
  })

  it('embeddings.create: the official client against /v1/embeddings (base64 by default) gives the facade\'s unit vectors', async () => {
    const input = ['In the beginning', 'Who built the ark?']
    const theirs = await client.embeddings.create({ model: 'tiny-dev', input })
    const mine = await local.embeddings.create({ model: 'tiny-dev', input })
    expect(theirs.data.map((d) => d.index)).toEqual([0, 1])
    expect(theirs.data[0].embedding).toHaveLength(model.config.nEmbd)
    for (const [i, d] of theirs.data.entries()) {
      expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 5)
      expect(d.embedding).toEqual(Array.from(Float32Array.from(mine.data[i].embedding as number[])))
    }
    const e = model.embed(input[1], { normalize: true })
    expect(mine.data[1].embedding).toEqual(Array.from(e))
    const tokens = input.reduce((n, t) => n + model.tokenize(t).length, 0)
    expect(theirs.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens })
    const ids = await local.embeddings.create({ input: model.tokenize(input[1]) })
    expect(ids.data[0].embedding).toEqual(mine.data[1].embedding)
    await expect(local.embeddings.create({ input: [], dimensions: 3 })).rejects.toThrow(/'input' must be/)
    await expect(client.embeddings.create({ model: 'tiny-dev', input: 'x', dimensions: 3 })).rejects.toThrow(/'dimensions' must be the model's width 128/)
  })
})
