/**
 * GGUF reader/writer tests: the tiny-dev fixture (a real bitnet.cpp-style I2_S file), exact
 * write → read round trips of every value type, and malformed files — each must fail with a
 * typed error naming the problem and the offset, never a RangeError/TypeError.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { ModelFormatError, UnsupportedFeatureError } from '../src/errors.js'
import { quantizeF16, quantizeF32 } from '../src/formats/float.js'
import { decodeI2s, encodeI2s } from '../src/formats/i2s.js'
import {
  NeedMoreBytes, getMeta, metaArray, metaArrayOpt, metaBoolOpt, metaNumber, metaNumberOpt, metaString, metaStringOpt,
  parseGguf, readGguf,
} from '../src/gguf/reader.js'
import { GgufType, type GgufFile, type GgufMetadata, type GgufValue } from '../src/gguf/types.js'
import {
  ggufChunks, metaArr, metaBool, metaF32, metaF64, metaI16, metaI32, metaI64, metaI8, metaStr, metaU16, metaU32, metaU64,
  metaU8, writeGguf, type GgufWriteTensor,
} from '../src/gguf/writer.js'
import { fileSource } from '../src/io/file.js'
import { bytesSource } from '../src/io/source.js'

const FIXTURE = new URL('./fixtures/tiny-dev/ggml-model-i2_s.gguf', import.meta.url).pathname

/** Deterministic LCG in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
}

function catchError(f: () => unknown): Error | undefined {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  return undefined
}

/** Parses a complete in-memory file. */
const parse = (bytes: Uint8Array, name = 'test.gguf') => parseGguf(bytes, bytes.byteLength, name)

/** Expects a ModelFormatError at `offset` whose message matches `pattern`. */
function expectFormatError(bytes: Uint8Array, pattern: RegExp, offset?: number): ModelFormatError {
  const err = catchError(() => parse(bytes))
  expect(err, 'expected a ModelFormatError').toBeInstanceOf(ModelFormatError)
  const e = err as ModelFormatError
  expect(e.message).toMatch(pattern)
  expect(e.file).toBe('test.gguf')
  if (offset !== undefined) {
    expect(e.offset).toBe(offset)
    expect(e.message).toContain(`offset ${offset}`)
  }
  return e
}

// ─── A small valid file and helpers to find its fields ───────────────────────────────────

const Q_NAME = 'blk.0.attn_q.weight'
const K_NAME = 'blk.0.attn_k.weight'

function smallTensors(): GgufWriteTensor[] {
  const r = rng(1)
  const codes = Int8Array.from({ length: 256 }, () => Math.floor(r() * 3) - 1)
  return [
    { name: Q_NAME, dims: [128, 2], typeId: 36, data: encodeI2s(codes, 2, 128, 0.5) }, // 96 bytes
    { name: K_NAME, dims: [128, 1], typeId: 36, data: encodeI2s(codes.subarray(0, 128), 1, 128, 0.25) }, // 64 bytes
    { name: 'output_norm.weight', dims: [8], typeId: 0, data: quantizeF32(Float32Array.from({ length: 8 }, (_, i) => i)) },
  ]
}

function smallMetadata(arch = 'bitnet-b1.58'): GgufMetadata {
  return new Map<string, GgufValue>([
    ['general.architecture', metaStr(arch)],
    ['general.name', metaStr('tiny')],
    ['keyA', metaU32(7)],
    ['keyB', metaU32(8)],
    ['flag', metaBool(true)],
    ['list', metaArr(GgufType.INT32, [1, -2, 3])],
    ['names', metaArr(GgufType.STRING, ['a', 'bc', 'Ġx'])],
  ])
}

/** A small valid file whose data section ends exactly at the end of the last tensor. */
function smallFile(arch?: string): Uint8Array {
  return writeGguf({ metadata: smallMetadata(arch), tensors: smallTensors() })
}

/** Offset just past the first occurrence of `s` (a key or tensor name) in the file. */
function after(bytes: Uint8Array, s: string): number {
  const i = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(s))
  if (i < 0) throw new Error(`${s} not found`)
  return i + Buffer.byteLength(s)
}

/** Field offsets of a tensor info (name → n_dims, dims, type, offset). */
function tensorFields(bytes: Uint8Array, name: string) {
  const nDims = after(bytes, name)
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(nDims, true)
  return { nDims, dims: nDims + 4, type: nDims + 4 + 8 * n, offset: nDims + 8 + 8 * n }
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength)

