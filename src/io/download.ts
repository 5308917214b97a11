/**
 * HTTP downloads that survive broken connections: a probe (HEAD) for size and sha256, then
 * GET with `Range: bytes=N-` from wherever the stored part ends, retried while bytes keep
 * arriving. Bytes go to a {@link Sink} (a `.part` file, an OPFS file, or memory) and through
 * SHA-256 as they arrive; the caller commits the part only after size and hash check out.
 */
import { DownloadError, IntegrityError, NotFoundError } from '../errors.js'
import { createSha256, parseSha256, PieceHasher } from './hash.js'
import type { ByteSource } from './source.js'

/** What the server says about a file before downloading it. */
export interface RemoteInfo {
  size?: number
  /** From `x-linked-etag` (Hugging Face LFS files) or an ETag that is a sha256. */
  sha256?: string
  /** The validator to notice a changed file (`x-linked-etag`, else `etag`). */
  etag?: string
}

/** Where downloaded bytes go; holds a resumable partial download. */
export interface Sink {
  /** Bytes already held from an earlier, interrupted download. */
  readonly offset: number
  /** The held bytes, in order (re-hashed before resuming). */
  existing(): AsyncIterable<Uint8Array>
  write(chunk: Uint8Array): Promise<void>
  /** Drops the held bytes (the server ignored Range, or the file changed). */
  reset(): Promise<void>
  close(): Promise<void>
}

/**
 * The one structured progress event of a load: 'download' (bytes fetched), 'read' (bytes
 * of a cached file re-hashed, or read), 'repack' (bytes of tensors placed in wasm memory),
 * 'compile' (kernel compilation, 0/1 → 1/1). `file` names the file the bytes belong to.
 */
export interface LoadProgress {
  phase: 'download' | 'read' | 'repack' | 'compile'
  file: string
  loaded: number
  total: number
}

export interface DownloadOptions {
  headers?: Record<string, string>
  signal?: AbortSignal
  onProgress?: (p: LoadProgress) => void
  /** Name in progress events. */
  file?: string
  /** Expected size and sha256 (from the probe or the user); checked before returning. */
  size?: number
  sha256?: string
  /** Attempts in a row that bring no new byte before giving up. Default 5. */
  retries?: number
  /** Also return the digest of every 16 MiB piece (for stores that re-check entries on use). */
  pieces?: boolean
}

/** HEAD `url` (redirects not followed where the runtime allows, to read the hub's `x-linked-*`). */
export async function probe(url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<RemoteInfo> {
  let res = await request(url, { method: 'HEAD', headers, redirect: 'manual', signal })
  const linked = res.headers.get('x-linked-etag')
  // The hub's redirect of an LFS file says all we need; other redirects (and browsers,
  // which hide manual redirects as opaqueredirect) are followed.
  const redirect = res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400)
  if (redirect && !linked) res = await request(url, { method: 'HEAD', headers, signal })
  if (!redirect || !linked) {
    if (res.status === 404) throw new NotFoundError(url)
    // Servers that refuse HEAD (405, signed URLs' 403): the GET will say more.
    if (!res.ok) return {}
  }
  const etag = linked ?? res.headers.get('etag') ?? undefined
  const size = Number(res.headers.get('x-linked-size') ?? (res.status === 200 ? res.headers.get('content-length') : NaN))
  return { etag, sha256: parseSha256(linked) ?? parseSha256(res.headers.get('etag')), size: Number.isSafeInteger(size) ? size : undefined }
}

/** Downloads `url` into `sink`, resuming from `sink.offset`; returns the full size and sha256 (and piece digests). */
export async function download(url: string, sink: Sink, opts: DownloadOptions = {}): Promise<{ size: number; sha256: string; pieces?: string[] }> {
  const { signal, size } = opts
  const file = opts.file ?? url
  let hash = await createSha256()
  let pieces = opts.pieces ? new PieceHasher() : undefined
  let offset = 0
  for await (const c of sink.existing()) { hash.update(c); await pieces?.update(c); offset += c.byteLength }
  const restart = async () => { await sink.reset(); hash = await createSha256(); pieces &&= new PieceHasher(); offset = 0 }
  if (size !== undefined && offset > size) await restart()

  let total = size
  let failures = 0
  while (size === undefined || offset < size) {
    signal?.throwIfAborted()
    const start = offset
    try {
      const res = await request(url, { headers: offset ? { ...opts.headers, range: `bytes=${offset}-` } : opts.headers, signal })
      if (offset > 0 && res.status === 416) { await res.body?.cancel(); await restart(); continue }
      check(res, url)
      if (offset > 0 && res.status === 206 && rangeStart(res) !== offset) { await res.body?.cancel(); await restart(); continue }
      // 200 to a Range request: the server sends the whole file again.
      if (offset > 0 && res.status !== 206) await restart()
      total ??= totalSize(res, offset)
      const reader = res.body!.getReader()
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          await sink.write(value)
          hash.update(value)
          await pieces?.update(value)
          offset += value.byteLength
          opts.onProgress?.({ phase: 'download', file, loaded: offset, total: total ?? offset })
        }
      } finally {
        reader.releaseLock()
      }
      if (total === undefined || offset >= total) break
      throw new Error(`the connection closed at byte ${offset} of ${total}`)
    } catch (e) {
      signal?.throwIfAborted()
      if (e instanceof DownloadError && e.status !== undefined && e.status < 500) throw e
      failures = offset > start ? 1 : failures + 1
      if (failures > (opts.retries ?? 5)) {
        throw new DownloadError(url, `download failed at byte ${offset}${total ? ` of ${total}` : ''} after ${failures} attempts: ${(e as Error).message}`, { cause: e })
      }
      await sleep(Math.min(4000, 100 * 2 ** failures), signal)
    }
  }
  if (size !== undefined && offset !== size) throw new IntegrityError(file, 'size', String(size), String(offset))
  const sha256 = hash.hex()
  if (opts.sha256 && sha256 !== opts.sha256) throw new IntegrityError(file, 'sha256', opts.sha256, sha256)
  return { size: offset, sha256, pieces: await pieces?.digests() }
}

