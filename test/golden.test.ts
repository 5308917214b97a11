// End to end on tiny-dev against golden.json (float64 reference), with the tolerances a
// correct float32 engine meets (issue "engine core"): ≤ 0.1 % of logits off by more than
// 0.05, greedy continuations equal where the golden top-2 margin allows, perplexity within 0.3 %.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openModelContents } from '../src/index.js'
import { BitnetModel } from '../src/api/bitnet-model.js'
import type { ModelContents } from '../src/model/contents.js'
import { compareTop20, greedyComparable, loadGolden, promptAddsBos, TINY_GGUF } from './helpers/golden.js'
import { VARIANTS } from './helpers/kernels.js'
import { isSharedVariant } from '../src/runtime/wasm.js'

const golden = loadGolden()
// Opened once for the file's models (tiny-dev's 128k-token tokenizer takes seconds to build).
let contents: ModelContents
beforeAll(async () => { contents = await openModelContents(TINY_GGUF) })
afterAll(() => contents.close?.())

// Every kernel build this runtime runs × both ternary kernels, on one thread and on two
// (workers + this thread) where the build has a shared memory.
const CONFIGS = VARIANTS.flatMap((variant) => (['i2s', 'tl'] as const).flatMap((kernel) =>
  (isSharedVariant(variant) ? [1, 2] : [1]).map((threads) => ({ variant, kernel, threads }))))

describe.each(CONFIGS)('tiny-dev I2_S GGUF vs golden ($variant build, $kernel kernel, $threads threads)', ({ variant, kernel, threads }) => {
  let model: BitnetModel
  beforeAll(async () => {
    model = await BitnetModel.load(contents, { variant, kernel, threads, outputType: 'f16' })
    expect(model.variant).toBe(variant)
    expect(model.transformer.kernel).toBe(kernel)
    expect(model.threads).toBe(threads)
  })
  afterAll(() => model.dispose())

  golden.prompts.forEach((p, i) => {
    describe(`prompt ${i}: ${JSON.stringify(p.text.slice(0, 40))}`, () => {
      it('tokenizes to the golden ids', () => {
        expect(model.tokenize(p.text, { addBos: promptAddsBos(p) })).toEqual(p.ids)
      })

      it('logits at every position within tolerance', () => {
        const r = compareTop20(p, model.logits(p.ids))
        expect(r.over / r.entries).toBeLessThanOrEqual(0.001)
        expect(r.argmaxWrong).toBe(0)
        // last position: all 128256 logits, not only the top 20
        const last = model.logits(p.ids, { lastOnly: true })[0]
        let far = 0
        p.last_logits.forEach((v, id) => { if (Math.abs(last[id] - v) > 0.05) far++ })
        expect(far / p.last_logits.length).toBeLessThanOrEqual(0.001)
      })

      it('greedy continuation matches up to the first near-tie', async () => {
        const r = await model.generate(p.ids, { temperature: 0, maxTokens: 32, ignoreEos: true })
        const n = greedyComparable(p)
        expect(r.tokens.slice(0, n)).toEqual(p.greedy32_ids.slice(0, n))
        if (n === 32) expect(r.text).toBe(p.greedy32_text)
      })
    })
  })

  // The single build is the simd build's code on a non-shared memory: the tests above cover
  // it; the slowest test, perplexity, runs on the threaded builds only.
  it.runIf(threads === 1 && kernel === 'i2s' && isSharedVariant(variant))('perplexity over the validation span (ctx 512) within 0.3%', () => {
    const { span_ids, chunk, ppl } = golden.val_ppl
    const r = model.perplexity(span_ids, chunk)
    expect(r.tokens).toBe(span_ids.length)
    expect(Math.abs(r.ppl / ppl - 1)).toBeLessThan(0.003)
  }, 120_000)
})

describe.each([
  // [option, storage, measured ppl change, bound]: q8 is the default for large output
  // matrices and must stay within the 0.5 % budget (its 127 levels cost +0.24 %: the price
  // of the 7-bit operand, see assembly/formats/q8b.ts), q6's 63 levels from
  // the block's signed extreme cost less (+0.19 %); q4 is opt-in, its cost is pinned
  ['q8', 'q8b', 0.0024, 0.005],
  ['q6', 'q6b', 0.0019, 0.005],
  ['q4', 'q4b', 0.0166, 0.025],
] as const)('%s output copy', (outputType, storage, measured, bound) => {
  it(`perplexity vs golden: ${(measured * 100).toFixed(2)} % measured, within ±${bound * 100} %`, async () => {
    // two threads: the conversion runs as rounds of the pool
    const model = await BitnetModel.load(contents, { outputType, threads: 2 })
    expect(model.transformer.outputType).toBe(storage)
    const { span_ids, chunk, ppl } = golden.val_ppl
    const r = model.perplexity(span_ids, chunk)
    expect(Math.abs(r.ppl / ppl - 1)).toBeLessThan(bound)
    expect(Math.abs(r.ppl / ppl - 1 - measured)).toBeLessThan(0.002) // pinned: a change here is a change of the copy
    await model.dispose()
  }, 120_000)
})

// The f16 KV cache ('auto' picks it for caches of ≥ 64 MiB, not for tiny-dev's): half the
// memory; its rounding, amplified by the int8 activation quantization, moves up to 8 % of a
// prompt's golden top-20 logits by more than 0.05 (max 0.094 measured), as the float64
// reference does with its cache rounded to f16, over the f32 bound of 0.1 %, so it is pinned
// here (perplexity over the validation span: −0.04 % against f32, `bitnet ppl --kv-type`).
it('f16 KV cache: logits near golden, every clear argmax kept', async () => {
  const model = await BitnetModel.load(contents, { kvType: 'f16', outputType: 'f16', threads: 2 })
  expect(model.transformer.kvType).toBe('f16')
  for (const p of golden.prompts) {
    const r = compareTop20(p, model.logits(p.ids))
    expect(r.over / r.entries).toBeLessThanOrEqual(0.1)
    expect(r.maxDiff).toBeLessThan(0.15)
    expect(r.argmaxWrong).toBe(0)
  }
  await model.dispose()
}, 120_000)
