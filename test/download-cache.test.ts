// Sources, downloads and the cache against a local hub/CDN stand-in (test/helpers/hub-server.ts):
// Range resume, ETag/x-linked-etag hashes, 404, wrong hashes, cancellation, offline use,
// corrupt entries, hf: ids through the endpoint option, and the loaded model's output.
import { spawnSync } from 'node:child_process'
import { openAsBlob } from 'node:fs'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  DownloadError, IntegrityError, loadModel, ModelCache, NotFoundError, parseHubId, pullModel, resolveHubFiles,
  type LoadProgress,
} from '../src/index.js'
import { createHash } from 'node:crypto'
import { bytesSource } from '../src/io/source.js'
import { PIECE_BYTES, PieceHasher, piecesMatch } from '../src/io/hash.js'
import { greedyComparable, loadGolden } from './helpers/golden.js'
import { fixtureBytes, fixtureSha, HubServer } from './helpers/hub-server.js'

const GGUF = 'ggml-model-i2_s.gguf'
const HF_GGUF = `hf:test/tiny-dev/${GGUF}`
const golden = loadGolden()
const p0 = golden.prompts[0]

let hub: HubServer
let dir: string
let cache: ModelCache
const TMP = mkdtempSync(join(tmpdir(), 'bitnet-dl-test-'))
let n = 0

beforeAll(async () => { hub = await HubServer.start() })
afterAll(async () => { await hub.close(); rmSync(TMP, { recursive: true, force: true }) })
beforeEach(async () => {
  dir = join(TMP, `cache-${n++}`)
  cache = await ModelCache.open({ cacheDir: dir, endpoint: hub.url })
  hub.faults = {}
  hub.log.length = 0
})

const opts = () => ({ cache, endpoint: hub.url, cacheDir: dir })

/** The model's greedy continuation of golden prompt 0 matches the golden one. */
async function expectGolden(model: Awaited<ReturnType<typeof loadModel>>): Promise<void> {
  try {
    const r = await model.generate(p0.ids, { temperature: 0, maxTokens: 32, ignoreEos: true })
    const k = greedyComparable(p0)
    expect(r.tokens.slice(0, k)).toEqual(p0.greedy32_ids.slice(0, k))
  } finally {
    await model.dispose()
  }
}

