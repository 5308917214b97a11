/**
 * Weight-format tests: block sizes (the TS stand-in for ggml's static_asserts), bit positions
 * of I2_S / TQ2_0 / TQ1_0 checked by hand, encode → decode round trips at awkward shapes,
 * I2_S ↔ TQ2_0 agreement, exhaustive f16/bf16 conversions, Q8_0/Q6_K accuracy, the type-id
 * resolution and tensor sizing rules.
 */
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../src/errors.js'
import {
  bf16ToF32, dequantizeBf16, dequantizeF16, dequantizeF32, f16ToF32, f32ToBf16, f32ToF16, quantizeBf16, quantizeF16, quantizeF32,
} from '../src/formats/float.js'
import * as i2s from '../src/formats/i2s.js'
import { decodeI2s, encodeI2s } from '../src/formats/i2s.js'
import {
  FORMATS, GGML_TYPE_NAMES, decodeTernary, dequantizeRows, resolveTensorType, tensorByteSize, type FormatName,
} from '../src/formats/index.js'
import * as q6k from '../src/formats/q6_k.js'
import { dequantizeQ6_K, quantizeQ6_K } from '../src/formats/q6_k.js'
import * as q80 from '../src/formats/q8_0.js'
import { dequantizeQ8_0, quantizeQ8_0 } from '../src/formats/q8_0.js'
import * as tq1 from '../src/formats/tq1_0.js'
import { decodeTq1_0, encodeTq1_0 } from '../src/formats/tq1_0.js'
import * as tq2 from '../src/formats/tq2_0.js'
import { decodeTq2_0, encodeTq2_0 } from '../src/formats/tq2_0.js'

/** Deterministic LCG in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
}

function randomCodes(n: number, seed: number, pZero = 0.4): Int8Array {
  const r = rng(seed)
  return Int8Array.from({ length: n }, () => {
    const u = r()
    return u < pZero ? 0 : u < (1 + pZero) / 2 ? -1 : 1
  })
}

/** Fast equality for large typed arrays (vitest's deep equality is slow on 10^5 elements). */
function expectSameCodes(actual: Int8Array, expected: Int8Array): void {
  expect(actual.length).toBe(expected.length)
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
  if (!a.equals(b)) expect(Array.from(actual)).toEqual(Array.from(expected)) // slow path, for the diff
}

/** Copies `bytes` to an odd offset inside a bigger buffer, to exercise unaligned reads. */
function unaligned(bytes: Uint8Array): Uint8Array {
  const buf = new Uint8Array(bytes.byteLength + 3)
  buf.set(bytes, 1)
  return buf.subarray(1, 1 + bytes.byteLength)
}

describe('traits table', () => {
  it('block sizes match each format file (static_assert stand-in)', () => {
    expect([i2s.BLOCK_ELEMS, i2s.BLOCK_BYTES]).toEqual([128, 32])
    expect([tq2.BLOCK_ELEMS, tq2.BLOCK_BYTES]).toEqual([256, 66])
    expect([tq1.BLOCK_ELEMS, tq1.BLOCK_BYTES]).toEqual([256, 54])
    expect([q80.BLOCK_ELEMS, q80.BLOCK_BYTES]).toEqual([32, 34])
    expect([q6k.BLOCK_ELEMS, q6k.BLOCK_BYTES]).toEqual([256, 210])
    expect([FORMATS.I2_S.blockElems, FORMATS.I2_S.blockBytes]).toEqual([i2s.BLOCK_ELEMS, i2s.BLOCK_BYTES])
    expect([FORMATS.TQ2_0.blockElems, FORMATS.TQ2_0.blockBytes]).toEqual([tq2.BLOCK_ELEMS, tq2.BLOCK_BYTES])
    expect([FORMATS.TQ1_0.blockElems, FORMATS.TQ1_0.blockBytes]).toEqual([tq1.BLOCK_ELEMS, tq1.BLOCK_BYTES])
    expect([FORMATS.Q8_0.blockElems, FORMATS.Q8_0.blockBytes]).toEqual([q80.BLOCK_ELEMS, q80.BLOCK_BYTES])
    expect([FORMATS.Q6_K.blockElems, FORMATS.Q6_K.blockBytes]).toEqual([q6k.BLOCK_ELEMS, q6k.BLOCK_BYTES])
  })

  it('type ids follow ggml and bitnet.cpp', () => {
    const ids = Object.fromEntries(Object.values(FORMATS).map((f) => [f.name, f.typeId]))
    expect(ids).toEqual({ F32: 0, F16: 1, Q8_0: 8, Q6_K: 14, BF16: 30, TQ1_0: 34, TQ2_0: 35, I2_S: 36, TL1: 38, TL2: 39, HF_PACKED: -1 })
    for (const f of Object.values(FORMATS)) {
      expect(f.ternary).toBe(['TQ1_0', 'TQ2_0', 'I2_S', 'TL1', 'TL2', 'HF_PACKED'].includes(f.name))
      if (f.origin === 'ggml') expect(GGML_TYPE_NAMES[f.typeId]).toBe(f.name)
    }
    expect(GGML_TYPE_NAMES.length).toBe(43)
  })
})

