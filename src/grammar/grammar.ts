/**
 * A byte-level context-free grammar and its incremental recogniser, the engine under structured
 * output (./json-schema.ts compiles JSON schemas into it; ./token-constraint.ts turns it into
 * token masks).
 *
 * Shape: rules are lists of alternatives; an alternative is a sequence of byte classes (a set of
 * the 256 byte values) and rule references. No left recursion (the builders here never make it).
 * Working on bytes rather than characters lets a byte-level BPE token that ends inside a UTF-8
 * sequence be checked like any other.
 *
 * Recognition follows llama.cpp's grammar engine (`llama-grammar.cpp`): the parse state is a set of
 * stacks, each a persistent linked list of positions in the flattened rule table whose top is a
 * byte class; feeding a byte advances every stack whose top admits it and expands rule references
 * until byte classes are on top again. A stack that empties means "a complete sentence". Stacks are
 * immutable and share tails.
 *
 * States are interned (one object per distinct set of stacks) and memoise their transitions, so
 * the recogniser becomes a lazily built DFA: inside a JSON string the state after an ordinary
 * character is the state before it, and masking a 128k vocabulary walks mostly cached edges.
 */

/** Element kinds in the flattened rule table. */
const END = 0
const SET = 1
const REF = 2

/**
 * A sequence item while building: `-(s + 1)` for byte class s, `r >= 0` for a reference to rule r.
 * A sequence is an array of items; an empty sequence matches the empty string.
 */
export type Seq = number[]

/** One stack of a parse state: the position to match next and what follows when its rule ends. */
export interface Frame {
  readonly pos: number
  readonly next: Frame | null
}

/**
 * A parse state: the live stacks (`null` is an emptied stack: the input so far is complete).
 * Interned per grammar: equal states are the same object.
 */
export class ParseState {
  readonly stacks: readonly (Frame | null)[]
  /** Identifies the state within its grammar (for caches keyed by state). */
  readonly key: string
  /** @internal Memoised transitions by byte, valid while `epoch` is the grammar's. */
  next: (ParseState | undefined)[] = []
  /** @internal */
  epoch: number

  /** @internal Made by {@link Grammar}. */
  constructor(stacks: readonly (Frame | null)[], key: string, epoch: number) {
    this.stacks = stacks
    this.key = key
    this.epoch = epoch
  }

  /** True if no byte and no end can follow (the input so far has no completion). */
  get dead(): boolean {
    return this.stacks.length === 0
  }
}

/**
 * Interned states per grammar above this many start a new epoch: the table is emptied and a state
 * of an older epoch drops its memoised transitions when next used, so the old transition graph
 * becomes garbage (states themselves stay valid).
 */
const MAX_INTERNED = 100_000

/**
 * Builds a {@link Grammar}: reserve rules, define their alternatives, then `build(root)`.
 *
 * @example
 * ```ts
 * const b = new GrammarBuilder()
 * const digits = b.repeat([b.bytes([[0x30, 0x39]])], 1, 3)         // [0-9]{1,3}
 * const g = b.build(b.rule([[...b.literal('n='), digits]]))         // root ::= "n=" [0-9]{1,3}
 * g.accepts(new TextEncoder().encode('n=42'))                       // true
 * ```
 */
export class GrammarBuilder {
  readonly #rules: Seq[][] = []
  readonly #sets: Uint8Array[] = []
  readonly #setIds = new Map<string, number>()

  /** Reserves a rule id (define it later with {@link define}), for recursive rules. */
  reserve(): number {
    this.#rules.push([])
    return this.#rules.length - 1
  }

  /** Sets the alternatives of a reserved rule. */
  define(rule: number, alternatives: Seq[]): number {
    this.#rules[rule] = alternatives
    return rule
  }

  /** A new rule with these alternatives; returns its id. */
  rule(alternatives: Seq[]): number {
    return this.define(this.reserve(), alternatives)
  }

  /** A sequence item matching one byte in the inclusive ranges `[lo, hi]`. */
  bytes(ranges: readonly (readonly [number, number])[]): number {
    const set = new Uint8Array(256)
    for (const [lo, hi] of ranges) set.fill(1, lo, hi + 1)
    const key = set.join('')
    let id = this.#setIds.get(key)
    if (id === undefined) {
      id = this.#sets.length
      this.#sets.push(set)
      this.#setIds.set(key, id)
    }
    return -(id + 1)
  }

  /** The UTF-8 bytes of `text`, one single-byte class each. */
  literal(text: string): Seq {
    return Array.from(new TextEncoder().encode(text), (b) => this.bytes([[b, b]]))
  }

  /** A rule matching `seq` or nothing. */
  optional(seq: Seq): number {
    return this.rule([seq, []])
  }

  /**
   * A rule matching `seq` repeated min..max times (max Infinity: unbounded, right-recursive).
   * Bounded repetition unrolls into max − min nested optionals, as llama.cpp does.
   */
  repeat(seq: Seq, min: number, max: number): number {
    let tail: number
    if (max === Infinity) {
      tail = this.reserve()
      this.define(tail, [[...seq, tail], []])
    } else {
      tail = this.rule([[]])
      for (let i = 0; i < max - min; i++) tail = this.rule([[...seq, tail], []])
    }
    const head: Seq = []
    for (let i = 0; i < min; i++) head.push(...seq)
    return this.rule([[...head, tail]])
  }