describe('hf: ids', () => {
  it('parses files, quant tags and revisions', () => {
    expect(parseHubId('hf:a/b/sub/x.gguf')).toEqual({ repo: 'a/b', file: 'sub/x.gguf', revision: undefined, quant: undefined })
    expect(parseHubId('hf:a/b@v1.0:i2_s')).toEqual({ repo: 'a/b', revision: 'v1.0', quant: 'i2_s', file: undefined })
    expect(() => parseHubId('hf:a/b/../x')).toThrow(/not a Hugging Face id/)
    expect(() => parseHubId('hf:nope')).toThrow(/not a Hugging Face id/)
  })

  it('resolves :quant and bare repos through the listing API', async () => {
    expect(await resolveHubFiles('hf:test/tiny-dev:I2-S', { endpoint: hub.url })).toMatchObject({ kind: 'gguf', files: [GGUF] })
    expect(await resolveHubFiles('hf:test/tiny-dev', { endpoint: hub.url })).toMatchObject({ kind: 'gguf', files: [GGUF] })
    const folder = await resolveHubFiles('hf:test/tiny-dev-hf', { endpoint: hub.url })
    expect(folder.kind).toBe('folder')
    expect(folder.files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']))
    await expect(resolveHubFiles('hf:test/tiny-dev:q4_k', { endpoint: hub.url })).rejects.toBeInstanceOf(NotFoundError)
    await expect(resolveHubFiles('hf:test/missing', { endpoint: hub.url })).rejects.toBeInstanceOf(NotFoundError)
  })
})

describe('download into the cache', () => {
  it('loads an hf: id through the endpoint option: verified by x-linked-etag, golden output, progress events', async () => {
    const events: LoadProgress[] = []
    const model = await loadModel(HF_GGUF, { ...opts(), threads: 1, token: 'secret', onProgress: (p) => events.push(p) })
    await expectGolden(model)
    const entry = (await cache.list())[0]
    expect(entry).toMatchObject({ url: `${hub.url}/test/tiny-dev/resolve/main/${GGUF}`, complete: true, sha256: fixtureSha(GGUF), size: fixtureBytes(GGUF).length })
    expect(readFileSync(entry.path!).equals(fixtureBytes(GGUF))).toBe(true)
    // the token goes to the hub (not only the CDN it redirects to... fetch drops it on cross-origin only)
    expect(hub.requests(`/resolve/main/${GGUF}`).every((r) => r.authorization === 'Bearer secret')).toBe(true)
    const downloads = events.filter((e) => e.phase === 'download')
    expect(downloads.length).toBeGreaterThan(1)
    expect(downloads.every((e, i) => e.file === GGUF && e.total === entry.size && (i === 0 || e.loaded >= downloads[i - 1].loaded))).toBe(true)
    expect(downloads.at(-1)!.loaded).toBe(entry.size)
    const phases = [...new Set(events.map((e) => e.phase))]
    expect(phases).toEqual(['download', 'compile', 'repack'])

    // a second fetch reuses the entry: one HEAD (freshness), no GET
    hub.log.length = 0
    await pullModel(HF_GGUF, opts())
    expect(hub.log.map((r) => r.method)).toEqual(['HEAD'])
  })

  it('a plain URL with a sha256 ETag and Range support; a connection dropped mid-file resumes', async () => {
    hub.faults.dropAt = 10 << 20
    const url = `${hub.url}/plain/${GGUF}`
    const { entries } = await pullModel(url, opts())
    expect(entries[0]).toMatchObject({ complete: true, sha256: fixtureSha(GGUF) })
    const gets = hub.requests(`/plain/${GGUF}`).filter((r) => r.method === 'GET')
    expect(gets).toHaveLength(2)
    expect(gets[0].range).toBeUndefined()
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1])
    expect(resumedAt).toBeGreaterThan(0)
    expect(resumedAt).toBeLessThanOrEqual(10 << 20)
    expect(readFileSync(entries[0].path!).equals(fixtureBytes(GGUF))).toBe(true)
  })

  it('a dropped connection to a server without Range support starts over', async () => {
    hub.faults = { dropAt: 4 << 20, noRange: true }
    const { entries } = await pullModel(`${hub.url}/plain/${GGUF}`, opts())
    expect(entries[0].sha256).toBe(fixtureSha(GGUF))
    const gets = hub.requests(`/plain/${GGUF}`).filter((r) => r.method === 'GET')
    expect(gets).toHaveLength(2)
    expect(gets[1].range).toMatch(/^bytes=[1-9]\d*-$/) // asked to resume, got the whole file
  })

  it('404 is a typed NotFoundError and leaves nothing in the cache', async () => {
    const err = await loadModel(`hf:test/tiny-dev/nope.gguf`, opts()).catch((e) => e)
    expect(err).toBeInstanceOf(NotFoundError)
    expect(err).toMatchObject({ code: 'NOT_FOUND', status: 404 })
    expect(await cache.list()).toEqual([])
  })

  it('a wrong hash (the user\'s or the server\'s) is an IntegrityError and nothing is kept', async () => {
    const wrong = 'ab'.repeat(32)
    await expect(pullModel(HF_GGUF, { ...opts(), sha256: wrong })).rejects.toBeInstanceOf(IntegrityError)
    expect(await cache.list()).toEqual([])
    hub.faults.linkedSha = wrong
    const err = await pullModel(HF_GGUF, opts()).catch((e) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect(err).toMatchObject({ code: 'INTEGRITY', expected: wrong, found: fixtureSha(GGUF) })
    expect(await cache.list()).toEqual([])
    // the right hash given by the user: downloads and, once cached, needs no request at all
    hub.faults = {}
    await pullModel(HF_GGUF, { ...opts(), sha256: fixtureSha(GGUF) })
    hub.log.length = 0
    await pullModel(HF_GGUF, { ...opts(), sha256: fixtureSha(GGUF) })
    expect(hub.log).toEqual([])
  })

  it('a part with the wrong bytes is re-fetched from zero', async () => {
    const url = `${hub.url}/test/tiny-dev/resolve/main/${GGUF}`
    // an interrupted download whose part holds garbage (the remote file changed meanwhile)
    const path = cache.localPath(url)!
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path + '.part', Buffer.alloc(1 << 20, 7))
    writeFileSync(path + '.meta.json', JSON.stringify({ url, complete: false, size: fixtureBytes(GGUF).length, etag: `"${fixtureSha(GGUF)}"` }))
    const { entries } = await pullModel(HF_GGUF, opts())
    expect(entries[0].sha256).toBe(fixtureSha(GGUF))
    const gets = hub.requests(`/cdn/${GGUF}`).filter((r) => r.method === 'GET')
    expect(gets.map((r) => r.range)).toEqual([`bytes=${1 << 20}-`, undefined])
  })

  it('AbortSignal cancels a slow download; the part is kept, never used as complete, and resumed', async () => {
    hub.faults.slow = true
    const ac = new AbortController()
    const err = await pullModel(HF_GGUF, {
      ...opts(), signal: ac.signal,
      onProgress: (p) => { if (p.phase === 'download' && p.loaded > (1 << 20)) ac.abort() },
    }).catch((e) => e)
    expect(err).toMatchObject({ name: 'AbortError' })
    const [partial] = await cache.list()
    expect(partial.complete).toBe(false)
    expect(partial.size).toBeGreaterThan(1 << 20)
    expect(existsSync(partial.path!)).toBe(false)
    expect(await cache.has(HF_GGUF)).toBe(false)
    hub.faults.slow = false
    const { entries } = await pullModel(HF_GGUF, opts())
    expect(entries[0].sha256).toBe(fixtureSha(GGUF))
    expect(hub.requests(`/cdn/${GGUF}`).at(-1)!.range).toBe(`bytes=${partial.size}-`)
  })

  it('AbortSignal cancels a load in its repack phase; the cache entry stays complete', async () => {
    const ac = new AbortController()
    const phases: string[] = []
    const err = await loadModel(HF_GGUF, {
      ...opts(), threads: 1, signal: ac.signal,
      onProgress: (p) => { phases.push(p.phase); if (p.phase === 'repack') ac.abort() },
    }).catch((e) => e)
    expect(err).toMatchObject({ name: 'AbortError' })
    expect(phases.at(-1)).toBe('repack')
    expect(await cache.has(HF_GGUF)).toBe(true)
  })

  it('a corrupted cache entry is detected and re-fetched', async () => {
    const { entries } = await pullModel(HF_GGUF, opts())
    const bytes = readFileSync(entries[0].path!)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(entries[0].path!, bytes)
    hub.log.length = 0
    const events: LoadProgress[] = []
    await pullModel(HF_GGUF, { ...opts(), onProgress: (p) => events.push(p) })
    expect(events.some((e) => e.phase === 'read')).toBe(true) // the re-hash that caught it
    expect(hub.requests(`/cdn/${GGUF}`).filter((r) => r.method === 'GET')).toHaveLength(1)
    expect(readFileSync(entries[0].path!).equals(fixtureBytes(GGUF))).toBe(true)
  })

  it('an unchanged entry is trusted without a re-hash; any write to it, even with its mtime restored, is caught', async () => {
    const { entries } = await pullModel(HF_GGUF, opts())
    const reads = async (o: object = {}) => {
      const events: LoadProgress[] = []
      await pullModel(HF_GGUF, { ...opts(), ...o, onProgress: (p) => events.push(p) })
      return events.filter((e) => e.phase === 'read').length
    }
    expect(await reads()).toBe(0) // hashed as it downloaded, untouched since
    expect(await reads({ verify: 'always' })).toBeGreaterThan(0)
    const path = entries[0].path!
    const { atime, mtime } = statSync(path)
    const bytes = readFileSync(path)
    bytes[bytes.length >> 2] ^= 0x55
    writeFileSync(path, bytes)
    utimesSync(path, atime, mtime) // same size, same mtime: only ctime tells
    hub.log.length = 0
    expect(await reads()).toBeGreaterThan(0)
    expect(hub.requests(`/cdn/${GGUF}`).filter((r) => r.method === 'GET')).toHaveLength(1)
    expect(readFileSync(path).equals(fixtureBytes(GGUF))).toBe(true)
    expect(await reads()).toBe(0)
  })

  it('a download locked by a live process is waited for; a lock whose process is gone is taken over', async () => {
    const path = cache.localPath(`${hub.url}/test/tiny-dev/resolve/main/${GGUF}`)!
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path + '.lock', String(spawnSync(process.execPath, ['-e', '']).pid)) // exited: stale
    await pullModel(HF_GGUF, opts())
    expect(existsSync(path + '.lock')).toBe(false)
    writeFileSync(path + '.lock', String(process.pid)) // alive
    hub.log.length = 0
    let done = false
    const pull = pullModel(HF_GGUF, opts()).then(() => { done = true })
    await new Promise((r) => setTimeout(r, 600))
    expect(done).toBe(false)
    expect(hub.log).toEqual([])
    rmSync(path + '.lock')
    await pull
    expect(hub.log.map((r) => r.method)).toEqual(['HEAD']) // then it finds the entry complete
  })

  it('an HF folder downloads its files in parallel into one directory, and loads', async () => {
    await expectGolden(await loadModel('hf:test/tiny-dev-hf', { ...opts(), threads: 1 }))
    const pulled = await pullModel('hf:test/tiny-dev-hf', opts())
    expect(pulled.kind).toBe('folder')
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
      expect(readFileSync(join(pulled.path!, f)).equals(fixtureBytes(f))).toBe(true)
    }
    // LFS weights verified by the hub's sha256; small files by the sha256 recorded at download
    expect(pulled.entries.find((e) => e.url.endsWith('model.safetensors'))!.sha256).toBe(fixtureSha('model.safetensors'))
  })

  it('cache API: list, has, delete, totalSize', async () => {
    await pullModel(HF_GGUF, opts())
    await pullModel(`${hub.url}/plain/config.json`, opts())
    expect(await cache.has(HF_GGUF)).toBe(true)
    expect(await cache.has('hf:test/tiny-dev')).toBe(true)
    expect(await cache.has('hf:test/tiny-dev-hf')).toBe(false)
    expect((await cache.list()).map((e) => e.url)).toEqual([`${hub.url}/plain/config.json`, `${hub.url}/test/tiny-dev/resolve/main/${GGUF}`])
    expect(await cache.totalSize()).toBe(fixtureBytes(GGUF).length + fixtureBytes('config.json').length)
    expect(await cache.delete('hf:test/tiny-dev')).toBe(1)
    expect(await cache.has(HF_GGUF)).toBe(false)
    expect(await cache.totalSize()).toBe(fixtureBytes('config.json').length)
  })
})

