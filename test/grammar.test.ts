/**
 * Structured output: the JSON-schema grammar accepts exactly the texts it should, token masks agree
 * with a brute-force check, and constrained generation from random logits always yields JSON that
 * parses and validates (ajv), on a small synthetic vocabulary and on tiny-dev's real Llama 3 one.
 */
import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, UnsupportedFeatureError } from '../src/errors.js'
import { jsonObjectGrammar, jsonSchemaGrammar, type JsonSchema } from '../src/grammar/json-schema.js'
import { createResponseConstraint } from '../src/grammar/response-format.js'
import { type ConstraintVocabulary, TokenConstraint } from '../src/grammar/token-constraint.js'
import { Sampler } from '../src/generation/sampler.js'
import { tokenizerFromHf } from '../src/tokenizer/tokenizer.js'
import { TINY_DIR } from './helpers/golden.js'

const enc = new TextEncoder()
const accepts = (schema: JsonSchema, text: string) => jsonSchemaGrammar(schema).accepts(enc.encode(text))

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 12 },
    age: { type: 'integer' },
    email: { type: 'string' },
    role: { enum: ['admin', 'user', 'guest'] },
  },
  required: ['name', 'role'],
  additionalProperties: false,
} as const

/** Schemas for the generation property test; together they cover every supported keyword. */
const SCHEMAS: Record<string, JsonSchema> = {
  person: PERSON,
  nested: {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      score: { type: 'number' },
      owner: PERSON,
      tags: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 1, maxItems: 3 },
      meta: { type: 'object', properties: { ok: { type: 'boolean' }, note: { type: ['string', 'null'] } }, required: ['ok'] },
    },
    required: ['id', 'owner', 'tags', 'meta'],
  },
  arrays: { type: 'array', items: { anyOf: [{ type: 'number' }, { const: 'x' }, { type: 'null' }] }, minItems: 2, maxItems: 5 },
  recursive: {
    $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['v'] } },
    $ref: '#/$defs/node',
  },
  strings: { type: 'object', properties: { s: { type: 'string' }, t: { type: 'string', maxLength: 4 } }, required: ['s', 't'] },
  map: { type: 'object', additionalProperties: { type: 'integer' } },
}

