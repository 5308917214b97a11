/**
 * Model ids and URLs → files in the cache (or memory): the part of loading that talks to
 * servers. Design: a URL is downloaded to the cache completely (progress 'download'),
 * verified, then read from there like a local file. The loader reads tensors by offset in
 * its own order, not the file's, so streaming the response straight into wasm memory would
 * need the whole file buffered anyway; going through the cache costs one disk write and
 * gives resume, offline use and integrity for free.
 */
import { InvalidArgumentError } from '../errors.js'
import { ModelCache, type CacheEntry, type CacheOptions, type FetchOptions } from './cache.js'
import { download, MemorySink, probe, rangeSource } from './download.js'
import { hubHeaders, isHubId, resolveHubFiles, resolveUrl } from './hub.js'
import type { ModelFolder } from '../model/load-hf.js'
import { bytesSource, type ByteSource } from './source.js'

export interface RemoteOptions extends CacheOptions, FetchOptions {
  /**
   * The cache to use: a {@link ModelCache}, true (default: the runtime's default cache) or
   * false (download into one memory buffer of the file's size, nothing stored; no resume
   * across calls, no offline use).
   */
  cache?: boolean | ModelCache
  /** Files downloaded at once (HF folders, shards). Default 4. */
  concurrency?: number
}

/** A model's files, fetched. */
export interface PulledModel {
  /** 'gguf': one file; 'folder': an HF safetensors folder. */
  kind: 'gguf' | 'folder'
  /** Every file, in the order resolved (the GGUF first). */
  entries: CacheEntry[]
  /** On disk: the GGUF file or the folder (Node/Deno/Bun). */
  path?: string
  /** The URL the files' paths are relative to (`…/resolve/{rev}/` for the hub). */
  base: string
}

/** True for strings that name a remote model (`hf:…`, http(s) URLs). */
export function isRemote(source: string): boolean {
  return isHubId(source) || /^https?:\/\//i.test(source)
}

/**
 * Fetches every file of `id` (an `hf:` id or a URL) into the cache, several at once, and
 * returns the cache entries. Files already cached and verified are not downloaded again.
 *
 * @example
 * ```ts
 * import { pullModel } from 'bitnet-wasm'
 * const { path } = await pullModel('hf:microsoft/bitnet-b1.58-2B-4T-gguf/ggml-model-i2_s.gguf', {
 *   onProgress: (p) => console.log(p.file, p.loaded, p.total),
 * })
 * ```
 */
export async function pullModel(id: string, opts: RemoteOptions = {}): Promise<PulledModel> {
  if (!isRemote(id)) throw new InvalidArgumentError(`'${id}' is neither an hf: id nor an http(s) URL`)
  const cache = opts.cache instanceof ModelCache ? opts.cache : await ModelCache.open(opts)
  const { kind, urls, headers, base } = await resolveRemote(id, opts)
  const entries = await mapLimit(urls, opts.concurrency ?? 4, (url) => cache.ensure(url, { ...opts, headers }))
  // A folder's files share one cache directory (keys follow the URL path).
  const first = entries[0].path
  return { kind, entries, base, path: kind === 'folder' ? first?.replace(/[\\/][^\\/]*$/, '') : first }
}

/**
 * Opens a remote model for loading: a GGUF as a ByteSource, an HF folder as a ModelFolder
 * over its cached files; through the cache, or (GGUF only) in memory with `cache: false`.
 */
export async function openRemote(id: string, opts: RemoteOptions = {}): Promise<ByteSource | ModelFolder> {
  if (opts.cache === false) {
    const { kind, urls, headers } = await resolveRemote(id, opts)
    if (kind !== 'gguf') throw new InvalidArgumentError(`${id} is an HF folder; folders need the cache (cache: true)`)
    const info = await probe(urls[0], headers, opts.signal)
    if (opts.beforeDownload && info.size !== undefined) await opts.beforeDownload(rangeSource(urls[0], info.size, headers, opts.signal))
    const sink = new MemorySink(info.size)
    await download(urls[0], sink, { ...opts, headers, file: urls[0].split('/').pop(), size: info.size, sha256: opts.sha256 ?? info.sha256 })
    return bytesSource(sink.bytes(), urls[0])
  }
  const cache = opts.cache instanceof ModelCache ? opts.cache : await ModelCache.open(opts)
  const pulled = await pullModel(id, { ...opts, cache })
  if (pulled.kind === 'gguf') return cache.open(pulled.entries[0].url)
  // Folder files by their path in the repo: the entries' URLs end with /resolve/{rev}/{path}.
  const byFile = new Map(pulled.entries.map((e) => [decodeURIComponent(e.url.slice(pulled.base.length)), e.url]))
  return { name: id, open: async (file) => { const url = byFile.get(file); return url ? cache.open(url) : undefined } }
}

async function resolveRemote(id: string, opts: RemoteOptions): Promise<{ kind: 'gguf' | 'folder'; urls: string[]; base: string; headers?: Record<string, string> }> {
  if (!isHubId(id)) return { kind: 'gguf', urls: [id], base: id.replace(/[^/]*$/, ''), headers: opts.headers }
  const hub = await resolveHubFiles(id, opts)
  return {
    kind: hub.kind,
    urls: hub.files.map((f) => resolveUrl(hub.repo, f, hub.revision, opts)),
    base: resolveUrl(hub.repo, '', hub.revision, opts),
    headers: { ...hubHeaders(opts), ...opts.headers },
  }
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => { while (next < items.length) { const i = next++; out[i] = await fn(items[i]) } }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
