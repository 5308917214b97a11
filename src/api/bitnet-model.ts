// `Symbol.asyncDispose` in the public types: consumers whose lib is es2022 (+ DOM) get it from here.
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * The public model object: tokenizer + chat template + transformer + sampler, with the
 * generation loop, logits and perplexity on top.
 */
import { applyChatTemplate, resolveChatTemplate, type ChatMessage } from '../tokenizer/chat-template.js'
import { ContextFullError, InvalidArgumentError } from '../errors.js'
import type { GenerateOptions, Generation } from '../generation/generation.js'
import type { ModelConfig } from '../model/config.js'
import type { ModelContents, ModelLayout } from '../model/contents.js'
import { checkWeightsFit, loadWeights, type LoadOptions } from '../model/load.js'
import { MAX_BATCH, resolveKvType, stateSize, Transformer, type KvType } from '../model/transformer.js'
import { openaiFacade, type OpenAIFacade, type OpenAIFacadeOptions } from '../openai/client.js'
import { Session, type SessionOptions } from '../generation/session.js'
import { StepScheduler } from '../generation/scheduler.js'
import type { BitnetTokenizer } from '../tokenizer/tokenizer.js'
import { BASE_URL, defaultThreads } from '../env.js'
import type { KernelVariant } from '../runtime/wasm.js'
import type { Logger } from '../logger.js'
import { checkModelOptions, DEFAULT_MAX_CONTEXT, type EmbedOptions, type ModelOptions } from './options.js'

function assetUrl(u: string | URL | undefined, name: string): URL | undefined {
  if (u === undefined) return undefined
  try {
    return new URL(u, BASE_URL)
  } catch {
    throw new InvalidArgumentError(`assets.${name} must be a URL (or, in a browser, a path on the page's origin), got ${String(u)}`)
  }
}

export class BitnetModel {
  readonly config: ModelConfig
  readonly tokenizer: BitnetTokenizer
  /** The Jinja chat template in use. */
  readonly chatTemplate: string
  /** KV cache capacity in tokens. */
  readonly contextSize: number
  readonly transformer: Transformer

  /** Which kernel build runs ('relaxed' or 'simd'). */
  readonly variant: KernelVariant
  readonly logger?: Logger
  /** @internal Hands out compute turns to sessions, round-robin per token, decode steps batched. */
  readonly scheduler: StepScheduler
  readonly #sessions = new Set<Session>()
  #defaultSession?: Session

  private constructor(t: Transformer, tokenizer: BitnetTokenizer, chatTemplate: string, variant: KernelVariant, logger?: Logger) {
    this.transformer = t
    this.logger = logger
    this.scheduler = new StepScheduler((rows) => t.forwardBatch(rows), MAX_BATCH)
    this.variant = variant
    this.config = t.config
    this.contextSize = t.contextSize
    this.tokenizer = tokenizer
    this.chatTemplate = chatTemplate
  }

  /** Loads a model (a GGUF file or a Hugging Face folder, opened by loadModel). */
  static async load(contents: ModelContents, opts: ModelOptions = {}): Promise<BitnetModel> {
    checkModelOptions(opts)
    warnGuesses(contents, opts.logger ?? console)
    const { ctx, kvType, load } = weightOptions(contents.config, opts)
    const template = resolveChatTemplate({ ...contents.chatTemplate, override: opts.chatTemplate })
    const pool = { adaptive: opts.threads === undefined, logger: opts.logger, workerUrl: assetUrl(opts.assets?.computeWorker, 'computeWorker') }
    const model = await loadWeights(contents, { ...load, threads: opts.threads ?? await defaultThreads(), pool })
    return new BitnetModel(Transformer.create(model, ctx, kvType), contents.tokenizer, template, model.variant, opts.logger)
  }

  /** Compute threads in use (this one included). */
  get threads(): number {
    return this.transformer.threads
  }

