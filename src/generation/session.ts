// `Symbol.asyncDispose` in the public types: consumers whose lib is es2022 (+ DOM) get it from here.
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * A session: one sequence with its own KV cache on a shared model. Successive calls reuse
 * the cache: a new prompt is compared with the tokens already cached and only the tokens
 * after the longest common prefix are evaluated, so a chat turn costs its new tokens, not
 * the whole history. Sessions of one model take turns through the model's StepScheduler.
 *
 * Layout of `save()` bytes (little endian):
 *   u32 magic 'BNSS' · u32 version 1 · u32 n_layer · u32 vocab · u32 n_tokens ·
 *   i32[n_tokens] token ids · u32 kv_len · u8[kv_len] KvCache.save(n_tokens)
 */
import type { ChatMessage } from '../tokenizer/chat-template.js'
import { AbortError, BusyError, ContextFullError, InvalidArgumentError, ModelFormatError } from '../errors.js'
import { Generation, type GenerateOptions, type GenerationChunk, type GenerationResult, type GenerationRun } from './generation.js'
import type { Logger } from '../logger.js'
import { MAX_BATCH, type KvCache, type Transformer } from '../model/transformer.js'
import type { LogitNeed } from '../model/output-head.js'
import { createResponseConstraint } from '../grammar/response-format.js'
import { PromptLookup } from './prompt-lookup.js'
import { Sampler, type SampledToken } from './sampler.js'
import type { StepScheduler } from './scheduler.js'
import { StopStrings } from './stop-strings.js'
import type { BitnetTokenizer } from '../tokenizer/tokenizer.js'

/**
 * Prompt tokens evaluated per scheduler step (prefill runs them MAX_BATCH at a time): a long
 * prompt delays other streams by at most one such step.
 */
// Rows of a draft-verifying pass: 8, as measured for prompt lookup (a pass may hold MAX_BATCH).
const DRAFT_ROWS = Math.min(8, MAX_BATCH)
const PROMPT_CHUNK = 32
const MAGIC = 0x53534e42 // 'BNSS'
const VERSION = 1

/** A sampled token (with its log-probabilities when they were asked for). */
type Sampled = Pick<SampledToken, 'token'> & Partial<SampledToken>

/** What a session needs from its model (BitnetModel implements it). */
export interface SessionHost {
  readonly transformer: Transformer
  readonly tokenizer: BitnetTokenizer
  readonly contextSize: number
  readonly scheduler: StepScheduler
  readonly logger?: Logger
  tokenize(text: string, opts?: { addBos?: boolean }): number[]
  applyChatTemplate(messages: readonly ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string
}

export interface SessionOptions {
  /**
   * When the context is full: false (default) throws `ContextFullError`; true drops the
   * older half of the history after the kept prefix (the leading system messages of a chat,
   * BOS of a text prompt) and re-evaluates the rest, so generation goes on.
   */
  contextShift?: boolean
}

/**
 * An independent conversation on a model, with its own KV cache.
 *
 * @example
 * ```ts
 * await using session = model.createSession()
 * const messages = [{ role: 'user', content: 'Who built the ark?' }]
 * const a = await session.chat(messages, { temperature: 0 })
 * messages.push({ role: 'assistant', content: a.text }, { role: 'user', content: 'Why?' })
 * const b = await session.chat(messages, { temperature: 0 })  // evaluates only the new turn
 * console.log(b.usage.cachedTokens)
 * ```
 */
export class Session {
  readonly contextShift: boolean
  readonly #host: SessionHost
  readonly #kv: KvCache
  readonly #onDispose: (s: Session) => void
  /** Token ids whose keys/values are in the cache, at positions 0..n-1. */
  #tokens: number[] = []
  /** Generations on this session run one after another. */
  #queue: Promise<void> = Promise.resolve()
  #busy = false
  #disposed = false

  /** @internal Use `model.createSession()`. */
  constructor(host: SessionHost, kv: KvCache, opts: SessionOptions, onDispose: (s: Session) => void) {
    this.#host = host
    this.#kv = kv
    this.contextShift = opts.contextShift ?? false
    this.#onDispose = onDispose
  }

