/**
 * The public model object: tokenizer + chat template + transformer + sampler, with the
 * generation loop, logits and perplexity on top.
 */
import { applyChatTemplate, resolveChatTemplate, type ChatMessage } from './chat-template.js'
import { InvalidArgumentError } from './errors.js'
import { Generation, type GenerationChunk, type GenerationResult, type GenerationRun } from './generation.js'
import type { ModelConfig } from './model/config.js'
import type { ModelContents } from './model/contents.js'
import { loadWeights, type LoadProgress, type OutputType } from './model/load.js'
import type { TernaryKernel } from './model/kernel-select.js'
import { stateBytes, Transformer } from './model/transformer.js'
import { Sampler, type SamplerOptions } from './sampler.js'
import type { BitnetTokenizer } from './tokenizer.js'
import { hardwareConcurrency } from './env.js'
import type { KernelVariant } from './wasm.js'

/** Default cap of the KV cache when the caller gives no `contextSize` (2B4T's own is 4096). */
export const DEFAULT_MAX_CONTEXT = 4096

export interface ModelOptions {
  /** KV cache size in tokens. Default: the model's context length, capped at 4096. */
  contextSize?: number
  /** Compute threads, this one included. Default: the number of cores. */
  threads?: number
  /** Kernel build; default: the fastest this runtime runs ('relaxed', else 'simd'). */
  variant?: KernelVariant
  /**
   * Output projection storage: 'q8' (8-bit copy, half the bytes of F16; perplexity cost
   * on tiny-dev −0.01 %), 'f16' (exact, as in the file) or 'auto' (default: q8 for
   * matrices of ≥ 64 Mi weights such as 2B4T's, f16 below).
   */
  outputType?: OutputType
  /** Ternary kernel: 'i2s' (multiply-add), 'tl' (lookup table) or 'auto' (default: the faster here). */
  kernel?: TernaryKernel | 'auto'
  /** Chat template override (Jinja). Default: the model's (with the 2B4T placeholder fixed). */
  chatTemplate?: string
  /** Structured progress while loading. */
  onProgress?: (p: LoadProgress) => void
  /** Cancels the load. */
  signal?: AbortSignal
  /** Kernel binary override (unusual hosting). */
  wasmBytes?: Uint8Array
}

export interface GenerateOptions extends SamplerOptions {
  /** Maximum number of new tokens. Default 128. */
  maxTokens?: number
  /** Keep going past end-of-generation tokens (llama.cpp `--ignore-eos`). */
  ignoreEos?: boolean
  /** Prepend BOS to a text prompt. Default: the model's `add_bos_token`. */
  addBos?: boolean
  /** Stops generation within one token; the result keeps the partial text. */
  signal?: AbortSignal
}

/**
 * Rejects invalid {@link ModelOptions} before any file is read.
 * @example checkModelOptions({ contextSize: 0 }) // throws InvalidArgumentError
 */