  /** Frees every session and stops the worker threads; the model cannot generate afterwards. */
  dispose(): Promise<void> {
    for (const s of [...this.#sessions]) s.dispose()
    return this.transformer.dispose()
  }

  /**
   * A new independent sequence with its own KV cache. Sessions share the model's compute
   * fairly (round-robin per token), so concurrent generations never mix.
   *
   * @example
   * ```ts
   * const [a, b] = [model.createSession(), model.createSession()]
   * const [x, y] = await Promise.all([a.generate('In the beginning'), b.generate('And God said')])
   * ```
   */
  createSession(opts: SessionOptions = {}): Session {
    const s = new Session(this, this.transformer.createKvCache(), opts, (d) => this.#sessions.delete(d))
    this.#sessions.add(s)
    return s
  }

  /** The session behind `model.generate()` / `model.chat()` (created on first use). */
  get defaultSession(): Session {
    this.#defaultSession ??= this.createSession()
    return this.#defaultSession
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose()
  }

  /** Text → token ids (special tokens in the text are parsed; BOS per `addBos`). */
  tokenize(text: string, opts: { addBos?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, opts)
  }

  /** Token ids → text. */
  detokenize(ids: number[]): string {
    return this.tokenizer.decode(ids)
  }

  /** Renders chat messages with the model's template (ends with the assistant prefix unless `addGenerationPrompt: false`). */
  applyChatTemplate(messages: readonly ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    return applyChatTemplate(this.chatTemplate, messages, {
      bosToken: this.tokenizer.bosToken,
      eosToken: this.tokenizer.eosToken,
      addGenerationPrompt: opts.addGenerationPrompt,
    })
  }

  /**
   * Evaluates `tokens` from position 0 and returns the logits of every position
   * ([n][vocab], copies), or only the last one with `{ lastOnly: true }`.
   */
  logits(tokens: readonly number[], opts: { lastOnly?: boolean } = {}): Float32Array[] {
    if (opts.lastOnly) return this.transformer.prefill(tokens, 0, undefined, 'last').map((l) => l.slice())
    return this.transformer.prefill(tokens, 0, undefined, 'all')
  }

  /**
   * Perplexity with the golden convention: the stream is cut into chunks of `ctx`
   * tokens; each chunk is evaluated as [BOS] + chunk[:-1] and predicts all its tokens.
   */
  perplexity(ids: readonly number[], ctx = 512, onChunk?: (done: number, total: number) => void): { ppl: number; nll: number; tokens: number } {
    const bos = this.tokenizer.bosId
    if (bos === undefined) throw new InvalidArgumentError('perplexity needs a model with a BOS token')
    if (ctx < 1 || ctx > this.contextSize) throw new InvalidArgumentError(`ctx must be in 1..${this.contextSize}, got ${ctx}`)
    let nll = 0, n = 0
    const chunks = Math.floor(ids.length / ctx)
    if (chunks === 0) throw new InvalidArgumentError(`need at least ${ctx} tokens for --ctx ${ctx}, got ${ids.length}`)
    for (let c = 0; c < chunks; c++) {
      const chunk = ids.slice(c * ctx, (c + 1) * ctx)
      const input = [bos, ...chunk.slice(0, -1)]
      this.transformer.prefill(input, 0, undefined, 'all').forEach((logits, pos) => {
        nll -= logSoftmaxAt(logits, chunk[pos])
        n++
      })
      onChunk?.(c + 1, chunks)
    }
    return { ppl: Math.exp(nll / n), nll: nll / n, tokens: n }
  }

  /**
   * Generates text after `prompt` (a string, or token ids used as is) on the default
   * session, reusing its cached prefix.
   *
   * @example
   * ```ts
   * for await (const { text } of model.generate('In the beginning', { maxTokens: 32, temperature: 0 })) {
   *   process.stdout.write(text)
   * }
   * ```
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): Generation {
    return this.defaultSession.generate(prompt, opts)
  }

  /**
   * Chat on the default session: renders `messages` with the chat template, then generates
   * the assistant's reply.
   *
   * @example
   * ```ts
   * const { text } = await model.chat([{ role: 'user', content: 'Who led Israel out of Egypt?' }], { maxTokens: 64 })
   * ```
   */
  chat(messages: readonly ChatMessage[], opts: GenerateOptions = {}): Generation {
    return this.defaultSession.chat(messages, opts)
  }

  /**
   * The OpenAI client's shape over this model, in process: `chat.completions.create`,
   * `completions.create` (same request bodies and response objects as `bitnet serve`;
   * `stream: true` gives an async iterable of chunks) and `models.list`. Requests run on the
   * default session (or `opts.session`), one after another.
   *
   * @example
   * ```ts
   * const openai = model.openai()
   * const r = await openai.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 32 })
   * console.log(r.choices[0].message.content)
   * for await (const c of await openai.chat.completions.create({ messages, stream: true })) {
   *   process.stdout.write(c.choices[0]?.delta.content ?? '')
   * }
   * ```
   */
  openai(opts: OpenAIFacadeOptions = {}): OpenAIFacade {
    return openaiFacade(this, opts)
  }

  /**
   * Text embedding: the final hidden states (after the output norm) of the tokens of `text`
   * (BOS per `addBos`, EOS per `appendEos`), pooled. Defaults follow the model: an embedding
   * model (BitNet-embedding-0.6B / -270M, or a file with a pooling type) pools as it declares
   * (these: the last token) and L2-normalises; EOS is appended where its tokenizer says
   * (`add_eos_token`: BitNet-embedding-0.6B). A language model defaults to the mean, unnormalised.
   * Queries take a one-sentence task `instruction` (documents none). Uses the model's own
   * cache, not any session's.
   *
   * @example
   * ```ts
   * const model = await loadModel('bitnet-embedding-0.6b/ggml-model-i2_s.gguf')
   * const [doc] = model.embedBatch(['BitNet b1.58 stores weights in 1.58 bits.'])
   * const q = model.embed('how small are BitNet weights?', { instruction: 'Given a question, retrieve passages that answer it' })
   * const cosine = q.reduce((s, v, i) => s + v * doc[i], 0)
   * ```
   */
  embed(text: string | readonly number[], opts: EmbedOptions = {}): Float32Array {
    const ids = this.embeddingIds(text, opts)
    if (ids.length > this.contextSize) throw new ContextFullError(this.contextSize, ids.length)
    const t = this.transformer
    const pooled = new Float64Array(this.config.nEmbd)
    const last = (opts.pooling ?? this.config.pooling ?? 'mean') === 'last'
    for (let i = 0; i < ids.length; i += MAX_BATCH) {
      const rows = ids.slice(i, i + MAX_BATCH).map((token, j) => ({ token, pos: i + j }))
      t.forwardBatch(rows)
      const states = t.hiddenStates(rows.length)
      for (const h of last ? states.slice(-1) : states) h.forEach((v, d) => { pooled[d] = last ? v : pooled[d] + v })
    }
    let scale = last ? 1 : 1 / ids.length
    if (opts.normalize ?? this.config.pooling !== undefined) scale = 1 / Math.hypot(...pooled)
    return Float32Array.from(pooled, (v) => v * scale)
  }

  /**
   * The token ids {@link embed} evaluates for `text`: a string with its instruction or prefix,
   * BOS per `addBos`, then EOS per `appendEos` (default: the tokenizer's `add_eos_token`);
   * ids as given, plus that EOS.
   */
  embeddingIds(text: string | readonly number[], opts: EmbedOptions = {}): number[] {
    const query = opts.instruction === undefined ? (opts.prefix ?? '') + text : `Instruct: ${opts.instruction}\nQuery: ${text}`
    const ids = typeof text === 'string' ? this.tokenize(query, opts) : [...text]
    const eos = this.tokenizer.eosId
    if ((opts.appendEos ?? this.tokenizer.addEos) && eos !== undefined) ids.push(eos)
    if (ids.length === 0) throw new InvalidArgumentError('embed(): no tokens')
    return ids
  }

  /** {@link embed} for each text, with the same options. */
  embedBatch(texts: readonly (string | readonly number[])[], opts: EmbedOptions = {}): Float32Array[] {
    return texts.map((t) => this.embed(t, opts))
  }
}

/**
 * Checks that a model fits this runtime with `opts` from its tensor directory alone (a GGUF
 * header read with Range requests is enough), as {@link BitnetModel.load} would place it.
 * @throws ResourceLimitError naming what the model needs, the limit found and what to do.
 */
export async function checkModelFits(contents: ModelLayout, opts: ModelOptions): Promise<void> {
  await checkWeightsFit(contents, weightOptions(contents.config, opts).load)
}

/** The context, KV cache type and weight loading options `opts` give for a model of config `c`. */
function weightOptions(c: ModelConfig, opts: ModelOptions): { ctx: number; kvType: KvType; load: LoadOptions } {
  const ctx = contextFor(c, opts.contextSize)
  const kvType = resolveKvType(c, ctx, opts.kvType ?? 'auto')
  const capped = c.slidingWindow === undefined ? `capped at ${DEFAULT_MAX_CONTEXT}` : `capped at ${DEFAULT_MAX_CONTEXT} and the sliding window`
  return {
    ctx,
    kvType,
    load: {
      state: (config) => stateSize(config, ctx, kvType),
      stateLabel: `a ${ctx}-token context (${opts.contextSize !== undefined ? 'the contextSize option' : `${c.arch}.context_length ${c.contextLength}, ${capped}`})`,
      onProgress: opts.onProgress,
      signal: opts.signal,
      variant: opts.variant,
      outputType: opts.outputType,
      kernel: opts.kernel,
      wasm: opts.wasm,
      segmentBytes: opts.maxMemoryBytes,
    },
  }
}

/**
 * The KV capacity: the caller's, else the training context capped to DEFAULT_MAX_CONTEXT; never
 * beyond a sliding window (every layer attends globally, which equals the windowed layers only
 * while the context fits the window).
 */
function contextFor(c: ModelConfig, requested: number | undefined): number {
  const window = c.slidingWindow ?? Infinity
  if (requested !== undefined && requested > window) {
    throw new InvalidArgumentError(`contextSize ${requested} exceeds the model's sliding attention window of ${window} tokens: ` +
      `its windowed layers are computed exactly up to ${window} tokens; use contextSize ≤ ${window}`)
  }
  return requested ?? Math.min(c.contextLength, DEFAULT_MAX_CONTEXT, window)
}

/** A config value inferred from indirect clues (the FFN activation) is said once per load. */
function warnGuesses(contents: ModelContents, logger: Logger): void {
  const { activation, provenance } = contents.config
  if (!provenance.activationGuessed) return
  logger.warn?.(`bitnet-wasm: ${contents.name}: FFN activation ${activation} (${provenance.activation}); ` +
    'if the output is garbage, the file needs an explicit hidden_activation')
}

/** log softmax(logits)[target], in f64. */
export function logSoftmaxAt(logits: ArrayLike<number>, target: number): number {
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i]
  let sum = 0
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max)
  return logits[target] - max - Math.log(sum)
}