describe('resolveTensorType', () => {
  const ctx = (arch: string) => ({ arch, tensorName: 'blk.0.attn_q.weight', file: 'm.gguf', offset: 1234 })

  it('resolves the ids that collide between bitnet.cpp and upstream', () => {
    expect(resolveTensorType(36, ctx('bitnet-b1.58'))).toBe('I2_S')
    expect(resolveTensorType(36, ctx('llama'))).toBe('I2_S') // upstream's 36 never reached disk
    expect(resolveTensorType(38, ctx('bitnet'))).toBe('TL1')
    for (const arch of ['bitnet', 'bitnet-25', 'bitnet-b1.58']) expect(resolveTensorType(39, ctx(arch))).toBe('TL2')
    expect(() => resolveTensorType(39, ctx('llama'))).toThrow(UnsupportedFeatureError)
    expect(() => resolveTensorType(39, ctx('llama'))).toThrow(/MXFP4/)
  })

  it('37 (I8_S) is a format error naming the offset', () => {
    const err = catchError(() => resolveTensorType(37, ctx('bitnet-b1.58')))
    expect(err).toBeInstanceOf(ModelFormatError)
    expect((err as ModelFormatError).offset).toBe(1234)
    expect(err.message).toMatch(/I8_S/)
  })

  it('known-but-unsupported upstream ids name the type; unknown ids are format errors', () => {
    for (const [id, name] of [[2, 'Q4_0'], [12, 'Q4_K'], [16, 'IQ2_XXS'], [40, 'NVFP4'], [41, 'Q1_0'], [42, 'Q2_0']] as const) {
      const err = catchError(() => resolveTensorType(id, ctx('bitnet-b1.58')))
      expect(err).toBeInstanceOf(UnsupportedFeatureError)
      expect(err.message).toContain(name)
    }
    for (const id of [43, 200, 0xffffffff]) {
      const err = catchError(() => resolveTensorType(id, ctx('bitnet-b1.58')))
      expect(err).toBeInstanceOf(ModelFormatError)
      expect(err.message).toMatch(/unknown type id/)
    }
  })
})

