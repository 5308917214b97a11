// Exact ids of tricky strings (whitespace runs, digits, contractions, unicode, emoji, special
// tokens, code) for the Llama 3 tokenizer, built both ways the engine builds it: from
// tokenizer.json and from the GGUF metadata. The ids in fixtures/llama3-token-ids.json come
// from tiktoken (scripts/llama3-token-ids.mjs): rank-based BPE, the algorithm of Meta's
// reference tokenizer, independent of the merge-list BPE the engine runs.
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { readGguf } from '../src/gguf/reader.js'
import { fileSource } from '../src/io/file.js'
import { tokenizerFromGguf, tokenizerFromHf, type BitnetTokenizer } from '../src/tokenizer/tokenizer.js'

const DIR = new URL('./fixtures/tiny-dev/', import.meta.url)
const readJson = (url: URL) => JSON.parse(readFileSync(url, 'utf8'))
const TABLE = readJson(new URL('./fixtures/llama3-token-ids.json', import.meta.url)) as [string, number[]][]

const built: Record<'tokenizer.json' | 'GGUF', BitnetTokenizer> = {} as never

beforeAll(async () => {
  built['tokenizer.json'] = tokenizerFromHf(readJson(new URL('tokenizer.json', DIR)), readJson(new URL('tokenizer_config.json', DIR)))
  const source = await fileSource(new URL('ggml-model-i2_s.gguf', DIR).pathname)
  try {
    built.GGUF = tokenizerFromGguf((await readGguf(source)).metadata, 'ggml-model-i2_s.gguf')
  } finally {
    await source.close?.()
  }
})

describe.each(['tokenizer.json', 'GGUF'] as const)('Llama 3 ids from %s', (from) => {
  it('the table is the one the generator writes (every string, non-empty ids)', () => {
    expect(TABLE.length).toBeGreaterThan(80)
    for (const [s, ids] of TABLE) expect(ids.length, JSON.stringify(s)).toBeGreaterThan(0)
  })

  it.each(TABLE.map(([s, ids]) => [JSON.stringify(s).slice(0, 48), s, ids] as const))('%s', (_, s, ids) => {
    const t = built[from]
    expect(t.encode(s, { addBos: false })).toEqual(ids)
    expect(t.encode(s)).toEqual([t.bosId, ...ids])
    expect(t.decode(ids)).toBe(s)
  })
})
