/**
 * Tokenizer tests: the GGUF-built tokenizer must agree id-for-id with the one built from the HF
 * tokenizer.json, reproduce the golden ids (independent reference, test/fixtures/tiny-dev/golden.json),
 * round-trip text, and stream emoji without U+FFFD.
 */
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { ModelFormatError, UnsupportedFeatureError } from '../src/errors.js'
import { readGguf } from '../src/gguf/reader.js'
import { GgufType, type GgufMetadata } from '../src/gguf/types.js'
import { fileSource } from '../src/io/file.js'
import { BitnetTokenizer, tokenizerFromGguf, tokenizerFromHf } from '../src/tokenizer/tokenizer.js'

const DIR = new URL('./fixtures/tiny-dev/', import.meta.url)
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, DIR), 'utf8'))

/** Strings chosen to hit the Llama 3 split regex, byte-level BPE and special-token parsing. */
const STRINGS = [
  'Hello world',
  ' Hello',
  '  two leading spaces',
  'trailing space ',
  'multiple   spaces   inside',
  '\n',
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
  'def f(x):\n    return x**2  # square\n',
  'const a = {b: [1, 2]}; // ok',
  '<|begin_of_text|>Hi<|eot_id|>',
  'text <|eot_id|> more <|end_of_text|>',
  '<|start_header_id|>user<|end_header_id|>\n\nhello',
  '',
  ' ',
  'a',
  'Ġ literal and Ċ',
  '\u00a0nbsp and zero\u200bwidth',
  'mixed123abc4567xyz',
  'ALL CAPS SHOUTING!!! ... ???',
  'a'.repeat(300),
  ' '.repeat(17) + 'x',
]

let hf: BitnetTokenizer
let gguf: BitnetTokenizer
let metadata: GgufMetadata

beforeAll(async () => {
  hf = tokenizerFromHf(readJson('tokenizer.json'), readJson('tokenizer_config.json'))
  const source = await fileSource(new URL('ggml-model-i2_s.gguf', DIR).pathname)
  try {
    metadata = (await readGguf(source)).metadata
  } finally {
    await source.close?.()
  }
  gguf = tokenizerFromGguf(metadata, 'ggml-model-i2_s.gguf') // build time: bench/tokenizer.mjs
}, 60_000)

describe('tokenizer: GGUF-built equals HF-built', () => {
  it('has the same vocabulary facts', () => {
    for (const t of [hf, gguf]) {
      expect(t.vocabSize).toBe(128256)
      expect(t.bosId).toBe(128000)
      expect(t.bosToken).toBe('<|begin_of_text|>')
      expect(t.eosToken).toBe('<|end_of_text|>')
      expect(t.addBos).toBe(true)
      // 2B4T GGUF declares only eos 128001; <|eot_id|> is added by name (docs/formats.md, GGUF metadata).
      expect(t.eosIds).toEqual([128001, 128009])
      expect(t.isEog(128009)).toBe(true)
      expect(t.isEog(9906)).toBe(false)
      expect(t.isSpecial(128000)).toBe(true)
      expect(t.isSpecial(128255)).toBe(true)
      expect(t.isSpecial(9906)).toBe(false)
      expect(t.idToToken(1917)).toBe('Ġworld')
      expect(t.tokenToId('Ġworld')).toBe(1917)
      expect(t.tokenToId('<|eot_id|>')).toBe(128009)
    }
  })

  it.each(STRINGS.map((s) => [JSON.stringify(s).slice(0, 40), s]))('same ids: %s', (_, s) => {
    const want = hf.encode(s, { addBos: false })
    expect(gguf.encode(s, { addBos: false })).toEqual(want)
    expect(gguf.encode(s)).toEqual([128000, ...want])
  })
})