describe('tensorByteSize', () => {
  it('I2_S and TL1 are M·K/4 + 32 (not from block traits)', () => {
    expect(tensorByteSize('I2_S', [2560, 2560])).toBe((2560 * 2560) / 4 + 32)
    expect(tensorByteSize('I2_S', [2560, 6912])).toBe((2560 * 6912) / 4 + 32)
    expect(tensorByteSize('TL1', [128, 384])).toBe((128 * 384) / 4 + 32)
  })

  it('TL2 uses the fork ggml_nbytes formula', () => {
    // (3200−256)·8640/3·5/8 + 256·8640/2·4/8 = 5299200 + 552960, already a multiple of 32, + 32.
    expect(tensorByteSize('TL2', [3200, 8640])).toBe(5299200 + 552960 + 32)
    // 1·(1000−256)/3 = 248 → ·5/8 = 155; + 64 = 219 → padded 224, + 32.
    expect(tensorByteSize('TL2', [1000, 1])).toBe(256)
    // ne0 < 256: C truncation, (−128·4/3 = −170)·5/8 = −106; + 256 = 150 → 160, + 32.
    expect(tensorByteSize('TL2', [128, 4])).toBe(192)
    expect(() => tensorByteSize('TL2', [128, 4, 2])).toThrow(ModelFormatError)
  })

  it('block formats need ne0 % blockElems == 0', () => {
    expect(tensorByteSize('F16', [128, 128256])).toBe(128 * 128256 * 2)
    expect(tensorByteSize('F32', [7])).toBe(28)
    expect(tensorByteSize('Q8_0', [64, 3])).toBe(2 * 3 * 34)
    expect(tensorByteSize('Q6_K', [512, 2])).toBe(4 * 210)
    expect(tensorByteSize('TQ2_0', [256, 5])).toBe(5 * 66)
    expect(tensorByteSize('TQ1_0', [2560, 2])).toBe(20 * 54)
    const err = catchError(() => tensorByteSize('Q8_0', [48, 2], { file: 'x.gguf', offset: 99 }))
    expect(err).toBeInstanceOf(ModelFormatError)
    expect(err.message).toMatch(/x\.gguf @ offset 99/)
    expect(tensorByteSize('Q6_K', [0, 5])).toBe(0)
  })
})

describe('I2_S', () => {
  it('puts element 0 at bits 7:6 of byte 0, element 32 at bits 5:4, element 1 at bits 7:6 of byte 1', () => {
    const codes = new Int8Array(256) // all 0 → code 01 → bytes 0x55
    codes[0] = 1 // code 10 at bits 7:6 of byte 0
    codes[32] = -1 // code 00 at bits 5:4 of byte 0
    codes[1] = 1 // code 10 at bits 7:6 of byte 1
    codes[127] = -1 // element p + 96, p = 31 → bits 1:0 of byte 31
    codes[128 + 64] = 1 // block 1, element p + 64, p = 0 → bits 3:2 of byte 32
    const bytes = encodeI2s(codes, 2, 128, 0.75)
    expect(bytes.byteLength).toBe(256 / 4 + 32)
    expect(bytes[0]).toBe(0b10_00_01_01)
    expect(bytes[1]).toBe(0b10_01_01_01)
    expect(bytes[2]).toBe(0x55)
    expect(bytes[31]).toBe(0b01_01_01_00)
    expect(bytes[32]).toBe(0b01_01_10_01)
    expect(new DataView(bytes.buffer).getFloat32(64, true)).toBe(0.75)
    expect([...bytes.subarray(68)]).toEqual(new Array(28).fill(0))
  })

  it('decodes code 3 to 0', () => {
    const bytes = encodeI2s(new Int8Array(128), 1, 128, 1)
    bytes[0] = 0b11_10_00_11 // elements 0, 32, 64, 96 = codes 3, 2, 0, 3
    const { codes } = decodeI2s(bytes, 1, 128)
    expect([codes[0], codes[32], codes[64], codes[96]]).toEqual([0, 1, -1, 0])
  })

  it('round trips at several shapes, from unaligned views', () => {
    for (const [rows, cols] of [[1, 128], [3, 128], [5, 256], [7, 384], [128, 128], [33, 2560], [2, 64], [1, 6912]]) {
      const codes = randomCodes(rows * cols, rows * 1000 + cols)
      const bytes = encodeI2s(codes, rows, cols, 0.0421)
      expect(bytes.byteLength).toBe(tensorByteSize('I2_S', [cols, rows]))
      const out = decodeI2s(unaligned(bytes), rows, cols)
      expectSameCodes(out.codes, codes)
      expect(out.scale).toBe(Math.fround(0.0421))
    }
  })

  it('rejects bad shapes, codes and short buffers with typed errors', () => {
    expect(() => encodeI2s(new Int8Array(96), 1, 96, 1)).toThrow(InvalidArgumentError)
    expect(() => encodeI2s(new Int8Array(128).fill(2), 1, 128, 1)).toThrow(InvalidArgumentError)
    expect(() => encodeI2s(new Int8Array(128), 1, 128, NaN)).toThrow(InvalidArgumentError)
    expect(() => decodeI2s(new Uint8Array(100), 1, 96)).toThrow(ModelFormatError)
    expect(() => decodeI2s(new Uint8Array(40), 1, 128)).toThrow(ModelFormatError)
    const bytes = encodeI2s(new Int8Array(128), 1, 128, 1)
    new DataView(bytes.buffer).setFloat32(32, Infinity, true)
    expect(() => decodeI2s(bytes, 1, 128, { file: 'f', offset: 1000 })).toThrow(/offset 1032/)
  })
})

