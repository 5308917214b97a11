/**
 * SentencePiece (GGUF `tokenizer.ggml.model = "llama"`) tokenizer tests.
 *
 * Independent reference: `llama-tokenizer-js` (belladore), which embeds the LLaMA-1/2 vocabulary
 * (32000 tokens) and the merge list of Meta's HF `tokenizer.json`, and runs its own BPE. We build
 * GGUF metadata from ITS vocabulary: token types as in a converted LLaMA-2 GGUF (`<unk>` 2, `<s>`
 * and `</s>` 3, `<0x00>`..`<0xFF>` 6, else 1) and scores derived from its merge order (HF derives
 * the merge list from the SentencePiece scores, sorted by the score of the merged piece, so
 * `score(piece) = -(rank of the first merge producing it)` orders merges the same way).
 * Our ids must equal llama-tokenizer-js's, including the literal ids of its own test suite, which
 * come from the real LLaMA tokenizer.
 */
import llamaTokenizer from 'llama-tokenizer-js'
import { beforeAll, describe, expect, it } from 'vitest'
import { ModelFormatError } from '../src/errors.js'
import { parseGguf } from '../src/gguf/reader.js'
import { GgufType, type GgufMetadata } from '../src/gguf/types.js'
import { metaArr, metaBool, metaStr, metaU32, writeGguf } from '../src/gguf/writer.js'
import { type BitnetTokenizer, tokenizerFromGguf, tokenizerFromHf } from '../src/tokenizer/tokenizer.js'

const ref = llamaTokenizer

