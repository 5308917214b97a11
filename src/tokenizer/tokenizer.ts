/**
 * Tokenizer for BitNet b1.58 models: Llama 3 byte-level BPE (128,000 BPE tokens + 256 specials for
 * BitNet-b1.58-2B-4T), or LLaMA-2 SentencePiece BPE (32,000 tokens, 1bitLLM `bitnet_b1_58-*`).
 *
 * Byte-level BPE encoding is done by `@huggingface/tokenizers`. It is built either from a Hugging
 * Face `tokenizer.json` ({@link tokenizerFromHf}) or from the `tokenizer.ggml.*` keys of a GGUF file
 * ({@link tokenizerFromGguf}), which we turn into an equivalent tokenizer.json object. SentencePiece
 * (GGUF `tokenizer.ggml.model = "llama"`) is ours, in ./spm.ts. Decoding is ours for
 * both: every token maps to its raw bytes (GPT-2 byte-level alphabet, or SentencePiece '▁' and
 * `<0xXX>` byte tokens), so a streaming decoder can hold back incomplete UTF-8 sequences instead of
 * printing U+FFFD halfway through an emoji.
 *
 * Behaviour follows llama.cpp / HF for Llama 3:
 * - special tokens written in the text (`<|eot_id|>`) are parsed as single tokens;
 * - BOS is prepended when `addBos` (default: the model's `add_bos_token`, true for Llama 3), even if
 *   the text already starts with `<|begin_of_text|>`. A rendered chat prompt already contains BOS
 *   (the 2B4T template writes `bos_token`), so encode it with `{ addBos: false }`;
 * - decoding does no "clean up tokenization spaces" (HF's `" ." -> "."` rewrite), so
 *   `decode(encode(s)) === s`.
 *
 * Why the GGUF path needs care: the official 2B4T GGUF has no `tokenizer.ggml.pre` (the
 * Llama 3 split is implied) and does not mark `<|eot_id|>` as end-of-generation.
 */
import { Tokenizer } from '@huggingface/tokenizers'
import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { metaArrayOpt, metaBoolOpt, metaNumberOpt, metaStringOpt } from '../gguf/reader.js'
import { GgufType, type GgufMetadata } from '../gguf/types.js'
import { metaArr, metaBool, metaStr, metaU32 } from '../gguf/writer.js'
import type { TokenizerBackend } from './backend.js'
import { SpmTokenizer } from './spm.js'

/** Options for {@link BitnetTokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend the BOS token. Default: the model's `add_bos_token` (true for Llama 3 / 2B4T). */
  addBos?: boolean
}

/** Options for {@link BitnetTokenizer.decode} and {@link BitnetTokenizer.createStreamDecoder}. */
export interface DecodeOptions {
  /** Drop special (control) tokens such as `<|eot_id|>` from the text. Default false. */
  skipSpecial?: boolean
}

/**
 * Incremental detokenizer: feed generated ids one at a time, print the returned deltas.
 * Bytes of an incomplete UTF-8 sequence are held back until the token that completes it arrives.
 */
export interface StreamDecoder {
  /** Adds one token; returns the newly completed text (possibly ''). */
  push(id: number): string
  /** Ends the stream; returns held-back bytes (an incomplete sequence decodes to U+FFFD). */
  flush(): string
}

/** Upper bounds on metadata sizes; far above any real vocabulary, they stop hostile files early. */
const MAX_VOCAB = 1 << 21
const MAX_MERGES = 1 << 23
const MAX_TOKEN_CHARS = 1 << 16

/**
 * Llama 3 pre-tokenizer split pattern (tiktoken `cl100k`-style, digits in groups of 1–3), exactly as
 * in Meta's Llama 3 `tokenizer.json`; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_LLAMA3` spells the same
 * pattern with explicit `[sS]` classes instead of `(?i:)`. Oniguruma syntax, translated to JS by
 * `@huggingface/tokenizers`.
 */
const LLAMA3_SPLIT_REGEX =
  String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

/**
 * Qwen2 / Qwen3 pre-tokenizer split pattern: Llama 3's with single digits (`\p{N}`), as Qwen's
 * tokenizer.json spells it (llama.cpp `LLAMA_VOCAB_PRE_TYPE_QWEN2`).
 */
const QWEN2_SPLIT_REGEX =
  String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

/** GPT-2's pre-tokenizer split pattern, as tokenizer.json files spell it. */
const GPT2_SPLIT_REGEX = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

/**
 * The only regexes a tokenizer.json may carry (pre-tokenizer Split, normalizer and decoder
 * Replace patterns). A regex from a file runs on every prompt, and a crafted one backtracks for
 * hours on a short input (ReDoS), so only the patterns of the tokenizers BitNet models use run.
 */
const KNOWN_REGEXES = new Set([LLAMA3_SPLIT_REGEX, QWEN2_SPLIT_REGEX, GPT2_SPLIT_REGEX])

/** Throws UnsupportedFeatureError for a `pattern: { Regex }` anywhere in `json` that is not a known one. */
function checkRegexes(json: object, file: string): void {
  const stack: unknown[] = [json]
  while (stack.length) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object') continue
    for (const [key, value] of Object.entries(node)) {
      if (key === 'model' && node === json) continue // vocab and merges: no patterns, 10^5 entries
      const regex = key === 'pattern' ? (value as { Regex?: unknown } | null)?.Regex : undefined
      if (regex !== undefined && !KNOWN_REGEXES.has(regex as string)) {
        throw new UnsupportedFeatureError(`${file}: regex pattern ${JSON.stringify(String(regex).slice(0, 80))} is not one of the known ` +
          'pre-tokenizer patterns (Llama 3, Qwen2, GPT-2); regexes from files are not run (catastrophic backtracking)')
      }
      stack.push(value)
    }
  }
}