describe('TQ2_0', () => {
  it('is LSB-first with the m, m+32, m+64, m+96 interleave and an fp16 d at byte 64', () => {
    const codes = new Int8Array(256)
    codes[0] = 1 // byte 0 bits 1:0 = 10
    codes[96] = -1 // byte 0 bits 7:6 = 00
    codes[33] = 1 // byte 1 bits 3:2 = 10
    codes[128] = -1 // second chunk: byte 32 bits 1:0 = 00
    const bytes = encodeTq2_0(codes, 1, 256, 0.5)
    expect(bytes.byteLength).toBe(66)
    expect(bytes[0]).toBe(0b00_01_01_10)
    expect(bytes[1]).toBe(0b01_01_10_01)
    expect(bytes[32]).toBe(0b01_01_01_00)
    expect(new DataView(bytes.buffer).getUint16(64, true)).toBe(0x3800) // 0.5 in fp16
  })

  it('round trips at several shapes', () => {
    for (const [rows, cols] of [[1, 256], [3, 256], [5, 512], [7, 2560], [2, 6912]]) {
      const codes = randomCodes(rows * cols, rows * 7 + cols)
      const out = decodeTq2_0(unaligned(encodeTq2_0(codes, rows, cols, 0.0421)), rows, cols)
      expectSameCodes(out.codes, codes)
      expect(out.scale).toBe(f16ToF32(f32ToF16(0.0421)))
    }
  })

  it('agrees with I2_S on the same codes (bit-order swap + scale insert)', () => {
    const [rows, cols] = [6, 2560]
    const codes = randomCodes(rows * cols, 5)
    const a = decodeI2s(encodeI2s(codes, rows, cols, 1.5), rows, cols)
    const b = decodeTq2_0(encodeTq2_0(codes, rows, cols, 1.5), rows, cols)
    expectSameCodes(b.codes, a.codes)
    expect(b.scale).toBe(a.scale)
    // Same bytes once each byte's four 2-bit fields are reversed, per 128-element chunk.
    const i2 = encodeI2s(codes, rows, cols, 1.5)
    const t2 = encodeTq2_0(codes, rows, cols, 1.5)
    const rev = (x: number) => ((x & 3) << 6) | ((x & 12) << 2) | ((x >> 2) & 12) | (x >> 6)
    for (let chunk = 0; chunk < (rows * cols) / 128; chunk++) {
      const block = chunk >> 1
      for (let m = 0; m < 32; m++) expect(t2[block * 66 + (chunk & 1) * 32 + m]).toBe(rev(i2[chunk * 32 + m]))
    }
  })

  it('requires one scale for all non-zero blocks', () => {
    const codes = randomCodes(512, 9, 0.2)
    const bytes = encodeTq2_0(codes, 1, 512, 0.25)
    new DataView(bytes.buffer).setUint16(66 + 64, f32ToF16(0.5), true)
    expect(() => decodeTq2_0(bytes, 1, 512)).toThrow(UnsupportedFeatureError)
    expect(() => decodeTq2_0(bytes, 1, 512)).toThrow(/per-block scales vary/)
  })

  it('writes d = 0 for all-zero blocks (ggml absmax) and decodes them as zeros', () => {
    const codes = new Int8Array(768)
    codes.set(randomCodes(256, 3), 512) // blocks 0, 1 zero; block 2 not
    const bytes = encodeTq2_0(codes, 1, 768, 0.25)
    const dv = new DataView(bytes.buffer)
    expect([dv.getUint16(64, true), dv.getUint16(66 + 64, true), dv.getUint16(132 + 64, true)]).toEqual([0, 0, f32ToF16(0.25)])
    expect(decodeTq2_0(bytes, 1, 768)).toEqual({ codes, scale: 0.25 })
    expect(decodeTq2_0(encodeTq2_0(new Int8Array(256), 1, 256, 3), 1, 256).scale).toBe(0)
    // Non-zero codes under d = 0 are zero weights: decoded as zero codes.
    const z = encodeTq2_0(randomCodes(256, 4), 1, 256, 1)
    new DataView(z.buffer).setUint16(64, 0, true)
    expect(decodeTq2_0(z, 1, 256).codes).toEqual(new Int8Array(256))
  })

  it('rejects code 3 (weight +2) and bad shapes with typed errors', () => {
    const bytes = encodeTq2_0(new Int8Array(256), 1, 256, 1)
    bytes[5] = 0xff
    const err = catchError(() => decodeTq2_0(bytes, 1, 256, { file: 'f', offset: 100 }))
    expect(err).toBeInstanceOf(ModelFormatError)
    expect((err as ModelFormatError).offset).toBe(105)
    expect(() => decodeTq2_0(new Uint8Array(66), 1, 128)).toThrow(ModelFormatError)
    expect(() => encodeTq2_0(new Int8Array(128), 1, 128, 1)).toThrow(InvalidArgumentError)
    expect(() => encodeTq2_0(new Int8Array(256), 1, 256, 1e6)).toThrow(InvalidArgumentError) // not an fp16
  })
})

