// Sessions on tiny-dev: KV reuse across turns, independent concurrent sessions, abort,
// stop strings/tokens, save/restore, context shift and embeddings. Greedy (temperature 0)
// throughout, so every result is compared with a fresh run of the same input.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { AbortError, BusyError, ContextFullError, loadModel, ModelFormatError, StopStrings, type BitnetModel, type ChatMessage } from '../src/index.js'
import { argmax } from '../src/generation/sampler.js'
import { writeGguf } from '../src/gguf/writer.js'
import { fileSource } from '../src/io/file.js'
import { loadReferenceModel } from '../src/model/reference.js'
import { syntheticGguf } from '../src/model/synthetic.js'
import { TINY_GGUF } from './helpers/golden.js'

const GREEDY = { temperature: 0, maxTokens: 24, ignoreEos: true }
let model: BitnetModel
beforeAll(async () => { model = await loadModel(TINY_GGUF, { threads: 1 }) })
afterAll(() => model?.dispose())

const turn1: ChatMessage[] = [
  { role: 'system', content: 'You answer from the Bible.' },
  { role: 'user', content: 'Who led the children of Israel out of Egypt?' },
]

describe('greedy picks', () => {
  it('come from the wasm argmax over the logits in wasm memory, equal to the JavaScript argmax', async () => {
    const t = model.transformer, wasm = t.argmax.bind(t), picks: [number | undefined, number][] = []
    const spy = vi.spyOn(t, 'argmax').mockImplementation((l) => { const i = wasm(l); picks.push([i, argmax(l)]); return i })
    try {
      const r = await model.createSession().generate('In the beginning God created', { ...GREEDY, maxTokens: 6 })
      expect(picks.map(([i]) => i)).toEqual(r.tokens)
      for (const [i, js] of picks) expect(i).toBe(js)
    } finally {
      spy.mockRestore()
    }
    const kv = t.createKvCache(), logits = t.forward(1, 0, true, kv)!
    expect(t.argmax(logits)).toBe(argmax(logits))
    expect(t.argmax(logits.slice())).toBeUndefined() // not in wasm memory: the sampler's own argmax
    kv.dispose()
  })
})

describe('KV reuse across turns', { timeout: 120_000 }, () => {
  it('the second turn evaluates only the tokens after the cached prefix, with the same output', async () => {
    const s = model.createSession()
    const a = await s.chat(turn1, GREEDY)
    expect(a.usage.cachedTokens).toBe(0)
    expect(a.timings.promptEvaluated).toBe(a.usage.promptTokens)
    const turn2: ChatMessage[] = [...turn1, { role: 'assistant', content: a.text }, { role: 'user', content: 'And who was his brother?' }]
    const b = await s.chat(turn2, GREEDY)
    const fresh = await model.createSession().chat(turn2, GREEDY)
    expect(b.text).toBe(fresh.text)
    expect(b.tokens).toEqual(fresh.tokens)
    // Everything up to the first turn's reply is reused; only the new turn is evaluated.
    const prefix = model.tokenize(model.applyChatTemplate(turn1), { addBos: false }).length
    expect(b.usage.cachedTokens).toBeGreaterThanOrEqual(prefix)
    expect(b.timings.promptEvaluated).toBe(b.usage.promptTokens - b.usage.cachedTokens)
    expect(fresh.usage.cachedTokens).toBe(0)
    s.dispose()
  })

  it('the same prompt twice re-evaluates only its last token', async () => {
    const s = model.createSession()
    const a = await s.generate('In the beginning God created', GREEDY)
    const b = await s.generate('In the beginning God created', GREEDY)
    expect(b.text).toBe(a.text)
    expect(b.timings.promptEvaluated).toBe(1)
    s.dispose()
  })
})

describe('several sessions', { timeout: 120_000 }, () => {
  it('concurrent generations equal sequential ones', async () => {
    const prompts = ['In the beginning God created', 'And the LORD spake unto Moses, saying,', 'The LORD is my shepherd; I shall not', 'For God so loved the world']
    const sequential = []
    for (const p of prompts) sequential.push((await model.createSession().generate(p, GREEDY)).text)
    const sessions = prompts.map(() => model.createSession())
    const before = { ...model.scheduler.batches }
    // Stream all four at once, collecting each one's chunks.
    const streamed = await Promise.all(sessions.map(async (s, i) => {
      let text = ''
      for await (const c of s.generate(prompts[i], GREEDY)) text += c.text
      return text
    }))
    expect(streamed).toEqual(sequential)
    // Their decode steps went through shared passes (4 rows per weight read).
    const passes = model.scheduler.batches.passes - before.passes, rows = model.scheduler.batches.rows - before.rows
    expect(rows).toBe(4 * (GREEDY.maxTokens - 1))
    expect(passes).toBeLessThan(rows / 2)
    sessions.forEach((s) => s.dispose())
  })

  it('calls on one session queue instead of mixing', async () => {
    const s = model.createSession()
    const [a, b] = await Promise.all([s.generate('And God said', GREEDY), s.generate('And God saw', GREEDY)])
    expect(a.text).toBe((await model.createSession().generate('And God said', GREEDY)).text)
    expect(b.text).toBe((await model.createSession().generate('And God saw', GREEDY)).text)
    s.dispose()
  })
})

