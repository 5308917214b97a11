/**
 * Fair sharing of one model between sessions. The transformer computes one thing at a time
 * (its activation buffers are shared), so every piece of work (a slice of a prompt, or one
 * decode step: forward + sample) runs as a synchronous `step` granted in FIFO order: a
 * session that just ran a step queues behind those waiting, which is round-robin per token
 * when several streams are active. A step never awaits, so no other session can touch the
 * activation buffers (or the logits view) in the middle of one.
 *
 * Steps chain through microtasks, which would starve timers and sockets (a disconnecting
 * HTTP client, an abort from a timer); after ~`YIELD_MS` of back-to-back compute the next
 * grant goes through a macrotask so the event loop can serve I/O.
 */
const YIELD_MS = 10

/**
 * FIFO step scheduler (one per model).
 *
 * @example
 * ```ts
 * const sched = new StepScheduler()
 * const token = await sched.step(() => sampler.sample(transformer.forward(tok, pos, true, kv)!))
 * ```
 */
export class StepScheduler {
  #waiting: (() => void)[] = []
  #running = false
  #lastYield = performance.now()

  /** Steps waiting for their turn. */
  get waiting(): number {
    return this.#waiting.length
  }

  /** Runs `fn` when it is this caller's turn; resolves with its result. */
  async step<T>(fn: () => T): Promise<T> {
    if (this.#running || this.#waiting.length > 0) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else {
      // Our turn (arrivals queue behind us); yield to the event loop first if it is due.
      this.#running = true
      if (performance.now() - this.#lastYield > YIELD_MS) {
        await macrotask()
        this.#lastYield = performance.now()
      }
    }
    try {
      return fn()
    } finally {
      this.#handOff()
    }
  }

  // Passes the turn to the next waiter (still "running" until it starts), or frees it.
  #handOff(): void {
    const next = this.#waiting.shift()
    if (!next) { this.#running = false; return }
    if (performance.now() - this.#lastYield > YIELD_MS) {
      void macrotask().then(() => { this.#lastYield = performance.now(); next() })
    } else {
      next()
    }
  }
}

// A macrotask through MessageChannel (Node, Deno, Bun, browsers): unlike setTimeout(0) it
// is not clamped to 1-4 ms; the channel is closed so it keeps no process alive.
function macrotask(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel()
    port1.onmessage = () => { port1.close(); resolve() }
    port2.postMessage(0)
  })
}