describe('TQ1_0', () => {
  /** Independent dequantizer following the loop order of ggml's `dequantize_row_tq1_0`. */
  function ggmlOrderDecode(block: Uint8Array): number[] {
    const pow3 = [1, 3, 9, 27, 81, 243]
    const y: number[] = []
    const t = (q: number, n: number) => ((((q * pow3[n]) & 0xff) * 3) >> 8) - 1
    for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) y.push(t(block[m], n))
    for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) y.push(t(block[32 + m], n))
    for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) y.push(t(block[48 + j], n))
    return y
  }

  it('packs x[m + 32n] into qs[m], x[160 + m + 16n] into qs[32 + m], x[240 + j + 4n] into qh[j]', () => {
    const codes = randomCodes(256, 11)
    const bytes = encodeTq1_0(codes, 1, 256, 2)
    expect(bytes.byteLength).toBe(54)
    const digits = (idx: number[], times3: boolean) => {
      let q = 0
      for (const i of idx) q = q * 3 + codes[i] + 1
      if (times3) q *= 3
      return Math.ceil((q * 256) / 243)
    }
    for (let m = 0; m < 32; m++) expect(bytes[m]).toBe(digits([0, 1, 2, 3, 4].map((n) => m + 32 * n), false))
    for (let m = 0; m < 16; m++) expect(bytes[32 + m]).toBe(digits([0, 1, 2, 3, 4].map((n) => 160 + m + 16 * n), false))
    for (let j = 0; j < 4; j++) expect(bytes[48 + j]).toBe(digits([0, 1, 2, 3].map((n) => 240 + j + 4 * n), true))
    expect(new DataView(bytes.buffer).getUint16(52, true)).toBe(0x4000) // 2.0 in fp16
    // The decoder agrees with ggml's output order.
    expect(Array.from(decodeTq1_0(bytes, 1, 256).codes)).toEqual(ggmlOrderDecode(bytes))
  })

  it('every 5-trit (and 4-trit ×3) value survives the fixed-point store', () => {
    for (let q = 0; q < 243; q++) {
      const stored = Math.ceil((q * 256) / 243)
      for (let n = 0; n < 5; n++) {
        const expected = Math.floor(q / 3 ** (4 - n)) % 3
        expect((((stored * 3 ** n) & 0xff) * 3) >> 8).toBe(expected)
      }
    }
  })

  it('round trips at several shapes and agrees with TQ2_0', () => {
    for (const [rows, cols] of [[1, 256], [3, 256], [5, 512], [7, 2560], [2, 6912]]) {
      const codes = randomCodes(rows * cols, rows * 13 + cols)
      const out = decodeTq1_0(unaligned(encodeTq1_0(codes, rows, cols, 0.0421)), rows, cols)
      expectSameCodes(out.codes, codes)
      expect(out.scale).toBe(decodeTq2_0(encodeTq2_0(codes, rows, cols, 0.0421), rows, cols).scale)
    }
  })

  it('requires one scale for all non-zero blocks; zero blocks get d = 0', () => {
    const codes = randomCodes(512, 2, 0.2)
    const bytes = encodeTq1_0(codes, 1, 512, 0.25)
    expect(decodeTq1_0(bytes, 1, 512).scale).toBe(0.25)
    new DataView(bytes.buffer).setUint16(54 + 52, f32ToF16(0.125), true)
    expect(() => decodeTq1_0(bytes, 1, 512)).toThrow(UnsupportedFeatureError)
    const zeros = encodeTq1_0(new Int8Array(256), 1, 256, 0.25)
    expect(new DataView(zeros.buffer).getUint16(52, true)).toBe(0)
    expect(() => decodeTq1_0(new Uint8Array(53), 1, 256)).toThrow(ModelFormatError)
  })
})