/**
 * `tokenizer.ggml.pre` values that mean the Llama 3 split (llama.cpp `llama-vocab.cpp` maps these to
 * `LLAMA_VOCAB_PRE_TYPE_LLAMA3`). The official 2B4T GGUF has no key at all (docs/formats.md#metadata-keys), which we
 * also read as Llama 3 since its vocabulary is Llama 3's. 'falcon3' (Falcon3-1.58bit) and
 * 'falcon_e' (Falcon-E; written by bitnet.cpp's converter from the tokenizer's hash) are mapped to
 * the Llama 3 pre-type by bitnet.cpp's llama.cpp fork too, with ignore_merges.
 */
const LLAMA3_PRE_NAMES = ['llama-bpe', 'llama3', 'llama-v3', 'falcon3', 'falcon_e']

/**
 * Byte-level BPE pre-tokenizers by `tokenizer.ggml.pre`: the split pattern, and whether a
 * pre-token that is itself in the vocabulary is taken whole without merging (HF
 * `ignore_merges`; llama.cpp sets it for the LLAMA3 pre-type only). 'qwen2' is what bitnet.cpp's
 * embedding converter writes for BitNet-embedding-0.6B (Qwen3's tokenizer).
 */
const BPE_PRE: Record<string, { regex: string; ignoreMerges: boolean }> = {
  ...Object.fromEntries(LLAMA3_PRE_NAMES.map((n) => [n, { regex: LLAMA3_SPLIT_REGEX, ignoreMerges: true }])),
  qwen2: { regex: QWEN2_SPLIT_REGEX, ignoreMerges: false },
}

