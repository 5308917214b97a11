/**
 * Grammar-constrained decoding: which tokens of the vocabulary may come next.
 *
 * Per vocabulary, once (cached): every non-special token's bytes, sorted, with the length of the
 * prefix each shares with the one before. That sorted list is an implicit trie: walking it in order
 * and keeping one parse state per depth, a token re-parses only the bytes after its shared prefix,
 * and when a prefix dies every following token that shares it is skipped in O(1). A mask costs one
 * pass over the ids plus a grammar step per live trie edge.
 *
 * Per (grammar, vocabulary), an LRU cache of masks keyed by parse state: inside a JSON string the
 * state repeats after every ordinary character, so after the first visit a step is a cache hit.
 */
import { InvalidArgumentError } from '../errors.js'
import type { Grammar, ParseState } from './grammar.js'

/**
 * What a constraint needs from a tokenizer; {@link BitnetTokenizer} provides it.
 * Special (control) tokens are never generated under a grammar, except end-of-generation tokens
 * once the text is complete.
 */
export interface ConstraintVocabulary {
  readonly vocabSize: number
  readonly eosIds: readonly number[]
  /** Raw bytes of a token (may be part of a UTF-8 sequence). */
  tokenToBytes(id: number): Uint8Array
  isSpecial(id: number): boolean
}

/** Token bytes in byte-lexicographic order (see the module note). */
interface VocabIndex {
  /** Token ids, sorted by their bytes. */
  order: Int32Array
  /** Byte offset of each sorted token in `bytes`; length order.length + 1. */
  start: Int32Array
  bytes: Uint8Array
  /** Length of the prefix sorted token k shares with token k − 1 (0 for k = 0). */
  lcp: Uint32Array
}

const EMPTY = new Uint8Array(0)
const indexes = new WeakMap<ConstraintVocabulary, VocabIndex>()

function vocabIndex(vocab: ConstraintVocabulary): VocabIndex {
  let idx = indexes.get(vocab)
  if (idx) return idx
  // All token bytes in one buffer by id, then the ids sorted by a byte-wise comparator (no
  // per-token strings: that version spent most of its time in the garbage collector).
  const off = new Int32Array(vocab.vocabSize + 1)
  const pieces: Uint8Array[] = []
  const ids: number[] = []
  for (let id = 0; id < vocab.vocabSize; id++) {
    const b = vocab.isSpecial(id) ? EMPTY : vocab.tokenToBytes(id)
    off[id + 1] = off[id] + b.length
    pieces.push(b)
    if (b.length > 0) ids.push(id)
  }
  const flat = new Uint8Array(off[vocab.vocabSize])
  pieces.forEach((b, id) => flat.set(b, off[id]))
  ids.sort((a, b) => {
    const la = off[a + 1] - off[a]
    const lb = off[b + 1] - off[b]
    for (let i = 0, n = Math.min(la, lb); i < n; i++) {
      const d = flat[off[a] + i] - flat[off[b] + i]
      if (d !== 0) return d
    }
    return la - lb || a - b
  })
  const n = ids.length
  const order = Int32Array.from(ids)
  const start = new Int32Array(n + 1)
  const lcp = new Uint32Array(n)
  const bytes = new Uint8Array(flat.length)
  let at = 0
  for (let k = 0; k < n; k++) {
    const id = order[k]
    const len = off[id + 1] - off[id]
    start[k] = at
    bytes.set(flat.subarray(off[id], off[id + 1]), at)
    if (k > 0) {
      const p = start[k - 1]
      const plen = at - p
      let l = 0
      while (l < plen && l < len && bytes[p + l] === bytes[at + l]) l++
      lcp[k] = l
    }
    at += len
  }
  start[n] = at
  idx = { order, start, bytes, lcp }
  indexes.set(vocab, idx)
  return idx
}

/** Masks cached per grammar and vocabulary (bitsets over token ids, keyed by parse state). */
const MASK_CACHE_ENTRIES = 256
const maskCaches = new WeakMap<Grammar, WeakMap<ConstraintVocabulary, Map<string, Uint32Array>>>()

function maskCache(grammar: Grammar, vocab: ConstraintVocabulary): Map<string, Uint32Array> {
  let byVocab = maskCaches.get(grammar)
  if (!byVocab) maskCaches.set(grammar, byVocab = new WeakMap())
  let cache = byVocab.get(vocab)
  if (!cache) byVocab.set(vocab, cache = new Map())
  return cache
}