// ─── Fixture ─────────────────────────────────────────────────────────────────────────────

describe('tiny-dev fixture', async () => {
  const source = await fileSource(FIXTURE)
  afterAll(() => source.close?.())
  const gguf = await readGguf(source)
  const byName = new Map(gguf.tensors.map((t) => [t.name, t]))
  const readTensor = (name: string) => {
    const t = byName.get(name)!
    return source.read(gguf.dataOffset + t.offset, t.byteSize)
  }

  it('has the expected header and metadata', () => {
    const m = gguf.metadata
    expect(gguf.version).toBe(3)
    expect(gguf.alignment).toBe(32)
    expect(gguf.dataOffset % 32).toBe(0)
    expect(metaString(m, 'general.architecture', FIXTURE)).toBe('bitnet-b1.58')
    expect(metaNumber(m, 'bitnet-b1.58.block_count')).toBe(8)
    expect(metaNumber(m, 'bitnet-b1.58.embedding_length')).toBe(128)
    expect(metaNumber(m, 'bitnet-b1.58.feed_forward_length')).toBe(384)
    expect(metaNumber(m, 'bitnet-b1.58.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-5))
    expect(metaNumber(m, 'general.file_type')).toBe(40) // LLAMA_FTYPE_MOSTLY_I2_S
    expect(metaBoolOpt(m, 'tokenizer.ggml.add_bos_token')).toBe(true)
    expect(metaStringOpt(m, 'tokenizer.ggml.pre')).toBeUndefined() // missing in bitnet.cpp files (docs/formats.md#metadata-keys)
    const tokens = metaArray(m, 'tokenizer.ggml.tokens')
    expect(tokens.itemType).toBe(GgufType.STRING)
    expect(tokens.value.length).toBe(128256)
    expect(tokens.value[128000]).toBe('<|begin_of_text|>')
    expect(metaArrayOpt(m, 'tokenizer.ggml.merges')?.value.length).toBe(280147)
  })

  it('has a consistent tensor directory', () => {
    const layers = 8
    expect(gguf.tensors.length).toBe(2 + 11 * layers) // token_embd, output_norm, 11 per block
    expect(byName.get('token_embd.weight')).toMatchObject({ format: 'F16', typeId: 1, dims: [128, 128256], byteSize: 128 * 128256 * 2 })
    expect(byName.get('blk.0.attn_q.weight')).toMatchObject({ format: 'I2_S', typeId: 36, dims: [128, 128], byteSize: (128 * 128) / 4 + 32 })
    expect(byName.get('blk.0.ffn_down.weight')).toMatchObject({ format: 'I2_S', dims: [384, 128] })
    expect(byName.get('output_norm.weight')).toMatchObject({ format: 'F32', dims: [128], byteSize: 512 })
    expect(byName.has('output.weight')).toBe(false) // tied embeddings
    for (let i = 0; i < layers; i++) {
      for (const t of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_sub_norm', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down', 'ffn_sub_norm']) {
        expect(byName.has(`blk.${i}.${t}.weight`)).toBe(true)
      }
    }
    const sorted = [...gguf.tensors].sort((a, b) => a.offset - b.offset)
    sorted.forEach((t, i) => {
      expect(t.offset % gguf.alignment).toBe(0)
      if (i > 0) expect(t.offset).toBeGreaterThanOrEqual(sorted[i - 1].offset + sorted[i - 1].byteSize)
    })
    const last = sorted[sorted.length - 1]
    expect(gguf.dataOffset + last.offset + last.byteSize).toBeLessThanOrEqual(source.size)
  })

  it('decodes every I2_S tensor: codes in {-1, 0, 1}, γ > 0 = the f32 at byte M·K/4', async () => {
    for (const t of gguf.tensors.filter((x) => x.format === 'I2_S')) {
      const [K, M] = t.dims
      const bytes = await readTensor(t.name)
      const { codes, scale } = decodeI2s(bytes, M, K)
      expect(scale).toBeGreaterThan(0)
      expect(scale).toBe(dv(bytes).getFloat32((M * K) / 4, true))
      const counts = [0, 0, 0]
      for (const c of codes) counts[c + 1]++
      expect(counts[0] + counts[1] + counts[2]).toBe(M * K)
      // A trained absmean-ternarized matrix uses all three values.
      expect(Math.min(...counts)).toBeGreaterThan(0)
    }
  })

  it('parses identically from the whole file and through growing prefixes', async () => {
    const header = await source.read(0, gguf.dataOffset) // exactly the header: enough to parse
    const direct = parseGguf(header, source.size, FIXTURE)
    expect(direct.tensors).toEqual(gguf.tensors)
    expect(direct.dataOffset).toBe(gguf.dataOffset)
    // A prefix that ends inside the vocabulary asks for more, within the file.
    const err = catchError(() => parseGguf(header.subarray(0, 100_000), source.size, FIXTURE))
    expect(err).toBeInstanceOf(NeedMoreBytes)
    expect((err as NeedMoreBytes).needed).toBeGreaterThan(100_000)
    expect((err as NeedMoreBytes).needed).toBeLessThanOrEqual(gguf.dataOffset)
  })
})

// ─── Round trips ─────────────────────────────────────────────────────────────────────────

describe('write → read round trips', () => {
  const allTypes = (): GgufMetadata => new Map<string, GgufValue>([
    ['u8', metaU8(255)], ['i8', metaI8(-128)], ['u16', metaU16(65535)], ['i16', metaI16(-32768)],
    ['u32', metaU32(0xffffffff)], ['i32', metaI32(-0x80000000)], ['f32', metaF32(Math.fround(0.1))],
    ['bool.t', metaBool(true)], ['bool.f', metaBool(false)],
    ['str', metaStr('plain')], ['str.empty', metaStr('')],
    ['str.utf8', metaStr('Ġhé 中文 🌍')], ['str.long', metaStr('x'.repeat(1000) + 'é')],
    ['u64', metaU64(0xffffffffffffffffn)], ['i64', metaI64(-0x8000000000000000n)], ['i64.small', metaI64(5)],
    ['f64', metaF64(Math.PI)],
    ['arr.u8', metaArr(GgufType.UINT8, [0, 1, 255])], ['arr.i8', metaArr(GgufType.INT8, [-128, 127])],
    ['arr.u16', metaArr(GgufType.UINT16, [65535])], ['arr.i16', metaArr(GgufType.INT16, [-1, 2])],
    ['arr.u32', metaArr(GgufType.UINT32, [0xffffffff, 0])], ['arr.i32', metaArr(GgufType.INT32, [-5, 6])],
    ['arr.f32', metaArr(GgufType.FLOAT32, [Math.fround(1.1), -0, Infinity])], ['arr.bool', metaArr(GgufType.BOOL, [true, false])],
    ['arr.str', metaArr(GgufType.STRING, ['', 'a', '🌍', 'Ġ'.repeat(40)])],
    ['arr.u64', metaArr(GgufType.UINT64, [0n, 0xffffffffffffffffn])], ['arr.i64', metaArr(GgufType.INT64, [-1n, 0x7fffffffffffffffn])],
    ['arr.f64', metaArr(GgufType.FLOAT64, [1e300, -1e-300])], ['arr.empty', metaArr(GgufType.STRING, [])],
    ['arr.nested', metaArr(GgufType.ARRAY, [
      metaArr(GgufType.INT32, [1, 2]),
      metaArr(GgufType.STRING, ['x']),
      metaArr(GgufType.ARRAY, [metaArr(GgufType.UINT64, [1n << 60n]), metaArr(GgufType.BOOL, [])]),
      metaArr(GgufType.FLOAT32, []),
    ])],
  ])

  it('keeps every value type exactly (v2 and v3)', () => {
    for (const version of [2, 3] as const) {
      const metadata = allTypes()
      const file = parse(writeGguf({ version, metadata, tensors: [] }))
      expect(file.version).toBe(version)
      expect([...file.metadata.keys()]).toEqual([...metadata.keys()]) // order kept
      expect(file.metadata).toEqual(metadata)
      expect(Object.is((file.metadata.get('arr.f32')!.value as number[])[1], -0)).toBe(true)
      expect(file.metadata.has('general.alignment')).toBe(false)
      expect(file.tensors).toEqual([])
    }
  })

  it('keeps strings byte for byte: a leading U+FEFF, 3- and 4-byte characters, long strings', () => {
    const strings = ['\uFEFF', '\uFEFFa', 'a\uFEFF', '\uFEFF' + 'x'.repeat(80), 'Ġ€😀', 'é'.repeat(40), '']
    const metadata = new Map([['tokenizer.ggml.tokens', metaArr(GgufType.STRING, strings)]])
    const file = parse(writeGguf({ metadata, tensors: [] }))
    expect(file.metadata.get('tokenizer.ggml.tokens')!.value).toEqual(strings)
  })

  it('keeps tensor bytes identical and aligned, with default and custom alignment', () => {
    const r = rng(3)
    const tensors: GgufWriteTensor[] = [
      { name: 'odd', dims: [5], typeId: 0, data: quantizeF32([1, 2, 3, 4, 5]) }, // 20 bytes: padded
      { name: 'q', dims: [256, 3], typeId: 36, data: encodeI2s(Int8Array.from({ length: 768 }, () => Math.floor(r() * 3) - 1), 3, 256, 0.1) },
      { name: 'h', dims: [3, 2, 1, 1], typeId: 1, data: quantizeF16([1, 2, 3, 4, 5, 6]) },
      { name: 'empty', dims: [0], typeId: 0, data: new Uint8Array(0) },
    ]
    for (const alignment of [undefined, 1, 64, 256]) {
      const bytes = writeGguf({ alignment, metadata: smallMetadata(), tensors })
      const file = parse(bytes)
      const a = alignment ?? 32
      expect(file.alignment).toBe(a)
      expect(file.metadata.get('general.alignment')).toEqual(alignment === undefined ? undefined : metaU32(a))
      expect(file.dataOffset % a).toBe(0)
      expect(file.tensors.map((t) => [t.name, t.dims, t.typeId])).toEqual(tensors.map((t) => [t.name, t.dims, t.typeId]))
      file.tensors.forEach((t, i) => {
        expect(t.offset % a).toBe(0)
        expect(t.byteSize).toBe(tensors[i].data.byteLength)
        expect(bytes.subarray(file.dataOffset + t.offset, file.dataOffset + t.offset + t.byteSize)).toEqual(tensors[i].data)
      })
      // The chunked form is the same file, header chunk first.
      const chunks = [...ggufChunks({ alignment, metadata: smallMetadata(), tensors })]
      expect(chunks[0].byteLength).toBe(file.dataOffset)
      expect(Buffer.concat(chunks)).toEqual(Buffer.from(bytes))
    }
  })

  it('metadata general.alignment is honoured and not duplicated', () => {
    const metadata = smallMetadata()
    metadata.set('general.alignment', metaU32(128))
    const file = parse(writeGguf({ metadata, tensors: smallTensors() }))
    expect(file.alignment).toBe(128)
    const over = parse(writeGguf({ alignment: 32, metadata, tensors: smallTensors() }))
    expect(over.alignment).toBe(32)
    expect([...over.metadata.keys()].filter((k) => k === 'general.alignment').length).toBe(1)
    expect(metadata.get('general.alignment')).toEqual(metaU32(128)) // input untouched
  })

  it('readGguf grows its prefix past 1 MiB headers', async () => {
    const metadata = smallMetadata()
    metadata.set('big', metaArr(GgufType.STRING, Array.from({ length: 150_000 }, (_, i) => `token-${i}`)))
    const bytes = writeGguf({ metadata, tensors: smallTensors() })
    expect(bytes.byteLength).toBeGreaterThan(2 << 20)
    const file = await readGguf(bytesSource(bytes, 'big.gguf'))
    expect(file).toEqual(parse(bytes))
    expect((file.metadata.get('big')!.value as string[])[149_999]).toBe('token-149999')
  })

  it('the writer rejects values that do not fit their type', () => {
    for (const v of [metaU8(256), metaI8(1.5), metaU32(-1), metaU64(-1n), metaStr(5 as unknown as string), metaBool(1 as unknown as boolean)]) {
      expect(() => writeGguf({ metadata: new Map([['k', v]]), tensors: [] })).toThrow(/GGUF writer/)
    }
    expect(() => writeGguf({ alignment: 48, metadata: new Map(), tensors: [] })).toThrow(/power of two/)
  })
})

// ─── Metadata accessors ──────────────────────────────────────────────────────────────────

describe('metadata accessors', () => {
  const m = new Map<string, GgufValue>([
    ['s', metaStr('x')], ['n', metaU32(3)], ['f', metaF32(0.5)], ['b', metaU64(1n << 40n)], ['huge', metaU64(1n << 60n)],
    ['neg', metaI64(-7n)], ['t', metaBool(true)], ['a', metaArr(GgufType.INT32, [1])],
  ])

  it('returns typed values and converts safe bigints', () => {
    expect(getMeta(m, 's')).toEqual(metaStr('x'))
    expect(metaString(m, 's')).toBe('x')
    expect(metaNumber(m, 'n')).toBe(3)
    expect(metaNumber(m, 'f')).toBe(0.5)
    expect(metaNumber(m, 'b')).toBe(2 ** 40)
    expect(metaNumber(m, 'neg')).toBe(-7)
    expect(metaBoolOpt(m, 't')).toBe(true)
    expect(metaArray(m, 'a').value).toEqual([1])
    expect(metaNumberOpt(m, 'missing')).toBeUndefined()
    expect(metaStringOpt(m, 'missing')).toBeUndefined()
    expect(metaArrayOpt(m, 'missing')).toBeUndefined()
    expect(metaBoolOpt(m, 'missing')).toBeUndefined()
  })

  it('wrong types and missing keys are ModelFormatErrors naming key, expected and found', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => metaString(m, 'n', 'f.gguf'), /f\.gguf: metadata s?n has the wrong type \(expected STRING, found UINT32\)/],
      [() => metaNumber(m, 's'), /metadata s has the wrong type \(expected a number, found STRING\)/],
      [() => metaNumber(m, 't'), /found BOOL/],
      [() => metaNumber(m, 'huge'), /metadata huge is too large/],
      [() => metaArray(m, 'n'), /expected ARRAY, found UINT32/],
      [() => metaBoolOpt(m, 'a'), /expected BOOL, found ARRAY of INT32/],
      [() => metaString(m, 'missing'), /missing metadata key missing/],
      [() => metaNumber(m, 'missing'), /missing metadata key/],
      [() => metaArray(m, 'missing'), /missing metadata key/],
    ]
    for (const [f, pattern] of cases) {
      const err = catchError(f)
      expect(err).toBeInstanceOf(ModelFormatError)
      expect(err!.message).toMatch(pattern)
    }
  })
})

