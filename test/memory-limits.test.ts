// What a runtime can hold, checked before a download: the decision on injected numbers
// (model/segments.ts), this runtime's facts (env.memoryLimits), reading a file by Range
// (io/download.ts rangeSource), and loadModel(url) on big models served by the local hub
// stand-in as virtual files (a real GGUF header, zeros behind it): refused from the header
// alone, no download started (the request log, the cache), or let through to the download.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, ModelCache, ResourceLimitError } from '../src/index.js'
import { memoryLimits, type MemoryLimits } from '../src/env.js'
import { rangeSource } from '../src/io/download.js'
import { checkMemoryLimits, reservationError } from '../src/model/segments.js'
import { SHAPES } from '../src/model/synthetic.js'
import { fixtureBytes, HubServer, virtualModel } from './helpers/hub-server.js'

const GiB = 2 ** 30
const LABEL = 'a 4096-token context'
const node: MemoryLimits = { browser: false, ram: 24 * GiB, bits: 64, memory64: true }
const page: MemoryLimits = { browser: true, memory64: false }
const thrown = (f: () => void) => { try { f() } catch (e) { return e as ResourceLimitError } throw new Error('did not throw') }

describe('the decision, on injected numbers', () => {
  it('the machine\'s RAM bounds the sum of the memories', () => {
    expect(() => checkMemoryLimits([4 * GiB, 4 * GiB], node, LABEL)).not.toThrow()
    const e = thrown(() => checkMemoryLimits([4 * GiB, 4 * GiB, 4 * GiB], { ...node, ram: 10 * GiB }, LABEL))
    expect(e).toBeInstanceOf(ResourceLimitError)
    expect(e).toMatchObject({ limit: 'memory', max: 10 * GiB, needed: 12 * GiB })
    expect(e.message).toBe(`the model with its buffers and KV cache for ${LABEL} needs 12.00 GiB of memory in 3 wasm memories; ` +
      'this machine has 10.00 GiB of RAM: ask for a smaller contextSize or kvType \'f16\', or use a smaller model')
  })

  it('a browser: navigator.deviceMemory bounds the RAM by 1.5× (nearest power of two) unless 8 GiB or more (the spec\'s cap); nothing known, nothing refused', () => {
    const four = { ...page, deviceMemory: 4 * GiB }
    expect(() => checkMemoryLimits([4 * GiB, 1.99 * GiB], four, LABEL)).not.toThrow()
    const e = thrown(() => checkMemoryLimits([4 * GiB, 2.01 * GiB], four, LABEL))
    expect(e).toMatchObject({ limit: 'memory', max: 6 * GiB })
    expect(e.message).toMatch(/needs 6\.01 GiB of memory in 2 wasm memories; this device has at most 6\.00 GiB of RAM \(navigator\.deviceMemory 4 GiB\): .*, or run it in Node, Deno or Bun, where the machine's RAM is the limit$/)
    expect(() => checkMemoryLimits([4 * GiB, 4 * GiB, 4 * GiB, 4 * GiB], { ...page, deviceMemory: 8 * GiB }, LABEL)).not.toThrow()
    expect(() => checkMemoryLimits([4 * GiB, 4 * GiB, 4 * GiB, 4 * GiB], page, LABEL)).not.toThrow()
  })

  it('the first memory refused: its size, the largest that could be had (maxMemoryBytes), a 64-bit browser for a 32-bit one', () => {
    const sizes = [4 * GiB, 3 * GiB]
    const e = reservationError(sizes, 0, 2 * GiB, { ...page, bits: 32, deviceMemory: 4 * GiB }, LABEL)
    expect(e).toMatchObject({ limit: 'wasmMemory', max: 2 * GiB, needed: 4 * GiB })
    expect(e.message).toBe(`the model with its buffers and KV cache for ${LABEL} needs 7.00 GiB of memory in 2 wasm memories; ` +
      'this page cannot reserve a memory of 4.00 GiB, only one of 2.00 GiB (32-bit, navigator.deviceMemory 4 GiB, memory64 no): ' +
      'maxMemoryBytes: 2147483648 spreads the model over smaller memories, or use a 64-bit browser or runtime, or ask for a smaller contextSize ' +
      'or kvType \'f16\', or use a smaller model, or run it in Node, Deno or Bun, where the machine\'s RAM is the limit')
    expect(reservationError(sizes, 0, 0, node, LABEL).message).toMatch(/this process cannot reserve a memory of 4\.00 GiB \(64-bit, 24\.00 GiB of RAM, memory64 yes\): ask for a smaller contextSize/)
  })

  it('a later memory refused: the page holds fewer memories at once than the plan', () => {
    const e = reservationError([2 * GiB, 2 * GiB, 2 * GiB, 1 * GiB], 2, 0, { ...page, bits: 64, memory64: true }, LABEL)
    expect(e).toMatchObject({ limit: 'memory', max: 4 * GiB, needed: 7 * GiB })
    expect(e.message).toMatch(/needs 7\.00 GiB of memory in 4 wasm memories; this page could reserve only 2 of them \(4\.00 GiB\) at once \(64-bit, memory64 yes\): ask for a smaller contextSize/)
  })
})

describe('this runtime', () => {
  it('memoryLimits: the RAM, the process\'s width, memory64 where V8 ships it (Node 24)', async () => {
    const major = Number(process.versions.node.split('.')[0])
    expect(await memoryLimits()).toEqual({ browser: false, ram: totalmem(), deviceMemory: undefined, bits: /64/.test(process.arch) ? 64 : 32, memory64: major >= 24 })
  })
})

describe('before a download', () => {
  let hub: HubServer
  const dir = mkdtempSync(join(tmpdir(), 'bitnet-limits-'))
  // More layers of 30B widths (> 100 MB each) than this machine's RAM can hold.
  const huge = { ...SHAPES['30b'], vocab: 32000, nLayer: Math.ceil(totalmem() / 100e6) + 1 }
  beforeAll(async () => {
    hub = await HubServer.start()
    hub.virtual.set('huge.gguf', virtualModel(huge))
    hub.virtual.set('20b.gguf', virtualModel(SHAPES['20b']))
    hub.virtual.set('2b4t.gguf', virtualModel(SHAPES['2b4t']))
  })
  afterAll(async () => {
    await hub?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Only the file's header was read (closed ranges within its first 16 MiB), nothing downloaded. */
  const headerOnly = (file: string) => {
    const { downloads, reads, lastByte } = hub.fetched(`/virtual/${file}`)
    expect({ downloads, reads: reads > 0, lastByte: lastByte < 16 << 20 }).toEqual({ downloads: 0, reads: true, lastByte: true })
  }

  it('a model larger than the RAM: refused from its header, naming both sizes; nothing downloaded or cached (cache or none)', async () => {
    for (const cache of [true, false]) {
      const err = await loadModel(`${hub.url}/virtual/huge.gguf`, { cacheDir: dir, cache, threads: 1 }).catch((e) => e)
      expect(err).toBeInstanceOf(ResourceLimitError)
      expect(err).toMatchObject({ limit: 'memory', max: totalmem() })
      expect(err.needed).toBeGreaterThan(totalmem())
      expect(err.message).toMatch(new RegExp(`needs [\\d.]+ GiB of memory in \\d+ wasm memories; this machine has ${(totalmem() / GiB).toFixed(2)} GiB of RAM`))
    }
    headerOnly('huge.gguf')
    expect(await (await ModelCache.open({ cacheDir: dir })).list()).toEqual([])
  })

  it('maxMemoryBytes below what the output projection needs: refused from the header', async () => {
    const err = await loadModel(`${hub.url}/virtual/20b.gguf`, { cacheDir: dir, maxMemoryBytes: 256 << 20, threads: 1 }).catch((e) => e)
    expect(err).toMatchObject({ name: 'ResourceLimitError', limit: 'wasmMemory', max: 256 << 20 })
    expect(err.message).toMatch(/the embedding and output projection .* need .* of wasm memory; one memory holds 256\.0 MiB/)
    headerOnly('20b.gguf')
  })

  it('a model that fits: the caller\'s hook sees the file, the check passes, the download starts', async () => {
    const stop = new AbortController()
    const seen: { name: string; size: number }[] = []
    const err = await loadModel(`${hub.url}/virtual/2b4t.gguf`, {
      cacheDir: dir, threads: 1, signal: stop.signal,
      beforeDownload: async (f) => { seen.push({ name: f.name, size: f.size }) },
      onProgress: (p) => { if (p.phase === 'download') stop.abort() },
    }).catch((e) => e)
    expect(err).toMatchObject({ name: 'AbortError' })
    expect(seen).toEqual([{ name: `${hub.url}/virtual/2b4t.gguf`, size: hub.virtual.get('2b4t.gguf')!.size }])
    expect(hub.fetched('/virtual/2b4t.gguf')).toMatchObject({ downloads: 1, lastByte: expect.any(Number) }) // after the header's reads
    expect(hub.requests('/virtual/2b4t.gguf').at(-1)).toMatchObject({ method: 'GET', range: undefined })
  })
})

describe('rangeSource', () => {
  let hub: HubServer
  beforeAll(async () => { hub = await HubServer.start() })
  afterAll(() => hub?.close())

  it('reads just the bytes asked for, by Range or, from a server that ignores it, by skipping to them', async () => {
    const file = 'ggml-model-i2_s.gguf'
    const want = fixtureBytes(file)
    const src = rangeSource(`${hub.url}/cdn/${file}`, want.length)
    for (const noRange of [false, true]) {
      hub.faults.noRange = noRange
      expect(Buffer.from(await src.read(3_000_000, 70_000))).toEqual(want.subarray(3_000_000, 3_070_000))
      expect(Buffer.from(await src.read(want.length - 10, 100))).toEqual(want.subarray(want.length - 10))
      const into = new Uint8Array(50)
      expect(await src.read(7, 50, into)).toEqual(new Uint8Array(want.subarray(7, 57)))
      expect(into).toEqual(new Uint8Array(want.subarray(7, 57)))
    }
    expect(hub.requests(`/cdn/${file}`).slice(0, 3).map((r) => r.range)).toEqual(['bytes=3000000-3069999', `bytes=${want.length - 10}-${want.length - 1}`, 'bytes=7-56'])
  })
})
