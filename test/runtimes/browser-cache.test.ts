// The model cache in Chromium, per browser store ('cache-api', 'opfs'): the built browser
// bundle (dist/index.browser.js) on a page served from 127.0.0.1 by the local hub stand-in
// (test/helpers/hub-server.ts), which also serves tiny-dev and logs every request. A load
// downloads; a second load comes from the cache (no GET); the public ModelCache API lists,
// sizes, finds and deletes the entry; bytes of the stored entry overwritten from the page are
// detected and fetched again; with the server stopped the verified copy loads offline. Every
// load generates tiny-dev's golden greedy tokens. One page per store (a fresh browser context:
// empty storage), not cross-origin isolated: the single-thread build, nothing fetched after
// the first load (the compiled kernels are kept per page), so the server can really stop.
import { readFileSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { greedyComparable, loadGolden } from '../helpers/golden.js'
import { fixtureBytes, fixtureSha, HubServer, type ExtraRoutes } from '../helpers/hub-server.js'
import { HAVE_CHROMIUM, launchChromium } from './helpers.js'

type Storage = 'cache-api' | 'opfs'
type Bundle = typeof import('../../src/index.js')
type Outcome = { tokens: number[]; text: string; phases: string[] } | { error: { name: string; code?: string; message: string } }

const FILE = 'ggml-model-i2_s.gguf'
const ROOT = new URL('../../', import.meta.url).pathname
const golden = loadGolden().prompts[0]
/** Greedy steps compared: those before the first golden top-1/top-2 margin under 0.02. */
const STEPS = greedyComparable(golden)

/** '/' loads the bundle into `window.bitnet`; /dist/ and /build/ are the package's built files. */
const pageRoutes: ExtraRoutes = (path, _req, res) => {
  if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><script type="module">import * as b from "/dist/index.browser.js"; window.bitnet = b</script>')
    return true
  }
  const m = /^\/(dist\/[\w.-]+\.js|build\/[\w.-]+\.wasm)$/.exec(path)
  if (!m) return false
  res.writeHead(200, { 'content-type': m[1].endsWith('.js') ? 'text/javascript' : 'application/wasm' })
  res.end(readFileSync(ROOT + m[1]))
  return true
}

/** loadModel(url) in the page with `storage`, then STEPS greedy tokens of the golden prompt. */
async function load(page: Page, url: string, storage: Storage, allowOffline?: boolean): Promise<Outcome> {
  const t0 = Date.now()
  const r = await page.evaluate(async ({ url, storage, allowOffline, prompt, steps }) => {
    const { loadModel } = (globalThis as unknown as { bitnet: Bundle }).bitnet
    const phases = new Set<string>()
    try {
      const t0 = performance.now(); const tp: Record<string, number> = {}
      const model = await loadModel(url, { browserStorage: storage, allowOffline, threads: 1, onProgress: (p) => { phases.add(p.phase); tp[p.phase] ??= performance.now() - t0 } })
      const t1 = performance.now() - t0
      try {
        const r = await model.generate(prompt, { maxTokens: steps, temperature: 0, ignoreEos: true })
        console.log(JSON.stringify({ tp, t1, t2: performance.now() - t0 }))
        return { tokens: r.tokens, text: r.text, phases: [...phases] }
      } finally {
        await model.dispose()
      }
    } catch (e) {
      const { name, code, message } = e as { name: string; code?: string; message: string }
      return { error: { name, code, message } }
    }
  }, { url, storage, allowOffline, prompt: golden.text, steps: STEPS })
  console.log('load', storage, Date.now() - t0)
  return r
}

/** The public cache API in the page: list, totalSize, has(url); delete(url) first when asked. */
function cacheState(page: Page, url: string, storage: Storage, remove = false) {
  return page.evaluate(async ({ url, storage, remove }) => {
    const { ModelCache } = (globalThis as unknown as { bitnet: Bundle }).bitnet
    const cache = await ModelCache.open({ browserStorage: storage })
    const deleted = remove ? await cache.delete(url) : undefined
    return { deleted, list: await cache.list(), total: await cache.totalSize(), has: await cache.has(url), location: cache.location }
  }, { url, storage, remove })
}

/**
 * Inverts 64 bytes in the middle of the stored model, the size unchanged, straight in the
 * browser storage (cache-browser.ts: Cache 'bitnet-wasm' / OPFS folder 'bitnet-wasm').
 */