describe('abort, stop strings, stop tokens', { timeout: 120_000 }, () => {
  it('abort stops within one token and resolves with the partial text', async () => {
    const ac = new AbortController()
    const gen = model.generate('In the beginning God created', { ...GREEDY, signal: ac.signal })
    const chunks: string[] = []
    for await (const c of gen) { chunks.push(c.text); if (chunks.length === 3) ac.abort() }
    const r = await gen
    expect(r.finishReason).toBe('abort')
    expect(r.tokens).toHaveLength(3)
    expect(r.text).toBe(chunks.join(''))
  })

  it('leaving the loop early stops the run; awaiting it then rejects with AbortError', async () => {
    const s = model.createSession()
    const gen = s.generate('In the beginning God created', GREEDY)
    let text = ''
    for await (const c of gen) { text += c.text; if (c.text) break }
    await expect(gen).rejects.toMatchObject({ name: 'AbortError', partialText: text })
    expect(s.busy).toBe(false)
    s.dispose()
  })

  it('throwOnAbort rejects with AbortError carrying the partial text', async () => {
    const ac = new AbortController()
    const gen = model.generate('In the beginning God created', { ...GREEDY, signal: ac.signal, throwOnAbort: true })
    let text = ''
    const err = await (async () => { for await (const c of gen) { text += c.text; ac.abort() } })().catch((e) => e)
    expect(err).toBeInstanceOf(AbortError)
    expect(err.name).toBe('AbortError')
    expect(err.partialText).toBe(text)
    expect(text.length).toBeGreaterThan(0)
  })

  it('a stop string ends the text before it, and no chunk shows any part of it', async () => {
    const full = await model.generate('In the beginning God created', GREEDY)
    const stop = full.text.slice(12, 19)
    const at = full.text.indexOf(stop)
    expect(at).toBeGreaterThan(0)
    const chunks: string[] = []
    const gen = model.generate('In the beginning God created', { ...GREEDY, stop: [stop, 'never appears'] })
    for await (const c of gen) chunks.push(c.text)
    const r = await gen
    expect(r.finishReason).toBe('stop')
    expect(r.text).toBe(full.text.slice(0, at))
    expect(chunks.join('')).toBe(r.text)
  })

  it('a stop token ends generation before it', async () => {
    const full = await model.generate('In the beginning God created', GREEDY)
    const r = await model.generate('In the beginning God created', { ...GREEDY, stopTokens: [full.tokens[5]] })
    expect(r.finishReason).toBe('stop')
    expect(r.tokens).toEqual(full.tokens.slice(0, full.tokens.indexOf(full.tokens[5])))
  })

  it('StopStrings holds back possible prefixes and releases them when they diverge', () => {
    const m = new StopStrings(['\n\nUser:', 'END'])
    expect(m.push('a\n')).toBe('a')
    expect(m.push('\nUs')).toBe('')
    expect(m.push('ually')).toBe('\n\nUsually')
    expect(m.push(' EN')).toBe(' ')
    expect(m.flush()).toBe('EN')
    const n = new StopStrings(['END'])
    expect(n.push('xxEN')).toBe('xx')
    expect(n.push('Dyy')).toBe('')
    expect(n.stopped).toBe(true)
    expect(n.flush()).toBe('')
  })
})

