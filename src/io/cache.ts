/**
 * The model cache: downloaded files kept by URL, verified before use, shared by the API
 * and the CLI. Storage is pluggable ({@link Store}): a directory on Node/Deno/Bun
 * (cache-fs.ts), the Cache API or OPFS in browsers (cache-browser.ts).
 *
 * An entry is complete only when its metadata says so *and* the data has the recorded size;
 * it is used only after its sha256 matches again (or, with `verify: false`, its size; in
 * browsers, the digests of its 16 MiB pieces, by Web Crypto, recorded at download). Where
 * the store can fingerprint its files (directories: size, inode, mtime, ctime), a file left
 * unchanged since its hash last matched is not read again, the way git trusts its index. A
 * download in progress lives in a `.part` that is never read as a model: a broken or
 * cancelled download resumes from it, a corrupt entry is deleted and fetched again.
 */
import { HAS_FS, HAS_SUBTLE } from '../env.js'
import { DownloadError, IntegrityError } from '../errors.js'
import { download, probe, rangeSource, type LoadProgress, type RemoteInfo } from './download.js'
import { piecesMatch, sha256OfSource } from './hash.js'
import { hubEndpoint, isHubId, parseHubId, resolveUrl, type HubOptions } from './hub.js'
import type { ByteSource } from './source.js'
import type { EntryMeta, Store } from './store.js'

/** One cached file, as {@link ModelCache.list} reports it. */
export interface CacheEntry {
  url: string
  /** Bytes on disk (of the part, while incomplete). */
  size: number
  sha256?: string
  /** False for a partial (interrupted or running) download. */
  complete: boolean
  time?: string
  /** Path on disk (Node/Deno/Bun). */
  path?: string
}

export interface CacheOptions extends HubOptions {
  /**
   * Cache directory (Node/Deno/Bun). Default: `BITNET_CACHE_DIR`, else
   * `$XDG_CACHE_HOME/bitnet-wasm`, else `~/.cache/bitnet-wasm` (`%LOCALAPPDATA%` on Windows).
   */
  cacheDir?: string
  /** Browser storage: the Cache API (default) or the origin private file system. */
  browserStorage?: 'cache-api' | 'opfs'
}

export interface FetchOptions {
  /** Expected sha256 (hex); else the server's (hub LFS files), else recorded at download. */
  sha256?: string
  /** When the server cannot be reached, use a complete cached copy. Default true. */
  allowOffline?: boolean
  /**
   * How a cached entry is checked before use. `true` (default): its sha256, re-hashed unless
   * the file is unchanged since the hash last matched (directory caches); `'always'`:
   * re-hashed on every use; `false`: its size only.
   */
  verify?: boolean | 'always'
  headers?: Record<string, string>
  signal?: AbortSignal
  /** Download progress, and 'read' while a cached entry is re-hashed. */
  onProgress?: (p: LoadProgress) => void
  /**
   * Runs before a file is downloaded (not when a fresh cached copy is used), given the remote
   * file as a ByteSource whose reads fetch only their own bytes (Range requests); a rejection
   * stops the load before the download starts. Skipped when the server does not say the size.
   * `loadModel` reads a GGUF's header this way and refuses a model this runtime cannot hold.
   */
  beforeDownload?: (file: ByteSource) => Promise<void>
}

/** Downloads running in this process, by store location + key (one download per file). */
const inflight = new Map<string, Promise<CacheEntry>>()

/**
 * Cached model files.
 *
 * @example
 * ```ts
 * import { ModelCache } from 'bitnet-wasm'
 * const cache = await ModelCache.open()
 * for (const e of await cache.list()) console.log(e.url, e.size)
 * await cache.delete('hf:microsoft/bitnet-b1.58-2B-4T-gguf')
 * ```
 */
export class ModelCache {
  private constructor(private readonly store: Store, private readonly hub: HubOptions) {}

  /** Opens the cache for this runtime (a directory, or browser storage). */
  static async open(opts: CacheOptions = {}): Promise<ModelCache> {
    if (HAS_FS) {
      const { DirStore, defaultCacheDir } = await import('./cache-fs.js')
      return new ModelCache(new DirStore(opts.cacheDir ?? await defaultCacheDir()), opts)
    }
    const { openBrowserStore } = await import('./cache-browser.js')
    return new ModelCache(await openBrowserStore(opts.browserStorage ?? 'cache-api'), opts)
  }

