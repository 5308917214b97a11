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
import type { TokenLogprob } from './sampler.js'

/** One generated token. */
export interface GenerationChunk {
  /** Text this token adds (may be empty while a multi-byte character is incomplete). */
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
  /** Time from the call to the first generated token. */
  timeToFirstTokenMs: number
  /** Time spent generating after the first token. */
  decodeMs: number
  promptTokensPerSecond: number
  decodeTokensPerSecond: number
}

export interface GenerationResult {
  text: string
  /** Generated token ids (prompt excluded). */
  tokens: number[]
  /** Prompt token ids as evaluated (BOS included). */
  promptTokens: number[]
  /** With `logprobs` / `topLogprobs`: one chunk per generated token, with its log-probabilities. */
  logprobs?: GenerationChunk[]
  finishReason: 'stop' | 'length' | 'abort'
  usage: { promptTokens: number; completionTokens: number; totalTokens: number }
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
    let resolveResult!: (r: GenerationResult) => void
    let rejectResult!: (e: unknown) => void
    this.result = new Promise((res, rej) => { resolveResult = res; rejectResult = rej })
    this.result.catch(() => {}) // surfaced through the iterator; avoid an unhandled rejection
    return {
      next: async () => {
        try {
          const r = await it.next()
          if (r.done) { resolveResult(r.value); return { done: true, value: undefined } }
          return r
        } catch (e) {
          rejectResult(e)
          throw e
        }
      },
      return: async () => {
        await it.return(undefined as never)
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