describe('piece digests (what browser stores check entries against)', () => {
  it('PieceHasher gives the sha256 of every 16 MiB piece, whatever the chunks; piecesMatch finds one changed byte', async () => {
    const data = new Uint8Array(2 * PIECE_BYTES + 12345)
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536))
    const h = new PieceHasher()
    for (let at = 0, step = 1; at < data.length; at += step, step = (step * 7919) % 3_000_001 + 1) await h.update(data.subarray(at, at + step))
    const pieces = await h.digests()
    const want = [0, 1, 2].map((i) => createHash('sha256').update(data.subarray(i * PIECE_BYTES, (i + 1) * PIECE_BYTES)).digest('hex'))
    expect(pieces).toEqual(want)
    expect(await piecesMatch(bytesSource(data), pieces)).toBe(true)
    data[PIECE_BYTES + 5] ^= 1
    expect(await piecesMatch(bytesSource(data), pieces)).toBe(false)
    expect(await piecesMatch(bytesSource(data.subarray(1)), pieces)).toBe(false) // other size
  })
})

describe('offline', () => {
  it('with the server gone, a cached model loads (allowOffline), and only then', async () => {
    const gone = await HubServer.start()
    const o = { cacheDir: dir, endpoint: gone.url, threads: 1 }
    await pullModel(HF_GGUF, o)
    await gone.close()
    await expectGolden(await loadModel(HF_GGUF, o))
    const err = await loadModel(HF_GGUF, { ...o, allowOffline: false }).catch((e) => e)
    expect(err).toBeInstanceOf(DownloadError)
    expect(err.message).toMatch(/a cached copy exists/)
    expect(err.message.split(err.url)).toHaveLength(2) // the URL once, at the start
    await expect(loadModel('hf:test/tiny-dev/other.gguf', o)).rejects.toMatchObject({ code: 'DOWNLOAD' })
  })
})

describe('other sources', () => {
  it('a Blob (fs.openAsBlob) and an in-memory download (cache: false) give the golden output', async () => {
    await expectGolden(await loadModel(await openAsBlob(join(TINY_DIR(), GGUF)), { threads: 1 }))
    await expectGolden(await loadModel(HF_GGUF, { endpoint: hub.url, cache: false, threads: 1 }))
    expect(existsSync(dir)).toBe(false)
  })
})

function TINY_DIR(): string {
  return new URL('./fixtures/tiny-dev/', import.meta.url).pathname
}
