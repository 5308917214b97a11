/**
 * SentencePiece BPE tokenizer for GGUF `tokenizer.ggml.model = "llama"` vocabularies (the LLaMA-2
 * vocabulary of the 1bitLLM `bitnet_b1_58-*` models), following llama.cpp's `llm_tokenizer_spm`.
 * {@link BitnetTokenizer} wraps it (BOS, EOG, decoding, streaming); build it through
 * `tokenizerFromGguf`.
 *
 * Encoding (llama.cpp `llama_vocab::impl::tokenize`, SPM branch):
 * 1. Control, user-defined and unknown tokens written in the text (`<s>`, `</s>`, `<unk>`) are cut
 *    out as single tokens, longest token text first.
 * 2. Each remaining text fragment that starts the text or follows such a token gets a `' '` prefix
 *    (when `add_space_prefix`, default true), then every `' '` becomes `'▁'` (U+2581).
 * 3. The fragment is split into characters (code points); the adjacent pair whose concatenation is
 *    a vocabulary token with the highest score is merged (ties: leftmost), again and again, with a
 *    priority queue: O(n log n).
 * 4. A final piece that is not a token (a character missing from the vocabulary) becomes one byte
 *    token `<0xXX>` per UTF-8 byte, or one `<unk>` if the vocabulary lacks byte tokens.
 *
 * Decoding of a single token: `'▁'` → `' '` for ordinary tokens, the raw byte for byte tokens
 * (so an emoji split over `<0xF0><0x9F>…` is reassembled by the UTF-8 decoder).
 */
import { ModelFormatError } from '../errors.js'
import type { TokenizerBackend } from './backend.js'

/** GGUF `tokenizer.ggml.token_type` values used here (llama.cpp `llama_token_type`). */
const TYPE_UNKNOWN = 2
const TYPE_CONTROL = 3
const TYPE_USER_DEFINED = 4
const TYPE_BYTE = 6

/** SentencePiece's meta symbol for a space. */
const SPACE_SYMBOL = '\u2581'
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/

const utf8 = new TextEncoder()

/** A SentencePiece vocabulary, as stored in GGUF. */
export interface SpmVocab {
  /** id -> token text (`tokenizer.ggml.tokens`), spaces written as '▁'. */
  tokens: readonly string[]
  /** id -> merge score (`tokenizer.ggml.scores`): higher merges first. */
  scores: ArrayLike<number>
  /** id -> GGUF token type (`tokenizer.ggml.token_type`). */
  types: ArrayLike<number>
  /** Unknown token, used when a character has no byte tokens to fall back on. */
  unkId: number | undefined
  /** Prefix each text fragment that starts the text or follows a special token with a space. */
  addSpacePrefix: boolean
}

/** A candidate merge of two adjacent symbols. */
interface Bigram {
  left: number
  right: number
  score: number
  /** Length (UTF-16 units) of the merged text; a stale entry no longer matches it. */
  size: number
}

/** Pops first the highest score, then the leftmost pair (llama.cpp `llm_bigram_spm::comparator`). */
function before(a: Bigram, b: Bigram): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left)
}

/** A binary heap of bigrams ordered by {@link before}. */
class BigramQueue {
  readonly #heap: Bigram[] = []

  get size(): number { return this.#heap.length }

  push(x: Bigram): void {
    const h = this.#heap
    let i = h.length
    h.push(x)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(x, h[p])) break
      h[i] = h[p]
      i = p
    }
    h[i] = x
  }

  pop(): Bigram {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= h.length) break
        const c = l + 1 < h.length && before(h[l + 1], h[l]) ? l + 1 : l
        if (!before(h[c], last)) break
        h[i] = h[c]
        i = c
      }
      h[i] = last
    }
    return top
  }
}

/**
 * SentencePiece BPE encoder plus the per-token byte mapping, as a {@link TokenizerBackend}.
 *
 * @example
 * ```ts
 * const spm = new SpmTokenizer({ tokens, scores, types, unkId: 0, addSpacePrefix: true })
 * spm.encode('Hello world')   // [15043, 3186] with the LLaMA-2 vocabulary (no BOS)
 * ```
 */
