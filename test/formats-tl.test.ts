// TL1 / TL2 layouts (bit positions worked out by hand from the layout in src/formats/tl.ts),
// round trips at shapes and tilings of every kind, tiling lookup, ternarization, the HF packed
// layout and the safetensors header checks.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../src/errors.js'
import { decodeHfPacked } from '../src/formats/hf-packed.js'
import { decodeTernary, tensorByteSize } from '../src/formats/index.js'
import { ternarize } from '../src/formats/ternarize.js'
import { decodeTl, defaultTlTiling, encodeTl, findTlTiling, TL_PRESETS, type TlTiling } from '../src/formats/tl.js'
import { bytesSource } from '../src/io/source.js'
import { mulberry32 } from '../src/model/synthetic.js'
import { readSafetensors } from '../src/safetensors/reader.js'

function randomCodes(n: number, seed: number): Int8Array {
  const r = mulberry32(seed)
  return Int8Array.from({ length: n }, () => Math.floor(r() * 3) - 1)
}

function roundTrip(format: 'TL1' | 'TL2', rows: number, cols: number, t: TlTiling, seed = 1): void {
  const codes = randomCodes(rows * cols, seed)
  const size = format === 'TL1' ? (rows * cols) / 4 + 32 : tensorByteSize('TL2', [cols, rows])
  const bytes = encodeTl(format, codes, rows, cols, 0.75, t, size)
  expect(bytes.byteLength).toBe(size)
  const d = decodeTl(format, bytes, rows, cols, t, size)
  expect(d.scale).toBe(0.75)
  expect(Buffer.compare(Buffer.from(d.codes.buffer), Buffer.from(codes.buffer))).toBe(0)
}

describe('TL1', () => {
  it('one weight lands where the layout says (hand-computed)', () => {
    // 32 × 16, BM 32, BK 16, bm 32 (by 8): byte ((ks·2 + rg)·2 + pp)·16 + i, high nibble = pair 2·pp + 4·ks.
    // Weight (row 17, col 13) = +1: pair 6 (cols 12, 13): ks 1, pp 1, rg 1, i 1 → byte 113, high nibble
    // idx = 3·0 + 1 + 4 = 5; every other pair is (0, 0) → idx 4.
    const codes = new Int8Array(32 * 16)
    codes[17 * 16 + 13] = 1
    const t = { BM: 32, BK: 16, bm: 32 }
    const bytes = encodeTl('TL1', codes, 32, 16, 1, t, 32 * 16 / 4 + 32)
    const expected = new Uint8Array(128).fill(0x44)
    expected[113] = 0x54
    expect(Array.from(bytes.subarray(0, 128))).toEqual(Array.from(expected))
  })

  it.each([
    [64, 256, { BM: 64, BK: 128, bm: 32 }], [128, 512, { BM: 128, BK: 64, bm: 64 }],
    [96, 384, { BM: 32, BK: 128, bm: 32 }], [320, 64, { BM: 320, BK: 32, bm: 64 }],
  ])('round trip %i × %i', (rows, cols, t) => roundTrip('TL1', rows, cols, t))

  it('rejects a bad index and a tiling that does not fit, with typed errors', () => {
    const t = { BM: 32, BK: 16, bm: 32 }
    const bytes = new Uint8Array(32 * 16 / 4 + 32).fill(0x44)
    bytes[5] = 0x49 // idx 9
    expect(() => decodeTl('TL1', bytes, 32, 16, t, bytes.byteLength, { file: 'x.gguf', offset: 100 })).toThrow(/x.gguf @ offset 105: TL1 pair index out of range/)
    expect(() => decodeTl('TL1', bytes, 32, 16, { BM: 48, BK: 16, bm: 32 }, bytes.byteLength)).toThrow(ModelFormatError)
    expect(() => encodeTl('TL1', new Int8Array(48 * 16), 48, 16, 1, { BM: 48, BK: 16, bm: 32 }, 1000)).toThrow(InvalidArgumentError)
  })
})