/** Texts of tokens that end a turn in Llama-3-family vocabularies (2B4T's metadata omits eot). */
const EOG_TOKEN_TEXTS = ['<|eot_id|>', '<|end_of_text|>', '<|eom_id|>']

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`). */
const enum TokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/**
 * GPT-2 byte-level alphabet (openai/gpt-2 `bytes_to_unicode`): printable Latin-1 bytes stand for
 * themselves, the other 68 bytes (controls, space, 0x7F–0xA0, 0xAD) map to U+0100 upward in byte
 * order. `BYTE_OF_CODE_POINT[cp]` is the byte for code point cp, or -1.
 */
const BYTE_OF_CODE_POINT = (() => {
  const table = new Int16Array(256 + 68).fill(-1)
  let next = 256
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
    table[printable ? b : next++] = b
  }
  return table
})()

/** The 256 single-character tokens of the byte-level alphabet; a vocabulary must hold all of them. */
export const BYTE_SYMBOLS: string[] = []
for (let cp = 0; cp < BYTE_OF_CODE_POINT.length; cp++) {
  if (BYTE_OF_CODE_POINT[cp] >= 0) BYTE_SYMBOLS.push(String.fromCodePoint(cp))
}

const utf8 = new TextEncoder()

/** Per-token facts shared by both factories. */
interface TokenTable {
  /**
   * id -> token string: byte-level ('Ġworld') or SentencePiece ('▁world', '<0x0A>') form for
   * vocabulary tokens, literal text for added tokens.
   */
  pieces: string[]
  /**
   * id -> 0 vocabulary (BPE) token, its bytes given by the backend; 1 added token (literal text,
   * parsed in text); 2 added special/control token (parsed in text, dropped by `skipSpecial`).
   */
  kinds: Uint8Array
}

/**
 * Text that reaches every pre-tokenizer branch (letters, digits, punctuation, whitespace runs,
 * newlines, multi-byte characters): encoded once when a tokenizer is built, so a configuration
 * that the library accepts but cannot run fails at load, not at the first prompt.
 */
const PROBE_TEXT = "Hello, World! it's 12345 \t\n\n  x\u00e9\u4e2d\ud83e\udd99 ."

/**
 * The byte-level BPE backend: encoding by `@huggingface/tokenizers`, bytes by the GPT-2 alphabet.
 * The library trusts tokenizer.json, so a malformed one can make `encode` throw a TypeError;
 * such failures become ModelFormatErrors naming the file.
 */
function byteLevelBackend(hf: Tokenizer, pieces: readonly string[], file: string | undefined): TokenizerBackend {
  const encode = (text: string): number[] => {
    try {
      // add_special_tokens=false: BOS is ours to add, whatever post-processor tokenizer.json declares.
      return hf.encode(text, { add_special_tokens: false }).ids
    } catch (e) {
      throw new ModelFormatError(`tokenizer cannot encode: ${(e as Error)?.message ?? String(e)}`, { file })
    }
  }
  const ids = encode(PROBE_TEXT)
  if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id < pieces.length)) {
    throw new ModelFormatError('tokenizer produces token ids outside its vocabulary', { file, expected: `ids < ${pieces.length}`, found: ids.join(',').slice(0, 80) })
  }
  return {
    encode,
    tokenToId: (token) => hf.token_to_id(token),
    pieceBytes: (id) => byteLevelToBytes(pieces[id]),
    addSpacePrefix: false,
  }
}

const KIND_BPE = 0
const KIND_ADDED = 1
const KIND_SPECIAL = 2

/**
 * A Llama-3-style byte-level BPE or LLaMA-2-style SentencePiece tokenizer with BOS/EOG bookkeeping
 * and streaming detokenization. Build it with {@link tokenizerFromGguf} or {@link tokenizerFromHf}.
 *
 * @example
 * ```ts
 * const tok = tokenizerFromHf(tokenizerJson, tokenizerConfig)
 * tok.encode('Hello world')          // [128000, 9906, 1917]
 * tok.decode([9906, 1917])           // 'Hello world'
 * const stream = tok.createStreamDecoder({ skipSpecial: true })
 * for (const id of generated) process.stdout.write(stream.push(id))
 * process.stdout.write(stream.flush())
 * ```
 */
export class BitnetTokenizer {
  /** Number of token ids (the largest id + 1). */
  readonly vocabSize: number
  /** BOS id (`<|begin_of_text|>` = 128000 for Llama 3), if the model has one. */
  readonly bosId: number | undefined
  /**
   * End-of-generation ids, ascending: the model's EOS plus any of `<|eot_id|>` (128009),
   * `<|end_of_text|>` (128001), `<|eom_id|>` present as special tokens, plus declared eot/eom ids.
   */
  readonly eosIds: readonly number[]
  /** Whether {@link encode} prepends BOS by default (`add_bos_token`). */
  readonly addBos: boolean
  /**
   * The model wants EOS after every input (GGUF `tokenizer.ggml.add_eos_token`, tokenizer_config
   * `add_eos_token`): last-token pooled embedding models; {@link BitnetModel.embed} follows it.
   */
  readonly addEos: boolean
  /** The EOS token id, if the vocabulary has one. */
  get eosId(): number | undefined {
    return this.#eosId
  }

  readonly #backend: TokenizerBackend
  readonly #table: TokenTable
  readonly #eos: Set<number>
  readonly #eosId: number | undefined
  /** Lazily filled id -> raw bytes cache (decode hot path). */
  readonly #bytes: (Uint8Array | undefined)[]

  /** @internal Use {@link tokenizerFromGguf} or {@link tokenizerFromHf}. */
  constructor(
    backend: TokenizerBackend,
    table: TokenTable,
    ids: { bos: number | undefined, eos: number | undefined, extraEog: number[], addBos: boolean, addEos?: boolean },
  ) {
    this.#backend = backend
    this.#table = table
    this.vocabSize = table.pieces.length
    this.bosId = ids.bos
    this.#eosId = ids.eos
    this.addBos = ids.addBos && ids.bos !== undefined
    this.addEos = ids.addEos === true && ids.eos !== undefined
    const eog = new Set<number>(ids.extraEog)
    if (ids.eos !== undefined) eog.add(ids.eos)
    for (const text of EOG_TOKEN_TEXTS) {
      const id = backend.tokenToId(text)
      if (id !== undefined && table.kinds[id] === KIND_SPECIAL) eog.add(id)
    }
    this.#eos = eog
    this.eosIds = Object.freeze([...eog].sort((a, b) => a - b))
    this.#bytes = new Array(this.vocabSize)
  }

  /** Text of the BOS token (`'<|begin_of_text|>'`), for chat templates; '' if none. */
  get bosToken(): string {
    return this.bosId === undefined ? '' : this.#table.pieces[this.bosId]
  }

  /** Text of the model's EOS token (`'<|end_of_text|>'`), for chat templates; '' if none. */
  get eosToken(): string {
    return this.#eosId === undefined ? '' : this.#table.pieces[this.#eosId]
  }

  /**
   * Text -> token ids. Special tokens written in the text are parsed as single tokens.
   * BOS is prepended if `addBos` (default {@link addBos}); it is not de-duplicated against a
   * `<|begin_of_text|>` already in the text, as in llama.cpp and HF, so pass `addBos: false` for a
   * rendered chat prompt.
   *
   * @example
   * ```ts
   * tok.encode('12345678', { addBos: false })        // [4513, 10961, 2495]: digits split 3-3-2
   * tok.encode('<|begin_of_text|>Hi<|eot_id|>', { addBos: false })  // [128000, 13347, 128009]
   * ```
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError('encode: text must be a string')
    const ids = text.length === 0 ? [] : this.#backend.encode(text)
    const addBos = opts.addBos ?? this.addBos
    if (addBos && this.bosId !== undefined) ids.unshift(this.bosId)
    return ids
  }

  /**
   * Token ids -> text. Invalid UTF-8 (e.g. a truncated emoji at the end) decodes to U+FFFD.
   *
   * SentencePiece vocabularies with `add_space_prefix` (LLaMA-2): encode adds a space before text
   * that starts the input or follows an added/special token, so decode removes one leading space
   * from the first vocabulary token of the ids and from the first one after each added/special
   * token (skipped or not). Thus `decode(encode(s, { addBos: false })) === s`,
   * `decode(encode(s)) === '<s>' + s` and `decode(encode(s), { skipSpecial: true }) === s`, as for
   * byte-level BPE. llama.cpp's `llama_detokenize` removes the space only at the very start; HF
   * removes it at the start of the output.
   *
   * @example
   * ```ts
   * tok.decode([128000, 9906, 1917])                          // '<|begin_of_text|>Hello world'
   * tok.decode([128000, 9906, 1917], { skipSpecial: true })   // 'Hello world'
   * spm.decode([1, 15043, 3186])                              // '<s>Hello world' (LLaMA-2)
   * ```
   */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const parts: Uint8Array[] = []
    let total = 0
    let afterSpecial = true // the start of the ids counts as "after a special token"
    for (let i = 0; i < ids.length; i++) {
      const bytes = this.#textBytes(ids[i], opts.skipSpecial ?? false, afterSpecial)
      afterSpecial = this.#table.kinds[ids[i]] !== KIND_BPE
      parts.push(bytes)
      total += bytes.length
    }
    const all = new Uint8Array(total)
    let at = 0
    for (const p of parts) { all.set(p, at); at += p.length }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all)
  }

  /**
   * A streaming detokenizer: returns the text completed by each token, holding back the bytes of a
   * UTF-8 sequence split across tokens (byte-level BPE and SentencePiece byte fallback split emoji
   * and CJK this way), so no U+FFFD appears mid-stream. The concatenated output equals
   * {@link decode} of all pushed ids, with one exception for SentencePiece vocabularies: a stream
   * continues a prompt, so the leading space of its first token is kept (`'▁there'` prints
   * `' there'`), while decode removes it (see {@link decode}); after a pushed special token such as
   * BOS both remove it.
   *
   * @example
   * ```ts
   * const s = tok.createStreamDecoder()
   * let text = ''
   * for (const id of tok.encode('🦙', { addBos: false })) text += s.push(id)
   * text += s.flush()   // '🦙'
   * ```
   */
  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    // TextDecoder's streaming mode buffers an incomplete trailing sequence between calls.
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
    const skipSpecial = opts.skipSpecial ?? false
    let afterSpecial = false
    return {
      push: (id) => {
        const bytes = this.#textBytes(id, skipSpecial, afterSpecial)
        afterSpecial = this.#table.kinds[id] !== KIND_BPE
        return decoder.decode(bytes, { stream: true })
      },
      flush: () => decoder.decode(),
    }
  }

  /** Raw bytes of one token (llama.cpp `token_to_piece`); a lone token may be partial UTF-8. */
  tokenToBytes(id: number): Uint8Array {
    return this.#pieceBytes(id, false)
  }

  /** Text of one token (bytes decoded lossily: a partial UTF-8 sequence shows as U+FFFD). */
  tokenToPiece(id: number): string {
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.#pieceBytes(id, false))
  }

  /** Vocabulary string of a token as stored (byte-level form, e.g. `'Ġworld'`; SentencePiece `'▁world'`). */
  idToToken(id: number): string {
    this.#checkId(id)
    return this.#table.pieces[id]
  }

  /** Id of a vocabulary string (byte-level form, or a special token's text), if present. */
  tokenToId(token: string): number | undefined {
    return this.#backend.tokenToId(token)
  }

  /** True for special (control) tokens such as `<|begin_of_text|>` and `<|eot_id|>`. */
  isSpecial(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize && this.#table.kinds[id] === KIND_SPECIAL
  }

  /** True if generation should stop at this token (see {@link eosIds}). */
  isEog(id: number): boolean {
    return this.#eos.has(id)
  }

  #checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new InvalidArgumentError(`token id ${id} out of range [0, ${this.vocabSize})`)
    }
  }

  #pieceBytes(id: number, skipSpecial: boolean): Uint8Array {
    this.#checkId(id)
    const kind = this.#table.kinds[id]
    if (kind === KIND_SPECIAL && skipSpecial) return EMPTY
    let bytes = this.#bytes[id]
    if (bytes === undefined) {
      bytes = kind === KIND_BPE ? this.#backend.pieceBytes(id) : utf8.encode(this.#table.pieces[id])
      this.#bytes[id] = bytes
    }
    return bytes
  }

  /**
   * Bytes of a token within decoded text: without the space prefix if it is a vocabulary token
   * that follows a special token or starts the text (`afterSpecial`) and the vocabulary adds one.
   */
  #textBytes(id: number, skipSpecial: boolean, afterSpecial: boolean): Uint8Array {
    const bytes = this.#pieceBytes(id, skipSpecial)
    const strip = afterSpecial && this.#backend.addSpacePrefix && this.#table.kinds[id] === KIND_BPE && bytes[0] === 0x20
    return strip ? bytes.subarray(1) : bytes
  }
}

const EMPTY = new Uint8Array(0)

/** Maps a byte-level token string back to bytes; characters outside the alphabet pass as UTF-8. */
function byteLevelToBytes(piece: string): Uint8Array {
  const out: number[] = []
  for (const ch of piece) {
    const cp = ch.codePointAt(0)!
    const b = cp < BYTE_OF_CODE_POINT.length ? BYTE_OF_CODE_POINT[cp] : -1
    if (b >= 0) out.push(b)
    else for (const x of utf8.encode(ch)) out.push(x)
  }
  return Uint8Array.from(out)
}

// ------------------------------------------------------------------------------------------------
// From Hugging Face files

/**
 * Builds the tokenizer from a Hugging Face `tokenizer.json` (parsed) and optional
 * `tokenizer_config.json` / `generation_config.json` (for BOS/EOS and `add_bos_token`).
 * Only byte-level BPE tokenizers (Llama 3, GPT-2 family) are supported.
 *
 * BOS is `bos_token` from the config (else `<|begin_of_text|>` if present); `addBos` defaults to
 * the config's `add_bos_token`, else true when a BOS exists (2B4T's config has no such key but
 * the model expects BOS, docs/architecture.md#tokens-in-and-out).
 *
 * @example
 * ```ts
 * const json = JSON.parse(await readFile('tokenizer.json', 'utf8'))
 * const config = JSON.parse(await readFile('tokenizer_config.json', 'utf8'))
 * const tok = tokenizerFromHf(json, config)
 * ```
 */
export function tokenizerFromHf(tokenizerJson: object, tokenizerConfig: object = {}, generationConfig: object = {}): BitnetTokenizer {
  const file = 'tokenizer.json'
  const json = tokenizerJson as Record<string, any>
  const model = json?.model as Record<string, any> | undefined
  if (!model || typeof model !== 'object') throw new ModelFormatError('missing "model"', { file })
  if (model.type !== 'BPE') throw new UnsupportedFeatureError(`tokenizer model type '${model.type}' is not supported (only byte-level BPE)`)
  // SentencePiece exported as BPE with byte fallback (LLaMA-1/2, 1bitLLM): the SPM tokenizer.
  if (model.byte_fallback === true) return tokenizerFromGguf(spmMetadataFromHf(json, tokenizerConfig, file), file)
  const decoderType = json.decoder?.type
  if (decoderType !== 'ByteLevel') throw new UnsupportedFeatureError(`tokenizer decoder '${decoderType}' is not supported (only ByteLevel)`)
  const vocab = model.vocab
  if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new ModelFormatError('model.vocab must be an object', { file })
  if (!Array.isArray(model.merges)) throw new ModelFormatError('model.merges must be an array', { file })
  if (model.merges.length > MAX_MERGES) throw new ModelFormatError('model.merges is too long', { file, expected: `<= ${MAX_MERGES}`, found: String(model.merges.length) })
  const added: unknown[] = json.added_tokens ?? []
  if (!Array.isArray(added)) throw new ModelFormatError('added_tokens must be an array', { file })

  // id -> string table from the BPE vocab and the added tokens.
  const entries = Object.entries(vocab)
  if (entries.length + added.length > MAX_VOCAB) throw new ModelFormatError('vocabulary too large', { file, found: String(entries.length) })
  const pieces: string[] = []
  const kinds: number[] = []
  const put = (id: unknown, text: unknown, kind: number, what: string) => {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= MAX_VOCAB || typeof text !== 'string' || text.length > MAX_TOKEN_CHARS) {
      throw new ModelFormatError(`bad ${what} entry`, { file, found: `${JSON.stringify(String(text).slice(0, 64))} -> ${String(id)}` })
    }
    pieces[id as number] = text
    kinds[id as number] = kind
  }
  for (const [text, id] of entries) put(id, text, KIND_BPE, 'model.vocab')
  for (const t of added as Record<string, unknown>[]) put(t?.id, t?.content, t?.special ? KIND_SPECIAL : KIND_ADDED, 'added_tokens')
  for (let i = 0; i < pieces.length; i++) {
    if (pieces[i] === undefined) { pieces[i] = ''; kinds[i] = KIND_ADDED } // id hole: decodes to ''
  }
  checkByteAlphabet((s) => Object.hasOwn(vocab, s), file)
  checkMerges(model.merges, (s) => Object.hasOwn(vocab, s), file, 'model.merges')
  checkRegexes(json, file)

  const config = tokenizerConfig as Record<string, any>
  // tokenizers.js would otherwise apply HF's clean-up rewrite in its own decode; we never call it,
  // but keep the config honest for anyone inspecting the wrapped tokenizer.
  const hf = newHfTokenizer(json, { ...config, clean_up_tokenization_spaces: false }, file)
  const specialId = (v: unknown): number | undefined => {
    const text = typeof v === 'string' ? v : (v as { content?: unknown } | undefined)?.content
    return typeof text === 'string' ? hf.token_to_id(text) : undefined
  }
  const bos = specialId(config.bos_token) ?? hf.token_to_id('<|begin_of_text|>')
  const eos = specialId(config.eos_token)
  const genEos = (generationConfig as Record<string, unknown>).eos_token_id
  const extraEog = (Array.isArray(genEos) ? genEos : genEos === undefined ? [] : [genEos])
    .filter((x): x is number => Number.isInteger(x) && x >= 0 && x < pieces.length)
  const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : true
  return new BitnetTokenizer(byteLevelBackend(hf, pieces, file), { pieces, kinds: Uint8Array.from(kinds) }, { bos, eos, extraEog, addBos, addEos: config.add_eos_token === true })
}

// ------------------------------------------------------------------------------------------------
// From GGUF metadata

/**
 * GGUF `llama` tokenizer metadata from a SentencePiece `tokenizer.json` (BPE + byte fallback), as
 * llama.cpp's converter writes it: types <unk> 2, special added tokens 3, <0xXX> 6, others 1; the
 * score of a piece is −(rank of the first merge producing it), which orders SentencePiece's
 * merges as HF's merge list does (HF derives that list from the scores).
 */
export function spmMetadataFromHf(json: Record<string, any>, tokenizerConfig: object, file: string): GgufMetadata {
  const model = json.model as Record<string, any>
  const vocab = model.vocab
  if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new ModelFormatError('model.vocab must be an object', { file })
  if (!Array.isArray(model.merges)) throw new ModelFormatError('model.merges must be an array', { file })
  if (model.merges.length > MAX_MERGES) throw new ModelFormatError('model.merges is too long', { file, expected: `<= ${MAX_MERGES}`, found: String(model.merges.length) })
  const added: Record<string, unknown>[] = Array.isArray(json.added_tokens) ? json.added_tokens : []
  const entries = Object.entries(vocab)
  if (entries.length + added.length > MAX_VOCAB) throw new ModelFormatError('vocabulary too large', { file, found: String(entries.length) })
  const tokens: string[] = []
  for (const [text, id] of [...entries, ...added.map((t) => [t?.content, t?.id] as const)]) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= MAX_VOCAB || typeof text !== 'string') {
      throw new ModelFormatError('bad vocabulary entry', { file, found: `${JSON.stringify(String(text).slice(0, 64))} -> ${String(id)}` })
    }
    tokens[id as number] = text
  }
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) tokens[i] = `<unused${i}>`
  const firstMerge = new Map<string, number>()
  model.merges.forEach((m: unknown, rank: number) => {
    const pair = Array.isArray(m) ? m.join(' ') : m
    if (typeof pair !== 'string' || !pair.includes(' ')) throw new ModelFormatError(`bad merge #${rank}`, { file, found: JSON.stringify(String(m).slice(0, 64)) })
    const merged = pair.replace(' ', '')
    if (!firstMerge.has(merged)) firstMerge.set(merged, rank)
  })
  const special = new Set(added.filter((t) => t?.special).map((t) => t.id as number))
  const userDefined = new Set(added.filter((t) => !t?.special).map((t) => t.id as number))
  const unk = typeof model.unk_token === 'string' && Object.hasOwn(vocab, model.unk_token) ? vocab[model.unk_token] : undefined
  const unkId = Number.isInteger(unk) ? unk as number : undefined
  const types = tokens.map((t, id) => id === unkId ? 2 : special.has(id) ? 3 : userDefined.has(id) ? 4 : /^<0x[0-9A-F]{2}>$/.test(t) ? 6 : 1)
  const scores = tokens.map((t, id) => types[id] !== 1 ? 0 : -(firstMerge.get(t) ?? 1e6 + id))
  const config = tokenizerConfig as Record<string, any>
  const idOf = (v: unknown): number | undefined => {
    const text = typeof v === 'string' ? v : typeof (v as any)?.content === 'string' ? (v as any).content : undefined
    const id = text === undefined ? undefined : tokens.indexOf(text)
    return id === undefined || id < 0 ? undefined : id
  }
  const md: GgufMetadata = new Map([
    ['tokenizer.ggml.model', metaStr('llama')],
    ['tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens)],
    ['tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, scores)],
    ['tokenizer.ggml.token_type', metaArr(GgufType.INT32, types)],
    ['tokenizer.ggml.add_bos_token', metaBool(config.add_bos_token !== false)],
    ['tokenizer.ggml.add_eos_token', metaBool(config.add_eos_token === true)],
    ['tokenizer.ggml.add_space_prefix', metaBool(spacePrefix(json))],
  ])
  const ids: [string, number | undefined][] = [
    ['bos', idOf(config.bos_token ?? '<s>')], ['eos', idOf(config.eos_token ?? '</s>')], ['unknown', unkId],
  ]
  for (const [key, id] of ids) if (id !== undefined) md.set(`tokenizer.ggml.${key}_token_id`, metaU32(id))
  return md
}

/**
 * Whether a SentencePiece tokenizer.json puts '▁' before the text: LLaMA-2's normalizer
 * prepends it (or a Metaspace pre-tokenizer with prepend_scheme 'first' / 'always'); Gemma's
 * only replaces spaces (bitnet.cpp's embedding converter writes add_space_prefix false for it).
 */
function spacePrefix(json: Record<string, any>): boolean {
  const spec = JSON.stringify([json.normalizer ?? null, json.pre_tokenizer ?? null])
  return /"Prepend"|"prepend_scheme":"(first|always)"|"add_prefix_space":true/.test(spec) || !/"Replace"/.test(spec)
}

/**
 * Builds the tokenizer from GGUF metadata (`tokenizer.ggml.*`): a tokenizer.json-equivalent object
 * (BPE vocab + merges, Llama 3 split + ByteLevel pre-tokenizer, ByteLevel decoder, control and
 * user-defined tokens as added tokens) handed to `@huggingface/tokenizers`.
 *
 * Supported: `tokenizer.ggml.model` = `gpt2` with `tokenizer.ggml.pre` missing (official 2B4T
 * file), `llama-bpe`, `llama3`, `llama-v3`, `falcon3`, `falcon_e`, or `qwen2` (BitNet-embedding-0.6B). Control tokens (type 3) are special;
 * user-defined tokens (type 4, HF added tokens with `special: false`) are parsed in text too but
 * kept by `skipSpecial`, as in llama.cpp.
 *
 * Also `tokenizer.ggml.model` = `llama`: SentencePiece BPE by `tokenizer.ggml.scores` (LLaMA-2
 * vocabulary of the 1bitLLM `bitnet_b1_58-*` models), see ./spm.ts; `<unk>` (type 2)
 * is special too, and decoding removes the `add_space_prefix` space (see
 * {@link BitnetTokenizer.decode}).
 *
 * @param fileName used in error messages.
 * @example
 * ```ts
 * const gguf = await readGguf(await fileSource('ggml-model-i2_s.gguf'))
 * const tok = tokenizerFromGguf(gguf.metadata, 'ggml-model-i2_s.gguf')
 * tok.eosIds   // [128001, 128009]: eos + <|eot_id|> found by name
 * ```
 */
export function tokenizerFromGguf(metadata: GgufMetadata, fileName?: string): BitnetTokenizer {
  const file = fileName
  const md = metadata
  const { modelName, split } = tokenizerModel(md, file)
  const { tokens, types } = ggufTokens(md, file)
  if (modelName === 'llama') return spmFromGguf(md, tokens, types, file)

  const merges = typedArray(md, 'tokenizer.ggml.merges', GgufType.STRING, MAX_MERGES, file) as string[] | undefined
  if (merges === undefined) throw new ModelFormatError('missing metadata key tokenizer.ggml.merges', { file })
  const { vocab, texts, added, kinds } = splitVocabulary(tokens, types)
  const has = (s: string) => texts.has(s)
  const pairs = checkMerges(merges, has, file, 'tokenizer.ggml.merges')
  checkByteAlphabet(has, file ?? 'tokenizer.ggml.tokens')

  const n = tokens.length
  const bos = tokenId(md, 'tokenizer.ggml.bos_token_id', n, file)
  const eos = tokenId(md, 'tokenizer.ggml.eos_token_id', n, file)
  const extraEog = [tokenId(md, 'tokenizer.ggml.eot_token_id', n, file), tokenId(md, 'tokenizer.ggml.eom_token_id', n, file)]
    .filter((x): x is number => x !== undefined)
  const addBos = metaBoolOpt(md, 'tokenizer.ggml.add_bos_token', file) ?? true
  const addEos = metaBoolOpt(md, 'tokenizer.ggml.add_eos_token', file) ?? false
  const hf = newHfTokenizer(byteLevelTokenizerJson(split, vocab, added, pairs), { clean_up_tokenization_spaces: false }, file)
  const pieces = tokens.slice()
  return new BitnetTokenizer(byteLevelBackend(hf, pieces, file), { pieces, kinds }, { bos, eos, extraEog, addBos, addEos })
}

/** `tokenizer.ggml.model` ('gpt2' or 'llama') and, for byte-level BPE, the pre-tokenizer split `tokenizer.ggml.pre` names. */
function tokenizerModel(md: GgufMetadata, file: string | undefined): { modelName: 'gpt2' | 'llama'; split: (typeof BPE_PRE)[string] } {
  const modelName = metaStringOpt(md, 'tokenizer.ggml.model', file)
  if (modelName === undefined) throw new ModelFormatError('missing metadata key tokenizer.ggml.model', { file })
  if (modelName !== 'gpt2' && modelName !== 'llama') {
    throw new UnsupportedFeatureError(`tokenizer.ggml.model '${modelName}' is not supported (only 'gpt2' byte-level BPE and 'llama' SentencePiece)`)
  }
  // SentencePiece ignores tokenizer.ggml.pre, as llama.cpp does.
  const pre = modelName === 'gpt2' ? metaStringOpt(md, 'tokenizer.ggml.pre', file) : undefined
  if (pre !== undefined && !Object.hasOwn(BPE_PRE, pre)) {
    throw new UnsupportedFeatureError(`tokenizer.ggml.pre '${pre}' is not supported (supported: ${Object.keys(BPE_PRE).join(', ')}); ` +
      'a file converted for another model family needs an engine that supports it')
  }
  return { modelName, split: BPE_PRE[pre ?? 'llama-bpe'] }
}

/** `tokenizer.ggml.tokens` and `token_type`, validated: non-empty, equal lengths, bounded texts, known types. */
function ggufTokens(md: GgufMetadata, file: string | undefined): { tokens: string[]; types: number[] | undefined } {
  const tokens = typedArray(md, 'tokenizer.ggml.tokens', GgufType.STRING, MAX_VOCAB, file) as string[] | undefined
  if (tokens === undefined) throw new ModelFormatError('missing metadata key tokenizer.ggml.tokens', { file })
  const n = tokens.length
  if (n === 0) throw new ModelFormatError('tokenizer.ggml.tokens is empty', { file })
  const types = typedArray(md, 'tokenizer.ggml.token_type', GgufType.INT32, MAX_VOCAB, file) as number[] | undefined
  if (types !== undefined && types.length !== n) {
    throw new ModelFormatError('tokenizer.ggml.token_type length differs from tokenizer.ggml.tokens', { file, expected: String(n), found: String(types.length) })
  }
  for (let id = 0; id < n; id++) {
    const text = tokens[id]
    if (text.length > MAX_TOKEN_CHARS) throw new ModelFormatError(`tokenizer.ggml.tokens[${id}] is too long`, { file, found: `${text.length} chars` })
    const type = types?.[id] ?? TokenType.Normal
    if (!Number.isInteger(type) || type < 0 || type > 7) throw new ModelFormatError(`tokenizer.ggml.token_type[${id}] is invalid`, { file, found: String(type) })
  }
  return { tokens, types }
}

/**
 * The id space split as tokenizer.json lays it out: BPE vocab (text → id) and added tokens
 * (control tokens special, user-defined ones not), with each id's kind. `texts` holds the vocab's
 * keys for the merge checks: a Set lookup of a fresh string (left+right) hashes it, where `in`
 * on the vocab object would first intern it, several times slower over 10^5 merges.
 */
function splitVocabulary(tokens: string[], types: number[] | undefined): { vocab: Record<string, number>; texts: Set<string>; added: object[]; kinds: Uint8Array } {
  const vocab: Record<string, number> = Object.create(null) // null prototype: '__proto__' is a plain key
  const texts = new Set<string>()
  const added: object[] = []
  const kinds = new Uint8Array(tokens.length)
  for (let id = 0; id < tokens.length; id++) {
    const text = tokens[id]
    const type = types?.[id] ?? TokenType.Normal
    if (type === TokenType.Control || type === TokenType.UserDefined) {
      const special = type === TokenType.Control
      kinds[id] = special ? KIND_SPECIAL : KIND_ADDED
      added.push({ id, content: text, single_word: false, lstrip: false, rstrip: false, normalized: false, special })
    } else {
      vocab[text] = id // duplicates: last id wins, as in llama.cpp's token_to_id map
      texts.add(text)
    }
  }
  return { vocab, texts, added, kinds }
}

/**
 * The tokenizer.json of a GGUF byte-level BPE: vocab + merges, the family's split regex then the
 * ByteLevel pre-tokenizer, ByteLevel decoder, no normalizer and no post-processor (BOS is added
 * by BitnetTokenizer.encode).
 */
function byteLevelTokenizerJson(split: (typeof BPE_PRE)[string], vocab: Record<string, number>, added: object[], merges: [string, string][]): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: split.regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: split.ignoreMerges,
      vocab,
      merges, // [left, right] pairs, already split by checkMerges: the library would split "left right" strings again
    },
  }
}