describe('decodeTernary / dequantizeRows dispatch', () => {
  it('dispatches ternary formats and refuses the rest', () => {
    const codes = randomCodes(512, 1)
    expect(decodeTernary('I2_S', encodeI2s(codes, 2, 256, 1), 2, 256).codes).toEqual(codes)
    expect(decodeTernary('TQ2_0', encodeTq2_0(codes, 2, 256, 1), 2, 256).codes).toEqual(codes)
    expect(decodeTernary('TQ1_0', encodeTq1_0(codes, 2, 256, 1), 2, 256).codes).toEqual(codes)
    expect(() => decodeTernary('TL1', new Uint8Array(160), 2, 256)).toThrow(/TL1 needs a tiling/)
    expect(() => decodeTernary('HF_PACKED', new Uint8Array(128), 2, 256)).toThrow(InvalidArgumentError)
    expect(decodeTernary('F16', quantizeF16(Float32Array.from(codes, (c) => c * 0.5)), 2, 256)).toEqual({ codes, scale: 0.5 })
    expect(() => dequantizeRows('I2_S', new Uint8Array(160), 512)).toThrow(InvalidArgumentError)
  })

  it('dequantizes every float-like format', () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i) * 3)
    const cases: [FormatName, Uint8Array, number][] = [
      ['F32', quantizeF32(x), 0], ['F16', quantizeF16(x), 2e-3], ['BF16', quantizeBf16(x), 2e-2],
      ['Q8_0', quantizeQ8_0(x), 2e-2], ['Q6_K', quantizeQ6_K(x), 3 / 32],
    ]
    for (const [format, bytes, tol] of cases) {
      const y = dequantizeRows(format, unaligned(bytes), 256)
      for (let i = 0; i < 256; i++) expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(tol)
    }
  })
})