export class SpmTokenizer implements TokenizerBackend {
  readonly addSpacePrefix: boolean
  readonly #tokens: readonly string[]
  readonly #scores: Float64Array
  readonly #types: Uint8Array
  /** Token text -> id; on duplicate texts the last id wins, as in llama.cpp's `token_to_id`. */
  readonly #ids = new Map<string, number>()
  /** Texts matched as single tokens in the input, longest first. */
  readonly #specials: { text: string, id: number }[] = []
  /** byte -> id of its `<0xXX>` token, or -1. */
  readonly #byteIds = new Int32Array(256).fill(-1)
  readonly #unkId: number | undefined
  /** Longest token text (UTF-16 units): longer candidate merges cannot be tokens. */
  readonly #maxTokenLength: number

  /**
   * @param file used in error messages.
   * @throws ModelFormatError if lengths differ, a byte token is malformed, or some byte has neither
   *   a `<0xXX>` token nor an unknown token to fall back on.
   */
  constructor(vocab: SpmVocab, file?: string) {
    const { tokens, scores, types } = vocab
    const n = tokens.length
    if (scores.length !== n) {
      throw new ModelFormatError('tokenizer.ggml.scores length differs from tokenizer.ggml.tokens', { file, expected: String(n), found: String(scores.length) })
    }
    if (types.length !== n) {
      throw new ModelFormatError('tokenizer.ggml.token_type length differs from tokenizer.ggml.tokens', { file, expected: String(n), found: String(types.length) })
    }
    this.#tokens = tokens
    this.#scores = Float64Array.from(scores)
    this.#types = Uint8Array.from(types)
    this.addSpacePrefix = vocab.addSpacePrefix
    let maxLength = 0
    for (let id = 0; id < n; id++) {
      const text = tokens[id]
      const score = this.#scores[id]
      if (Number.isNaN(score)) throw new ModelFormatError(`tokenizer.ggml.scores[${id}] is NaN`, { file })
      this.#ids.set(text, id)
      if (text.length > maxLength) maxLength = text.length
      const type = this.#types[id]
      if ((type === TYPE_CONTROL || type === TYPE_USER_DEFINED || type === TYPE_UNKNOWN) && text.length > 0) {
        this.#specials.push({ text, id })
      }
      if (type === TYPE_BYTE) {
        const m = BYTE_TOKEN.exec(text)
        if (!m) throw new ModelFormatError(`tokenizer.ggml.tokens[${id}] is a byte token but not <0xXX>`, { file, found: JSON.stringify(text.slice(0, 64)) })
      }
    }
    this.#maxTokenLength = maxLength
    this.#specials.sort((a, b) => b.text.length - a.text.length || a.id - b.id)
    const hex = '0123456789ABCDEF'
    for (let b = 0; b < 256; b++) {
      // Looked up by text, whatever the type, as llama.cpp's byte_to_token does.
      this.#byteIds[b] = this.#ids.get(`<0x${hex[b >> 4]}${hex[b & 15]}>`) ?? -1
    }
    this.#unkId = vocab.unkId
    if (this.#unkId === undefined) {
      const missing = this.#byteIds.indexOf(-1)
      if (missing >= 0) {
        throw new ModelFormatError('vocabulary has neither byte-fallback tokens nor an unknown token', {
          file, expected: `token <0x${hex[missing >> 4]}${hex[missing & 15]}> in tokenizer.ggml.tokens, or tokenizer.ggml.unknown_token_id`,
        })
      }
    }
  }