/**
 * The SentencePiece half of {@link tokenizerFromGguf} (`tokenizer.ggml.model = "llama"`), given the
 * validated tokens and types. Reads `tokenizer.ggml.scores` (required, FLOAT32),
 * `add_space_prefix` (default true), and bos/eos/unk ids defaulting to llama.cpp's SPM defaults
 * 1/2/0 when absent. Control and unknown tokens are special (hidden by `skipSpecial`), user-defined
 * tokens are added tokens; all three are parsed in text. Byte tokens (`<0xXX>`) decode to bytes.
 */
function spmFromGguf(md: GgufMetadata, tokens: string[], types: number[] | undefined, file: string | undefined): BitnetTokenizer {
  const n = tokens.length
  const scores = typedArray(md, 'tokenizer.ggml.scores', GgufType.FLOAT32, MAX_VOCAB, file) as number[] | undefined
  if (scores === undefined) throw new ModelFormatError('missing metadata key tokenizer.ggml.scores', { file })
  const kinds = new Uint8Array(n)
  for (let id = 0; id < n; id++) {
    const type = types?.[id] ?? TokenType.Normal
    kinds[id] = type === TokenType.Control || type === TokenType.Unknown ? KIND_SPECIAL : type === TokenType.UserDefined ? KIND_ADDED : KIND_BPE
  }
  const defaultId = (id: number) => (id < n ? id : undefined)
  const unkId = tokenId(md, 'tokenizer.ggml.unknown_token_id', n, file) ?? defaultId(0)
  const pieces = tokens.slice()
  const spm = new SpmTokenizer({
    tokens: pieces,
    scores,
    types: types ?? new Uint8Array(n).fill(TokenType.Normal),
    unkId,
    addSpacePrefix: metaBoolOpt(md, 'tokenizer.ggml.add_space_prefix', file) ?? true,
  }, file)
  const bos = tokenId(md, 'tokenizer.ggml.bos_token_id', n, file) ?? defaultId(1)
  const eos = tokenId(md, 'tokenizer.ggml.eos_token_id', n, file) ?? defaultId(2)
  const extraEog = [tokenId(md, 'tokenizer.ggml.eot_token_id', n, file), tokenId(md, 'tokenizer.ggml.eom_token_id', n, file)]
    .filter((x): x is number => x !== undefined)
  const addBos = metaBoolOpt(md, 'tokenizer.ggml.add_bos_token', file) ?? true
  const addEos = metaBoolOpt(md, 'tokenizer.ggml.add_eos_token', file) ?? false
  return new BitnetTokenizer(spm, { pieces, kinds }, { bos, eos, extraEog, addBos, addEos })
}