describe('f16 / bf16', () => {
  const f32 = new Float32Array(1)
  const u32 = new Uint32Array(f32.buffer)
  const bitsToF32 = (b: number) => ((u32[0] = b), f32[0])

  it('known f16 values', () => {
    expect(f16ToF32(0x3c00)).toBe(1)
    expect(f16ToF32(0xc000)).toBe(-2)
    expect(f16ToF32(0x7bff)).toBe(65504)
    expect(f16ToF32(0x0001)).toBe(2 ** -24)
    expect(f16ToF32(0x0400)).toBe(2 ** -14)
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true)
    expect(f16ToF32(0x7c00)).toBe(Infinity)
    expect(f16ToF32(0xfc00)).toBe(-Infinity)
    expect(f16ToF32(0x7e00)).toBeNaN()
    expect(f32ToF16(65520)).toBe(0x7c00) // halfway to 65536: ties to even = Inf
    expect(f32ToF16(65519)).toBe(0x7bff)
    expect(f32ToF16(1e10)).toBe(0x7c00)
    expect(f32ToF16(-1e-10)).toBe(0x8000)
    expect(f32ToF16(2 ** -25)).toBe(0) // exactly half the smallest subnormal: ties to even = 0
    expect(f32ToF16(3 * 2 ** -25)).toBe(2) // 1.5 ulp: ties to even = 2
    expect(f32ToF16(NaN) & 0x7c00).toBe(0x7c00)
    expect(f32ToF16(NaN) & 0x3ff).not.toBe(0)
  })

  it('f16 → f32 → f16 is the identity on all 65536 patterns (NaN stays NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16ToF32(h)
      if (Number.isNaN(x)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true)
        expect(Number.isNaN(f16ToF32(f32ToF16(x)))).toBe(true)
      } else if (f32ToF16(x) !== h) {
        expect.fail(`f16 0x${h.toString(16)} → ${x} → 0x${f32ToF16(x).toString(16)}`)
      }
    }
  })

  it('f32 → f16 rounds to nearest even at every midpoint and its f32 neighbours', () => {
    for (const sign of [0, 0x8000]) {
      for (let h = 0; h < 0x7c00; h++) {
        const lo = f16ToF32(h | sign)
        const hi = f16ToF32((h + 1) | sign) // h + 1 = 0x7c00 → Inf: the midpoint is 65520
        const mid = h === 0x7bff ? (sign ? -65520 : 65520) : (lo + hi) / 2 // exact in f32
        f32[0] = mid
        const m = u32[0]
        const even = h & 1 ? (h + 1) | sign : h | sign
        if (f32ToF16(mid) !== even) expect.fail(`midpoint after 0x${h.toString(16)}`)
        if (f32ToF16(bitsToF32(m - 1)) !== (h | sign)) expect.fail(`below midpoint after 0x${h.toString(16)}`)
        if (f32ToF16(bitsToF32(m + 1)) !== ((h + 1) | sign)) expect.fail(`above midpoint after 0x${h.toString(16)}`)
      }
    }
  })

  it('dequantizeF16 matches f16ToF32 on all patterns, from an unaligned view', () => {
    const bytes = new Uint8Array(65536 * 2)
    const dv = new DataView(bytes.buffer)
    for (let h = 0; h < 65536; h++) dv.setUint16(2 * h, h, true)
    for (const view of [bytes, unaligned(bytes)]) {
      const out = dequantizeF16(view, 65536)
      for (let h = 0; h < 65536; h++) {
        const x = f16ToF32(h)
        if (!Object.is(out[h], Math.fround(x)) && !(Number.isNaN(x) && Number.isNaN(out[h]))) expect.fail(`0x${h.toString(16)}`)
      }
    }
  })

  it('bf16 ↔ f32 on all 65536 patterns, with RNE ties', () => {
    const bytes = new Uint8Array(65536 * 2)
    const dv = new DataView(bytes.buffer)
    for (let h = 0; h < 65536; h++) dv.setUint16(2 * h, h, true)
    const table = dequantizeBf16(unaligned(bytes), 65536)
    for (let h = 0; h < 65536; h++) {
      const x = bf16ToF32(h)
      if (!Object.is(table[h], x) && !(Number.isNaN(x) && Number.isNaN(table[h]))) expect.fail(`table 0x${h.toString(16)}`)
      if (Number.isNaN(x)) {
        if (!Number.isNaN(bf16ToF32(f32ToBf16(x)))) expect.fail(`NaN 0x${h.toString(16)}`)
      } else if (f32ToBf16(x) !== h) expect.fail(`bf16 0x${h.toString(16)}`)
    }
    expect(f32ToBf16(bitsToF32(0x3f808000))).toBe(0x3f80) // tie, even stays
    expect(f32ToBf16(bitsToF32(0x3f818000))).toBe(0x3f82) // tie, odd rounds up
    expect(f32ToBf16(bitsToF32(0x3f808001))).toBe(0x3f81)
    expect(f32ToBf16(bitsToF32(0x7f7fffff))).toBe(0x7f80) // rounds to Inf
  })

  it('F32 helpers round trip through unaligned views', () => {
    const x = Float32Array.from([1, -2.5, 3e-40, Infinity, -0])
    expect(dequantizeF32(unaligned(quantizeF32(x)), 5)).toEqual(x)
    expect(() => dequantizeF32(new Uint8Array(7), 2)).toThrow(InvalidArgumentError)
  })
})

