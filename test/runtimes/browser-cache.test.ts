// The model cache in Chromium, per browser store ('cache-api', 'opfs'): the built browser
// bundle (dist/index.browser.js) on a page served from 127.0.0.1 by the local hub stand-in
// (test/helpers/hub-server.ts), which also serves tiny-dev and logs every request. An aborted
// download resumes after a reload (OPFS); a load downloads, a second one comes from the store
// (no GET); the public ModelCache API lists, sizes, finds and deletes the entry; bytes of the
// stored entry overwritten from the page are detected and fetched again; with the server
// stopped the stored copy loads offline; unreadable metadata counts as no entry. Every load
// generates tiny-dev's golden greedy tokens. One page per store (a fresh browser context: empty
// storage), not cross-origin isolated: the single-thread build, nothing fetched after the first
// load (the compiled kernels are kept per page), so the server can really stop. Also: typed
// errors keep their names in the minified bundles, in the page and from the engine worker
// (there as native error objects with the worker's stack).
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { greedyComparable, loadGolden } from '../helpers/golden.js'
import { fixtureBytes, fixtureSha, HubServer } from '../helpers/hub-server.js'
import { bundlePage, HAVE_CHROMIUM, launchChromium } from './helpers.js'

type Storage = 'cache-api' | 'opfs'
type Bundle = typeof import('../../src/index.js')
type WorkerBundle = typeof import('../../src/worker.js')
type Outcome = { tokens: number[]; text: string; phases: string[] } | { error: { name: string; code?: string; message: string } }

const FILE = 'ggml-model-i2_s.gguf'
const golden = loadGolden().prompts[0]
/** Greedy steps compared: those before the first golden top-1/top-2 margin under 0.02. */
const STEPS = greedyComparable(golden)

/**
 * loadModel(url) in the page with `storage`, then STEPS greedy tokens of the golden prompt;
 * `abortAfter`: aborts the load once that many bytes are downloaded.
 */
