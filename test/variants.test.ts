// Kernel build choice and the single-thread fallback, as a page without cross-origin
// isolation gets them; the wasm override; typed errors across the engine Worker boundary.
import { readFileSync } from 'node:fs'
import { inspect, types } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DownloadError, loadModel, ModelFormatError, NotFoundError, WasmFeatureError } from '../src/index.js'
import { postError, revivedError } from '../src/engine-worker/protocol.js'
import { availableVariants } from '../src/runtime/wasm.js'
import { loadGolden, TINY_GGUF } from './helpers/golden.js'

const golden = loadGolden().prompts[0]
const BUILD = new URL('../build/', import.meta.url)
const greedy = { maxTokens: 32, temperature: 0, ignoreEos: true }

describe('kernel builds', () => {
  it('this Node runs the threaded builds and the single-thread one, fastest first', async () => {
    const v = await availableVariants()
    expect(v.slice(-2)).toEqual(['simd', 'single'])
    expect(v[0]).toBe(process.versions.node.startsWith('20.') ? 'simd' : 'relaxed')
  })

  it('single build: 2 threads asked, 1 used, the fallback said once through the logger; golden text', async () => {
    const warnings: string[] = []
    const model = await loadModel(TINY_GGUF, { variant: 'single', threads: 2, outputType: 'f16', logger: { warn: (m) => warnings.push(m) } })
    try {
      expect(model.variant).toBe('single')
      expect(model.threads).toBe(1)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/1 thread instead of 2.*SharedArrayBuffer.*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp/)
      const r = await model.generate(golden.text, greedy)
      expect(r.tokens).toEqual(golden.greedy32_ids)
      // A second cache grows the non-shared memory (its buffer is replaced): still golden.
      const kv = model.transformer.createKvCache()
      kv.dispose()
      expect((await model.generate(golden.text, greedy)).text).toBe(golden.greedy32_text)
      expect(warnings).toHaveLength(1)
    } finally {
      await model.dispose()
    }
  })

  it('no warning when one thread is asked for', async () => {
    const warnings: string[] = []
    const model = await loadModel(TINY_GGUF, { variant: 'single', threads: 1, logger: { warn: (m) => warnings.push(m) } })
    await model.dispose()
    expect(warnings).toEqual([])
  })

  it('wasm override: a folder URL, or one build as bytes with its variant', async () => {
    const a = await loadModel(TINY_GGUF, { wasm: BUILD.href, variant: 'simd', threads: 2 })
    expect((await a.generate(golden.text, greedy)).text).toBe(golden.greedy32_text)
    await a.dispose()
    const bytes = new Uint8Array(readFileSync(new URL('bitnet-single.wasm', BUILD)))
    const b = await loadModel(TINY_GGUF, { wasm: bytes, variant: 'single', threads: 1 })
    expect((await b.generate(golden.text, greedy)).text).toBe(golden.greedy32_text)
    await b.dispose()
    // the single build's bytes said to be the shared-memory 'simd' build: a typed error
    await expect(loadModel(TINY_GGUF, { wasm: bytes, variant: 'simd', threads: 1 })).rejects.toBeInstanceOf(WasmFeatureError)
    await expect(loadModel(TINY_GGUF, { wasm: new URL('missing/', BUILD).href, variant: 'simd' })).rejects.toThrow(/bitnet-simd\.wasm/)
  })
})

describe('engine Worker protocol', () => {
  /** `e` posted to the caller as the engine worker posts it (structured clone), and revived. */
  const crossed = (e: unknown) => revivedError(structuredClone(postError(e)))

  it('a typed error crosses as the same class with its code, fields, message and stack', () => {
    const e = new ModelFormatError('bad magic', { file: 'm.gguf', offset: 0, expected: 'GGUF', found: 'GGML' })
    const back = crossed(e)
    expect(back).toBeInstanceOf(ModelFormatError)
    expect(back).toMatchObject({ name: 'ModelFormatError', code: 'MODEL_FORMAT', file: 'm.gguf', offset: 0, expected: 'GGUF', found: 'GGML' })
    expect([back.message, back.stack]).toEqual([e.message, e.stack])
    // The same own properties as the thrown error (message and stack not enumerable).
    expect(Object.keys(back).sort()).toEqual(Object.keys(e).sort())
  })

  it('renders as the thrown error does: util.inspect (console.error) shows name, message, stack, code; once each', () => {
    const cause = new TypeError('fetch failed')
    const e = new DownloadError('https://x/m.gguf', 'network error', { cause })
    const back = crossed(e)
    // A native error object (not a plain object with Error's prototype), as consoles detect errors.
    expect(types.isNativeError(back)).toBe(true)
    expect(inspect(back)).toBe(inspect(e))
    const shown = inspect(back)
    expect(shown.startsWith(`DownloadError: https://x/m.gguf: network error\n    at `)).toBe(true)
    expect(shown).toContain("code: 'DOWNLOAD'")
    expect(shown).toContain('[cause]: TypeError: fetch failed')
    expect(shown.match(/network error/g)).toHaveLength(1)
    expect(back.cause).toBeInstanceOf(TypeError)
  })

  it('built-in and foreign errors keep their class or name; a thrown non-error becomes an Error', () => {
    expect(crossed(new RangeError('r'))).toBeInstanceOf(RangeError)
    const dom = crossed(new DOMException('gone', 'NotFoundError'))
    expect([dom instanceof Error, dom instanceof NotFoundError, dom.name, dom.message]).toEqual([true, false, 'NotFoundError', 'gone'])
    const odd = crossed('a string')
    expect([odd.name, odd.message]).toEqual(['Error', 'a string'])
  })
})