describe('tokenizer: literal ids', () => {
  // Derived from the HF tokenizer.json build and cross-checked with golden.json where present.
  it.each([
    ['Hello world', [9906, 1917]],
    ['12345678', [4513, 10961, 2495]], // Llama 3 splits digits in groups of up to 3: 123|456|78
    ["don't I'll", [15357, 956, 358, 3358]],
    ['<|begin_of_text|>Hi<|eot_id|>', [128000, 13347, 128009]],
    ['🦙', [9468, 99, 247]], // one emoji, three byte-level tokens
    ['', []],
  ])('%j', (s, ids) => {
    expect(gguf.encode(s as string, { addBos: false })).toEqual(ids)
    expect(hf.encode(s as string, { addBos: false })).toEqual(ids)
  })

  it('reproduces every golden prompt', () => {
    const golden = readJson('golden.json') as { prompts: { text: string, ids: number[] }[] }
    expect(golden.prompts.length).toBeGreaterThan(0)
    for (const p of golden.prompts) {
      // The chat prompt already starts with <|begin_of_text|>: encode without adding another BOS.
      const addBos = !p.text.startsWith('<|begin_of_text|>')
      expect(gguf.encode(p.text, { addBos })).toEqual(p.ids)
      expect(hf.encode(p.text, { addBos })).toEqual(p.ids)
    }
  })

  it('adds BOS even if the text starts with it (llama.cpp/HF behaviour)', () => {
    expect(gguf.encode('<|begin_of_text|>Hi')).toEqual([128000, 128000, 13347])
  })
})

describe('tokenizer: decoding', () => {
  it.each(STRINGS.map((s) => [JSON.stringify(s).slice(0, 40), s]))('decode(encode(s)) === s: %s', (_, s) => {
    for (const t of [gguf, hf]) {
      expect(t.decode(t.encode(s, { addBos: false }))).toBe(s)
      expect(t.decode(t.encode(s))).toBe('<|begin_of_text|>' + s)
    }
  })

  it('skipSpecial drops control tokens only', () => {
    const ids = gguf.encode('<|begin_of_text|>Hi<|eot_id|> there', { addBos: false })
    expect(gguf.decode(ids, { skipSpecial: true })).toBe('Hi there')
    expect(gguf.decode(ids)).toBe('<|begin_of_text|>Hi<|eot_id|> there')
  })

  it('does not apply HF clean-up of tokenization spaces', () => {
    const s = "a , b . c ! d 's"
    expect(gguf.decode(gguf.encode(s, { addBos: false }))).toBe(s)
  })

  it('exposes per-token bytes', () => {
    expect([...gguf.tokenToBytes(1917)]).toEqual([...new TextEncoder().encode(' world')])
    expect(gguf.tokenToPiece(1917)).toBe(' world')
    expect(gguf.tokenToPiece(128009)).toBe('<|eot_id|>')
    expect(gguf.tokenToPiece(9468)).toContain('\uFFFD') // first byte(s) of an emoji alone
  })

  it.each(STRINGS.map((s) => [JSON.stringify(s).slice(0, 40), s]))('stream decoder matches decode: %s', (_, s) => {
    const ids = gguf.encode(s)
    const stream = gguf.createStreamDecoder()
    const deltas = ids.map((id) => stream.push(id))
    deltas.push(stream.flush())
    expect(deltas.join('')).toBe(gguf.decode(ids))
    for (const d of deltas) expect(d).not.toContain('\uFFFD')
  })

  it('holds back a split emoji until it is complete', () => {
    const ids = gguf.encode('🦙!', { addBos: false })
    const stream = gguf.createStreamDecoder()
    expect(ids.map((id) => stream.push(id))).toEqual(['', '', '🦙', '!'])
    expect(stream.flush()).toBe('')
  })

  it('stream skipSpecial omits control tokens', () => {
    const stream = gguf.createStreamDecoder({ skipSpecial: true })
    const out = gguf.encode('Hi<|eot_id|>').map((id) => stream.push(id)).join('') + stream.flush()
    expect(out).toBe('Hi')
  })

  it('an unfinished sequence at the end flushes as U+FFFD', () => {
    const stream = gguf.createStreamDecoder()
    expect(stream.push(9468)).toBe('')
    expect(stream.flush()).toContain('\uFFFD')
  })

  it('rejects out-of-range ids', () => {
    expect(() => gguf.decode([128256])).toThrow(/out of range/)
    expect(() => gguf.decode([-1])).toThrow(/out of range/)
    expect(() => gguf.decode([1.5])).toThrow(/out of range/)
  })
})

