// A page's memory limits in Chromium, checked before a download. Chromium runs under a cap on
// its data segment (`ulimit -d`, RLIMIT_DATA: the per-process cap Chromium's own Linux sandbox
// puts on renderers, which committed wasm memory counts against), so a page here can hold
// ~3 GiB of wasm memory. The built browser bundle on a page of the local hub stand-in loads big
// models served as virtual files (test/helpers/hub-server.ts: a real GGUF header, zeros behind
// it): one whose first memory the page cannot reserve, and the same in memories of 2 GiB of which
// the page holds only one, are refused with a typed ResourceLimitError from the header alone (the
// request log shows no download); a model that fits the page gets to its download.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SHAPES } from '../../src/model/synthetic.js'
import { HubServer, virtualModel } from '../helpers/hub-server.js'
import { bundlePage, CHROMIUM, HAVE_CHROMIUM, launchChromium } from './helpers.js'

type Bundle = typeof import('../../src/index.js')
const GiB = 2 ** 30
/** The data segment Chromium may have, in GiB. */
const DATA_LIMIT = 3

describe.runIf(HAVE_CHROMIUM)('memory limits in Chromium, before a download', () => {
  let browser: Browser, hub: HubServer, page: Page
  const dir = mkdtempSync(join(tmpdir(), 'bitnet-limits-'))
  const errors: string[] = []
  beforeAll(async () => {
    const wrapper = join(dir, 'chromium')
    writeFileSync(wrapper, `#!/bin/sh\nulimit -d ${DATA_LIMIT * 2 ** 20}\nexec ${CHROMIUM} "$@"\n`)
    chmodSync(wrapper, 0o755)
    browser = await launchChromium([], wrapper)
    hub = await HubServer.start(0, bundlePage)
    hub.virtual.set('20b.gguf', virtualModel(SHAPES['20b']))
    hub.virtual.set('2b4t.gguf', virtualModel(SHAPES['2b4t']))
    page = await browser.newPage()
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(hub.url + '/')
    await page.waitForFunction(() => 'bitnet' in globalThis)
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await hub?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** loadModel(/virtual/`file`) in the page: its error's fields, or 'downloading' (the load is then aborted). */
  const load = (file: string, maxMemoryBytes?: number) => page.evaluate(async ({ url, maxMemoryBytes }) => {
    const stop = new AbortController()
    try {
      await (globalThis as unknown as { bitnet: Bundle }).bitnet.loadModel(url, {
        threads: 1, maxMemoryBytes, signal: stop.signal, onProgress: (p) => { if (p.phase === 'download') stop.abort() },
      })
      return 'loaded'
    } catch (e) {
      if (stop.signal.aborted) return 'downloading'
      const { name, limit, max, needed, message } = e as { name: string; limit: string; max: number; needed: number; message: string }
      return { name, limit, max, needed, message }
    }
  }, { url: `${hub.url}/virtual/${file}`, maxMemoryBytes })

  it('the page knows: no RAM figure, navigator.deviceMemory (a power of two), 64-bit, memory64', async () => {
    const limits = await page.evaluate(() => (globalThis as unknown as { bitnet: Bundle }).bitnet.memoryLimits())
    expect(limits).toEqual({ browser: true, deviceMemory: expect.any(Number), bits: 64, memory64: true })
    expect(Number.isInteger(Math.log2(limits.deviceMemory! / GiB))).toBe(true)
  })

  it('a first memory (4 GiB) the page cannot reserve: refused from the header, naming the largest it could (maxMemoryBytes)', async () => {
    const r = await load('20b.gguf')
    expect(r).toMatchObject({ name: 'ResourceLimitError', limit: 'wasmMemory', max: 2 * GiB })
    expect((r as { message: string }).message).toMatch(new RegExp('needs \\d\\.\\d\\d GiB of memory in 2 wasm memories; this page cannot reserve a memory of [34]\\.\\d\\d GiB, ' +
      'only one of 2\\.00 GiB \\(64-bit, navigator\\.deviceMemory \\d+ GiB, memory64 yes\\): maxMemoryBytes: 2147483648 spreads the model over smaller memories, or ask'))
    const { downloads, lastByte } = hub.fetched('/virtual/20b.gguf')
    expect(downloads).toBe(0)
    expect(lastByte).toBeLessThan(16 << 20) // the header's reads, of a 5.4 GB file
  })

  it('memories of 2 GiB, more than the page holds at once: refused from the header, naming what it held', async () => {
    const r = await load('20b.gguf', 2 * GiB)
    expect(r).toMatchObject({ name: 'ResourceLimitError', limit: 'memory', max: expect.toSatisfy((n: number) => n > 1.9 * GiB && n <= 2 * GiB) })
    expect((r as { message: string }).message).toMatch(/in \d wasm memories; this page could reserve only 1 of them \([12]\.\d\d GiB\) at once \(64-bit/)
    expect(hub.fetched('/virtual/20b.gguf').downloads).toBe(0)
  })

  it('a model that fits the page (2B4T shape, ~1.5 GiB of memory) gets to its download', async () => {
    expect(await load('2b4t.gguf')).toBe('downloading')
    expect(hub.fetched('/virtual/2b4t.gguf').downloads).toBe(1)
    expect(errors).toEqual([])
  })
})
