/**
 * Cache {@link Store}s for browsers.
 *
 * - 'cache-api': the Cache API (`caches`), one Response per data file and per metadata file,
 *   under synthetic `https://bitnet-wasm.cache/{key}` URLs. A response cannot be appended to,
 *   so a download in progress is held in memory and resumes (HTTP Range) only within the page.
 * - 'opfs': the origin private file system, the same layout as the directory store
 *   (`{key}`, `{key}.part`, `{key}.meta.json`); parts persist, so downloads resume across reloads.
 *
 * Both read a committed entry as a Blob (disk-backed), so loading never needs a second copy.
 * Neither has a {@link Store.fingerprint}, so entries are checked on every use (by the digests
 * of their 16 MiB pieces, with Web Crypto: see EntryMeta.pieceSha256): a Response
 * carries no modification time, and an OPFS file's `lastModified` is not renewed by an in-place
 * write in Chromium's in-memory OPFS (incognito; Chromium 156), so it cannot vouch for the bytes
 * (test/runtimes/browser-cache.test.ts overwrites an entry in place and must see it re-fetched).
 */
import { parseMeta, type EntryMeta, type Store } from './store.js'
import { MemorySink, type Sink } from './download.js'
import { blobSource } from './blob.js'
import type { ByteSource } from './source.js'

const NAME = 'bitnet-wasm'
const META = '.meta.json'

export async function openBrowserStore(kind: 'cache-api' | 'opfs'): Promise<Store> {
  const store: Store = kind === 'opfs'
    ? new OpfsStore(await (await navigator.storage.getDirectory()).getDirectoryHandle(NAME, { create: true }))
    : new CacheApiStore(await caches.open(NAME))
  if (navigator.locks) store.lock = (key, signal) => webLock(`${NAME}:${key}`, signal)
  return store
}

/** Holds a Web Lock (shared by the origin's tabs and workers) until the returned release is called. */
function webLock(name: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    navigator.locks.request(name, { signal }, () => new Promise<void>((release) => {
      resolve(async () => release())
    })).catch(reject)
  })
}

const BASE = 'https://bitnet-wasm.cache/'

class CacheApiStore implements Store {
  readonly location = `Cache API '${NAME}'`
  /** Downloads in progress in this page, by key. */
  private readonly parts = new Map<string, MemorySink>()
  constructor(private readonly cache: Cache) {}

  async keys(): Promise<string[]> {
    return (await this.cache.keys()).map((r) => r.url.slice(BASE.length)).filter((k) => k.endsWith(META)).map((k) => k.slice(0, -META.length))
  }

  async readMeta(key: string): Promise<EntryMeta | undefined> {
    return parseMeta(await (await this.cache.match(BASE + key + META))?.text())
  }

  async writeMeta(key: string, meta: EntryMeta): Promise<void> {
    await this.cache.put(BASE + key + META, new Response(JSON.stringify(meta), { headers: { 'content-type': 'application/json' } }))
  }

  async dataSize(key: string): Promise<number | undefined> {
    return (await (await this.cache.match(BASE + key))?.blob())?.size
  }

  async partSize(key: string): Promise<number> {
    return this.parts.get(key)?.offset ?? 0
  }

  async openSink(key: string): Promise<Sink> {
    let sink = this.parts.get(key)
    if (!sink) this.parts.set(key, sink = new MemorySink())
    return sink
  }

  async commit(key: string): Promise<void> {
    const blob = new Blob([this.parts.get(key)?.bytes() ?? new Uint8Array(0)])
    await this.cache.put(BASE + key, new Response(blob, { headers: { 'content-length': String(blob.size) } }))
    this.parts.delete(key)
  }

  async open(key: string, name: string): Promise<ByteSource> {
    const res = await this.cache.match(BASE + key)
    if (!res) throw new Error(`${name} is not in the cache`)
    return blobSource(await res.blob(), name)
  }

