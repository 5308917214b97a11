/**
 * Stop strings over streamed text: text is released only once it can no longer be the start
 * of a stop string, so a stream never shows a stop string or a piece of one.
 *
 * With stop `"\n\n"`, pushing `"a\n"` releases `"a"` and holds `"\n"`; pushing `"b"` then
 * releases `"\nb"`; pushing `"\n"` instead would complete the stop string: `stopped` becomes
 * true and nothing after `"a"` is ever released.
 */
import { InvalidArgumentError } from '../errors.js'

/**
 * Streaming stop-string matcher.
 *
 * @example
 * ```ts
 * const m = new StopStrings(['User:'])
 * m.push('Amen. Us')  // 'Amen. ' ('Us' held: it may begin 'User:')
 * m.push('er: hi')    // ''  (m.stopped === true)
 * ```
 */
export class StopStrings {
  readonly #stops: readonly string[]
  #held = ''
  #stopped = false

  constructor(stops: readonly string[] = []) {
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string' || s.length === 0)) {
      throw new InvalidArgumentError('stop must be an array of non-empty strings')
    }
    this.#stops = stops
  }

  /** True once a stop string has been completed. */
  get stopped(): boolean {
    return this.#stopped
  }

  /** Adds streamed text; returns the text that is now safe to show. */
  push(text: string): string {
    if (this.#stopped) return ''
    const s = this.#held + text
    // Earliest complete stop string wins: everything before it is released, the rest dropped.
    let cut = -1
    for (const stop of this.#stops) {
      const i = s.indexOf(stop)
      if (i >= 0 && (cut < 0 || i < cut)) cut = i
    }
    if (cut >= 0) {
      this.#stopped = true
      this.#held = ''
      return s.slice(0, cut)
    }
    const keep = this.#heldSuffix(s)
    this.#held = s.slice(s.length - keep)
    return s.slice(0, s.length - keep)
  }

  /** Releases held text at the end of generation (no stop string followed it). */
  flush(): string {
    const s = this.#held
    this.#held = ''
    return this.#stopped ? '' : s
  }

  // Length of the longest suffix of s that is a proper prefix of some stop string.
  #heldSuffix(s: string): number {
    let best = 0
    for (const stop of this.#stops) {
      for (let n = Math.min(stop.length - 1, s.length); n > best; n--) {
        if (s.endsWith(stop.slice(0, n))) { best = n; break }
      }
    }
    return best
  }
}