  /** Flattens the rules into a {@link Grammar} whose sentences are those of `root`. */
  build(root: number): Grammar {
    return new Grammar(this.#rules, this.#sets, root)
  }
}

/**
 * A compiled grammar: flattened rules plus the recogniser operations. Parse states are immutable
 * values; {@link step} returns a new one.
 */
export class Grammar {
  /** Per position: END, SET or REF, and the byte class or rule id. */
  readonly #kind: Uint8Array
  readonly #arg: Int32Array
  /** Per rule: start positions of its alternatives. */
  readonly #starts: Int32Array[]
  /** Byte classes, 256 entries each (1 = member). */
  readonly #sets: Uint8Array
  /** The state before any input. */
  readonly initial: ParseState
  readonly #interned = new Map<string, ParseState>()
  #epoch = 0

  constructor(rules: readonly Seq[][], sets: readonly Uint8Array[], root: number) {
    let size = 0
    for (const alts of rules) for (const seq of alts) size += seq.length + 1
    this.#kind = new Uint8Array(size)
    this.#arg = new Int32Array(size)
    this.#starts = []
    let pos = 0
    for (const alts of rules) {
      const starts = new Int32Array(alts.length)
      alts.forEach((seq, a) => {
        starts[a] = pos
        for (const item of seq) {
          this.#kind[pos] = item < 0 ? SET : REF
          this.#arg[pos++] = item < 0 ? -item - 1 : item
        }
        this.#kind[pos++] = END
      })
      this.#starts.push(starts)
    }
    this.#sets = new Uint8Array(sets.length * 256)
    sets.forEach((s, i) => this.#sets.set(s, i * 256))
    const out: (Frame | null)[] = []
    this.#expandRule(root, null, out, 0)
    this.initial = this.#intern(out)
  }

  /** The state after `byte` ({@link ParseState.dead} when no stack admits it). */
  step(state: ParseState, byte: number): ParseState {
    if (state.epoch !== this.#epoch) {
      state.next = []
      state.epoch = this.#epoch
      this.#interned.set(state.key, state)
    }
    const known = state.next[byte]
    if (known !== undefined) return known
    const out: (Frame | null)[] = []
    for (const f of state.stacks) {
      if (f !== null && this.#sets[this.#arg[f.pos] * 256 + byte] === 1) this.#expand(f.pos + 1, f.next, out, 0)
    }
    return state.next[byte] = this.#intern(out)
  }

  /** True if the input so far is a complete sentence. */
  isAccepting(state: ParseState): boolean {
    return state.stacks.includes(null)
  }

  /** True if some byte can extend the input (at least one stack is non-empty). */
  canContinue(state: ParseState): boolean {
    return state.stacks.some((f) => f !== null)
  }

  /** Whether `bytes` is a complete sentence. */
  accepts(bytes: Uint8Array): boolean {
    let s = this.initial
    for (const b of bytes) s = this.step(s, b)
    return this.isAccepting(s)
  }

  /** The one state object for these stacks (key: the positions of every frame, stack by stack). */
  #intern(stacks: (Frame | null)[]): ParseState {
    let key = ''
    for (let f of stacks) {
      for (; f !== null; f = f.next) key += f.pos + ','
      key += ';'
    }
    let s = this.#interned.get(key)
    if (s === undefined) {
      if (this.#interned.size >= MAX_INTERNED) { this.#interned.clear(); this.#epoch++ }
      s = new ParseState(stacks, key, this.#epoch)
      this.#interned.set(key, s)
    }
    return s
  }

  /**
   * Pushes the stacks that continue at `pos` (followed by `next`) with a byte class on top.
   * A reference at the end of an alternative does not push a return frame (tail call), so
   * right-recursive repetition keeps the stacks shallow.
   */
  #expand(pos: number, next: Frame | null, out: (Frame | null)[], depth: number): void {
    const kind = this.#kind[pos]
    if (kind === SET) {
      for (const f of out) if (f !== null && f.pos === pos && f.next === next) return
      out.push({ pos, next })
    } else if (kind === REF) {
      const cont = this.#kind[pos + 1] === END ? next : { pos: pos + 1, next }
      this.#expandRule(this.#arg[pos], cont, out, depth)
    } else if (next === null) {
      if (!out.includes(null)) out.push(null)
    } else {
      this.#expand(next.pos, next.next, out, depth)
    }
  }

  #expandRule(rule: number, next: Frame | null, out: (Frame | null)[], depth: number): void {
    // A rule that reaches itself without consuming a byte would recurse forever; the builders never
    // make one, and the depth bound turns a mistake into an error instead of a stack overflow.
    if (depth > 10_000) throw new RangeError('grammar: left recursion')
    for (const start of this.#starts[rule]) this.#expand(start, next, out, depth + 1)
  }
}