describe('state', { timeout: 120_000 }, () => {
  it('save() then restore() on another session continues identically', async () => {
    const a = model.createSession()
    await a.generate('The LORD is my shepherd; I shall not', GREEDY)
    const bytes = a.save()
    const b = model.createSession()
    b.restore(bytes)
    expect(b.tokens).toEqual(a.tokens)
    const next = [...a.tokens, ...model.tokenize(' And', { addBos: false })]
    const ra = await a.generate(next, GREEDY)
    const rb = await b.generate(next, GREEDY)
    expect(rb.timings.promptEvaluated).toBe(ra.timings.promptEvaluated)
    expect(rb.timings.promptEvaluated).toBeLessThan(3)
    expect(rb.text).toBe(ra.text)
    expect(rb.text).toBe((await model.createSession().generate(next, GREEDY)).text)
    // corrupted or foreign bytes are typed errors
    const bad = bytes.slice(); bad[0] ^= 1
    expect(() => b.restore(bad)).toThrow(ModelFormatError)
    expect(() => b.restore(bytes.subarray(0, 30))).toThrow(ModelFormatError)
    a.dispose(); b.dispose()
  })

  it('disposing a session mid-generation ends it at the next token', async () => {
    const s = model.createSession()
    const gen = s.generate('And God said', GREEDY)
    let n = 0
    for await (const _ of gen) if (++n === 2) s.dispose()
    const r = await gen
    expect(r.finishReason).toBe('abort')
    expect(r.tokens).toHaveLength(2)
    await expect(s.generate('And God said', GREEDY)).rejects.toThrow(/disposed/)
  })

  it('reset/save during a generation is a BusyError', async () => {
    const s = model.createSession()
    const gen = s.generate('And God said', GREEDY)
    for await (const _ of gen) { expect(() => s.reset()).toThrow(BusyError); break }
    s.reset()
    expect(s.tokens).toEqual([])
    s.dispose()
  })
})

describe('context policy', { timeout: 120_000 }, () => {
  const SHAPE = { nEmbd: 64, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270, contextLength: 16 }
  it('error by default; contextShift keeps the start and goes on', async () => {
    const m = await loadModel(writeGguf(syntheticGguf(SHAPE)), { threads: 1 })
    const bos = m.tokenizer.bosId!
    const prompt = [bos, ...Array.from({ length: 9 }, (_, i) => i + 1)]
    const opts = { temperature: 0, maxTokens: 30, ignoreEos: true }
    await expect(m.createSession().generate(prompt, opts)).rejects.toThrow(ContextFullError)
    const s = m.createSession({ contextShift: true })
    const r = await s.generate(prompt, opts)
    expect(r.tokens).toHaveLength(30)
    expect(s.tokens.length).toBeLessThan(16)
    expect(s.tokens[0]).toBe(bos) // the kept prefix of a text prompt
    expect(s.tokens.slice(-3)).toEqual(r.tokens.slice(-4, -1)) // the newest tokens stay, in order
    await m.dispose()
  })
})

describe('embed', { timeout: 120_000 }, () => {
  it('is the mean of the final normed hidden states: embed · Eᵀ = mean of the logits', async () => {
    const ids = model.tokenize('In the beginning')
    const e = model.embed(ids)
    expect(e).toHaveLength(model.config.nEmbd)
    const ref = await loadReferenceModel(await fileSource(TINY_GGUF))
    const logits = model.logits(ids)
    const { nEmbd, vocabSize } = model.config
    let maxDiff = 0
    for (let r = 0; r < vocabSize; r += 97) {
      let dot = 0
      for (let i = 0; i < nEmbd; i++) dot += ref.output[r * nEmbd + i] * e[i]
      const mean = logits.reduce((s, l) => s + l[r], 0) / logits.length
      maxDiff = Math.max(maxDiff, Math.abs(dot - mean))
    }
    expect(maxDiff).toBeLessThan(1e-3)
    expect(model.embed('In the beginning')).toEqual(e)
  })

  it('last-token pooling, EOS appended, L2 normalised, query prefix, batches: what EOS-pooled embedding models need', async () => {
    const ids = model.tokenize('In the beginning')
    const last = model.embed(ids, { pooling: 'last' })
    // the last state · Eᵀ = the last position's logits
    const ref = await loadReferenceModel(await fileSource(TINY_GGUF))
    const logits = model.logits(ids).at(-1)!
    const { nEmbd } = model.config
    for (const r of [0, 1000, 128001]) {
      let dot = 0
      for (let i = 0; i < nEmbd; i++) dot += ref.output[r * nEmbd + i] * last[i]
      expect(Math.abs(dot - logits[r])).toBeLessThan(1e-3)
    }
    const eos = model.embed(ids, { pooling: 'last', appendEos: true })
    expect(eos).toEqual(model.embed([...ids, model.tokenizer.eosIds[0]], { pooling: 'last' }))
    const unit = model.embed(ids, { pooling: 'last', appendEos: true, normalize: true })
    expect(Math.hypot(...unit)).toBeCloseTo(1, 5)
    expect(unit[3] / eos[3]).toBeCloseTo(1 / Math.hypot(...eos), 5)
    expect(model.embed('beginning', { prefix: 'In the ' })).toEqual(model.embed('In the beginning'))
    expect(model.embedBatch(['In the beginning', ids], { pooling: 'last' })).toEqual([last, last])
  })
})