describe('Q8_0 / Q6_K', () => {
  const signal = (n: number, seed: number) => {
    const r = rng(seed)
    return Float32Array.from({ length: n }, (_, i) => 0.1 + 2 * Math.cos(i + seed) + (r() - 0.5) * 0.3) // ggml test-quantize-fns style
  }
  const rmse = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length)

  it('Q8_0: layout and small round-trip error', () => {
    const x = new Float32Array(32)
    x[0] = 127
    x[1] = -63.5 // ties away from zero → -64
    x[2] = 1
    const b = quantizeQ8_0(x)
    expect(new DataView(b.buffer).getUint16(0, true)).toBe(0x3c00) // d = 127/127 = 1
    expect(new Int8Array(b.buffer, 2, 3)).toEqual(new Int8Array([127, -64, 1]))
    const s = signal(4096, 1)
    expect(rmse(dequantizeQ8_0(unaligned(quantizeQ8_0(s)), 4096), s)).toBeLessThan(0.01)
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(InvalidArgumentError)
  })

  it('Q6_K: dequantize matches a ggml-order reference on random bytes', () => {
    const r = rng(77)
    const bytes = Uint8Array.from({ length: 3 * 210 }, () => Math.floor(r() * 256))
    for (let b = 0; b < 3; b++) bytes.set([0x00, 0x30], b * 210 + 208) // d = 0.125 (finite)
    const ref: number[] = []
    const dv = new DataView(bytes.buffer)
    for (let b = 0; b < 3; b++) {
      const d = f16ToF32(dv.getUint16(b * 210 + 208, true))
      let ql = b * 210, qh = b * 210 + 128, sc = b * 210 + 192
      for (let n = 0; n < 256; n += 128) {
        const y: number[] = new Array(128)
        for (let l = 0; l < 32; l++) {
          const is = l >> 4
          const q1 = ((bytes[ql + l] & 0xf) | (((bytes[qh + l] >> 0) & 3) << 4)) - 32
          const q2 = ((bytes[ql + l + 32] & 0xf) | (((bytes[qh + l] >> 2) & 3) << 4)) - 32
          const q3 = ((bytes[ql + l] >> 4) | (((bytes[qh + l] >> 4) & 3) << 4)) - 32
          const q4 = ((bytes[ql + l + 32] >> 4) | (((bytes[qh + l] >> 6) & 3) << 4)) - 32
          y[l] = Math.fround(Math.fround(d * dv.getInt8(sc + is)) * q1)
          y[l + 32] = Math.fround(Math.fround(d * dv.getInt8(sc + is + 2)) * q2)
          y[l + 64] = Math.fround(Math.fround(d * dv.getInt8(sc + is + 4)) * q3)
          y[l + 96] = Math.fround(Math.fround(d * dv.getInt8(sc + is + 6)) * q4)
        }
        ref.push(...y)
        ql += 64; qh += 32; sc += 8
      }
    }
    expect(Array.from(dequantizeQ6_K(unaligned(bytes), 768))).toEqual(ref)
  })

  it('Q6_K: small round-trip error, zero blocks stay zero', () => {
    const s = signal(4096, 2)
    const y = dequantizeQ6_K(quantizeQ6_K(s), 4096)
    expect(rmse(y, s)).toBeLessThan(0.03)
    const amax = s.reduce((m, v) => Math.max(m, Math.abs(v)), 0)
    for (let i = 0; i < s.length; i++) expect(Math.abs(y[i] - s[i])).toBeLessThan(amax / 32)
    expect(dequantizeQ6_K(quantizeQ6_K(new Float32Array(256)), 256)).toEqual(new Float32Array(256))
    expect(() => quantizeQ6_K(new Float32Array(100))).toThrow(InvalidArgumentError)
  })
})

function catchError(f: () => unknown): Error {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  throw new Error('expected an error')
}