function load(page: Page, url: string, storage: Storage, opts: { allowOffline?: boolean; abortAfter?: number } = {}): Promise<Outcome> {
  return page.evaluate(async ({ url, storage, opts, prompt, steps }) => {
    const { loadModel } = (globalThis as unknown as { bitnet: Bundle }).bitnet
    const phases = new Set<string>()
    const stop = new AbortController()
    try {
      const model = await loadModel(url, {
        browserStorage: storage, allowOffline: opts.allowOffline, threads: 1, signal: stop.signal,
        onProgress: (p) => {
          phases.add(p.phase)
          if (p.phase === 'download' && p.loaded >= (opts.abortAfter ?? Infinity)) stop.abort()
        },
      })
      try {
        const r = await model.generate(prompt, { maxTokens: steps, temperature: 0, ignoreEos: true })
        return { tokens: r.tokens, text: r.text, phases: [...phases] }
      } finally {
        await model.dispose()
      }
    } catch (e) {
      const { name, code, message } = e as { name: string; code?: string; message: string }
      return { error: { name, code, message } }
    }
  }, { url, storage, opts, prompt: golden.text, steps: STEPS })
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
 * Damages the stored entry straight in the browser storage (cache-browser.ts: Cache
 * 'bitnet-wasm', OPFS folder 'bitnet-wasm'): 'data' inverts 64 bytes in the middle of the
 * model, its size unchanged; 'meta' replaces the metadata with truncated JSON.
 */
function damage(page: Page, storage: Storage, what: 'data' | 'meta'): Promise<void> {
  return page.evaluate(async ({ storage, name, what }) => {
    const flip = (b: Uint8Array) => b.map((x) => x ^ 0xff)
    const garbage = '{"url": "http'
    if (storage === 'cache-api') {
      const cache = await caches.open('bitnet-wasm')
      const req = (await cache.keys()).find((r) => r.url.endsWith('/' + name))!
      let body: Uint8Array<ArrayBuffer> | string = garbage
      if (what === 'data') {
        body = new Uint8Array(await (await cache.match(req))!.arrayBuffer())
        const at = body.length >> 1
        body.set(flip(body.subarray(at, at + 64)), at)
      }
      await cache.put(req, new Response(body))
      return
    }
    type Dir = FileSystemDirectoryHandle & { values(): AsyncIterable<FileSystemHandle> }
    const find = async (dir: Dir): Promise<FileSystemFileHandle | undefined> => {
      for await (const h of dir.values()) {
        const hit = h.kind === 'file' ? (h.name === name ? h as FileSystemFileHandle : undefined) : await find(h as Dir)
        if (hit) return hit
      }
    }
    const handle = (await find(await (await navigator.storage.getDirectory()).getDirectoryHandle('bitnet-wasm') as Dir))!
    const data = await handle.getFile()
    const at = data.size >> 1
    const w = await handle.createWritable({ keepExistingData: what === 'data' })
    await w.write(what === 'data' ? { type: 'write', position: at, data: flip(new Uint8Array(await data.slice(at, at + 64).arrayBuffer())) } : garbage)
    await w.close()
  }, { storage, name: what === 'data' ? FILE : FILE + '.meta.json', what })
}

/** Which cache work a load did: 'download' (fetched), 'read' (re-hashed a stored copy). */
const cacheWork = (o: Outcome) => 'phases' in o ? o.phases.filter((p) => p === 'download' || p === 'read').sort() : o

describe.runIf(HAVE_CHROMIUM)('model cache in Chromium', () => {
  let browser: Browser
  beforeAll(async () => { browser = await launchChromium() }, 60_000)
  afterAll(() => browser?.close())

  /** A fresh page (a new browser context: empty storage) on a new local hub with the bundles loaded. */
  async function openPage(): Promise<{ hub: HubServer; page: Page; errors: string[] }> {
    const hub = await HubServer.start(0, bundlePage)
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(hub.url + '/')
    await page.waitForFunction(() => 'bitnet' in globalThis)
    return { hub, page, errors }
  }

  // The minified bundles keep class names: users match `e.name`, and errors from the engine
  // worker are revived by name (engine-worker/protocol.ts) as the typed class.
  it('typed errors keep their names, in the page and from the engine worker', async () => {
    const { hub, page, errors } = await openPage()
    try {
      const missing = `${hub.url}/cdn/missing.gguf`
      const caught = await page.evaluate(async (url) => {
        const g = globalThis as unknown as { bitnet: Bundle; bitnetWorker: WorkerBundle }
        const fails = [g.bitnet.loadModel(url, { threads: 1 }), g.bitnetWorker.loadModelInWorker(url, { threads: 1 })]
        const classes = [g.bitnet.NotFoundError, g.bitnetWorker.NotFoundError] // each bundle's own, as users import them
        return Promise.all(fails.map((p, i) => p.then(() => undefined, (e: Error & { code?: string }) =>
          ({ name: e.name, code: e.code, cls: Object.getPrototypeOf(e).constructor.name as string, instance: e instanceof classes[i],
            // A native error object (what DevTools shows as an error, stack expanded), and its stack.
            native: Object.prototype.toString.call(e) === '[object Error]', stack: e.stack, message: e.message }))))
      }, missing)
      const typed = { name: 'NotFoundError', code: 'NOT_FOUND', cls: 'NotFoundError', instance: true, native: true }
      expect(caught).toEqual([expect.objectContaining(typed), expect.objectContaining(typed)])
      // The engine worker's error keeps the stack of where it was thrown, in the worker's bundle.
      const [, fromWorker] = caught as { stack: string; message: string }[]
      expect(fromWorker.stack.startsWith(`NotFoundError: ${fromWorker.message}\n`)).toBe(true)
      expect(fromWorker.stack).toMatch(/\/dist\/engine-worker\.js:\d+:\d+/)
      expect(errors).toEqual([])
    } finally {
      await page.close()
      await hub.close()
    }
  })

  // The two stores at once (own pages, servers and origins): each load runs on one thread.
  it.concurrent.for<Storage>(['cache-api', 'opfs'])('%s: resumed, cached, listed, deleted, damage detected, offline', { timeout: 180_000 }, async (storage, { expect }) => {
    const { hub, page, errors } = await openPage()
    try {
      // A CDN-style URL: its ETag is not a sha256, so the hash is recorded at download.
      const url = `${hub.url}/cdn/${FILE}`
      const size = fixtureBytes(FILE).length
      const gets = () => hub.requests(`/cdn/${FILE}`).filter((r) => r.method === 'GET').length
      /** Loads; expects the golden tokens and the given cache work. */
      const loadGolden = async (work: string[]) => {
        const o = await load(page, url, storage)
        expect(cacheWork(o)).toEqual(work)
        expect(o).toMatchObject({ tokens: golden.greedy32_ids.slice(0, STEPS) })
        expect(golden.greedy32_text.startsWith((o as { text: string }).text)).toBe(true)
      }

      // 1. A download aborted after 1 MiB, then the page reloaded: an OPFS part survives (listed
      // as partial) and the next download resumes from it; the Cache API's part was in memory.
      hub.faults.slow = true
      expect(await load(page, url, storage, { abortAfter: 1 << 20 })).toEqual({ error: expect.objectContaining({ name: 'AbortError' }) })
      hub.faults.slow = false
      await page.reload()
      await page.waitForFunction(() => 'bitnet' in globalThis)
      const [partial] = (await cacheState(page, url, storage)).list
      expect(partial).toMatchObject({ url, complete: false })
      if (storage === 'opfs') expect(partial.size).toBeGreaterThanOrEqual(1 << 20)
      else expect(partial.size).toBe(0)

      // 2. First load: downloaded into the store (resumed: OPFS). 3. Second: from the store, no
      // GET; browser stores have no fingerprint (cache-browser.ts): re-hashed ('read').
      await loadGolden(['download'])
      expect(gets()).toBe(2)
      expect(hub.requests(`/cdn/${FILE}`).at(-1)!.range).toBe(storage === 'opfs' ? `bytes=${partial.size}-` : undefined)
      await loadGolden(['read'])
      expect(gets()).toBe(2)

      // 4. The public API sees one complete entry of the file's size and hash.
      const state = await cacheState(page, url, storage)
      expect(state.location).toMatch(storage === 'opfs' ? /^OPFS/ : /^Cache API/)
      expect(state.list).toEqual([expect.objectContaining({ url, size, complete: true, sha256: fixtureSha(FILE) })])
      expect(state).toMatchObject({ total: size, has: true })
      expect((await cacheState(page, url + '?v=2', storage)).has).toBe(false)

      // 5. Bytes overwritten in the store: the re-hash catches it, the file is fetched again.
      await damage(page, storage, 'data')
      await loadGolden(['download', 'read'])
      expect(gets()).toBe(3)

      // 6. delete() removes the entry; the next load downloads again.
      expect(await cacheState(page, url, storage, true)).toMatchObject({ deleted: 1, list: [], total: 0, has: false })
      await loadGolden(['download'])
      expect(gets()).toBe(4)

      // 7. Server stopped: allowOffline (the default) loads the stored copy; false refuses.
      await hub.close()
      await loadGolden(['read'])
      expect(await load(page, url, storage, { allowOffline: false })).toEqual({
        error: { name: 'DownloadError', code: 'DOWNLOAD', message: expect.stringMatching(/network error.*a cached copy exists \(allowOffline: true uses it\)/) },
      })

      // 8. Unreadable metadata: the entry is as if absent (listed nowhere, not loaded offline).
      await damage(page, storage, 'meta')
      expect(await cacheState(page, url, storage)).toMatchObject({ list: [], total: 0, has: false })
      expect(await load(page, url, storage)).toEqual({ error: expect.objectContaining({ name: 'DownloadError', message: expect.stringMatching(/network error/) }) })
      expect(errors).toEqual([])
    } finally {
      await page.close()
      await hub.close()
    }
  })
})