function corrupt(page: Page, storage: Storage): Promise<number> {
  return page.evaluate(async ({ storage, file }) => {
    const flip = (b: Uint8Array) => b.map((x) => x ^ 0xff)
    if (storage === 'cache-api') {
      const cache = await caches.open('bitnet-wasm')
      const req = (await cache.keys()).find((r) => r.url.endsWith('/' + file))!
      const bytes = new Uint8Array(await (await cache.match(req))!.arrayBuffer())
      const at = bytes.length >> 1
      bytes.set(flip(bytes.subarray(at, at + 64)), at)
      await cache.put(req, new Response(bytes))
      return at
    }
    type Dir = FileSystemDirectoryHandle & { values(): AsyncIterable<FileSystemHandle> }
    const find = async (dir: Dir): Promise<FileSystemFileHandle | undefined> => {
      for await (const h of dir.values()) {
        const hit = h.kind === 'file' ? (h.name === file ? h as FileSystemFileHandle : undefined) : await find(h as Dir)
        if (hit) return hit
      }
    }
    const handle = (await find(await (await navigator.storage.getDirectory()).getDirectoryHandle('bitnet-wasm') as Dir))!
    const data = await handle.getFile()
    const at = data.size >> 1
    const w = await handle.createWritable({ keepExistingData: true })
    await w.write({ type: 'write', position: at, data: flip(new Uint8Array(await data.slice(at, at + 64).arrayBuffer())) })
    await w.close()
    return at
  }, { storage, file: FILE })
}

describe.runIf(HAVE_CHROMIUM)('model cache in Chromium', () => {
  let browser: Browser
  beforeAll(async () => { browser = await launchChromium() }, 60_000)
  afterAll(() => browser?.close())

  it.each<Storage>(['cache-api', 'opfs'])('%s: cached, listed, deleted, corruption re-fetched, offline', async (storage) => {
    const hub = await HubServer.start(0, pageRoutes)
    const page = await browser.newPage()
    try {
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      page.on('console', (m) => console.log(m.text()))
      await page.goto(hub.url + '/')
      await page.waitForFunction(() => 'bitnet' in globalThis)
      // A CDN-style URL: its ETag is not a sha256, so the hash is recorded at download.
      const url = `${hub.url}/cdn/${FILE}`
      const gets = () => hub.requests(`/cdn/${FILE}`).filter((r) => r.method === 'GET').length
      const golden8 = { tokens: golden.greedy32_ids.slice(0, STEPS), text: expect.stringMatching(/^, and the LORD/) }

      // 1. First load: downloaded into the store.
      expect(await load(page, url, storage)).toEqual({ ...golden8, phases: expect.arrayContaining(['download']) })
      expect(gets()).toBe(1)
      // 2. Second load: from the store, re-hashed ('read'), no download.
      const again = await load(page, url, storage)
      expect(again).toEqual({ ...golden8, phases: expect.arrayContaining(['read']) })
      expect((again as { phases: string[] }).phases).not.toContain('download')
      expect(gets()).toBe(1)

      // 3. The public API sees one complete entry of the file's size and hash.
      const state = await cacheState(page, url, storage)
      expect(state.location).toMatch(storage === 'opfs' ? /^OPFS/ : /^Cache API/)
      expect(state.list).toEqual([expect.objectContaining({ url, size: fixtureBytes(FILE).length, complete: true, sha256: fixtureSha(FILE) })])
      expect(state.total).toBe(fixtureBytes(FILE).length)
      expect(state.has).toBe(true)
      expect((await cacheState(page, url + '?v=2', storage)).has).toBe(false)

      // 4. Bytes overwritten in the store: the hash check fails, the file is fetched again.
      await corrupt(page, storage)
      expect(await load(page, url, storage)).toEqual({ ...golden8, phases: expect.arrayContaining(['download']) })
      expect(gets()).toBe(2)
      expect((await cacheState(page, url, storage)).list).toEqual([expect.objectContaining({ sha256: fixtureSha(FILE), complete: true })])

      // 5. delete() removes the entry; the next load downloads again.
      const gone = await cacheState(page, url, storage, true)
      expect(gone).toMatchObject({ deleted: 1, list: [], total: 0, has: false })
      expect(await load(page, url, storage)).toEqual({ ...golden8, phases: expect.arrayContaining(['download']) })
      expect(gets()).toBe(2 + 1)

      // 6. Server stopped: allowOffline (the default) loads the verified copy; false refuses.
      await hub.close()
      expect(await load(page, url, storage)).toEqual({ ...golden8, phases: expect.arrayContaining(['read']) })
      expect(await load(page, url, storage, false)).toEqual({
        error: { name: 'DownloadError', code: 'DOWNLOAD', message: expect.stringMatching(/a cached copy exists \(allowOffline: true uses it\)/) },
      })
      expect(errors).toEqual([])
    } finally {
      await page.close()
      await hub.close()
    }
  }, 180_000)
})