// ─── Malformed files ─────────────────────────────────────────────────────────────────────

describe('malformed files', () => {
  const base = smallFile()

  it('the small file is valid and ends at its last tensor', () => {
    const file = parse(base)
    const last = file.tensors[file.tensors.length - 1]
    expect(file.dataOffset + last.offset + last.byteSize).toBe(base.byteLength)
  })

  it('every truncation gives a ModelFormatError (and a prefix parse asks for more bytes)', () => {
    const { dataOffset } = parse(base)
    for (let cut = 0; cut < base.byteLength; cut++) {
      const err = catchError(() => parseGguf(base.subarray(0, cut), cut, 'test.gguf'))
      if (!(err instanceof ModelFormatError)) expect.fail(`cut at ${cut}: ${String(err)}`)
      expect(err.message).toMatch(/truncated|past the end|larger than/)
      expect(err.offset).toBeTypeOf('number')
      // The same prefix of the full-size file: the header needs more, or (past it) parses.
      const more = catchError(() => parseGguf(base.subarray(0, cut), base.byteLength, 'test.gguf'))
      if (cut < dataOffset - 31) {
        if (!(more instanceof NeedMoreBytes)) expect.fail(`prefix ${cut}: ${String(more)}`)
        expect(more.needed).toBeGreaterThan(cut)
        expect(more.needed).toBeLessThanOrEqual(base.byteLength)
      } else if (more !== undefined && !(more instanceof NeedMoreBytes)) {
        expect.fail(`prefix ${cut}: ${String(more)}`)
      }
    }
  })

  it('bad magic', () => {
    const b = base.slice()
    b[3] = 0x47
    expectFormatError(b, /bad magic.*expected "GGUF", found "GGUG"/, 0)
    expectFormatError(new Uint8Array(0), /truncated: magic/, 0)
  })

  it('version 1 is unsupported, 99 is a format error, big-endian is unsupported', () => {
    const v1 = base.slice()
    dv(v1).setUint32(4, 1, true)
    expect(() => parse(v1)).toThrow(UnsupportedFeatureError)
    expect(() => parse(v1)).toThrow(/version 1/)
    const v99 = base.slice()
    dv(v99).setUint32(4, 99, true)
    expectFormatError(v99, /unsupported GGUF version \(expected 2 or 3, found 99\)/, 4)
    const be = base.slice()
    dv(be).setUint32(4, 3, false)
    expect(() => parse(be)).toThrow(/big-endian/)
  })

  it('absurd tensor_count / kv_count', () => {
    const t = base.slice()
    dv(t).setBigUint64(8, 1n << 60n, true)
    expectFormatError(t, /tensor_count is larger than the rest of the file can hold.*found 1152921504606846976/, 8)
    const k = base.slice()
    dv(k).setBigUint64(16, 1n << 60n, true)
    expectFormatError(k, /kv_count is larger than the rest/, 16)
    const k2 = base.slice()
    dv(k2).setBigUint64(16, 0xffffffffffffffffn, true)
    expectFormatError(k2, /kv_count/, 16)
  })

  it('string length past the end (key and value)', () => {
    const key = base.slice()
    dv(key).setBigUint64(24, 1n << 40n, true) // length of the first key
    expectFormatError(key, /key of metadata entry 0 length is larger than the rest/, 24)
    const value = base.slice()
    const at = after(base, 'general.name') + 4 // past the value type
    dv(value).setBigUint64(at, BigInt(base.byteLength), true)
    expectFormatError(value, /metadata general\.name length is larger than the rest/, at)
  })

  it('absurd array count', () => {
    const b = base.slice()
    const at = after(base, 'list') + 8 // value type, item type
    dv(b).setBigUint64(at, 1n << 62n, true)
    expectFormatError(b, /metadata list count is larger than the rest.*>= 4 bytes each/, at)
  })

  it('unknown value type, unknown array item type, invalid bool', () => {
    const v = base.slice()
    dv(v).setUint32(after(base, 'flag'), 13, true)
    expectFormatError(v, /metadata flag: unknown value type \(expected a GGUF value type \(0\.\.12\), found 13\)/, after(base, 'flag'))
    const item = base.slice()
    dv(item).setUint32(after(base, 'list') + 4, 77, true)
    expectFormatError(item, /unknown array item type.*found 77/, after(base, 'list') + 4)
    const bool = base.slice()
    bool[after(base, 'flag') + 4] = 2
    expectFormatError(bool, /invalid bool \(expected 0 or 1, found 2\)/, after(base, 'flag') + 4)
  })

  it('duplicate keys and tensor names', () => {
    const k = base.slice()
    k[after(base, 'keyB') - 1] = 'A'.charCodeAt(0)
    expectFormatError(k, /duplicate metadata key.*"keyA"/, after(base, 'keyB') - 12)
    const t = base.slice()
    t[after(base, K_NAME) - 'k.weight'.length] = 'q'.charCodeAt(0)
    expectFormatError(t, /duplicate tensor name/, after(base, K_NAME) - K_NAME.length - 8)
  })

  it('n_dims 0 or 9', () => {
    for (const n of [0, 9]) {
      const b = base.slice()
      const f = tensorFields(base, Q_NAME)
      dv(b).setUint32(f.nDims, n, true)
      expectFormatError(b, new RegExp(`bad n_dims \\(expected 1\\.\\.4, found ${n}\\)`), f.nDims)
    }
  })

  it('dims product overflow, and dims implying more bytes than the file', () => {
    const f = tensorFields(base, 'output_norm.weight') // F32 [8] → make it 2-D by abusing dims
    const b = base.slice()
    const q = tensorFields(base, Q_NAME)
    dv(b).setBigUint64(q.dims, 1n << 32n, true)
    dv(b).setBigUint64(q.dims + 8, 1n << 32n, true)
    expectFormatError(b, /element count overflows/, q.dims + 8)
    const huge = base.slice()
    dv(huge).setBigUint64(q.dims, 1n << 60n, true)
    expectFormatError(huge, /element count overflows/, q.dims)
    const big = base.slice()
    dv(big).setBigUint64(f.dims, 1n << 40n, true)
    expectFormatError(big, /output_norm\.weight is larger than the file/, f.nDims)
  })

  it('tensor offset misaligned or data past the end of the file', () => {
    const f = tensorFields(base, 'output_norm.weight')
    const mis = base.slice()
    dv(mis).setBigUint64(f.offset, 96n + 64n + 4n, true)
    expectFormatError(mis, /misaligned data offset \(expected a multiple of 32, found 164\)/, f.offset)
    const past = base.slice()
    dv(past).setBigUint64(f.offset, 96n + 64n + 32n, true)
    expectFormatError(past, /output_norm\.weight: data runs past the end of the file/, f.offset)
    const far = base.slice()
    dv(far).setBigUint64(f.offset, 1n << 62n, true)
    expectFormatError(far, /data offset past the end/, f.offset)
  })

  it('tensor type ids: unknown 200, 37 (I8_S), 39 outside bitnet archs, 39 = TL2 inside', () => {
    const f = tensorFields(base, Q_NAME)
    const unknown = base.slice()
    dv(unknown).setUint32(f.type, 200, true)
    expectFormatError(unknown, /blk\.0\.attn_q\.weight has an unknown type id.*found 200/, f.type)
    const i8s = base.slice()
    dv(i8s).setUint32(f.type, 37, true)
    expectFormatError(i8s, /I8_S/, f.type)
    const q4k = base.slice()
    dv(q4k).setUint32(f.type, 12, true)
    expect(() => parse(q4k)).toThrow(UnsupportedFeatureError)
    expect(() => parse(q4k)).toThrow(/Q4_K/)

    const llama = smallFile('llama')
    const lf = tensorFields(llama, Q_NAME)
    dv(llama).setUint32(lf.type, 39, true)
    expect(() => parse(llama)).toThrow(UnsupportedFeatureError)
    expect(() => parse(llama)).toThrow(/MXFP4/)

    // TL2 [256, 4]: 64·4 = 256 bytes (already padded) + 32.
    const tl2 = writeGguf({ metadata: smallMetadata('bitnet'), tensors: [{ name: 'w', dims: [256, 4], typeId: 39, data: new Uint8Array(288) }] })
    expect(parse(tl2).tensors[0]).toMatchObject({ format: 'TL2', byteSize: 288 })
  })

  it('general.alignment must be a u32 power of two', () => {
    const b = writeGguf({ alignment: 64, metadata: smallMetadata(), tensors: smallTensors() })
    const at = after(b, 'general.alignment')
    const odd = b.slice()
    dv(odd).setUint32(at + 4, 48, true)
    expectFormatError(odd, /general\.alignment must be a power of two.*found 48/, at + 4)
    const zero = b.slice()
    dv(zero).setUint32(at + 4, 0, true)
    expectFormatError(zero, /power of two/)
    const typed = b.slice()
    dv(typed).setUint32(at, GgufType.INT32, true)
    expectFormatError(typed, /general\.alignment has the wrong type \(expected UINT32, found INT32\)/, at)
  })

  it('arrays nested too deeply', () => {
    let v = metaArr(GgufType.INT32, [1])
    for (let i = 0; i < 40; i++) v = metaArr(GgufType.ARRAY, [v])
    const b = writeGguf({ metadata: new Map([['deep', v]]), tensors: [] })
    expectFormatError(b, /nested too deeply/)
  })

  it('300 seeded random mutations: success or a typed error, never anything else', () => {
    const metadata = smallMetadata()
    metadata.set('nested', metaArr(GgufType.ARRAY, [metaArr(GgufType.UINT64, [1n, 2n]), metaArr(GgufType.STRING, ['z'])]))
    metadata.set('f64', metaF64(1.5))
    const valid = writeGguf({ metadata, tensors: smallTensors() })
    const { dataOffset } = parse(valid)
    const r = rng(2024)
    const outcomes = { ok: 0, format: 0, unsupported: 0 }
    for (let i = 0; i < 300; i++) {
      let b = valid.slice()
      const flips = 1 + Math.floor(r() * 4)
      for (let j = 0; j < flips; j++) {
        const at = Math.floor(r() * dataOffset) // the header is where parsing can go wrong
        b[at] = r() < 0.5 ? Math.floor(r() * 256) : b[at] ^ (1 << Math.floor(r() * 8))
      }
      if (r() < 0.3) b = b.subarray(0, Math.floor(r() * b.byteLength))
      let result: GgufFile | Error
      try {
        result = parse(b)
      } catch (e) {
        result = e as Error
      }
      if (result instanceof ModelFormatError) outcomes.format++
      else if (result instanceof UnsupportedFeatureError) outcomes.unsupported++
      else if (result instanceof Error) expect.fail(`mutation ${i}: ${result.name}: ${result.message}`)
      else outcomes.ok++
    }
    expect(outcomes.format).toBeGreaterThan(100)
  })
})
