/**
 * The object `generate()` returns: an `AsyncIterable` of chunks for streaming, and a
 * `PromiseLike` of the full result for `await`. Both views drive the same single run.
 *
 * @example
 * ```ts
 * for await (const chunk of model.generate('Hello', { maxTokens: 8 })) process.stdout.write(chunk.text)
 * const { text, usage } = await model.generate('Hello', { maxTokens: 8 })
 * ```
 */
import { AbortError } from '../errors.js'
import type { ResponseFormat } from '../grammar/response-format.js'
import type { SamplerOptions, TokenLogprob } from './sampler.js'

/** Per-request options of `generate()` / `chat()` (load options are separate: `ModelOptions`). */
export interface GenerateOptions extends SamplerOptions {
  /** Maximum number of new tokens. Default 128. */
  maxTokens?: number
  /** Keep going past end-of-generation tokens (llama.cpp `--ignore-eos`). */
  ignoreEos?: boolean
  /** Prepend BOS to a text prompt. Default: the model's `add_bos_token`. */
  addBos?: boolean
  /** Stop when the text contains one of these; the stop string is not part of the output. */
  stop?: readonly string[]
  /** Stop after sampling one of these token ids (besides end-of-generation tokens); not part of the output. */
  stopTokens?: readonly number[]
  /** Stops generation within one token; the result keeps the partial text (`finishReason: 'abort'`). */
  signal?: AbortSignal
  /** Reject with an `AbortError` (carrying the partial text) on abort instead of resolving. */
  throwOnAbort?: boolean
  /** Structured output: JSON mode or JSON-schema constrained text (OpenAI `response_format`). */
  responseFormat?: ResponseFormat
  /** Report each token's log-probability (chunk `logprob`, result `logprobs`). */
  logprobs?: boolean
  /** Also report this many most likely alternatives per token (OpenAI `top_logprobs`); implies `logprobs`. */
  topLogprobs?: number
  /**
   * Speculative decoding. `'prompt-lookup'`: when the end of the text so far occurred earlier
   * in the prompt or the output, the tokens that followed it there are drafted and verified
   * with the next token in one batched pass, so text that copies its input (summaries, edits,
   * extracted JSON) comes several tokens per pass. The output is the same as without drafts
   * (greedy, and sampled with the same seed; every sampler option and `responseFormat`
   * apply); `timings.draftTokens` / `draftAccepted` count the drafts. `false` (default): one
   * token per pass. Off by default: a pass of 4 rows costs ~2.5 one-row steps with today's
   * kernels, so the gain is bounded (≤ 1.6× at full acceptance) and only text that copies
   * its input gains, while concurrent sessions lose batch room to drafts.
   *
   * @example
   * ```ts
   * const r = await model.generate(`${article}
Summary:`, { temperature: 0, draft: 'prompt-lookup' })
   * console.log(r.timings.draftAccepted / r.timings.draftTokens) // acceptance rate
   * ```
   */
  draft?: 'prompt-lookup' | false
}

/** One generated token. */
export interface GenerationChunk {
  /**
   * Text this token releases: empty while a multi-byte character is incomplete or while the
   * text could still turn into a stop string (held back, released with a later chunk).
   */
  text: string
  tokenId: number
  /** With `logprobs`: the token's natural-log probability (see `Sampler.sampleDetailed`). */
  logprob?: number
  /** With `topLogprobs`: the most likely tokens at this step, best first. */
  topLogprobs?: TokenLogprob[]
}

export interface GenerationTimings {
  /** Prompt evaluation time. */
  promptMs: number
  /** Prompt tokens evaluated (those after the prefix reused from the KV cache). */
  promptEvaluated: number
  /** Time from the call to the first generated token. */
  timeToFirstTokenMs: number
  /** Time spent generating after the first token. */
  decodeMs: number
  promptTokensPerSecond: number
  decodeTokensPerSecond: number
  /** Draft tokens verified (option `draft`). */
  draftTokens: number
  /** Of those, the ones the model's own choice confirmed (emitted without a pass of their own). */
  draftAccepted: number
}

export interface GenerationResult {
  text: string
  /** Generated token ids (prompt excluded). */
  tokens: number[]
  /** Prompt token ids as evaluated (BOS included). */
  promptTokens: number[]
  /** With `logprobs` / `topLogprobs`: one chunk per generated token, with its log-probabilities. */
  logprobs?: GenerationChunk[]
  /**
   * 'stop': end-of-generation token, stop token, stop string or completed `responseFormat`
   * JSON; 'length': maxTokens; 'abort': signal.
   */
  finishReason: 'stop' | 'length' | 'abort'
  /** `cachedTokens`: prompt tokens whose keys/values were reused from the session's KV cache. */
  usage: { promptTokens: number; completionTokens: number; totalTokens: number; cachedTokens: number }
  timings: GenerationTimings
}

/** What a generation run yields, then returns. */
export type GenerationRun = AsyncGenerator<GenerationChunk, GenerationResult>

export class Generation implements AsyncIterable<GenerationChunk>, PromiseLike<GenerationResult> {
  private started = false
  private result?: Promise<GenerationResult>

  constructor(private readonly run: () => GenerationRun) {}

  [Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    const it = this.start()
    let partial = ''
    let resolveResult!: (r: GenerationResult) => void
    let rejectResult!: (e: unknown) => void
    this.result = new Promise((res, rej) => { resolveResult = res; rejectResult = rej })
    this.result.catch(() => {}) // surfaced through the iterator; avoid an unhandled rejection
    return {
      next: async () => {
        try {
          const r = await it.next()
          if (r.done) { resolveResult(r.value); return { done: true, value: undefined } }
          partial += r.value.text
          return r
        } catch (e) {
          rejectResult(e)
          throw e
        }
      },
      // Leaving a for-await loop early stops the run; awaiting the generation afterwards
      // rejects with an AbortError holding the text streamed so far.
      return: async () => {
        await it.return(undefined as never)
        rejectResult(new AbortError(partial))
        return { done: true, value: undefined }
      },
    }
  }

  then<A = GenerationResult, B = never>(
    onFulfilled?: ((value: GenerationResult) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    if (!this.result) {
      const it = this.start()
      this.result = (async () => {
        for (;;) {
          const r = await it.next()
          if (r.done) return r.value
        }
      })()
    }
    return this.result.then(onFulfilled, onRejected)
  }

  private start(): GenerationRun {
    if (this.started) throw new Error('a generation can be consumed once (iterate it or await it)')
    this.started = true
    return this.run()
  }
}
