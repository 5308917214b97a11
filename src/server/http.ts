/**
 * `bitnet serve`: an OpenAI-compatible HTTP server on node:http.
 *
 *   POST /v1/chat/completions, POST /v1/completions   (JSON, or SSE with `stream: true`)
 *   POST /v1/embeddings                                (pooled per `embedding`, computed at once)
 *   GET  /v1/models, GET /health
 *
 * A request tokenizes its prompt, takes a slot (SlotPool: `parallel` sessions, bounded
 * queue → 429 when full, 503 after waiting too long), generates on that slot's session and
 * gives it back. Sessions take turns per token (StepScheduler), so concurrent streams stay
 * separate. A client that disconnects aborts its generation (freed within one token) or
 * leaves the queue; a request running past `timeoutMs` is cut like `max_tokens`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BitnetModel } from '../api/bitnet-model.js'
import type { EmbedOptions } from '../api/options.js'
import { BitnetError, InvalidArgumentError, PayloadTooLargeError, RequestTimeoutError, TimeoutError } from '../errors.js'
import type { Logger } from '../logger.js'
import {
  completion, DEFAULT_EMBEDDING, embeddingResponse, modelList, newMeta, parseEmbeddingRequest, parseRequest, preparePrompt, responseChunks, type CompletionRequest, type Kind,
} from '../openai/wire.js'
import { SlotPool } from './slots.js'

export interface ServeOptions {
  /** Interface to bind. Default 127.0.0.1 (local only). */
  host?: string
  /** Port; 0 picks a free one. Default 8080. */
  port?: number
  /** Require `Authorization: Bearer <apiKey>` (except on /health). */
  apiKey?: string
  /** Sequences generating at once, each with its own KV cache. Default 1. */
  parallel?: number
  /** Requests waiting for a slot before 429. Default 64. */
  maxQueue?: number
  /** Largest request body in bytes (413 above). Default 1 MiB. */
  maxBodyBytes?: number
  /** Time for a request body to arrive once its headers have (408 JSON after it: slowloris). Default 10 000 ms. */
  bodyTimeoutMs?: number
  /** Longest wait for a slot (503) and longest generation (cut, finish_reason 'length'). Default 600 000 ms. */
  timeoutMs?: number
  /** Send `Access-Control-Allow-Origin: *` and answer preflight requests. */
  cors?: boolean
  /** Name reported by /v1/models and in responses. */
  modelId?: string
  /**
   * Speculative decoding for every completion (GenerateOptions.draft): 'prompt-lookup' drafts
   * the tokens that followed a repeated n-gram and verifies them in one pass; responses are
   * the same, faster where answers quote their input. Default false.
   */
  draft?: 'prompt-lookup' | false
  /** How /v1/embeddings pools (see BitnetModel.embed). Default {@link DEFAULT_EMBEDDING}. */
  embedding?: EmbedOptions
  logger?: Logger
}

/** A running server. */
export interface BitnetServer {
  readonly server: Server
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string
  /** Stops accepting requests, aborts running ones, frees the slots (not the model). */
  close(): Promise<void>
}

const STATUS: Record<string, number> = {
  REQUEST_TIMEOUT: 408, INVALID_ARGUMENT: 400, CONTEXT_FULL: 400, UNSUPPORTED: 400, QUEUE_FULL: 429, TIMEOUT: 503, PAYLOAD_TOO_LARGE: 413,
}

/**
 * Starts the server and resolves once it listens.
 *
 * @example
 * ```ts
 * const model = await loadModel('ggml-model-i2_s.gguf')
 * const srv = await serve(model, { port: 8080, parallel: 4 })
 * // new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'none' }).chat.completions.create(…)
 * ```
 */
export async function serve(model: BitnetModel, opts: ServeOptions = {}): Promise<BitnetServer> {
  const parallel = opts.parallel ?? 1
  const ctx: Served = {
    model, opts, modelId: opts.modelId ?? 'bitnet', timeoutMs: opts.timeoutMs ?? 600_000,
    pool: new SlotPool(model, { parallel, maxQueue: opts.maxQueue ?? 64 }), running: new Set(),
  }
  const log = opts.logger
  const server = createServer((req, res) => {
    const t0 = performance.now()
    res.on('finish', () => log?.info?.(`${req.method} ${req.url} ${res.statusCode}`, { ms: Math.round(performance.now() - t0) }))
    handle(ctx, req, res).catch((e) => { if (!res.destroyed) sendError(res, e, log) })
  })
  const url = await listen(server, opts)
  log?.info?.(`listening on ${url}`, { parallel, model: ctx.modelId })
  return {
    server,
    url,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const ac of ctx.running) ac.abort()
      server.closeIdleConnections()
      await closed
      ctx.pool.dispose()
    },
  }
}

/** What the request handlers of one server share. */
interface Served {
  model: BitnetModel
  opts: ServeOptions
  modelId: string
  timeoutMs: number
  pool: SlotPool
  /** One controller per running generation: server close aborts them. */
  running: Set<AbortController>
}

/** Binds the server; resolves with its URL. */
async function listen(server: Server, opts: ServeOptions): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  server.requestTimeout = 60_000 // to receive a whole request (headers + body)
  const addr = server.address() as AddressInfo
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
}