describe('tokenizer: GGUF validation', () => {
  const withKey = (key: string, value: unknown) => {
    const md = new Map(metadata)
    if (value === undefined) md.delete(key)
    else md.set(key, value as never)
    return md
  }

  it('accepts tokenizer.ggml.pre = llama-bpe and rejects others by name', () => {
    const pre = (v: string) => withKey('tokenizer.ggml.pre', { type: GgufType.STRING, value: v })
    expect(tokenizerFromGguf(pre('llama-bpe')).encode('Hello world', { addBos: false })).toEqual([9906, 1917])
    expect(() => tokenizerFromGguf(pre('deepseek-llm'))).toThrow(UnsupportedFeatureError)
    expect(() => tokenizerFromGguf(pre('deepseek-llm'))).toThrow(/'deepseek-llm' is not supported \(supported: .*qwen2\)/)
  })

  it('rejects unknown tokenizer models; a SentencePiece llama vocab without scores names the key', () => {
    const model = (v: string) => withKey('tokenizer.ggml.model', { type: GgufType.STRING, value: v })
    const noScores = model('llama')
    noScores.delete('tokenizer.ggml.scores')
    expect(() => tokenizerFromGguf(noScores)).toThrow(/tokenizer\.ggml\.scores/)
    expect(() => tokenizerFromGguf(model('t5'))).toThrow(UnsupportedFeatureError)
  })

  it('names the key on malformed metadata', () => {
    const types = metadata.get('tokenizer.ggml.token_type')!
    const short = withKey('tokenizer.ggml.token_type', { ...types, value: (types.value as number[]).slice(1) })
    expect(() => tokenizerFromGguf(short, 'f.gguf')).toThrow(ModelFormatError)
    expect(() => tokenizerFromGguf(short, 'f.gguf')).toThrow(/f\.gguf: tokenizer\.ggml\.token_type length/)
    const bos = withKey('tokenizer.ggml.bos_token_id', { type: GgufType.UINT32, value: 128256 })
    expect(() => tokenizerFromGguf(bos)).toThrow(/tokenizer\.ggml\.bos_token_id is out of range/)
    expect(() => tokenizerFromGguf(withKey('tokenizer.ggml.merges', undefined))).toThrow(/missing metadata key tokenizer\.ggml\.merges/)
    const badMerge = withKey('tokenizer.ggml.merges', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: ['ab'] })
    expect(() => tokenizerFromGguf(badMerge)).toThrow(/tokenizer\.ggml\.merges\[0\]/)
    const wrongType = withKey('tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: [1] })
    expect(() => tokenizerFromGguf(wrongType)).toThrow(/tokenizer\.ggml\.tokens has the wrong element type/)
  })

  it('marks user-defined tokens (type 4) as parsed but not special', () => {
    const types = [...(metadata.get('tokenizer.ggml.token_type')!.value as number[])]
    types[128002] = 4 // <|reserved_special_token_0|>
    const t = tokenizerFromGguf(withKey('tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: types }))
    const ids = t.encode('a<|reserved_special_token_0|>b', { addBos: false })
    expect(ids).toContain(128002)
    expect(t.isSpecial(128002)).toBe(false)
    expect(t.decode(ids, { skipSpecial: true })).toBe('a<|reserved_special_token_0|>b')
  })
})

describe('untrusted tokenizer.json', () => {
  const json = JSON.parse(readFileSync(new URL('./fixtures/tiny-dev/tokenizer.json', import.meta.url), 'utf8'))
  it('runs only known pre-tokenizer regexes (a crafted one could backtrack for hours)', () => {
    const evil = structuredClone(json)
    evil.pre_tokenizer.pretokenizers[0].pattern.Regex = '(a+)+$'
    expect(() => tokenizerFromHf(evil)).toThrow(/regex pattern "\(a\+\)\+\$" is not one of the known/)
  })
  it('a merge that does not join tokens into a token is rejected (the library would drop the text silently)', () => {
    const bad = structuredClone(json)
    bad.model.merges.push('Ġq Ġq')
    expect(() => tokenizerFromHf(bad)).toThrow(/model\.merges\[280147\] joins pieces that are not all tokens/)
  })
  it('huge vocabularies and merge lists are refused before they are built', () => {
    const huge = structuredClone(json)
    huge.model.merges = new Array(2 ** 23 + 1) // sparse: the length check comes first
    expect(() => tokenizerFromHf(huge)).toThrow(/model\.merges is too long/)
    const md: GgufMetadata = new Map([
      ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'gpt2' }],
      ['tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: new Array(2 ** 21 + 1) }],
    ])
    expect(() => tokenizerFromGguf(md)).toThrow(/tokenizer\.ggml\.tokens is too long/)
  })
  it('a configuration the library accepts but cannot run fails at load as a ModelFormatError', () => {
    const bad = structuredClone(json)
    bad.pre_tokenizer.pretokenizers[0].behavior = 7
    expect(() => tokenizerFromHf(bad)).toThrow(/tokenizer cannot encode/)
  })
})
