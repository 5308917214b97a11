#!/usr/bin/env node
// Serves the repository (demo/, dist/, build/, test fixtures) on 127.0.0.1 for the browser
// demo, with the two headers that make the page cross-origin isolated, so it gets
// SharedArrayBuffer and so WebAssembly threads:
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
// --no-isolation leaves them out (the engine then runs on one thread and says so).
//   npm run demo [-- --port 8080] [--no-isolation]
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
}

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, 'no-isolation': { type: 'boolean', default: false } } })

const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
  if (path === '/') { res.writeHead(302, { location: '/demo/' }).end(); return }
  const file = normalize(join(ROOT, path.endsWith('/') ? path + 'index.html' : path))
  const headers = values['no-isolation'] ? {} : { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }
  try {
    if (!file.startsWith(ROOT) || file.split(sep).includes('node_modules')) throw new Error('outside')
    const s = await stat(file)
    if (!s.isFile()) throw new Error('not a file')
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': s.size, 'cache-control': 'no-cache' })
    if (req.method === 'HEAD') res.end()
    else createReadStream(file).pipe(res)
  } catch {
    res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found\n')
  }
})

server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address()
  console.log(`bitnet-wasm demo on http://127.0.0.1:${port}/demo/ (${values['no-isolation'] ? 'not ' : ''}cross-origin isolated)`)
})