describe('json schema grammar', () => {
  it('accepts valid documents with free whitespace (bounded), in property order', () => {
    expect(accepts(PERSON, '{"name":"Ada","role":"admin"}')).toBe(true)
    expect(accepts(PERSON, '{ "name" : "Ada" , "age" : 36, "role": "user" }')).toBe(true)
    expect(accepts(PERSON, '{\n  "name": "Ada",\n  "role": "guest"\n}')).toBe(true)
    expect(accepts(PERSON, '{"name":"Ada","role":"admin"' + ' '.repeat(2) + '}')).toBe(false) // two spaces: only "", " " or "\n" + indent
    expect(accepts(PERSON, '{\n' + ' '.repeat(20) + '"name":"A","role":"user"}')).toBe(true)
    expect(accepts(PERSON, '{\n' + ' '.repeat(21) + '"name":"A","role":"user"}')).toBe(false)
  })

  it('rejects missing required, unknown, reordered or mistyped properties', () => {
    expect(accepts(PERSON, '{"name":"Ada"}')).toBe(false)
    expect(accepts(PERSON, '{"name":"Ada","role":"root"}')).toBe(false)
    expect(accepts(PERSON, '{"role":"user","name":"Ada"}')).toBe(false)
    expect(accepts(PERSON, '{"name":"Ada","role":"user","x":1}')).toBe(false)
    expect(accepts(PERSON, '{"name":"Ada","age":3.5,"role":"user"}')).toBe(false)
    expect(accepts(PERSON, '{"name":"","role":"user"}')).toBe(false) // minLength 1
    expect(accepts(PERSON, '{"name":"abcdefghijklm","role":"user"}')).toBe(false) // maxLength 12
    expect(accepts(PERSON, '{"name":"Ada","role":"user",}')).toBe(false)
  })

  it('strings: escapes, \\uXXXX, UTF-8 only when well formed, no raw control characters', () => {
    const s = { type: 'string' }
    for (const ok of ['""', '"a\\"b\\\\c\\/\\b\\f\\n\\r\\t"', '"\\u00e9\\uD83D\\uDE00"', '"é漢😀"', '"\x7f"']) expect(accepts(s, ok)).toBe(true)
    for (const bad of ['"\\x"', '"\\u12G4"', '"a\nb"', '"\t"', '"abc', 'abc"']) expect(accepts(s, bad)).toBe(false)
    const g = jsonSchemaGrammar(s)
    expect(g.accepts(Uint8Array.from([0x22, 0xc3, 0xa9, 0x22]))).toBe(true) // "é"
    for (const bytes of [[0x22, 0xc3, 0x22], [0x22, 0xc0, 0x80, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xff, 0x22]]) {
      expect(g.accepts(Uint8Array.from(bytes))).toBe(false) // truncated, overlong, surrogate, invalid byte
    }
  })

  it('numbers and integers follow JSON syntax with bounded digits', () => {
    for (const ok of ['0', '-0', '12', '-3.25', '1e5', '2.5E-3', '1e+99', '1234567890123456']) expect(accepts({ type: 'number' }, ok)).toBe(true)
    for (const bad of ['01', '1.', '.5', '+1', '1e', '1e100', '12345678901234567', 'NaN', '--1']) expect(accepts({ type: 'number' }, bad)).toBe(false)
    expect(accepts({ type: 'integer' }, '-42')).toBe(true)
    for (const bad of ['1.0', '1e3']) expect(accepts({ type: 'integer' }, bad)).toBe(false)
  })

  it('arrays: item counts, enums, const, anyOf, nested $ref recursion', () => {
    const arr = { type: 'array', items: { enum: [1, 'two', null, { a: [true] }] }, minItems: 1, maxItems: 2 }
    expect(accepts(arr, '[1]')).toBe(true)
    expect(accepts(arr, '[ "two" , {"a":[true]} ]')).toBe(true)
    expect(accepts(arr, '[]')).toBe(false)
    expect(accepts(arr, '[1,1,1]')).toBe(false)
    expect(accepts(arr, '[3]')).toBe(false)
    expect(accepts(SCHEMAS.recursive, '{"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]}')).toBe(true)
    expect(accepts(SCHEMAS.recursive, '{"v":1,"kids":[{"v":2},{"v":3},{"v":4}]}')).toBe(false)
    expect(accepts(SCHEMAS.arrays, '[1.5, "x", null]')).toBe(true)
    expect(accepts(SCHEMAS.arrays, '[1.5, "y"]')).toBe(false)
  })

  it('json mode accepts any object, and only objects', () => {
    const g = jsonObjectGrammar()
    expect(g.accepts(enc.encode('{"a": [1, {"b": null}], "c": "d", "e": -1.5e3}'))).toBe(true)
    expect(g.accepts(enc.encode('{}'))).toBe(true)
    for (const bad of ['[1]', '"x"', '{"a"}', '{a: 1}', '{"a": 1,}']) expect(g.accepts(enc.encode(bad))).toBe(false)
  })

  it('unsupported keywords are an UnsupportedFeatureError, malformed schemas an InvalidArgumentError', () => {
    expect(() => jsonSchemaGrammar({ type: 'string', pattern: '^a' })).toThrow(UnsupportedFeatureError)
    expect(() => jsonSchemaGrammar({ type: 'integer', minimum: 0 })).toThrow(/'minimum'/)
    expect(() => jsonSchemaGrammar({ $ref: 'http://x/y' })).toThrow(UnsupportedFeatureError)
    expect(() => jsonSchemaGrammar({ type: 'strng' })).toThrow(InvalidArgumentError)
    expect(() => jsonSchemaGrammar({ $ref: '#/$defs/missing' })).toThrow(InvalidArgumentError)
    expect(() => jsonSchemaGrammar({ type: 'array', minItems: 3, maxItems: 2 })).toThrow(InvalidArgumentError)
    expect(() => jsonSchemaGrammar({ type: 'object', properties: {}, required: ['a'] })).toThrow(UnsupportedFeatureError)
    expect(() => createResponseConstraint({ type: 'yaml' } as never, smallVocab())).toThrow(InvalidArgumentError)
  })
})

