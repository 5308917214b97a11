// `bitnet serve` under load and abuse, on 127.0.0.1 with tiny-dev: many concurrent streams,
// slow and oversized bodies, malformed and wrongly typed requests, the API key on every
// route, the bind address, and a client that disconnects mid-stream.
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, type BitnetModel } from '../src/index.js'
import { serve, type BitnetServer } from '../src/server/http.js'
import { TINY_GGUF } from './helpers/golden.js'

const KEY = 'sk-abuse'
let model: BitnetModel
let srv: BitnetServer
beforeAll(async () => {
  model = await loadModel(TINY_GGUF, { threads: 1, contextSize: 256 })
  srv = await serve(model, { port: 0, parallel: 8, maxQueue: 64, apiKey: KEY, maxBodyBytes: 64 << 10, bodyTimeoutMs: 1000 })
}, 120_000)
afterAll(async () => { await srv?.close(); await model?.dispose() })

const auth = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' }
const post = (path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = auth) =>
  fetch(srv.url + path, { method: 'POST', headers, body })
const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ messages: [{ role: 'user', content: 'Who built the ark?' }], temperature: 0, max_tokens: 4, ...extra })

/** Sends raw bytes on a socket and resolves with the whole response text. */
function raw(send: (s: Socket) => void): Promise<string> {
  const u = new URL(srv.url)
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => send(s))
    let out = ''
    s.on('data', (d) => { out += d.toString('latin1') })
    s.on('close', () => resolve(out))
    s.on('error', reject)
  })
}

async function expectJsonError(res: Response, status: number, param?: RegExp): Promise<void> {
  expect(res.status).toBe(status)
  expect(res.headers.get('content-type')).toMatch(/application\/json/)
  const body = await res.json()
  expect(typeof body.error.message).toBe('string')
  if (param) expect(String(body.error.param)).toMatch(param)
}

describe('bitnet serve under abuse', { timeout: 180_000 }, () => {
  it('64 concurrent streaming clients all finish, each making progress, with 0 errors', async () => {
    const firstTokenAt: number[] = []
    const t0 = performance.now()
    const results = await Promise.all(Array.from({ length: 64 }, async (_, i) => {
      const res = await post('/v1/chat/completions', chat({ stream: true, max_tokens: 6, seed: i, temperature: 0.8 }))
      expect(res.status).toBe(200)
      const reader = res.body!.getReader()
      let text = '', chunks = 0
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += new TextDecoder().decode(value)
        if (chunks++ === 1) firstTokenAt[i] = performance.now() - t0
      }
      return text
    }))
    for (const t of results) {
      expect(t).toMatch(/data: \[DONE\]\n\n$/)
      expect(t).not.toMatch(/"error"/)
    }
    expect(firstTokenAt.filter((x) => x !== undefined)).toHaveLength(64)
  })

  it('oversized, malformed, wrongly typed, out-of-range, unknown and non-UTF-8 requests get a JSON 4xx', async () => {
    await expectJsonError(await post('/v1/chat/completions', 'x'.repeat(65 << 10)), 413)
    await expectJsonError(await post('/v1/chat/completions', '{"messages": ['), 400)
    await expectJsonError(await post('/v1/chat/completions', JSON.stringify({ messages: 5 })), 400, /messages/)
    await expectJsonError(await post('/v1/chat/completions', JSON.stringify({ messages: [{ role: 1, content: 'x' }] })), 400, /messages/)
    await expectJsonError(await post('/v1/chat/completions', chat({ max_tokens: -1 })), 400, /max_tokens/)
    await expectJsonError(await post('/v1/chat/completions', chat({ max_tokens: 1e12 })), 400, /max_tokens/)
    await expectJsonError(await post('/v1/chat/completions', chat({ max_tokens: 'many' })), 400, /max_tokens/)
    await expectJsonError(await post('/v1/chat/completions', chat({ temperature: 'hot' })), 400, /temperature/)
    await expectJsonError(await post('/v1/chat/completions', chat({ frobnicate: true })), 400, /frobnicate/)
    const badUtf8 = new Uint8Array([...new TextEncoder().encode('{"messages":[{"role":"user","content":"'), 0xff, 0xfe, ...new TextEncoder().encode('"}]}')])
    await expectJsonError(await post('/v1/chat/completions', badUtf8), 400)
    await expectJsonError(await post('/v1/completions', JSON.stringify({ prompt: [1e9] })), 400, /prompt/)
  })

  it('a slow (slowloris) body is cut with a JSON 408 instead of holding a connection', async () => {
    const t0 = performance.now()
    const out = await raw((s) => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`)
      const timer = setInterval(() => { if (!s.destroyed) s.write(' ') }, 200)
      s.on('close', () => clearInterval(timer))
    })
    expect(out).toMatch(/^HTTP\/1\.1 408/)
    expect(out).toMatch(/"error"/)
    expect(performance.now() - t0).toBeLessThan(30_000) // bounded by the body timeout, not by the client
  })

  it('the API key guards every route except /health', async () => {
    expect((await fetch(srv.url + '/health')).status).toBe(200)
    for (const [method, path] of [['GET', '/v1/models'], ['POST', '/v1/chat/completions'], ['POST', '/v1/completions'], ['GET', '/nope']]) {
      for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: KEY }] as Record<string, string>[]) {
        const res = await fetch(srv.url + path, { method, headers, body: method === 'POST' ? chat() : undefined })
        await expectJsonError(res, 401)
      }
    }
  })

  it('listens on 127.0.0.1 only unless a host is given', async () => {
    expect((srv.server.address() as { address: string }).address).toBe('127.0.0.1')
  })

  it('a client that disconnects mid-stream frees its slot within a token', async () => {
    const res = await post('/v1/chat/completions', chat({ stream: true, max_tokens: 200 }))
    const reader = res.body!.getReader()
    await reader.read()
    await reader.cancel()
    let idle = 0
    for (let i = 0; i < 100 && idle !== 8; i++) {
      await new Promise((r) => setTimeout(r, 20))
      idle = (await (await fetch(srv.url + '/health')).json()).slots.idle
    }
    expect(idle).toBe(8)
  })
})