  /** Where entries are stored (a directory, or a browser storage name). */
  get location(): string {
    return this.store.location
  }

  /** Every entry, complete or partial, sorted by URL. */
  async list(): Promise<CacheEntry[]> {
    const out: CacheEntry[] = []
    for (const key of await this.store.keys()) {
      const meta = await this.store.readMeta(key)
      if (!meta) continue
      const size = await this.store.dataSize(key)
      const complete = meta.complete && size === meta.size
      out.push({
        url: meta.url, complete, sha256: complete ? meta.sha256 : undefined, time: meta.time,
        size: complete ? size! : await this.store.partSize(key), path: this.store.localPath?.(key),
      })
    }
    return out.sort((a, b) => a.url.localeCompare(b.url))
  }

  /** True when a complete entry matches `id` (a URL, an `hf:` file, or a whole `hf:` repo). */
  async has(id: string): Promise<boolean> {
    return (await this.matching(id)).some((e) => e.complete)
  }

  /** Deletes every entry matching `id` (complete or partial); returns how many. */
  async delete(id: string): Promise<number> {
    const hits = await this.matching(id)
    for (const e of hits) await this.store.remove(cacheKey(e.url))
    return hits.length
  }

  /** Bytes used by all entries, partial ones included. */
  async totalSize(): Promise<number> {
    return (await this.list()).reduce((s, e) => s + e.size, 0)
  }

  /** The file path of a complete entry (directory stores), for loaders that take folders. */
  localPath(url: string): string | undefined {
    return this.store.localPath?.(cacheKey(url))
  }

  /**
   * Makes sure `url` is cached, complete and verified: reuses a fresh entry, resumes a
   * partial one, or downloads. Concurrent calls for one file share one download.
   */
  ensure(url: string, opts: FetchOptions = {}): Promise<CacheEntry> {
    const id = `${this.location}\0${cacheKey(url)}`
    let p = inflight.get(id)
    if (!p) {
      p = this.locked(url, opts).finally(() => inflight.delete(id))
      inflight.set(id, p)
    }
    return p
  }

  /** fetchEntry() holding the key's lock: another process downloading it is waited for, then reused. */
  private async locked(url: string, opts: FetchOptions): Promise<CacheEntry> {
    const release = await this.store.lock?.(cacheKey(url), opts.signal)
    try {
      return await this.fetchEntry(url, opts)
    } finally {
      await release?.()
    }
  }

  /** Opens a complete entry for reading. */
  async open(url: string): Promise<ByteSource> {
    return this.store.open(cacheKey(url), url)
  }

  private async matching(id: string): Promise<CacheEntry[]> {
    let match = (url: string) => url === id
    if (isHubId(id)) {
      const h = parseHubId(id)
      const rev = h.revision ?? this.hub.revision
      const url = h.file && resolveUrl(h.repo, h.file, rev ?? 'main', this.hub)
      const prefix = `${hubEndpoint(this.hub)}/${h.repo}/resolve/${rev ? encodeURIComponent(rev) + '/' : ''}`
      match = url ? (u) => u === url : (u) => u.startsWith(prefix)
    }
    return (await this.list()).filter((e) => match(e.url))
  }