/** Routes one request: CORS preflight, health, API key, models, embeddings, completions. */
async function handle(ctx: Served, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { opts, model, modelId } = ctx
  if (opts.cors && cors(req, res)) return
  const path = (req.url ?? '/').split('?')[0]
  if (req.method === 'GET' && path === '/health') return sendJson(res, 200, { status: 'ok', slots: ctx.pool.stats })
  if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
    return sendJson(res, 401, { error: { message: 'invalid or missing API key', type: 'authentication_error', param: null, code: 'invalid_api_key' } })
  }
  if (req.method === 'GET' && path === '/v1/models') {
    return sendJson(res, 200, modelList(modelId))
  }
  if (path === '/v1/embeddings' && req.method === 'POST') {
    const body = await readJson(req, opts.maxBodyBytes ?? 1 << 20, opts.bodyTimeoutMs ?? 10_000)
    return sendJson(res, 200, embeddingResponse(model, parseEmbeddingRequest(body, model.config.nEmbd), modelId, opts.embedding ?? DEFAULT_EMBEDDING))
  }
  const kind: Kind | undefined = path === '/v1/chat/completions' ? 'chat' : path === '/v1/completions' ? 'text' : undefined
  if (!kind) return sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error', param: null, code: 'not_found' } })
  if (req.method !== 'POST') return sendJson(res, 405, { error: { message: `use POST for ${path}`, type: 'invalid_request_error', param: null, code: 'method_not_allowed' } })
  const body = await readJson(req, opts.maxBodyBytes ?? 1 << 20, opts.bodyTimeoutMs ?? 10_000)
  await generate(ctx, parseRequest(kind, body), res)
}

/** Allows any origin; answers a preflight request (returns true: nothing more to do). */
function cors(req: IncomingMessage, res: ServerResponse): boolean {
  res.setHeader('Access-Control-Allow-Origin', '*')
  if (req.method !== 'OPTIONS') return false
  res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Authorization, Content-Type', 'Access-Control-Max-Age': '600' })
  res.end()
  return true
}

/** A completion on a slot, cut by client disconnect, the time limit or server close. */
async function generate(ctx: Served, r: CompletionRequest, res: ServerResponse): Promise<void> {
  const { model, pool, running, timeoutMs } = ctx
  const { tokens, maxTokens } = preparePrompt(model, r)
  const ac = new AbortController()
  running.add(ac)
  const onClose = () => { if (!res.writableFinished) ac.abort() }
  res.on('close', onClose)
  const timer = setTimeout(() => ac.abort(new TimeoutError(`the request took longer than ${timeoutMs} ms`)), timeoutMs)
  try {
    const slot = await pool.acquire(tokens, ac.signal)
    try {
      const gen = slot.session.generate(tokens, { ...r.options, draft: ctx.opts.draft, maxTokens, signal: ac.signal })
      const meta = newMeta(r.kind, ctx.modelId)
      if (!r.stream) return sendJson(res, 200, completion(r.kind, meta, await gen, model.tokenizer))
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' })
      const send = (v: unknown) => { if (!res.destroyed) res.write(`data: ${JSON.stringify(v)}\n\n`) }
      try {
        for await (const c of responseChunks(r, meta, gen, model.tokenizer)) send(c)
      } catch (e) {
        send(errorBody(e))
      }
      res.end('data: [DONE]\n\n')
    } finally {
      pool.release(slot)
    }
  } finally {
    clearTimeout(timer)
    res.off('close', onClose)
    running.delete(ac)
  }
}

function sendError(res: ServerResponse, e: unknown, log: Logger | undefined): void {
  if (res.headersSent) return void res.end()
  const status = e instanceof BitnetError ? STATUS[e.code] ?? 500 : 500
  if (status === 500) log?.error?.('request failed', { error: e instanceof Error ? e.stack : String(e) })
  if (status === 429) res.setHeader('Retry-After', '1')
  if (status === 408 || status === 413) res.setHeader('Connection', 'close') // the rest of the body is not read
  sendJson(res, status, errorBody(e))
}

function errorBody(e: unknown): { error: Record<string, unknown> } {
  const err = e as { code?: string; param?: string; openaiCode?: string; message?: string }
  const code = e instanceof BitnetError ? e.code : 'INTERNAL'
  const type = STATUS[code] === 400 || STATUS[code] === 408 || STATUS[code] === 413 ? 'invalid_request_error' : code === 'INTERNAL' ? 'server_error' : 'rate_limit_error'
  const message = e instanceof BitnetError ? e.message : 'internal error'
  return { error: { message, type, param: err.param ?? null, code: err.openaiCode ?? code.toLowerCase() } }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

// Reads a JSON body of at most `limit` bytes (413 beyond, without reading the rest) that must
// arrive within `timeoutMs` (408 after, the connection is then closed: a slowloris client
// cannot hold it open) and be valid UTF-8 (400, as invalid JSON, otherwise).
async function readJson(req: IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new PayloadTooLargeError(limit)
  const parts: Buffer[] = []
  let size = 0
  const read = (async () => {
    for await (const part of req as AsyncIterable<Buffer>) {
      size += part.length
      if (size > limit) throw new PayloadTooLargeError(limit)
      parts.push(part)
    }
  })()
  read.catch(() => {}) // after a timeout nobody awaits it; the socket is closed with the 408
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new RequestTimeoutError(timeoutMs)), timeoutMs) })
  try {
    await Promise.race([read, late])
  } finally {
    clearTimeout(timer)
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts)))
  } catch {
    throw new InvalidArgumentError('the request body is not valid UTF-8 JSON')
  }
}