export function checkModelOptions(opts: ModelOptions): void {
  const ctx = opts.contextSize
  if (ctx !== undefined && (!Number.isInteger(ctx) || ctx < 1)) {
    throw new InvalidArgumentError(`contextSize must be a positive integer, got ${ctx}`)
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

  private constructor(t: Transformer, tokenizer: BitnetTokenizer, chatTemplate: string, variant: KernelVariant) {
    this.transformer = t
    this.variant = variant
    this.config = t.config
    this.contextSize = t.contextSize
    this.tokenizer = tokenizer
    this.chatTemplate = chatTemplate
  }

  /** Loads a model (a GGUF file or a Hugging Face folder, opened by loadModel). */
  static async load(contents: ModelContents, opts: ModelOptions = {}): Promise<BitnetModel> {
    checkModelOptions(opts)
    let ctx = opts.contextSize
    const model = await loadWeights(contents, {
      stateBytes: (c) => stateBytes(c, (ctx ??= Math.min(c.contextLength, DEFAULT_MAX_CONTEXT))),
      onProgress: opts.onProgress,
      signal: opts.signal,
      variant: opts.variant,
      outputType: opts.outputType,
      kernel: opts.kernel,
      wasmBytes: opts.wasmBytes,
    })
    const threads = opts.threads ?? await hardwareConcurrency()
    const template = resolveChatTemplate({ ...contents.chatTemplate, override: opts.chatTemplate })
    return new BitnetModel(await Transformer.create(model, ctx!, threads), contents.tokenizer, template, model.variant)
  }

  /** Compute threads in use (this one included). */
  get threads(): number {
    return this.transformer.threads
  }

  /** Stops the worker threads; the model cannot generate afterwards. */
  dispose(): Promise<void> {
    return this.transformer.dispose()
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

  /** Renders chat messages with the model's template (ends with the assistant prefix). */
  applyChatTemplate(messages: readonly ChatMessage[]): string {
    return applyChatTemplate(this.chatTemplate, messages, {
      bosToken: this.tokenizer.bosToken,
      eosToken: this.tokenizer.eosToken,
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
   * Generates text after `prompt` (a string, or token ids used as is).
   *
   * @example
   * ```ts
   * for await (const { text } of model.generate('In the beginning', { maxTokens: 32, temperature: 0 })) {
   *   process.stdout.write(text)
   * }
   * ```
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): Generation {
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, { addBos: opts.addBos }) : [...prompt]
    return new Generation(() => this.run(ids, opts))
  }

  /** Chat: renders `messages` with the chat template, then generates the assistant's reply. */
  chat(messages: readonly ChatMessage[], opts: GenerateOptions = {}): Generation {
    // The template writes BOS itself.
    return this.generate(this.tokenize(this.applyChatTemplate(messages), { addBos: false }), opts)
  }

  private async *run(prompt: number[], opts: GenerateOptions): GenerationRun {
    const maxTokens = opts.maxTokens ?? 128
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${maxTokens}`)
    if (prompt.length === 0) throw new InvalidArgumentError('the prompt is empty (no tokens)')
    const sampler = new Sampler(opts)
    const eos = new Set(this.tokenizer.eosIds)
    const stream = this.tokenizer.createStreamDecoder()
    const t0 = performance.now()

    // Prompt: every token goes through the network; only the last one's logits are needed.
    let [logits] = this.transformer.prefill(prompt, 0)
    const tPrompt = performance.now()

    const history = [...prompt]
    const tokens: number[] = []
    let text = ''
    let finishReason: GenerationResult['finishReason'] = 'length'
    let tFirst = tPrompt
    while (tokens.length < maxTokens) {
      if (opts.signal?.aborted) { finishReason = 'abort'; break }
      const tok = sampler.sample(logits!, history)
      if (tokens.length === 0) tFirst = performance.now()
      if (eos.has(tok) && !opts.ignoreEos) { finishReason = 'stop'; break }
      tokens.push(tok)
      history.push(tok)
      const piece = stream.push(tok)
      text += piece
      yield { text: piece, tokenId: tok } satisfies GenerationChunk
      if (tokens.length === maxTokens) break
      logits = this.transformer.forward(tok, history.length - 1, true)!
    }
    // Bytes of a character the last token left incomplete (tokenId −1: no new token).
    const tail = stream.flush()
    if (tail) { text += tail; yield { text: tail, tokenId: -1 } }
    const tEnd = performance.now()
    const decodeMs = tEnd - tFirst
    return {
      text,
      tokens,
      promptTokens: prompt,
      finishReason,
      usage: { promptTokens: prompt.length, completionTokens: tokens.length, totalTokens: prompt.length + tokens.length },
      timings: {
        promptMs: tPrompt - t0,
        timeToFirstTokenMs: tFirst - t0,
        decodeMs,
        promptTokensPerSecond: prompt.length / ((tPrompt - t0) / 1000),
        decodeTokensPerSecond: tokens.length > 1 ? (tokens.length - 1) / (decodeMs / 1000) : 0,
      },
    }
  }
}

/** log softmax(logits)[target], in f64. */
export function logSoftmaxAt(logits: ArrayLike<number>, target: number): number {
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i]
  let sum = 0
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max)
  return logits[target] - max - Math.log(sum)
}
