// The fuzz run of `npm test`: ~20k inputs (mutation fuzzing of the real tiny-dev files and
// their mini copies, plus fast-check properties of the GGUF reader/writer, the weight-format
// decoders and the config validator), then every saved crashing input again.
// Every outcome must be a success or a typed BitnetError. `npm run fuzz -- --runs N` runs the
// same file with N inputs (FUZZ_RUNS) and a chosen seed (FUZZ_SEED).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import fc from 'fast-check'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { parseGguf, readGguf } from '../../src/gguf/reader.js'
import { bytesSource } from '../../src/io/source.js'
import { tokenizerFromGguf, tokenizerFromHf } from '../../src/tokenizer/tokenizer.js'
import { GgufType, type GgufArray, type GgufValue } from '../../src/gguf/types.js'
import { writeGguf, type GgufWriteTensor } from '../../src/gguf/writer.js'
import { decodeTernary, dequantizeRows, FORMATS, resolveTensorType, tensorByteSize, type FormatName } from '../../src/formats/index.js'
import { validateConfig, type ModelConfig } from '../../src/model/config.js'
import { classify, feed, FIXTURES_DIR, fuzz, newStats, record, totals, type FuzzStats } from './harness.js'
import { loadSeeds } from './seeds.js'
import { makeTargets, type Target } from './targets.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000) // mutation inputs; the properties add RUNS / 8 × 8
const SEED = Number(process.env.FUZZ_SEED ?? 1)
const PROPERTY_RUNS = Math.max(100, Math.round(RUNS / 8))
const REPORT = process.env.FUZZ_REPORT
/** Time allowed per property test (they scale with RUNS; not a speed check). */
const PROPERTY_TIMEOUT = Math.max(120_000, RUNS * 10)

let targets: Target[]
const stats = newStats()

beforeAll(async () => {
  targets = makeTargets(await loadSeeds())
}, 120_000)

/** Runs `fn` for one input of a property and records its outcome like the mutation fuzzer does. */
function recorded(name: string, fn: () => void): string {
  let outcome = 'ok'
  const t0 = performance.now()
  try { fn() } catch (e) { outcome = classify(e) }
  record(stats, name, outcome, performance.now() - t0)
  return outcome
}

const okOutcome = (o: string) => !o.startsWith('CRASH')

