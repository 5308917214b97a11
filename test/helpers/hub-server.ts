// A local stand-in for the Hugging Face Hub and a CDN on 127.0.0.1, serving the tiny-dev
// fixtures with the behaviours downloads must survive: Range requests, ETags, a hub
// resolve URL that redirects with x-linked-etag/x-linked-size, the repo-listing API, and
// faults switched on per test (a connection dropped mid-file, a slow body, a wrong hash);
// and virtual files (a big model's real header, zeros behind it) that are never held whole.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { parseGguf } from '../../src/gguf/reader.js'
import { syntheticChunks, type SyntheticShape } from '../../src/model/synthetic.js'
import { TINY_DIR } from './golden.js'

export interface LoggedRequest { method: string; path: string; range?: string; authorization?: string }

export interface Faults {
  /** Drop the connection after this many body bytes of the next full-file response (once). */
  dropAt?: number
  /** Send bodies in 16 KiB pieces with a pause between them. */
  slow?: boolean
  /** Announce this sha256 for LFS files instead of the real one. */
  linkedSha?: string
  /** Ignore Range headers (answer 200 with the whole file). */
  noRange?: boolean
}

/** Repos served: name → files (name in the repo → fixture file). */
const FILES = readdirSync(TINY_DIR).filter((f) => f !== 'golden.json')
const REPOS: Record<string, string[]> = {
  'test/tiny-dev': FILES,
  // the default model's repo, so `bitnet run` without -m is tested against this server
  'microsoft/bitnet-b1.58-2B-4T-gguf': ['ggml-model-i2_s.gguf'],
  'test/tiny-dev-hf': FILES.filter((f) => !f.endsWith('.gguf')),
}
const LFS = (f: string) => f.endsWith('.gguf') || f.endsWith('.safetensors')

const bytesCache = new Map<string, Buffer>()
export function fixtureBytes(file: string): Buffer {
  let b = bytesCache.get(file)
  if (!b) bytesCache.set(file, b = readFileSync(TINY_DIR + file))
  return b
}
export function fixtureSha(file: string): string {
  return createHash('sha256').update(fixtureBytes(file)).digest('hex')
}

/** Routes a test adds beside the hub's (e.g. a page and its scripts); false: not one of them. */
export type ExtraRoutes = (path: string, req: IncomingMessage, res: ServerResponse) => boolean

/** A file of `size` bytes whose first ones are `head` and the rest zeros: a big model's header with no weights behind it. */
export interface VirtualFile { head: Uint8Array; size: number }

/** `shape` as a GGUF (I2_S) VirtualFile: its real header (metadata, tensor directory) and zeros for weights. */
export function virtualModel(shape: SyntheticShape): VirtualFile {
  const head = syntheticChunks(shape).next().value as Uint8Array
  const gguf = parseGguf(head, Number.MAX_SAFE_INTEGER, 'virtual')
  return { head, size: Math.max(...gguf.tensors.map((t) => gguf.dataOffset + t.offset + t.byteSize)) }
}

export class HubServer {
  readonly log: LoggedRequest[] = []
  faults: Faults = {}
  /** Files served at /virtual/{name}, with Range, as the CDN serves fixtures. */
  readonly virtual = new Map<string, VirtualFile>()
  private constructor(private readonly server: Server, readonly url: string, private readonly extra?: ExtraRoutes) {}

  static async start(port = 0, extra?: ExtraRoutes): Promise<HubServer> {
    let hub: HubServer | undefined
    const server = createServer((req, res) => hub!.handle(req, res))
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    hub = new HubServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, extra)
    return hub
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  /** Requests for `path` (GET and HEAD) seen so far. */
  requests(pathEnd: string): LoggedRequest[] {
    return this.log.filter((r) => r.path.endsWith(pathEnd))
  }