/** A synthetic vocabulary: all 256 bytes, JSON-ish multi-byte tokens, split UTF-8, and an EOS. */
function smallVocab(): ConstraintVocabulary & { tokens: Uint8Array[] } {
  const texts = ['{"', '"}', '":', '": "', '", "', '",', ', "', ' "', '"]', '[', '[{', '}]', '},', '}', 'true', 'false', 'null',
    'name', 'role', 'admin', 'user', 'guest', 'age', '12', '0.', '5e', '-', '\\u00', 'e9', '\\"', '\\n', '\\\\', 'é', '漢字',
    '\n  ', '  ', ' ', 'id', 'owner', 'tags', 'meta', 'ok', 'note', 'kids', '"v":', '"x"', 'hello world', '3.14']
  const tokens: Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b))
  for (const t of texts) tokens.push(enc.encode(t))
  tokens.push(Uint8Array.of(0xf0, 0x9f), Uint8Array.of(0x98, 0x80)) // 😀 in two halves
  const eos = tokens.length
  tokens.push(enc.encode('</s>'))
  return {
    tokens,
    vocabSize: tokens.length,
    eosIds: [eos],
    tokenToBytes: (id) => tokens[id],
    isSpecial: (id) => id === eos,
  }
}

const tinyTokenizer = (() => {
  let tok: ReturnType<typeof tokenizerFromHf> | undefined
  return () => tok ??= tokenizerFromHf(
    JSON.parse(readFileSync(TINY_DIR + 'tokenizer.json', 'utf8')),
    JSON.parse(readFileSync(TINY_DIR + 'tokenizer_config.json', 'utf8')),
  )
})()

/**
 * Generates under `constraint` from random logits through the real sampler: a fixed random vector,
 * rotated per step, plus a boost for closing tokens (`"`, `]`, `}`, `0`, EOS) that grows after
 * `patience` steps so every run ends. Returns the generated bytes.
 */
function randomGeneration(constraint: TokenConstraint, vocab: ConstraintVocabulary, seed: number, patience = 60): Uint8Array {
  const n = vocab.vocabSize
  const base = new Float32Array(n)
  let s = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) base[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 6
  const closers = [...vocab.eosIds]
  for (let id = 0; id < n; id++) {
    const b = vocab.isSpecial(id) ? undefined : vocab.tokenToBytes(id)
    if (b && b.length === 1 && '"]}0'.includes(String.fromCharCode(b[0]))) closers.push(id)
  }
  const sampler = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed })
  const out: number[] = []
  const logits = new Float32Array(n)
  for (let step = 0; step < 2000 && !constraint.isComplete(); step++) {
    const shift = (step * 7919 + seed) % n
    logits.set(base.subarray(shift), 0)
    logits.set(base.subarray(0, shift), n - shift)
    for (const id of closers) logits[id] += step < patience ? 2 : 40
    constraint.mask(logits)
    const tok = sampler.sample(logits)
    constraint.accept(tok)
    if (vocab.eosIds.includes(tok)) break
    out.push(...vocab.tokenToBytes(tok))
  }
  expect(constraint.isComplete()).toBe(true)
  return Uint8Array.from(out)
}