  /** Text -> ids (no BOS). Special tokens written in the text are single tokens. */
  encode(text: string): number[] {
    const out: number[] = []
    let afterSpecial = true // the text start counts as "after a special token"
    for (const fragment of this.#partition(text)) {
      if (typeof fragment === 'number') {
        out.push(fragment)
        afterSpecial = true
      } else {
        const prefixed = this.addSpacePrefix && afterSpecial ? ' ' + fragment : fragment
        this.#encodeFragment(prefixed.replaceAll(' ', SPACE_SYMBOL), out)
        afterSpecial = false
      }
    }
    return out
  }

  /** Id of a token text, if present. */
  tokenToId(token: string): number | undefined {
    return this.#ids.get(token)
  }

  /** Raw bytes of a token: the byte of a `<0xXX>` byte token, else its text with '▁' as ' '. */
  pieceBytes(id: number): Uint8Array {
    const text = this.#tokens[id]
    if (this.#types[id] === TYPE_BYTE) return Uint8Array.of(parseInt(text.slice(3, 5), 16))
    return utf8.encode(text.replaceAll(SPACE_SYMBOL, ' '))
  }

  /**
   * Cuts special-token texts out of `text`, longest token first over all fragments (llama.cpp
   * `tokenizer_st_partition`). Returns non-empty text fragments and token ids, in order.
   */
  #partition(text: string): (string | number)[] {
    let fragments: (string | number)[] = text.length > 0 ? [text] : []
    for (const { text: special, id } of this.#specials) {
      if (!text.includes(special)) continue
      const next: (string | number)[] = []
      for (const f of fragments) {
        if (typeof f === 'number') { next.push(f); continue }
        let from = 0
        for (let at = f.indexOf(special); at >= 0; at = f.indexOf(special, from)) {
          if (at > from) next.push(f.slice(from, at))
          next.push(id)
          from = at + special.length
        }
        if (from === 0) next.push(f)
        else if (from < f.length) next.push(f.slice(from))
      }
      fragments = next
    }
    return fragments
  }

  /** BPE by score on one escaped fragment (llama.cpp `llm_tokenizer_spm_session::tokenize`). */
  #encodeFragment(s: string, out: number[]): void {
    // Symbols: one per code point, as [start, start + len) of s, in a doubly linked list.
    const cap = s.length
    const start = new Int32Array(cap)
    const len = new Int32Array(cap)
    const prev = new Int32Array(cap)
    const next = new Int32Array(cap)
    let count = 0
    for (let i = 0; i < s.length;) {
      const c = s.charCodeAt(i)
      const w = c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1
      start[count] = i
      len[count] = w
      prev[count] = count - 1
      next[count] = count + 1
      count++
      i += w
    }
    if (count === 0) return
    next[count - 1] = -1

    const queue = new BigramQueue()
    const tryAdd = (left: number, right: number) => {
      if (left < 0 || right < 0) return
      const size = len[left] + len[right]
      if (size > this.#maxTokenLength) return
      const id = this.#ids.get(s.slice(start[left], start[left] + size))
      if (id === undefined) return
      queue.push({ left, right, score: this.#scores[id], size })
    }
    for (let i = 1; i < count; i++) tryAdd(i - 1, i)

    while (queue.size > 0) {
      const { left, right, size } = queue.pop()
      // Stale: one side was merged away, or the right side grew since this pair was queued.
      if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== size) continue
      len[left] = size
      len[right] = 0
      next[left] = next[right]
      if (next[right] >= 0) prev[next[right]] = left
      tryAdd(prev[left], left)
      tryAdd(left, next[left])
    }

    for (let i = 0; i !== -1; i = next[i]) {
      const piece = s.slice(start[i], start[i] + len[i])
      const id = this.#ids.get(piece)
      if (id !== undefined) { out.push(id); continue }
      // Not a token: a character missing from the vocabulary (merges only ever form tokens).
      const bytes = utf8.encode(piece) // a lone surrogate encodes as U+FFFD
      let ok = true
      for (const b of bytes) if (this.#byteIds[b] < 0) ok = false
      if (ok) for (const b of bytes) out.push(this.#byteIds[b])
      else out.push(this.#unkId!) // defined: the constructor checked byte tokens or unk exist
    }
  }
}