describe('TL2', () => {
  it('one triple lands where the layout says (hand-computed)', () => {
    // 32 × 24, BM 32, BK 24 (three_k 24, two_k 0), bm 32 (by 6). Triple 5 of row 20 = cols 15..17 =
    // (−1, 0, 0): v = −9. Index: slice ks 2, low nibble; row 20 → quarter 2 → position 1·8 + 4 = 12
    // → byte 2·32 + 12 = 76 = 0x09. Sign: j 5, row 20 → bit i = 2·5 + 1 = 11 of word 20 % 16 = 4:
    // u16 0x0010 at sign byte 2·4 → byte 128 + 8 = 136 = 0x10.
    const codes = new Int8Array(32 * 24)
    codes[20 * 24 + 15] = -1
    const size = tensorByteSize('TL2', [24, 32])
    const bytes = encodeTl('TL2', codes, 32, 24, 1, { BM: 32, BK: 24, bm: 32 }, size)
    const expected = new Uint8Array(160)
    expected[76] = 0x09
    expected[136] = 0x10
    expect(Array.from(bytes.subarray(0, 160))).toEqual(Array.from(expected))
  })

  it('byte size follows the fork (C truncation also for K < 256)', () => {
    expect(tensorByteSize('TL2', [128, 128])).toBe(4832)
    expect(tensorByteSize('TL2', [3200, 8640])).toBe(Math.ceil(((3200 - 256) * 8640 / 3 * 5 / 8 + 256 * 8640 / 4) / 32) * 32 + 32)
  })

  it.each([
    [64, 384, { BM: 64, BK: 96, bm: 32 }], [32, 128, { BM: 32, BK: 96, bm: 32 }],
    [96, 1536, { BM: 96, BK: 192, bm: 32 }], [64, 4096, { BM: 64, BK: 96, bm: 32 }], [160, 200, { BM: 160, BK: 168, bm: 32 }],
  ])('round trip %i × %i (three + two parts)', (rows, cols, t) => roundTrip('TL2', rows, cols, t))

  it('rejects a triple magnitude above 13', () => {
    const size = tensorByteSize('TL2', [24, 32])
    const bytes = new Uint8Array(size)
    bytes[3] = 0xe0
    expect(() => decodeTl('TL2', bytes, 32, 24, { BM: 32, BK: 24, bm: 32 }, size)).toThrow(/triple magnitude out of range/)
  })
})

describe('TL tiling', () => {
  it('recorded tiling first, then bitnet.cpp presets, else a typed error', () => {
    expect(findTlTiling('TL1', 1536, 4096)).toEqual({ BM: 256, BK: 128, bm: 32 })
    expect(findTlTiling('TL2', 3200, 8640)).toEqual({ BM: 160, BK: 96, bm: 32 })
    expect(findTlTiling('TL1', 128, 384, [128, 384, 64, 128, 32])).toEqual({ BM: 64, BK: 128, bm: 32 })
    expect(() => findTlTiling('TL1', 128, 384)).toThrow(UnsupportedFeatureError)
  })

  it('convert writes the preset for preset shapes and a valid tiling for any 32-row multiple', () => {
    for (const format of ['TL1', 'TL2'] as const) {
      for (const [M, K] of TL_PRESETS[format]) expect(defaultTlTiling(format, M, K)).toEqual(findTlTiling(format, M, K))
      // tiny-dev's shapes (all its projections) and a few odd ones round-trip with their default
      for (const [M, K] of [[32, 128], [384, 128], [128, 384], [96, 2560], [64, 200]]) roundTrip(format, M, K, defaultTlTiling(format, M, K), M + K)
    }
    expect(() => defaultTlTiling('TL1', 48, 128)).toThrow(InvalidArgumentError)
  })
})