  async remove(key: string): Promise<void> {
    this.parts.delete(key)
    await this.cache.delete(BASE + key + META)
    await this.cache.delete(BASE + key)
  }
}

class OpfsStore implements Store {
  readonly location = `OPFS '${NAME}'`
  constructor(private readonly root: FileSystemDirectoryHandle) {}

  /** The directory holding `key` and its base name. */
  private async dir(key: string, create: boolean): Promise<[FileSystemDirectoryHandle, string] | undefined> {
    const segs = key.split('/')
    let dir = this.root
    try {
      for (const s of segs.slice(0, -1)) dir = await dir.getDirectoryHandle(s, { create })
    } catch {
      return undefined
    }
    return [dir, segs[segs.length - 1]]
  }

  private async file(key: string, suffix = ''): Promise<File | undefined> {
    const at = await this.dir(key, false)
    try {
      return at ? await (await at[0].getFileHandle(at[1] + suffix)).getFile() : undefined
    } catch {
      return undefined
    }
  }

  async keys(): Promise<string[]> {
    const out: string[] = []
    const walk = async (dir: FileSystemDirectoryHandle, prefix: string): Promise<void> => {
      for await (const [name, h] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${prefix}${name}/`)
        else if (name.endsWith(META)) out.push(prefix + name.slice(0, -META.length))
      }
    }
    await walk(this.root, '')
    return out
  }

  async readMeta(key: string): Promise<EntryMeta | undefined> {
    return parseMeta(await (await this.file(key, META))?.text())
  }

  async writeMeta(key: string, meta: EntryMeta): Promise<void> {
    // createWritable() writes to a swap file and swaps it in on close(): atomic.
    const [dir, base] = (await this.dir(key, true))!
    const w = await (await dir.getFileHandle(base + META, { create: true })).createWritable()
    await w.write(JSON.stringify(meta))
    await w.close()
  }

  async dataSize(key: string): Promise<number | undefined> {
    return (await this.file(key))?.size
  }

  async partSize(key: string): Promise<number> {
    return (await this.file(key, '.part'))?.size ?? 0
  }

  async openSink(key: string): Promise<Sink> {
    const [dir, base] = (await this.dir(key, true))!
    const handle = await dir.getFileHandle(base + '.part', { create: true })
    const held = await handle.getFile()
    let offset = held.size
    const w = await handle.createWritable({ keepExistingData: true })
    await w.seek(offset)
    return {
      get offset() { return offset },
      async *existing() { yield* blobChunks(held) },
      async write(chunk) { await w.write(chunk as Uint8Array<ArrayBuffer>); offset += chunk.byteLength },
      async reset() { await w.truncate(0); offset = 0 },
      async close() { await w.close().catch(() => {}) },
    }
  }

  async commit(key: string): Promise<void> {
    const [dir, base] = (await this.dir(key, true))!
    const part = await dir.getFileHandle(base + '.part')
    const movable = part as FileSystemFileHandle & { move?: (name: string) => Promise<void> }
    if (movable.move) {
      await dir.removeEntry(base).catch(() => {})
      await movable.move(base)
      return
    }
    // No move(): copy into the final file (written atomically by close()), then drop the part.
    const w = await (await dir.getFileHandle(base, { create: true })).createWritable()
    await (await part.getFile()).stream().pipeTo(w)
    await dir.removeEntry(base + '.part')
  }

  async open(key: string, name: string): Promise<ByteSource> {
    const f = await this.file(key)
    if (!f) throw new Error(`${name} is not in the cache`)
    return blobSource(f, name)
  }

  async remove(key: string): Promise<void> {
    const at = await this.dir(key, false)
    if (!at) return
    for (const s of [META, '.part', '']) await at[0].removeEntry(at[1] + s).catch(() => {})
  }
}

async function* blobChunks(blob: Blob): AsyncIterable<Uint8Array> {
  const reader = blob.stream().getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    yield value
  }
}