/**
 * A remote file of `size` bytes as a ByteSource: each read is one GET of just its bytes
 * (`Range: bytes=a-b`), so reading a GGUF header fetches the header, not the file. A server
 * that ignores Range (200) streams from the start: the bytes before the read are skipped and
 * the body is cancelled after its last byte.
 * @example
 * const gguf = await readGguf(rangeSource(url, info.size!))   // the header only
 */
export function rangeSource(url: string, size: number, headers: Record<string, string> = {}, signal?: AbortSignal): ByteSource {
  const read = async (offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> => {
    const end = Math.min(size, offset + length)
    const out = into && into.byteLength >= end - offset ? into.subarray(0, Math.max(0, end - offset)) : new Uint8Array(Math.max(0, end - offset))
    if (end <= offset) return out
    const res = await request(url, { headers: { ...headers, range: `bytes=${offset}-${end - 1}` }, signal })
    check(res, url)
    if (res.status === 206 && rangeStart(res) !== offset) {
      await res.body?.cancel()
      throw new DownloadError(url, `asked for bytes from ${offset}, the server sent ${res.headers.get('content-range')}`)
    }
    let skip = res.status === 206 ? 0 : offset, filled = 0
    const reader = res.body!.getReader()
    try {
      while (filled < out.length) {
        const { done, value } = await reader.read()
        if (done) break
        const part = value.subarray(Math.min(skip, value.length), Math.min(value.length, skip + out.length - filled))
        skip = Math.max(0, skip - value.length)
        out.set(part, filled)
        filled += part.length
      }
    } finally {
      await reader.cancel().catch(() => {})
    }
    return out.subarray(0, filled)
  }
  return { name: url, size, read }
}

/** fetch() with network failures as DownloadError (aborts pass through). */
async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init)
  } catch (e) {
    init.signal?.throwIfAborted()
    throw new DownloadError(url, `network error: ${(e as Error).message}`, { cause: e })
  }
}

function check(res: Response, url: string): void {
  if (res.status === 404) throw new NotFoundError(url)
  if (res.status === 401 || res.status === 403) {
    throw new DownloadError(url, `access denied (HTTP ${res.status}); gated or private repos need a token (HF_TOKEN)`, { status: res.status })
  }
  if (!res.ok) throw new DownloadError(url, `HTTP ${res.status} ${res.statusText}`, { status: res.status })
}

function rangeStart(res: Response): number {
  return Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN)
}

function totalSize(res: Response, offset: number): number | undefined {
  const fromRange = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN)
  if (Number.isSafeInteger(fromRange)) return fromRange
  const len = Number(res.headers.get('content-length') ?? NaN)
  return Number.isSafeInteger(len) && !res.headers.get('content-encoding') ? offset + len : undefined
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = () => { clearTimeout(t); reject(signal!.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * A sink holding the bytes in one buffer (no cache, or the Cache API's pending part): sized
 * for `expected` bytes up front so a known-size download is never copied, doubled if outgrown.
 */
export class MemorySink implements Sink {
  private buf: Uint8Array<ArrayBuffer>
  offset = 0
  constructor(expected = 1 << 20) {
    this.buf = new Uint8Array(expected)
  }

  async *existing(): AsyncIterable<Uint8Array> {
    if (this.offset > 0) yield this.buf.subarray(0, this.offset)
  }

  async write(chunk: Uint8Array): Promise<void> {
    const end = this.offset + chunk.byteLength
    if (end > this.buf.length) {
      const grown = new Uint8Array(Math.max(end, this.buf.length * 2))
      grown.set(this.buf.subarray(0, this.offset))
      this.buf = grown
    }
    this.buf.set(chunk, this.offset)
    this.offset = end
  }

  async reset(): Promise<void> {
    this.offset = 0
  }

  async close(): Promise<void> {}

  /** The bytes written (a view, not a copy). */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.buf.subarray(0, this.offset)
  }
}
