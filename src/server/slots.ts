/**
 * The server's slots: `parallel` sessions on one model, each with its own KV cache, and a
 * bounded FIFO queue of requests waiting for one. A request gets the free slot whose cache
 * shares the longest prefix with its prompt (a client continuing a chat lands on the slot
 * that holds the conversation so far), ties to the least recently used.
 */
import type { BitnetModel } from '../api/bitnet-model.js'
import { QueueFullError } from '../errors.js'
import { commonPrefix, type Session } from '../generation/session.js'

export interface Slot {
  readonly id: number
  readonly session: Session
}

interface SlotState extends Slot {
  busy: boolean
  lastUsed: number
}

interface Waiter {
  tokens: readonly number[]
  grant: (slot: SlotState) => void
}

export interface SlotPoolOptions {
  /** Sessions computing at once. */
  parallel: number
  /** Requests allowed to wait for a slot; more get QueueFullError (HTTP 429). */
  maxQueue: number
}

/**
 * Slot pool over one model.
 *
 * @example
 * ```ts
 * const pool = new SlotPool(model, { parallel: 4, maxQueue: 64 })
 * const slot = await pool.acquire(tokens, signal)
 * try { await slot.session.generate(tokens) } finally { pool.release(slot) }
 * ```
 */
export class SlotPool {
  readonly #slots: SlotState[]
  readonly #queue: Waiter[] = []
  readonly #opts: SlotPoolOptions
  #clock = 0

  constructor(model: BitnetModel, opts: SlotPoolOptions) {
    this.#opts = opts
    this.#slots = Array.from({ length: opts.parallel }, (_, id) => ({ id, session: model.createSession(), busy: false, lastUsed: 0 }))
  }

  /** Busy slots, idle slots, waiting requests. */
  get stats(): { processing: number; idle: number; queued: number } {
    const processing = this.#slots.filter((s) => s.busy).length
    return { processing, idle: this.#slots.length - processing, queued: this.#queue.length }
  }

  /**
   * A slot for a request with prompt `tokens`: at once if one is free, else after the
   * requests queued before it. Rejects with QueueFullError, or with the signal's reason
   * when it aborts (client gone, time limit: the request leaves the queue at once).
   */
  acquire(tokens: readonly number[], signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    const free = this.#bestFree(tokens)
    if (free) return Promise.resolve(this.#take(free))
    if (this.#queue.length >= this.#opts.maxQueue) {
      return Promise.reject(new QueueFullError(`all ${this.#slots.length} slots are busy and ${this.#queue.length} requests are queued`))
    }
    return new Promise((resolve, reject) => {
      const leave = (e: Error) => {
        const i = this.#queue.indexOf(waiter)
        if (i >= 0) this.#queue.splice(i, 1)
        reject(e)
      }
      const onAbort = () => leave(signal!.reason)
      const waiter: Waiter = {
        tokens,
        grant: (slot) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(this.#take(slot))
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(waiter)
    })
  }

  /** Returns a slot; the longest-waiting request gets it. */
  release(slot: Slot): void {
    const s = this.#slots[slot.id]
    s.busy = false
    const next = this.#queue.shift()
    if (next) next.grant(s)
  }

  /** Frees every session. */
  dispose(): void {
    for (const s of this.#slots) s.session.dispose()
  }

  #take(s: SlotState): Slot {
    s.busy = true
    s.lastUsed = ++this.#clock
    return s
  }

  #bestFree(tokens: readonly number[]): SlotState | undefined {
    let best: SlotState | undefined
    let bestLen = -1
    for (const s of this.#slots) {
      if (s.busy) continue
      const len = commonPrefix(s.session.tokens, tokens)
      if (len > bestLen || (len === bestLen && s.lastUsed < best!.lastUsed)) { best = s; bestLen = len }
    }
    return best
  }
}