  private async fetchEntry(url: string, opts: FetchOptions): Promise<CacheEntry> {
    const key = cacheKey(url)
    const file = url.split('/').pop() || url
    const meta = await this.store.readMeta(key)
    const cached = meta?.complete && await this.store.dataSize(key) === meta.size ? meta : undefined
    // A pinned hash that the entry already has: no need to ask the server anything.
    if (cached && opts.sha256 && cached.sha256 === opts.sha256.toLowerCase() && await this.verify(key, cached, file, opts)) {
      return this.entryOf(key, cached)
    }
    let remote: RemoteInfo
    try {
      remote = await probe(url, opts.headers, opts.signal)
    } catch (e) {
      const unreachable = e instanceof DownloadError && e.status === undefined
      if (unreachable && cached && opts.allowOffline !== false && await this.verify(key, cached, file, opts)) {
        return this.entryOf(key, cached)
      }
      if (unreachable && cached && opts.allowOffline === false) {
        const why = (e as Error).message.replace(`${url}: `, '') // DownloadError messages start with the URL
        throw new DownloadError(url, `${why}; a cached copy exists (allowOffline: true uses it)`, { cause: e })
      }
      throw e
    }
    const sha256 = opts.sha256?.toLowerCase() ?? remote.sha256
    const fresh = cached && (sha256 ? cached.sha256 === sha256 : remote.etag && cached.etag ? remote.etag === cached.etag : remote.size === undefined || remote.size === cached.size)
    if (fresh && await this.verify(key, cached, file, opts)) return this.entryOf(key, cached)

    if (opts.beforeDownload && remote.size !== undefined) await opts.beforeDownload(rangeSource(url, remote.size, opts.headers, opts.signal))
    // Download, resuming a part left by the same remote file; a resumed download that fails
    // its hash (the file changed in between) starts once more from zero.
    const samePart = meta && !meta.complete && (!remote.etag || !meta.etag || remote.etag === meta.etag) && (remote.size === undefined || remote.size === meta.size)
    for (let attempt = 0; ; attempt++) {
      const sink = await this.store.openSink(key)
      const resumed = sink.offset > 0 && samePart && attempt === 0
      try {
        if (sink.offset > 0 && !resumed) await sink.reset()
        await this.store.writeMeta(key, { url, complete: false, size: remote.size, sha256, etag: remote.etag })
        const r = await download(url, sink, { ...opts, file, size: remote.size, sha256, pieces: !this.store.fingerprint && HAS_SUBTLE })
        await sink.close()
        await this.store.commit(key)
        const done: EntryMeta = {
          url, complete: true, size: r.size, sha256: r.sha256, etag: remote.etag, time: new Date().toISOString(),
          verified: await this.store.fingerprint?.(key), // hashed as it arrived
          pieceSha256: r.pieces,
        }
        await this.store.writeMeta(key, done)
        return this.entryOf(key, done)
      } catch (e) {
        await sink.close().catch(() => {})
        if (!(e instanceof IntegrityError)) throw e // aborted or broken: the part stays for a resume
        await this.store.remove(key) // wrong bytes are never kept
        if (!resumed) throw e
      }
    }
  }

  /** Checks a complete entry's bytes; a corrupt one is removed (and so fetched again). */
  private async verify(key: string, meta: EntryMeta, file: string, opts: FetchOptions): Promise<boolean> {
    const print = await this.store.fingerprint?.(key) // taken before reading: a write meanwhile changes it
    const trusted = opts.verify === false || !meta.sha256 || (opts.verify !== 'always' && print !== undefined && print === meta.verified)
    const src = await this.store.open(key, meta.url)
    let ok: boolean
    try {
      const onBytes = (loaded: number) => opts.onProgress?.({ phase: 'read', file, loaded, total: src.size })
      ok = src.size === meta.size && (trusted || (meta.pieceSha256 && HAS_SUBTLE
        ? await piecesMatch(src, meta.pieceSha256, opts.signal, onBytes)
        : meta.sha256 === await sha256OfSource(src, opts.signal, onBytes)))
    } finally {
      await src.close?.()
    }
    if (!ok) {
      await this.store.remove(key)
      return false
    }
    if (!trusted && print !== undefined) await this.store.writeMeta(key, { ...meta, verified: print })
    return true
  }

  private entryOf(key: string, m: EntryMeta): CacheEntry {
    return { url: m.url, size: m.size!, sha256: m.sha256, complete: true, time: m.time, path: this.store.localPath?.(key) }
  }
}

/**
 * A URL's key: its host and path as a relative path of safe names (`huggingface.co/owner/
 * repo/resolve/main/file.gguf`), so a hub folder's files share one directory.
 */
export function cacheKey(url: string): string {
  const u = new URL(url)
  const safe = (s: string) => { const t = s.replace(/[^\w.-]/g, '_'); return t === '.' || t === '..' ? '_' : t }
  const segs = u.pathname.split('/').filter(Boolean).map((s) => safe(decodeURIComponent(s)))
  let key = [safe(u.host), ...segs].join('/') + (u.pathname.endsWith('/') || segs.length === 0 ? '/index' : '')
  if (u.search) key += `_${fnv1a(u.search)}`
  return key
}

/** 32-bit FNV-1a, hex (tells query strings apart in keys). */
function fnv1a(s: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return (h >>> 0).toString(16).padStart(8, '0')
}