  /**
   * What the GETs of `pathEnd` fetched: `downloads` (no Range, or one open to the file's end:
   * `bytes=N-`), `reads` (closed ranges `bytes=a-b`, such as a header's) and the last byte they reached.
   */
  fetched(pathEnd: string): { downloads: number; reads: number; lastByte: number } {
    const ends = this.requests(pathEnd).filter((r) => r.method === 'GET').map((r) => Number(/^bytes=\d+-(\d+)$/.exec(r.range ?? '')?.[1] ?? NaN))
    const reads = ends.filter((n) => !Number.isNaN(n))
    return { downloads: ends.length - reads.length, reads: reads.length, lastByte: Math.max(-1, ...reads) }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url!, this.url).pathname)
    this.log.push({ method: req.method!, path, range: req.headers.range, authorization: req.headers.authorization })
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path)
    if (m && REPOS[m[1]]) {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ id: m[1], sha: 'abc123', siblings: REPOS[m[1]].map((rfilename) => ({ rfilename })) }))
      return
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path)
    if (m && REPOS[m[1]]?.includes(m[3]) && m[2] === 'main') {
      const file = m[3]
      if (LFS(file)) {
        // The hub redirects LFS files to its CDN and states their sha256 and size.
        res.writeHead(302, {
          location: `/cdn/${file}`,
          'x-linked-etag': `"${this.faults.linkedSha ?? fixtureSha(file)}"`,
          'x-linked-size': String(fixtureBytes(file).length),
          etag: `"${fixtureSha(file)}"`,
        })
        res.end()
        return
      }
      this.serveFile(req, res, file, `W/"${fixtureSha(file).slice(0, 40)}"`)
      return
    }
    m = /^\/(?:cdn|plain)\/(.+)$/.exec(path)
    if (m && FILES.includes(m[1])) {
      // the CDN's ETag is not a sha256 (as on S3/CloudFront); /plain/ is a server that gives one
      this.serveFile(req, res, m[1], path.startsWith('/cdn/') ? `"cdn-${fixtureBytes(m[1]).length}"` : `"${fixtureSha(m[1])}"`)
      return
    }
    m = /^\/virtual\/(.+)$/.exec(path)
    const virtual = m && this.virtual.get(m[1])
    if (virtual) {
      this.serveVirtual(req, res, virtual)
      return
    }
    if (this.extra?.(path, req, res)) return
    res.writeHead(404).end('not found')
  }

  /**
   * Answers the status and headers for a file of `size` bytes (Range honoured unless the
   * noRange fault is on); returns the byte range [start, end] to send, or undefined when
   * nothing follows (HEAD, 416).
   */
  private head(req: IncomingMessage, res: ServerResponse, size: number, etag: string, extra: Record<string, string> = {}): { start: number; end: number } | undefined {
    let start = 0, end = size - 1
    const range = this.faults.noRange ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    const headers: Record<string, string> = { etag, 'content-type': 'application/octet-stream', ...extra }
    if (!this.faults.noRange) headers['accept-ranges'] = 'bytes'
    if (range) {
      start = Number(range[1])
      end = range[2] ? Math.min(end, Number(range[2])) : end
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end()
        return undefined
      }
      headers['content-range'] = `bytes ${start}-${end}/${size}`
    }
    headers['content-length'] = String(end - start + 1)
    res.writeHead(range ? 206 : 200, headers)
    if (req.method !== 'HEAD') return { start, end }
    res.end()
    return undefined
  }

  /**
   * A virtual file: its head, then zeros, streamed 1 MiB at a time as the client reads (gigabytes
   * are never held). Not stored by a browser's HTTP cache, which would otherwise answer part of a
   * later request from the ranges read before, so the log shows every byte asked for.
   */
  private serveVirtual(req: IncomingMessage, res: ServerResponse, file: VirtualFile): void {
    const span = this.head(req, res, file.size, `"virtual-${file.size}"`, { 'cache-control': 'no-store' })
    if (!span) return
    const { head } = file, zeros = new Uint8Array(1 << 20)
    function* chunks({ start, end } = span!) {
      for (let o = start; o <= end;) {
        const stop = Math.min(end + 1, o < head.length ? head.length : o + zeros.length)
        yield o < head.length ? head.subarray(o, stop) : zeros.subarray(0, stop - o)
        o = stop
      }
    }
    Readable.from(chunks()).pipe(res)
  }

  private serveFile(req: IncomingMessage, res: ServerResponse, file: string, etag: string): void {
    const bytes = fixtureBytes(file)
    const span = this.head(req, res, bytes.length, etag)
    if (!span) return
    const { start, end } = span
    const body = bytes.subarray(start, end + 1)
    const drop = start === 0 && this.faults.dropAt !== undefined ? this.faults.dropAt : undefined
    if (drop !== undefined) {
      this.faults.dropAt = undefined
      res.write(body.subarray(0, drop), () => res.destroy())
      return
    }
    if (!this.faults.slow) { res.end(body); return }
    let o = 0
    const step = () => {
      if (res.destroyed) return
      if (o >= body.length) { res.end(); return }
      res.write(body.subarray(o, o += 16384))
      setTimeout(step, 5)
    }
    step()
  }
}