  /** Token ids currently in the KV cache (a copy). */
  get tokens(): number[] {
    return [...this.#tokens]
  }

  /** True while a generation runs on this session. */
  get busy(): boolean {
    return this.#busy
  }

  /**
   * Generates after `prompt` (text, or token ids used as is), reusing the cached prefix.
   *
   * @example
   * ```ts
   * const { text } = await session.generate('In the beginning', { maxTokens: 16, temperature: 0 })
   * ```
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): Generation {
    const ids = typeof prompt === 'string' ? this.#host.tokenize(prompt, { addBos: opts.addBos }) : [...prompt]
    const bos = this.#host.tokenizer.bosId
    return new Generation(() => this.#run(ids, ids[0] === bos ? 1 : 0, opts))
  }

  /**
   * Renders `messages` with the chat template and generates the assistant's reply. Pass the
   * whole conversation each turn: the cached prefix is reused.
   *
   * @example
   * ```ts
   * const { text } = await session.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 32 })
   * ```
   */
  chat(messages: readonly ChatMessage[], opts: GenerateOptions = {}): Generation {
    const host = this.#host
    // The template writes BOS itself.
    const ids = host.tokenize(host.applyChatTemplate(messages), { addBos: false })
    // Kept on a context shift: the tokens of the leading system messages.
    let nSystem = 0
    while (nSystem < messages.length && messages[nSystem].role === 'system') nSystem++
    const keep = nSystem === 0
      ? (ids[0] === host.tokenizer.bosId ? 1 : 0)
      : commonPrefix(ids, host.tokenize(host.applyChatTemplate(messages.slice(0, nSystem), { addGenerationPrompt: false }), { addBos: false }))
    return new Generation(() => this.#run(ids, keep, opts))
  }

  /** Forgets the cached tokens (the next call evaluates its whole prompt). */
  reset(): void {
    this.#idle('reset')
    this.#tokens = []
  }

  /**
   * The session's state (cached token ids + their keys/values) as bytes, for `restore()`
   * on a session of the same model, now or after a restart.
   *
   * @example
   * ```ts
   * const bytes = session.save()
   * const other = model.createSession(); other.restore(bytes)
   * ```
   */
  save(): Uint8Array {
    this.#idle('save')
    const c = this.#host.transformer.config
    const n = this.#tokens.length
    const kv = this.#kv.save(n)
    const out = new Uint8Array(24 + 4 * n + kv.length)
    const dv = new DataView(out.buffer)
    ;[MAGIC, VERSION, c.nLayer, c.vocabSize, n].forEach((v, i) => dv.setUint32(4 * i, v, true))
    this.#tokens.forEach((t, i) => dv.setInt32(20 + 4 * i, t, true))
    dv.setUint32(20 + 4 * n, kv.length, true)
    out.set(kv, 24 + 4 * n)
    return out
  }

  /** Replaces the session's state with bytes from `save()`; throws ModelFormatError on a mismatch. */
  restore(bytes: Uint8Array): void {
    this.#idle('restore')
    const c = this.#host.transformer.config
    const fail = (problem: string, offset: number, expected: string, found: string): never => {
      throw new ModelFormatError(problem, { file: 'session state', offset, expected, found })
    }
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('restore() takes the Uint8Array save() returned')
    if (bytes.length < 24) fail('truncated header', 0, '≥ 24 bytes', `${bytes.length}`)
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const u32 = (o: number) => dv.getUint32(o, true)
    if (u32(0) !== MAGIC) fail('not a session state', 0, 'magic BNSS', `0x${u32(0).toString(16)}`)
    if (u32(4) !== VERSION) fail('unsupported version', 4, `${VERSION}`, `${u32(4)}`)
    if (u32(8) !== c.nLayer || u32(12) !== c.vocabSize) {
      fail('state of another model', 8, `n_layer ${c.nLayer}, vocab ${c.vocabSize}`, `n_layer ${u32(8)}, vocab ${u32(12)}`)
    }
    const n = u32(16)
    if (n >= this.#host.contextSize) fail('more tokens than this context holds', 16, `< ${this.#host.contextSize}`, `${n}`)
    if (bytes.length < 24 + 4 * n) fail('truncated token ids', 20, `${24 + 4 * n} bytes`, `${bytes.length}`)
    const tokens = Array.from({ length: n }, (_, i) => dv.getInt32(20 + 4 * i, true))
    tokens.forEach((t, i) => { if (t < 0 || t >= c.vocabSize) fail('token id out of range', 20 + 4 * i, `< ${c.vocabSize}`, `${t}`) })
    const kvLen = u32(20 + 4 * n)
    if (bytes.length !== 24 + 4 * n + kvLen) fail('wrong length', 20 + 4 * n, `${24 + 4 * n + kvLen} bytes`, `${bytes.length}`)
    this.#tokens = []
    this.#kv.restore(bytes.subarray(24 + 4 * n))
    this.#tokens = tokens
  }

  /**
   * Frees the KV cache; the session cannot be used afterwards. A generation running on it
   * ends at its next token (`finishReason: 'abort'`) and the cache is freed then.
   */
  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    if (!this.#busy) this.#free()
  }

  #free(): void {
    this.#tokens = []
    this.#kv.dispose()
    this.#onDispose(this)
  }

  [Symbol.dispose](): void {
    this.dispose()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#queue
    this.dispose()
  }

  #idle(what: string): void {
    if (this.#disposed) throw new InvalidArgumentError(`${what}(): the session is disposed`)
    if (this.#busy) throw new BusyError(`${what}(): the session is generating; wait for it or abort it first`)
  }

  // Waits for earlier generations on this session; returns the release function.
  async #acquire(): Promise<() => void> {
    const prev = this.#queue
    let release!: () => void
    this.#queue = new Promise((r) => { release = r })
    await prev
    if (this.#disposed) { release(); throw new InvalidArgumentError('the session is disposed') }
    this.#busy = true
    return () => {
      this.#busy = false
      if (this.#disposed) this.#free()
      release()
    }
  }

  async *#run(prompt: number[], keep: number, opts: GenerateOptions): GenerationRun {
    const maxTokens = opts.maxTokens ?? 128
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${maxTokens}`)
    if (prompt.length === 0) throw new InvalidArgumentError('the prompt is empty (no tokens)')
    if (opts.draft !== undefined && opts.draft !== false && opts.draft !== 'prompt-lookup') {
      throw new InvalidArgumentError(`draft must be 'prompt-lookup' or false, got ${JSON.stringify(opts.draft)}`)
    }
    const sampler = new Sampler(opts, (logits) => this.#host.transformer.argmax(logits))
    const stops = new StopStrings(opts.stop)
    const release = await this.#acquire()
    try {
      return yield* this.#generate(prompt, keep, maxTokens, sampler, stops, opts)
    } finally {
      release()
    }
  }

  async *#generate(prompt: number[], keep: number, maxTokens: number, sampler: Sampler, stops: StopStrings, opts: GenerateOptions): GenerationRun {
    const { tokenizer } = this.#host
    const { signal } = opts
    const stopIds = new Set([...(opts.ignoreEos ? [] : tokenizer.eosIds), ...(opts.stopTokens ?? [])])
    const stream = tokenizer.createStreamDecoder()
    const history = [...prompt] // prompt + generated: what the penalties look at
    const tokens: number[] = []
    let text = ''
    let finishReason: GenerationResult['finishReason'] = 'length'
    const t0 = performance.now()
    const { pick, need, constraint, wantLogprobs } = picker(opts, tokenizer, sampler, history, stopIds)
    const ends = (s: Sampled) => stopIds.has(s.token) || constraint?.isComplete() === true
    const logprobs: GenerationChunk[] = []
    const drafting: Drafting = { lookup: opts.draft === 'prompt-lookup' ? new PromptLookup(DRAFT_ROWS - 1) : undefined, proposed: 0, accepted: 0 }
    const fed = this.#stopped(signal) ? undefined : await this.#feed(this.#fit([...prompt], keep), signal, pick)
    const tPrompt = performance.now()
    // Sampled tokens not yet emitted (several after a verified draft), in order.
    let queue: Sampled[] = fed && maxTokens > 0 ? [fed.result] : []
    if (!fed) finishReason = 'abort'
    try {
      while (queue.length > 0) {
        const next = queue.shift()!
        const tok = next.token
        if (stopIds.has(tok)) { finishReason = 'stop'; break }
        tokens.push(tok)
        const piece = stops.push(stream.push(tok))
        text += piece
        const chunk: GenerationChunk = { text: piece, tokenId: tok }
        if (wantLogprobs) logprobs.push(Object.assign(chunk, { logprob: next.logprob }, next.top && { topLogprobs: next.top }))
        yield chunk
        if (stops.stopped || constraint?.isComplete()) { finishReason = 'stop'; break }
        if (tokens.length >= maxTokens) break
        if (this.#stopped(signal)) { finishReason = 'abort'; break }
        if (queue.length > 0) continue
        const sampled = await this.#step(tok, maxTokens - tokens.length, { keep, signal, history, pick, need, ends, drafting })
        if (sampled === undefined) { finishReason = 'abort'; break }
        queue = sampled
      }
    } finally {
      // Verified tokens left unemitted (the generation ended before them) leave the cache, so
      // it holds what plain decoding would have fed.
      this.#tokens.length = Math.max(0, this.#tokens.length - queue.length)
    }
    // Bytes of a character the last token left incomplete, then held-back text (tokenId −1: no new token).
    const tail = stops.push(stream.flush()) + stops.flush()
    if (tail) { text += tail; yield { text: tail, tokenId: -1 } }
    if (finishReason === 'abort' && opts.throwOnAbort) throw new AbortError(text)
    return generationResult(prompt, { text, tokens, logprobs: wantLogprobs ? logprobs : undefined, finishReason },
      fed?.evaluated ?? 0, { t0, tPrompt, tEnd: performance.now() }, drafting)
  }

  // The tokens sampled after `tok` (several when a draft holds), or undefined when aborted:
  // one pass of tok + a draft of what followed the text's end before (up to the tokens still
  // allowed, `left`, and the context), or, at the end of the context, tok fed after a shift.
  async #step(tok: number, left: number, g: StepContext): Promise<Sampled[] | undefined> {
    const pos = this.#tokens.length
    if (pos + 1 >= this.#host.contextSize) {
      const r = await this.#feed(this.#fit([...this.#tokens, tok], g.keep), g.signal, g.pick)
      return r && [r.result]
    }
    const { drafting } = g
    const draft = drafting.lookup?.draft(g.history, Math.min(left, this.#host.contextSize - 1 - pos) - 1) ?? []
    const sampled = await this.#verify(tok, draft, g)
    if (sampled !== undefined && draft.length > 0) {
      const accepted = sampled.length - (sampled[sampled.length - 1].token === draft[sampled.length - 1] ? 0 : 1)
      drafting.lookup!.record(draft.length, accepted)
      drafting.proposed += draft.length
      drafting.accepted += accepted
    }
    return sampled
  }


  /**
   * Evaluates `tok` at the cache's next position and the drafted tokens after it in one pass,
   * and samples row by row (each sample sees the ones before it: penalties, grammar): row i's
   * token is the model's next one after `tok, draft[0..i)`, so the draft holds up to the first
   * row whose token differs from it. Returns the sampled tokens (the accepted drafts, then the
   * model's own next token), or undefined if the session was disposed. The cache keeps
   * positions of `tok` and of the accepted drafts; rejected drafts' keys/values stay beyond
   * the cached tokens, where the next pass overwrites them before any row can attend to them.
   *
   * Exactness: a sampled token equals what plain decoding samples from the same logits with
   * the same sampler state, and one draw is made per emitted token, so greedy output, and
   * seeded sampled output, are identical to plain decoding. This is standard speculative
   * sampling with a deterministic draft q (one-hot): the draft token d is accepted with
   * probability p(d) (= min(1, p/q)), and on a rejection the token drawn is distributed as p
   * without d, renormalised.
   */
  async #verify(tok: number, draft: number[], { pick, need, ends }: StepContext): Promise<Sampled[] | undefined> {
    const pos = this.#tokens.length
    const rowNeed = need(draft)
    const rows = [tok, ...draft].map((token, i) => ({ token, pos: pos + i, kv: this.#kv, need: rowNeed }))
    return this.#host.scheduler.decode(rows, (logits) => {
      const out: Sampled[] = []
      for (let i = 0; i < rows.length; i++) {
        this.#tokens.push(rows[i].token)
        const s = pick(logits[i])
        out.push(s)
        if (i === draft.length || s.token !== draft[i] || ends(s)) break
      }
      return out
    }, () => !this.#disposed)
  }

  /**
   * Makes the cache hold exactly `seq`, evaluating only the tokens after the longest common
   * prefix with what is cached (at least the last one, whose logits `onLast` consumes in the
   * same step). Returns undefined if aborted between steps.
   */
  async #feed<T>(seq: number[], signal: AbortSignal | undefined, onLast: (logits: Float32Array) => T): Promise<{ result: T; evaluated: number } | undefined> {
    const { transformer, scheduler, logger } = this.#host
    let pos = Math.min(commonPrefix(this.#tokens, seq), seq.length - 1)
    this.#tokens.length = pos
    const evaluated = seq.length - pos
    logger?.debug?.('kv reuse', { cached: pos, evaluate: evaluated })
    for (;;) {
      if (this.#stopped(signal)) return undefined
      const end = Math.min(seq.length, pos + PROMPT_CHUNK)
      const result = await scheduler.step(() => {
        if (this.#disposed) return null // (the model may be gone too)
        const last = end === seq.length
        const [logits] = transformer.prefill(seq.slice(pos, end), pos, this.#kv, last ? 'last' : 'none')
        this.#tokens.push(...seq.slice(pos, end))
        pos = end
        return last ? { result: onLast(logits), evaluated } : undefined
      })
      if (result !== undefined) return result ?? undefined
    }
  }

  // Aborted by the caller, or the session was disposed meanwhile.
  #stopped(signal: AbortSignal | undefined): boolean {
    return signal?.aborted === true || this.#disposed
  }

  // `seq` if it leaves room for one more token, else shifted (contextShift) or an error.
  #fit(seq: number[], keep: number): number[] {
    const ctx = this.#host.contextSize
    if (seq.length < ctx) return seq
    if (!this.contextShift || keep + 2 > ctx) throw new ContextFullError(ctx, seq.length + 1)
    let s = seq
    while (s.length >= ctx) {
      const discard = Math.max(1, Math.floor((s.length - keep) / 2))
      s = [...s.slice(0, keep), ...s.slice(keep + discard)]
    }
    this.#host.logger?.warn?.('context full: shifted', { kept: keep, dropped: seq.length - s.length })
    return s
  }
}

/** Length of the longest common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

/** Speculative drafts of one generation: the lookup proposing them and the running counts. */
interface Drafting { lookup?: PromptLookup; proposed: number; accepted: number }

/** What a decode step needs of its generation. */
interface StepContext {
  keep: number
  signal?: AbortSignal
  history: number[]
  pick: (logits: Float32Array) => Sampled
  need: (draft: readonly number[]) => LogitNeed | undefined
  ends: (s: Sampled) => boolean
  drafting: Drafting
}

/**
 * How a generation samples: `pick` samples a token and commits it to what later samples see
 * (grammar state, penalty history), unless it ends the generation. Structured output masks a
 * copy of the logits to the tokens its grammar allows. `need`: what the rows of a pass (the
 * next token, then after each draft token) read of their logits (BatchRow.need): all of them
 * with a grammar or log-probabilities, else the sampler's, with the draft tokens exact too
 * (they join the penalty history of the rows after them).
 */
function picker(opts: GenerateOptions, tokenizer: BitnetTokenizer, sampler: Sampler, history: number[], stopIds: Set<number>) {
  const constraint = createResponseConstraint(opts.responseFormat, tokenizer)
  const topLogprobs = opts.topLogprobs ?? 0
  const wantLogprobs = opts.logprobs === true || topLogprobs > 0
  const pick = (logits: Float32Array): Sampled => {
    if (constraint) constraint.mask(logits = logits.slice())
    const s = wantLogprobs ? sampler.sampleDetailed(logits, history, topLogprobs) : { token: sampler.sample(logits, history) }
    if (!stopIds.has(s.token)) { constraint?.accept(s.token); history.push(s.token) }
    return s
  }
  const need = (draft: readonly number[]): LogitNeed | undefined => {
    const n = constraint || wantLogprobs ? undefined : sampler.logitNeed(history)
    return n && { topK: n.topK, exactIds: [...n.exactIds, ...draft] }
  }
  return { pick, need, constraint, wantLogprobs }
}

/** The result of a finished generation: its text and tokens, usage and timings (t0 start, tPrompt prompt evaluated, tEnd). */
function generationResult(prompt: number[], out: Pick<GenerationResult, 'text' | 'tokens' | 'logprobs' | 'finishReason'>, evaluated: number,
  t: { t0: number; tPrompt: number; tEnd: number }, drafting: Drafting): GenerationResult {
  const { text, tokens, logprobs, finishReason } = out
  const decodeMs = t.tEnd - t.tPrompt
  return {
    text,
    tokens,
    promptTokens: prompt,
    ...(logprobs && { logprobs }),
    finishReason,
    usage: { promptTokens: prompt.length, completionTokens: tokens.length, totalTokens: prompt.length + tokens.length, cachedTokens: prompt.length - evaluated },
    timings: {
      promptMs: t.tPrompt - t.t0,
      promptEvaluated: evaluated,
      timeToFirstTokenMs: t.tPrompt - t.t0,
      decodeMs,
      promptTokensPerSecond: evaluated / ((t.tPrompt - t.t0) / 1000),
      decodeTokensPerSecond: tokens.length > 1 ? (tokens.length - 1) / (decodeMs / 1000) : 0,
      draftTokens: drafting.proposed,
      draftAccepted: drafting.accepted,
    },
  }
}