/** LLaMA-2 metadata as llama.cpp's converter writes it, from llama-tokenizer-js's vocabulary. */
function llamaMetadata(): GgufMetadata {
  const tokens = ref.vocabById
  const firstMerge = new Map<string, number>()
  for (const [pair, rank] of ref.merges) {
    const merged = pair.replace(' ', '')
    const seen = firstMerge.get(merged)
    if (seen === undefined || rank < seen) firstMerge.set(merged, rank)
  }
  const types = tokens.map((_, id) => (id === 0 ? 2 : id <= 2 ? 3 : id <= 258 ? 6 : 1))
  // Specials and bytes score 0 as in LLaMA-2; single characters (never merged into) score lowest.
  const scores = tokens.map((t, id) => (id <= 258 ? 0 : -(firstMerge.get(t) ?? 1e6 + id)))
  return new Map([
    ['general.architecture', metaStr('bitnet')],
    ['tokenizer.ggml.model', metaStr('llama')],
    ['tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens)],
    ['tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, scores)],
    ['tokenizer.ggml.token_type', metaArr(GgufType.INT32, types)],
    ['tokenizer.ggml.bos_token_id', metaU32(1)],
    ['tokenizer.ggml.eos_token_id', metaU32(2)],
    ['tokenizer.ggml.unknown_token_id', metaU32(0)],
    ['tokenizer.ggml.add_bos_token', metaBool(true)],
    ['tokenizer.ggml.add_eos_token', metaBool(false)],
  ])
}

/** Strings for spaces, newlines, digits, byte fallback (emoji, rare CJK), scripts and code. */
const STRINGS = [
  'Hello world',
  'Hello world!',
  ' Hello',
  '  two leading spaces',
  'trailing space ',
  'trailing spaces   ',
  'multiple   spaces   inside',
  '\n',
  ' \n',
  '\n\n\n',
  'line1\nline2\n\nline4\n',
  '\ttab\tseparated\t',
  'windows\r\nline\r\n',
  '12345678',
  '3.14159 and 1,000,000 and 2024-01-01',
  "don't I'll we've THEY'RE she'd",
  'café naïve résumé Ångström Ünïcödé',
  'Ελληνικά και русский текст',
  '日本語のテキストです。',
  '中文分词测试',
  '한국어 문장',
  'Arabic مرحبا بالعالم',
  'emoji 🦙🔥👍🏽 family 👨‍👩‍👧 flag 🇫🇷',
  '🦙',
  '🦙Ꙋ',
  'Ꙋ🦙',
  '镇',
  'def f(x):\n    return x**2  # square\n',
  'const a = {b: [1, 2]}; // ok',
  'ax\n####\nboo',
  '           grabbed',
  ' ',
  '   ',
  'a',
  '\u00a0nbsp and zero\u200bwidth',
  'mixed123abc4567xyz',
  'ALL CAPS SHOUTING!!! ... ???',
  'a'.repeat(300),
  ' '.repeat(17) + 'x',
  'Ġ literal and Ċ',
  'x\u0000y\u007f',
]

let tok: BitnetTokenizer
let metadata: GgufMetadata

beforeAll(() => {
  metadata = llamaMetadata()
  tok = tokenizerFromGguf(metadata, 'llama2.gguf')
})

describe('SPM tokenizer: vocabulary facts', () => {
  it('has LLaMA-2 ids and token kinds', () => {
    expect(tok.vocabSize).toBe(32000)
    expect(tok.bosId).toBe(1)
    expect(tok.bosToken).toBe('<s>')
    expect(tok.eosToken).toBe('</s>')
    expect(tok.eosIds).toEqual([2])
    expect(tok.addBos).toBe(true)
    expect(tok.isEog(2)).toBe(true)
    for (const id of [0, 1, 2]) expect(tok.isSpecial(id)).toBe(true)
    expect(tok.isSpecial(13)).toBe(false) // <0x0A>: a byte token
    expect(tok.isSpecial(15043)).toBe(false)
    expect(tok.idToToken(15043)).toBe('▁Hello')
    expect(tok.tokenToId('▁Hello')).toBe(15043)
    expect(tok.tokenToId('<0x0A>')).toBe(13)
    expect(tok.tokenToPiece(15043)).toBe(' Hello') // a single token keeps its space
    expect(tok.tokenToPiece(13)).toBe('\n')
    expect([...tok.tokenToBytes(243)]).toEqual([0xf0]) // <0xF0>
    expect(tok.tokenToPiece(243)).toBe('\uFFFD')
  })

  it('reads the same metadata through a written and parsed GGUF file', () => {
    const bytes = writeGguf({ metadata, tensors: [] })
    const parsed = parseGguf(bytes, bytes.length, 'llama2.gguf').metadata
    const t = tokenizerFromGguf(parsed, 'llama2.gguf')
    for (const s of STRINGS.slice(0, 12)) expect(t.encode(s)).toEqual(tok.encode(s))
  })
})

describe('SPM tokenizer: ids equal llama-tokenizer-js', () => {
  // Literal ids from llama-tokenizer-js's README and test suite (from the real LLaMA tokenizer).
  it.each([
    ['Hello world', [1, 15043, 3186]],
    ['Hello world!', [1, 15043, 3186, 29991]],
    ['grabbed', [1, 2646, 1327, 287]],
    [' grabbed', [1, 29871, 2646, 1327, 287]],
    ['           grabbed', [1, 9651, 2646, 1327, 287]],
    ['\n', [1, 29871, 13]],
    [' \n', [1, 259, 13]],
    ['\ttabs\t\t\t\tout here', [1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244]],
    ['ax\n####\nboo', [1, 4853, 13, 4136, 13, 833, 29877]], // equal scores merge left to right
    ['镇', [1, 29871, 30411]],
    ['🦙', [1, 29871, 243, 162, 169, 156]], // byte fallback
    ['🦙Ꙋ', [1, 29871, 243, 162, 169, 156, 237, 156, 141]],
    ['Ꙋ🦙', [1, 29871, 237, 156, 141, 243, 162, 169, 156]],
  ])('%j', (s, ids) => {
    expect(tok.encode(s as string)).toEqual(ids)
  })

  it.each(STRINGS.map((s) => [JSON.stringify(s).slice(0, 40), s]))('same ids: %s', (_, s) => {
    expect(tok.encode(s)).toEqual(ref.encode(s, true, true))
    expect(tok.encode(s, { addBos: false })).toEqual(ref.encode(s, false, true))
  })

  it('same ids on a long mixed text (priority queue, no quadratic blow-up)', () => {
    const unit = STRINGS.slice(0, 30).join(' ')
    const long = Array.from({ length: 12 }, (_, i) => `${i}: ${unit}`).join('\n')
    expect(long.length).toBeGreaterThan(5_000)
    const ids = tok.encode(long)
    expect(ids).toEqual(ref.encode(long, true, true))
    expect(tok.decode(ids, { skipSpecial: true })).toBe(long)
  })

  it('a long run of one character encodes (its time: bench/tokenizer.mjs)', () => {
    const s = 'a'.repeat(20_000) + ' '.repeat(20_000) // quadratic merging would take minutes
    const ids = tok.encode(s, { addBos: false })
    expect(tok.decode(ids)).toBe(s)
  })

  it('a lone surrogate falls back to the bytes of U+FFFD, like llama-tokenizer-js', () => {
    expect(tok.encode('a\ud83db')).toEqual(ref.encode('a\ud83db', true, true))
    expect(tok.encode('a\ud83db').join()).toContain([0xef, 0xbf, 0xbd].map((b) => b + 3).join()) // <0xEF><0xBF><0xBD>
  })

  it('encodes the empty string to BOS only (llama.cpp / HF)', () => {
    expect(tok.encode('')).toEqual([1])
    expect(tok.encode('', { addBos: false })).toEqual([])
  })
})

describe('SPM tokenizer: special tokens in text', () => {
  const plain = (s: string) => ref.encode(s, false, true) // with the space prefix, no BOS

  it('parses <s>, </s>, <unk> as single tokens; text after one gets the space prefix (llama.cpp)', () => {
    expect(tok.encode('<s>Hi</s> there', { addBos: false })).toEqual([1, ...plain('Hi'), 2, ...plain(' there')])
    expect(tok.encode('a<unk>b', { addBos: false })).toEqual([...plain('a'), 0, ...plain('b')])
    expect(tok.encode('</s></s>', { addBos: false })).toEqual([2, 2])
  })

  it('adds BOS even if the text starts with <s> (llama.cpp/HF behaviour)', () => {
    expect(tok.encode('<s>Hi')).toEqual([1, 1, ...plain('Hi')])
  })

  it('decodes specials back, or drops them with skipSpecial', () => {
    const s = '<s>Hi</s> there <unk>!'
    const ids = tok.encode(s, { addBos: false })
    expect(tok.decode(ids)).toBe(s)
    expect(tok.decode(ids, { skipSpecial: true })).toBe('Hi there !')
  })

  it('parses user-defined tokens (type 4) in text without making them special', () => {
    const md = new Map(metadata)
    const tokens = [...ref.vocabById, '<pad>']
    md.set('tokenizer.ggml.tokens', metaArr(GgufType.STRING, tokens))
    md.set('tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, [...(metadata.get('tokenizer.ggml.scores')!.value as number[]), 0]))
    md.set('tokenizer.ggml.token_type', metaArr(GgufType.INT32, [...(metadata.get('tokenizer.ggml.token_type')!.value as number[]), 4]))
    const t = tokenizerFromGguf(md)
    const ids = t.encode('a<pad>b', { addBos: false })
    expect(ids).toEqual([...plain('a'), 32000, ...plain('b')])
    expect(t.isSpecial(32000)).toBe(false)
    expect(t.decode(ids, { skipSpecial: true })).toBe('a<pad>b')
  })
})

describe('SPM tokenizer: decoding', () => {
  it.each(STRINGS.map((s) => [JSON.stringify(s).slice(0, 40), s]))('decode(encode(s)) === s: %s', (_, s) => {
    expect(tok.decode(tok.encode(s, { addBos: false }))).toBe(s)
    expect(tok.decode(tok.encode(s))).toBe('<s>' + s)
    expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s)
    // llama-tokenizer-js's decode drops BOS and the prefix space.
    expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(ref.decode(tok.encode(s)))
  })

  it('removes the prefix space only at the start and after special tokens', () => {
    expect(tok.decode([15043, 3186])).toBe('Hello world')
    expect(tok.decode([3186, 15043])).toBe('world Hello')
    expect(tok.decode([1, 15043])).toBe('<s>Hello')
    expect(tok.decode([1, 15043], { skipSpecial: true })).toBe('Hello')
    expect(tok.decode([29871, 29871, 15043])).toBe('  Hello') // only one space is removed
  })

  it.each(STRINGS.map((s) => [JSON.stringify(s).slice(0, 40), s]))('stream decoder matches decode, no U+FFFD: %s', (_, s) => {
    const ids = tok.encode(s) // starts with BOS: stream and decode agree exactly
    const stream = tok.createStreamDecoder()
    const deltas = ids.map((id) => stream.push(id))
    deltas.push(stream.flush())
    expect(deltas.join('')).toBe(tok.decode(ids))
    for (const d of deltas) expect(d).not.toContain('\uFFFD')
  })

  it('holds back an emoji split over byte tokens until it is complete', () => {
    const ids = tok.encode('🦙!')
    expect(ids).toEqual([1, 29871, 243, 162, 169, 156, 29991])
    const stream = tok.createStreamDecoder()
    expect(ids.map((id) => stream.push(id))).toEqual(['<s>', '', '', '', '', '🦙', '!'])
    expect(stream.flush()).toBe('')
  })

  it('a stream continues a prompt: its first token keeps its space', () => {
    const stream = tok.createStreamDecoder()
    expect(stream.push(3186)).toBe(' world') // '▁world' after a prompt such as 'Hello'
    expect(stream.push(2)).toBe('</s>')
    expect(stream.push(15043)).toBe('Hello') // after a special token the prefix space goes
  })

  it('stream skipSpecial omits control tokens', () => {
    const stream = tok.createStreamDecoder({ skipSpecial: true })
    const out = tok.encode('Hi</s>').map((id) => stream.push(id)).join('') + stream.flush()
    expect(out).toBe('Hi')
  })

  it('an unfinished byte sequence at the end flushes as U+FFFD', () => {
    const stream = tok.createStreamDecoder()
    expect(stream.push(243)).toBe('')
    expect(stream.flush()).toContain('\uFFFD')
  })
})

describe('SPM tokenizer: merge order and fallbacks on a hand-made vocabulary', () => {
  /** <unk> <s> </s> ▁ a b ab ba ▁a, no byte tokens: unknown characters become <unk>. */
  const tiny = (scoreAb: number, scoreBa: number, extra: [string, GgufValueLike][] = []) => new Map([
    ['tokenizer.ggml.model', metaStr('llama')],
    ['tokenizer.ggml.tokens', metaArr(GgufType.STRING, ['<unk>', '<s>', '</s>', '▁', 'a', 'b', 'ab', 'ba', '▁b'])],
    ['tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, [0, 0, 0, -100, -100, -100, scoreAb, scoreBa, -50])],
    ['tokenizer.ggml.token_type', metaArr(GgufType.INT32, [2, 3, 3, 1, 1, 1, 1, 1, 1])],
    ...extra,
  ] as [string, never][])

  it('merges the highest score first; equal scores merge leftmost first', () => {
    // '▁aba': candidate pairs 'ab' (left 1) and 'ba' (left 2); '▁a' is no token.
    expect(tokenizerFromGguf(tiny(-1, -2)).encode('aba', { addBos: false })).toEqual([3, 6, 4])
    expect(tokenizerFromGguf(tiny(-2, -1)).encode('aba', { addBos: false })).toEqual([3, 4, 7])
    expect(tokenizerFromGguf(tiny(-1, -1)).encode('aba', { addBos: false })).toEqual([3, 6, 4])
    // ' bab' -> '▁bab': '▁b' (-50) vs 'ba' (-1): 'ba' first, then '▁'+'ba' is no token.
    expect(tokenizerFromGguf(tiny(-1, -1)).encode('bab', { addBos: false })).toEqual([3, 7, 5])
    expect(tokenizerFromGguf(tiny(-1, -100)).encode('bab', { addBos: false })).toEqual([8, 6])
  })

  it('without byte tokens an unknown character becomes one <unk>; bos/eos default to 1/2', () => {
    const t = tokenizerFromGguf(tiny(-1, -1))
    expect(t.encode('a🦙b')).toEqual([1, 3, 4, 0, 5])
    expect(t.bosId).toBe(1)
    expect(t.eosIds).toEqual([2])
    expect(t.decode([1, 3, 4, 0, 5])).toBe('<s>a<unk>b')
  })

  it('add_space_prefix = false adds and removes no space', () => {
    const t = tokenizerFromGguf(tiny(-1, -1, [['tokenizer.ggml.add_space_prefix', metaBool(false)]]))
    expect(t.encode('ab b', { addBos: false })).toEqual([6, 8])
    expect(t.encode('<s>b', { addBos: false })).toEqual([1, 5])
    expect(t.decode([8, 6])).toBe(' bab')
    expect(ref.encode('Hello', false, false)).toEqual(tokenizerFromGguf(new Map([...metadata, ['tokenizer.ggml.add_space_prefix', metaBool(false)]])).encode('Hello', { addBos: false }))
  })
})

type GgufValueLike = ReturnType<typeof metaStr>

describe('SPM tokenizer: GGUF validation names the key', () => {
  const withKey = (key: string, value: unknown) => {
    const md = new Map(metadata)
    if (value === undefined) md.delete(key)
    else md.set(key, value as never)
    return md
  }
  const scores = () => metadata.get('tokenizer.ggml.scores')!.value as number[]

  it('missing or malformed tokenizer.ggml.scores', () => {
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.scores', undefined), 'f.gguf')).toThrow(/f\.gguf: missing metadata key tokenizer\.ggml\.scores/)
    const short = withKey('tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, scores().slice(1)))
    expect(() => tokenizerFromGguf(short)).toThrow(ModelFormatError)
    expect(() => tokenizerFromGguf(short)).toThrow(/tokenizer\.ggml\.scores length differs/)
    const ints = withKey('tokenizer.ggml.scores', metaArr(GgufType.INT32, scores()))
    expect(() => tokenizerFromGguf(ints)).toThrow(/tokenizer\.ggml\.scores has the wrong element type/)
    const nan = scores().slice()
    nan[5] = NaN
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, nan)))).toThrow(/tokenizer\.ggml\.scores\[5\] is NaN/)
  })

  it('token_type length, byte token text, ids out of range', () => {
    const types = metadata.get('tokenizer.ggml.token_type')!.value as number[]
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.token_type', metaArr(GgufType.INT32, types.slice(1)))))
      .toThrow(/tokenizer\.ggml\.token_type length differs/)
    const badByte = types.slice()
    badByte[15043] = 6
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.token_type', metaArr(GgufType.INT32, badByte))))
      .toThrow(/tokenizer\.ggml\.tokens\[15043\] is a byte token but not <0xXX>/)
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.unknown_token_id', metaU32(32000)))).toThrow(/tokenizer\.ggml\.unknown_token_id is out of range/)
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.bos_token_id', metaU32(32000)))).toThrow(/tokenizer\.ggml\.bos_token_id is out of range/)
  })
})