/** An array of `itemType` with at most `maxLength` items, or undefined if absent; errors name the key. */
function typedArray(md: GgufMetadata, key: string, itemType: GgufType, maxLength: number, file: string | undefined): unknown[] | undefined {
  const a = metaArrayOpt(md, key, file)
  if (a === undefined) return undefined
  if (a.itemType !== itemType) {
    throw new ModelFormatError(`metadata ${key} has the wrong element type`, { file, expected: GgufType[itemType], found: GgufType[a.itemType] })
  }
  if (a.value.length > maxLength) throw new ModelFormatError(`metadata ${key} is too long`, { file, expected: `<= ${maxLength}`, found: String(a.value.length) })
  return a.value
}

/** A token id in [0, n), or undefined if absent; errors name the key. */
function tokenId(md: GgufMetadata, key: string, n: number, file: string | undefined): number | undefined {
  const x = metaNumberOpt(md, key, file)
  if (x === undefined) return undefined
  if (!Number.isInteger(x) || x < 0 || x >= n) {
    throw new ModelFormatError(`metadata ${key} is out of range`, { file, expected: `an integer in [0, ${n})`, found: String(x) })
  }
  return x
}

/**
 * Every merge must join two tokens into a token: `@huggingface/tokenizers` silently drops a BPE
 * piece that is not in the vocabulary (no unk token, no byte fallback in byte-level BPE), so an
 * inconsistent merge list would lose text without an error. Merges are "left right" strings
 * (GGUF, older tokenizer.json) or [left, right] pairs (newer tokenizer.json); returns the pairs
 * (split at the first space, as llama.cpp does).
 */