describe('constrained generation (property: output parses and validates)', () => {
  const ajv = new Ajv({ strict: false })
  const check = (schema: JsonSchema | 'json_object', bytes: Uint8Array) => {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes) // throws on invalid UTF-8
    const value = JSON.parse(text)
    if (schema === 'json_object') {
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true)
    } else {
      const validate = ajv.compile(schema as object)
      expect(validate(value), `${text}\n${JSON.stringify(validate.errors)}`).toBe(true)
    }
    return text
  }
  const formats = [...Object.entries(SCHEMAS), ['json_object', 'json_object'] as const]
  const constraintFor = (schema: JsonSchema | 'json_object', vocab: ConstraintVocabulary) =>
    createResponseConstraint(schema === 'json_object' ? { type: 'json_object' } : { type: 'json_schema', schema }, vocab)!

  it.each(formats)('synthetic vocabulary, 25 seeds: %s', (_, schema) => {
    const vocab = smallVocab()
    const texts = new Set<string>()
    for (let seed = 1; seed <= 25; seed++) texts.add(check(schema, randomGeneration(constraintFor(schema, vocab), vocab, seed)))
    expect(texts.size).toBeGreaterThan(10) // the runs differ: the constraint is not forcing one text
  })

  it.each(formats)('real Llama 3 vocabulary (128,256 tokens), 3 seeds: %s', (_, schema) => {
    const tok = tinyTokenizer()
    for (let seed = 1; seed <= 3; seed++) check(schema, randomGeneration(constraintFor(schema, tok), tok, seed, 30))
  }, 120_000)
})

describe('TokenConstraint', () => {
  it('masks exactly the tokens whose bytes continue the grammar (brute force), EOS only when complete', () => {
    const vocab = smallVocab()
    const schema = SCHEMAS.nested
    const grammar = jsonSchemaGrammar(schema)
    const c = new TokenConstraint(grammar, vocab)
    const prefix: number[] = []
    const text = enc.encode('{"id": 12, "owner": {"name": "é\\u00e9😀", "role": "user"}, "tags": ["a"], "meta": {"ok": true}}')
    // Feed the text byte by byte (single-byte tokens), checking the mask at every step.
    for (let i = 0; i <= text.length; i++) {
      const logits = new Float32Array(vocab.vocabSize)
      c.mask(logits)
      for (let id = 0; id < vocab.vocabSize; id++) {
        let s = grammar.initial
        for (const b of [...prefix, ...(vocab.isSpecial(id) ? [] : vocab.tokens[id])]) s = grammar.step(s, b)
        const want = vocab.isSpecial(id) ? grammar.isAccepting(s) && i === text.length : !s.dead
        expect(logits[id] === 0, `step ${i} token ${id}`).toBe(want)
      }
      if (i < text.length) { c.accept(text[i]); prefix.push(text[i]) }
    }
    expect(c.isAccepting()).toBe(true)
    expect(c.isComplete()).toBe(true) // nothing may follow the closing brace
  })

  it('accepts split UTF-8 tokens, rejects disallowed tokens and early EOS', () => {
    const vocab = smallVocab()
    const c = new TokenConstraint(jsonSchemaGrammar({ type: 'string' }), vocab)
    const id = (t: Uint8Array) => vocab.tokens.findIndex((x) => x.length === t.length && x.every((b, i) => b === t[i]))
    c.accept(0x22)
    c.accept(id(Uint8Array.of(0xf0, 0x9f)))
    expect(() => c.accept(0x22)).toThrow(InvalidArgumentError) // the emoji is incomplete
    c.accept(id(Uint8Array.of(0x98, 0x80)))
    expect(() => c.accept(vocab.eosIds[0])).toThrow(/before the text is complete/)
    c.accept(0x22)
    expect(c.isComplete()).toBe(true)
    expect(() => c.mask(new Float32Array(3))).toThrow(InvalidArgumentError)
  })

  it('a top-level number may continue or end: EOS and digits are both allowed', () => {
    const vocab = smallVocab()
    const c = new TokenConstraint(jsonSchemaGrammar({ type: 'integer' }), vocab)
    c.accept(0x37) // "7"
    const logits = new Float32Array(vocab.vocabSize)
    c.mask(logits)
    expect(logits[vocab.eosIds[0]]).toBe(0)
    expect(logits[0x38]).toBe(0)
    expect(logits[0x22]).toBe(-Infinity)
    expect(c.isComplete()).toBe(false)
    c.accept(vocab.eosIds[0])
    expect(c.isComplete()).toBe(true)
  })
})