/** Bitset of the tokens whose bytes the grammar admits from `state` (see the module note). */
function allowedTokens(grammar: Grammar, idx: VocabIndex, vocabSize: number, state: ParseState): Uint32Array {
  const bits = new Uint32Array((vocabSize + 31) >>> 5)
  const { order, start, bytes, lcp } = idx
  const states: ParseState[] = [state]
  // states[0..known] hold for the last walked token; if it died, byte `known` killed it.
  let known = 0
  for (let k = 0; k < order.length; k++) {
    const shared = lcp[k]
    if (shared > known) continue // shares the prefix that died
    const s0 = start[k]
    const len = start[k + 1] - s0
    let d = shared
    for (; d < len; d++) {
      const next = grammar.step(states[d], bytes[s0 + d])
      if (next.dead) break
      states[d + 1] = next
    }
    known = d
    if (d === len) bits[order[k] >>> 5] |= 1 << (order[k] & 31)
  }
  return bits
}

/**
 * Restricts generation to the sentences of a grammar. Per step: `mask(logits)` before sampling,
 * `accept(token)` after; stop when `isComplete()`.
 *
 * @example
 * ```ts
 * const c = new TokenConstraint(jsonSchemaGrammar(schema), model.tokenizer)
 * const sampler = new Sampler({ temperature: 0.7, seed: 1 })
 * let [logits] = model.transformer.prefill(promptIds, 0)
 * for (let pos = promptIds.length; !c.isComplete(); pos++) {
 *   c.mask(logits = logits.slice())      // disallowed ids -> -Infinity (EOS only once complete)
 *   const tok = sampler.sample(logits)
 *   c.accept(tok)
 *   if (model.tokenizer.isEog(tok)) break
 *   logits = model.transformer.forward(tok, pos, true)!
 * }
 * ```
 */
export class TokenConstraint {
  readonly grammar: Grammar
  readonly #vocab: ConstraintVocabulary
  readonly #index: VocabIndex
  readonly #cache: Map<string, Uint32Array>
  readonly #eos: ReadonlySet<number>
  #state: ParseState
  /** An end-of-generation token was accepted. */
  #ended = false

  constructor(grammar: Grammar, vocab: ConstraintVocabulary) {
    this.grammar = grammar
    this.#vocab = vocab
    this.#index = vocabIndex(vocab)
    this.#cache = maskCache(grammar, vocab)
    this.#eos = new Set(vocab.eosIds)
    this.#state = grammar.initial
  }

  /** True once the text so far is a complete sentence (end-of-generation is allowed). */
  isAccepting(): boolean {
    return this.grammar.isAccepting(this.#state)
  }

  /** True when generation must stop: an end token was accepted, or the text is complete and nothing may follow. */
  isComplete(): boolean {
    return this.#ended || (this.isAccepting() && !this.grammar.canContinue(this.#state))
  }

  /** Bitset (32 ids per word) of the non-special tokens allowed next. */
  allowed(): Uint32Array {
    const key = this.#state.key
    let bits = this.#cache.get(key)
    if (bits) {
      this.#cache.delete(key) // re-insert: most recently used last
    } else {
      bits = allowedTokens(this.grammar, this.#index, this.#vocab.vocabSize, this.#state)
      if (this.#cache.size >= MASK_CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!)
    }
    this.#cache.set(key, bits)
    return bits
  }

  /**
   * Sets the logits of disallowed tokens to -Infinity, in place. End-of-generation tokens keep
   * theirs only while {@link isAccepting}.
   */
  mask(logits: Float32Array): void {
    const n = this.#vocab.vocabSize
    if (logits.length !== n) throw new InvalidArgumentError(`constraint: ${logits.length} logits for a vocabulary of ${n}`)
    const accepting = !this.#ended && this.isAccepting()
    const bits = this.#ended ? new Uint32Array((n + 31) >>> 5) : this.allowed()
    const eos = accepting ? [...this.#eos].map((id) => logits[id]) : []
    let live = false
    for (let w = 0; w < bits.length; w++) {
      const word = bits[w]
      if (word === -1 >>> 0) { live = true; continue }
      if (word !== 0) live = true
      const base = w << 5
      const end = Math.min(32, n - base)
      for (let j = 0; j < end; j++) if (((word >>> j) & 1) === 0) logits[base + j] = -Infinity
    }
    if (accepting) [...this.#eos].forEach((id, i) => { logits[id] = eos[i] })
    if (!live && !accepting) throw new InvalidArgumentError('constraint: no token of this vocabulary can continue the grammar')
  }

  /** Advances past `token`; throws {@link InvalidArgumentError} if the grammar does not allow it here. */
  accept(token: number): void {
    if (this.#ended) throw new InvalidArgumentError(`constraint: token ${token} after the end of generation`)
    if (this.#eos.has(token)) {
      if (!this.isAccepting()) throw new InvalidArgumentError(`constraint: end of generation (token ${token}) before the text is complete`)
      this.#ended = true
      return
    }
    const bytes = this.#vocab.isSpecial(token) ? new Uint8Array(0) : this.#vocab.tokenToBytes(token)
    let s = this.#state
    for (const b of bytes) s = this.grammar.step(s, b)
    if (bytes.length === 0 || s.dead) throw new InvalidArgumentError(`constraint: token ${token} is not allowed here`)
    this.#state = s
  }
}