function checkMerges(merges: readonly unknown[], has: (s: string) => boolean, file: string | undefined, key: string): [string, string][] {
  const pairs: [string, string][] = new Array(merges.length)
  for (let i = 0; i < merges.length; i++) {
    const m = merges[i]
    const pair = typeof m === 'string' ? splitMerge(m) : Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === 'string') ? m as [string, string] : undefined
    if (!pair) throw new ModelFormatError(`${key}[${i}] is not "left right"`, { file, found: JSON.stringify(m)?.slice(0, 64) })
    const [l, r] = pair
    if (!has(l) || !has(r) || !has(l + r)) {
      throw new ModelFormatError(`${key}[${i}] joins pieces that are not all tokens`, { file, expected: 'left, right and left+right in the vocabulary', found: JSON.stringify(m).slice(0, 64) })
    }
    pairs[i] = pair
  }
  return pairs
}

/** "left right" → [left, right] (split at the first space; neither side empty), else undefined. */
function splitMerge(m: string): [string, string] | undefined {
  const sp = m.indexOf(' ')
  return sp <= 0 || sp === m.length - 1 ? undefined : [m.slice(0, sp), m.slice(sp + 1)]
}

/** Every byte-level symbol must be a token, or encode would silently drop text it cannot spell. */
function checkByteAlphabet(has: (s: string) => boolean, file: string): void {
  for (const s of BYTE_SYMBOLS) {
    if (!has(s)) throw new ModelFormatError(`vocabulary lacks the byte-level token ${JSON.stringify(s)}`, { file })
  }
}

function newHfTokenizer(json: object, config: object, file: string | undefined): Tokenizer {
  try {
    return new Tokenizer(json, config)
  } catch (e) {
    throw new ModelFormatError(`cannot build tokenizer: ${(e as Error).message}`, { file })
  }
}