describe('fuzz: every input gives a result or a typed BitnetError', () => {
  it(`mutation fuzzing of model, tokenizer and template files (${RUNS} inputs, seed ${SEED})`, async () => {
    // @huggingface/tokenizers logs malformed patterns with console.warn before we reject them.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await fuzz(targets, RUNS, SEED, stats)
    } finally {
      warn.mockRestore()
    }
    expect(stats.crashes.map((c) => `${c.target}: ${c.outcome} (${c.fixture})\n${c.message}`)).toEqual([])
  }, Math.max(600_000, RUNS * 50))

  // Random GGUF headers built from typed values round-trip exactly through writer and reader.
  it('GGUF: written headers read back identically; truncations and bit flips are typed errors', () => {
    const scalar = fc.oneof(
      fc.record({ type: fc.constant(GgufType.UINT32), value: fc.nat({ max: 0xffffffff }) }),
      fc.record({ type: fc.constant(GgufType.INT8), value: fc.integer({ min: -128, max: 127 }) }),
      fc.record({ type: fc.constant(GgufType.FLOAT64), value: fc.double({ noNaN: true }) }),
      fc.record({ type: fc.constant(GgufType.UINT64), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
      fc.record({ type: fc.constant(GgufType.STRING), value: fc.string({ maxLength: 40 }) }),
      fc.record({ type: fc.constant(GgufType.BOOL), value: fc.boolean() }),
    ) as fc.Arbitrary<GgufValue>
    const array = fc.oneof(
      fc.array(fc.string({ maxLength: 8 }), { maxLength: 20 }).map((v): GgufArray => ({ type: GgufType.ARRAY, itemType: GgufType.STRING, value: v })),
      fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 20 }).map((v): GgufArray => ({ type: GgufType.ARRAY, itemType: GgufType.INT32, value: v })),
    )
    const tensor = fc.record({
      name: fc.string({ minLength: 1, maxLength: 16 }),
      dims: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 4 }).map((d) => [32, ...d.slice(1)]),
      typeId: fc.constantFrom(0, 1, 8, 30),
    })
    const file = fc.record({
      metadata: fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.oneof(scalar, array)), { selector: ([k]) => k, maxLength: 12 }),
      tensors: fc.uniqueArray(tensor, { selector: (t) => t.name, maxLength: 6 }),
      cut: fc.double({ min: 0, max: 1, noNaN: true }),
      flip: fc.nat(),
    })
    fc.assert(fc.property(file, ({ metadata, tensors, cut, flip }) => {
      const md = new Map(metadata.filter(([k]) => k !== 'general.alignment'))
      const ts: GgufWriteTensor[] = tensors.map((t) => {
        const format = resolveTensorType(t.typeId, { arch: '', tensorName: t.name, file: '', offset: 0 })
        return { ...t, data: new Uint8Array(tensorByteSize(format, t.dims)) }
      })
      const bytes = writeGguf({ metadata: md, tensors: ts })
      const back = parseGguf(bytes, bytes.length, 'prop.gguf')
      expect(back.metadata).toEqual(md)
      expect(back.tensors.map((t) => [t.name, t.dims, t.typeId])).toEqual(ts.map((t) => [t.name, t.dims, t.typeId]))
      const cutAt = Math.floor(cut * bytes.length)
      expect(recorded('gguf-property', () => parseGguf(bytes.subarray(0, cutAt), cutAt, 'cut.gguf'))).toSatisfy(okOutcome)
      const flipped = bytes.slice()
      flipped[flip % flipped.length] ^= 1 << (flip % 8)
      expect(recorded('gguf-property', () => parseGguf(flipped, flipped.length, 'flip.gguf'))).toSatisfy(okOutcome)
    }), { numRuns: PROPERTY_RUNS, seed: SEED })
  }, PROPERTY_TIMEOUT)

  it('weight-format decoders: any bytes and any shape give values of the right size or a typed error', () => {
    const names = Object.keys(FORMATS) as FormatName[]
    const wild = fc.oneof(fc.integer({ min: -4, max: 1024 }), fc.constantFrom(2 ** 31, 2 ** 53, Infinity, NaN, 1.5))
    // Mostly plausible shapes with a buffer of about the right size (so decoding runs), some wild ones.
    const rowsArb = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 4 }), weight: 3 }, { arbitrary: wild, weight: 1 })
    const colsArb = fc.oneof({ arbitrary: fc.constantFrom(32, 128, 256, 512), weight: 3 }, { arbitrary: wild, weight: 1 })
    fc.assert(fc.property(fc.constantFrom(...names), rowsArb, colsArb, fc.integer({ min: -3, max: 3 }), fc.nat(), (format, rows, cols, delta, seed) => {
      let size = 64
      try { size = tensorByteSize(format, [cols, rows]) } catch { /* a wild shape: any size */ }
      const bytes = new Uint8Array(Math.max(0, Math.min(1 << 20, size + delta)))
      for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 2654435761 + i * 40503) >>> 13
      const outcome = recorded('format-decoders', () => {
        if (FORMATS[format].ternary) {
          const { codes } = decodeTernary(format, bytes, rows, cols)
          expect(codes.length).toBe(rows * cols + 0) // + 0: -0 elements are 0
        } else {
          expect(dequantizeRows(format, bytes, rows * cols).length).toBe(rows * cols + 0)
        }
      })
      expect(outcome).toSatisfy(okOutcome)
    }), { numRuns: PROPERTY_RUNS * 2, seed: SEED })
  }, PROPERTY_TIMEOUT)

  it('config validation: any hyperparameters are accepted or named in a typed error', () => {
    // Mostly small powers of two (often a valid shape), sometimes anything.
    const num = fc.oneof({ arbitrary: fc.constantFrom(1, 2, 4, 8, 64), weight: 6 },
      { arbitrary: fc.oneof(fc.integer({ min: -2, max: 5000 }), fc.constantFrom(0.5, NaN, Infinity, -Infinity, 2 ** 40, 1e-30)), weight: 1 })
    const config = fc.record({
      arch: fc.constant('bitnet-b1.58'), nEmbd: num, nFf: num, nLayer: num, nHead: num, nHeadKv: num, headDim: num, nRot: num,
      ropeTheta: num, rope: fc.constantFrom('neox', 'norm'), normEps: num, vocabSize: num, contextLength: num, activation: fc.constantFrom('relu2', 'silu'),
    }) as fc.Arbitrary<ModelConfig>
    fc.assert(fc.property(config, (c) => {
      expect(recorded('config-validate', () => validateConfig(c, 'prop.gguf'))).toSatisfy(okOutcome)
    }), { numRuns: PROPERTY_RUNS, seed: SEED })
  }, PROPERTY_TIMEOUT)

  it('tokenizers: decode(encode(text)) gives the text back, for any text', async () => {
    const seeds = await loadSeeds()
    const hf = tokenizerFromHf(seeds.miniTokenizerJson, seeds.tokenizerConfig)
    const gguf = tokenizerFromGguf((await readGguf(bytesSource(seeds.miniGguf))).metadata)
    const spm = tokenizerFromGguf((await readGguf(bytesSource(seeds.syntheticGgufs[2]))).metadata)
    const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.toWellFormed()),
      fc.array(fc.constantFrom(' ', '\n', 'a', 'é', '🦙', '<|eot_id|>', '<s>', '12', "'s"), { maxLength: 12 }).map((a) => a.join('')))
    fc.assert(fc.property(text, (s) => {
      // SentencePiece writes spaces as '▁' (U+2581), so a literal '▁' decodes as a space (as in llama.cpp).
      for (const tok of s.includes('\u2581') ? [hf, gguf] : [hf, gguf, spm]) {
        let back = ''
        expect(recorded('tokenizer-roundtrip', () => { back = tok.decode(tok.encode(s, { addBos: false })) })).toBe('ok')
        expect(back).toBe(s)
      }
    }), { numRuns: PROPERTY_RUNS, seed: SEED })
  }, PROPERTY_TIMEOUT)

  it('every saved crashing input (test/fuzz/fixtures) now gives a typed outcome', async () => {
    let files: string[] = []
    try { files = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.bin')) } catch { /* no fixtures yet */ }
    for (const f of files) {
      const target = targets.find((t) => f.startsWith(`${t.name}-`))
      expect(target, `fixture ${f} names no target`).toBeDefined()
      const outcome = await feed(target!, new Uint8Array(readFileSync(FIXTURES_DIR + f)), newStats(), false)
      expect(outcome, f).toSatisfy(okOutcome)
    }
  }, 600_000)

  it('reports the counts', () => {
    const report = { seed: SEED, ...summary(stats) }
    console.log(`fuzz report: ${JSON.stringify(report, null, 1)}`)
    if (REPORT) writeFileSync(REPORT, JSON.stringify(report, null, 2))
    expect(stats.inputs).toBeGreaterThan(RUNS)
  })
})

function summary(s: FuzzStats) {
  return {
    inputs: s.inputs, outcomes: totals(s), byTarget: s.outcomes, maxMsPerInput: Math.round(s.maxMs), slowestTarget: s.maxMsTarget,
    secondsByTarget: Object.fromEntries(Object.entries(s.msByTarget).map(([k, v]) => [k, Math.round(v / 100) / 10])),
    formatErrorsWithOffset: `${s.formatErrorsWithOffset} of ${s.formatErrors}`, maxInputBytes: s.maxInputBytes, maxRssMiB: Math.round(s.maxRssMiB), crashes: s.crashes.length,
  }
}
