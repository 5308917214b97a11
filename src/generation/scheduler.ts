/**
 * Fair sharing of one model between sessions. The transformer computes one pass at a time
 * (its activation buffers are shared), so sessions hand it work items, served in FIFO order
 * (a session that was just served queues behind those waiting: round-robin per token):
 *
 * - a step: a synchronous function run alone (a slice of a prompt through `prefill`);
 * - decode rows: one token of one session, or a token and its drafts at the next positions
 *   (speculative decoding). All decode rows waiting when the model is free go through ONE
 *   `forwardBatch` (up to MAX_BATCH rows from different KV caches: every weight is read once
 *   for all of them), then each item's logits are handed to its own callback (sampling) in
 *   the same synchronous turn, before anything else can overwrite them.
 *
 * Work is granted in a macrotask: by then every active stream has queued its next row (its
 * consumer ran in the microtasks before), so decode steps batch, and the event loop serves
 * sockets and timers (a disconnecting client, an abort) between passes.
 */
import { InvalidArgumentError } from '../errors.js'
import { macrotask } from '../env.js'
import type { BatchRow } from '../model/transformer.js'

type Item =
  | { kind: 'step'; run: () => unknown; done: (v: unknown) => void; fail: (e: unknown) => void }
  | { kind: 'rows'; rows: BatchRow[]; use: (logits: Float32Array[]) => unknown; live: () => boolean; done: (v: unknown) => void; fail: (e: unknown) => void }

/**
 * FIFO scheduler of steps and batched decode rows (one per model).
 *
 * @example
 * ```ts
 * const sched = new StepScheduler((rows) => transformer.forwardBatch(rows), MAX_BATCH)
 * const next = await sched.decode([{ token, pos, kv }], ([logits]) => sampler.sample(logits), () => true)
 * ```
 */
export class StepScheduler {
  readonly #forwardBatch: (rows: BatchRow[]) => (Float32Array | undefined)[]
  readonly #maxBatch: number
  #queue: Item[] = []
  #scheduled = false
  /** Rows per forwardBatch so far (for tests and stats): [passes, rows]. */
  readonly batches = { passes: 0, rows: 0 }

  constructor(forwardBatch: (rows: BatchRow[]) => (Float32Array | undefined)[], maxBatch: number) {
    this.#forwardBatch = forwardBatch
    this.#maxBatch = maxBatch
  }

  /** Runs `fn` alone when its turn comes; resolves with its result. */
  step<T>(fn: () => T): Promise<T> {
    return new Promise<T>((done, fail) => this.#push({ kind: 'step', run: fn, done: done as (v: unknown) => void, fail }))
  }

  /**
   * Evaluates rows of one cache (one token, or a token and its drafts at the next positions:
   * 1..maxBatch rows, kept in one pass), batched with the other sessions' rows, and resolves
   * with `use(logits)` (one per row, called synchronously right after the pass), or with
   * undefined without computing if `live()` is false by then (session disposed).
   */
  decode<T>(rows: readonly Omit<BatchRow, 'logits'>[], use: (logits: Float32Array[]) => T, live: () => boolean): Promise<T | undefined> {
    if (rows.length < 1 || rows.length > this.#maxBatch) throw new InvalidArgumentError(`decode takes 1..${this.#maxBatch} rows, got ${rows.length}`)
    return new Promise<T | undefined>((done, fail) => this.#push({
      kind: 'rows', rows: rows.map((r) => ({ ...r, logits: true })), use, live, done: done as (v: unknown) => void, fail,
    }))
  }

  #push(item: Item): void {
    this.#queue.push(item)
    if (!this.#scheduled) {
      this.#scheduled = true
      macrotask(() => this.#serve())
    }
  }

  // Serves the head of the queue: a step alone, or every waiting decode row (up to the batch size).
  #serve(): void {
    this.#scheduled = false
    const head = this.#queue[0]
    if (head.kind === 'step') {
      this.#queue.shift()
      try { head.done(head.run()) } catch (e) { head.fail(e) }
    } else {
      // Items in queue order while they fit; one that does not waits for the next pass.
      const batch: Extract<Item, { kind: 'rows' }>[] = []
      let rows = 0
      this.#queue = this.#queue.filter((it) => {
        if (it.kind !== 'rows' || rows + it.rows.length > this.#maxBatch) return true
        if (it.live()) { batch.push(it); rows += it.rows.length } else it.done(undefined)
        return false
      })
      if (batch.length > 0) this.#pass(batch)
    }
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true
      macrotask(() => this.#serve())
    }
  }

  #pass(batch: Extract<Item, { kind: 'rows' }>[]): void {
    let logits: (Float32Array | undefined)[]
    try {
      logits = this.#forwardBatch(batch.flatMap((b) => b.rows))
    } catch (e) {
      for (const b of batch) b.fail(e)
      return
    }
    this.batches.passes++
    this.batches.rows += logits.length
    let at = 0
    for (const b of batch) {
      const mine = logits.slice(at, at += b.rows.length) as Float32Array[]
      try { b.done(b.use(mine)) } catch (e) { b.fail(e) }
    }
  }
}