describe('ternarize (F32/F16/BF16 projections)', () => {
  it('latent weights: absmean γ, round half to even, clip', () => {
    // mean |w| = (0.1 + 0.2 + 0.25 + 3.45) / 4 = 1; w/γ = 0.1 → 0, −0.2 → 0, 0.25 → 0, 3.45 → 1 (clipped)
    const w = Float32Array.from([0.1, -0.2, 0.25, 3.45])
    const r = ternarize(w)
    expect(Array.from(r.codes)).toEqual([0, 0, 0, 1])
    expect(r.scale).toBeCloseTo(1, 6)
    // exactly ±0.5·γ rounds to 0 (half to even)
    expect(Array.from(ternarize(Float32Array.from([0.5, -0.5, 1.5, -1.5])).codes)).toEqual([0, 0, 1, -1])
  })

  it('ternary-valued weights keep their own scale (what quantize_i2_s takes)', () => {
    const r = ternarize(Float32Array.from([0.25, 0, -0.25, 0.25, 0, 0]))
    expect(Array.from(r.codes)).toEqual([1, 0, -1, 1, 0, 0])
    expect(r.scale).toBe(0.25)
  })

  it('decodeTernary ternarizes float formats and refuses Q6_K', () => {
    const bytes = new Uint8Array(Float32Array.from([0.5, -0.5, 0, 0.5]).buffer)
    expect(decodeTernary('F32', bytes, 1, 4)).toEqual({ codes: Int8Array.from([1, -1, 0, 1]), scale: 0.5 })
    expect(() => decodeTernary('Q6_K', new Uint8Array(210), 1, 256)).toThrow(InvalidArgumentError)
  })
})

describe('Hugging Face packed U8 weights', () => {
  it('field i of packed row r is weight row i·(out/4) + r, LSB first', () => {
    // 8 × 2 matrix → packed [2, 2]. Byte (r 1, c 0) = fields (f0 = 2, f1 = 0, f2 = 1, f3 = 1) =
    // rows 1, 3, 5, 7 of column 0 = +1, −1, 0, 0.
    const packed = Uint8Array.from([0x55, 0x55, 0x52, 0x55])
    const { codes } = decodeHfPacked(packed, 8, 2, 2)
    const col0 = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => codes[r * 2])
    expect(col0).toEqual([0, 1, 0, -1, 0, 0, 0, 0])
    expect(() => decodeHfPacked(Uint8Array.from([0xff, 0x55, 0x55, 0x55]), 8, 2, 2)).toThrow(/code 3/)
  })
})

describe('safetensors header', () => {
  const file = (header: unknown, data = 0) => {
    const json = new TextEncoder().encode(JSON.stringify(header))
    const out = new Uint8Array(8 + json.byteLength + data)
    new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true)
    out.set(json, 8)
    return bytesSource(out, 'm.safetensors')
  }

  it('reads a valid header', async () => {
    const st = await readSafetensors(file({ a: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 12] }, __metadata__: { format: 'pt' } }, 12))
    expect(st.tensors.get('a')).toMatchObject({ dtype: 'BF16', shape: [2, 3], byteSize: 12 })
    expect(st.metadata).toEqual({ format: 'pt' })
  })

  it.each([
    ['an unknown dtype', { a: { dtype: 'F4', shape: [1], data_offsets: [0, 1] } }, /dtype one of/],
    ['a size that disagrees with the shape', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, /2 × 4 bytes/],
    ['offsets past the data', { a: { dtype: 'U8', shape: [64], data_offsets: [0, 64] } }, /data_offsets/],
    ['a bad shape', { a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, /shape/],
  ])('rejects %s with a ModelFormatError', async (_, header, msg) => {
    const err = await readSafetensors(file(header, 8)).catch((e) => e)
    expect(err).toBeInstanceOf(ModelFormatError)
    expect(err.message).toMatch(msg)
  })

  it('rejects a header length past the file and non-JSON', async () => {
    const big = new Uint8Array(16)
    new DataView(big.buffer).setBigUint64(0, 1000n, true)
    await expect(readSafetensors(bytesSource(big, 'x'))).rejects.toThrow(/header length/)
    const junk = new Uint8Array(16)
    new DataView(junk.buffer).setBigUint64(0, 4n, true)
    junk.set([0x7b, 0x7b, 0x7b, 0x7b], 8)
    await expect(readSafetensors(bytesSource(junk, 'x'))).rejects.toThrow(/not valid JSON/)
  })
})