describe('SPM tokenizer from a SentencePiece tokenizer.json (BPE + byte fallback, 1bitLLM / LLaMA-2 HF folders)', () => {
  // The shape of Meta's HF export: vocab incl. specials, merges in rank order, specials re-listed
  // in added_tokens, byte_fallback on.
  const json = {
    model: {
      type: 'BPE', byte_fallback: true, unk_token: '<unk>', fuse_unk: true,
      vocab: Object.fromEntries(ref.vocabById.map((t: string, id: number) => [t, id])),
      merges: [...ref.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair),
    },
    added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, special: true })),
    decoder: { type: 'Sequence', decoders: [] },
  }

  it('gives the ids and text of the GGUF SentencePiece tokenizer (and so of llama-tokenizer-js)', () => {
    const hf = tokenizerFromHf(json, { bos_token: '<s>', eos_token: '</s>', add_bos_token: true })
    expect(hf.bosId).toBe(1)
    expect(hf.eosIds).toContain(2)
    for (const s of STRINGS) {
      expect(hf.encode(s)).toEqual(tok.encode(s))
      expect(hf.decode(hf.encode(s, { addBos: false }))).toBe(s)
    }
  })

  it('a malformed merge is a typed error', () => {
    expect(() => tokenizerFromHf({ ...json, model: { ...json.model, merges: ['nospace'] } })).toThrow(ModelFormatError)
  })
})
