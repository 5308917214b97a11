// Shared by the runtime tests: the other runtimes' binaries (test/runtimes/package.json),
// headless Chromium and the demo server.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Browser } from 'playwright-core'
import type { ExtraRoutes } from '../helpers/hub-server.js'

const require = createRequire(new URL('./package.json', import.meta.url))

/** Binaries installed by test/runtimes/package.json (with --ignore-scripts: the platform packages' own). */
export const DENO = require.resolve(`@deno/${process.platform}-${process.arch}${process.platform === 'linux' ? '-glibc' : ''}/deno`)
export const BUN = require.resolve(`@oven/bun-${process.platform}-${process.arch === 'arm64' ? 'aarch64' : process.arch}/bin/bun`)
export const PLAYWRIGHT = require.resolve('playwright-core')

/** Debian's Chromium: .ci/run installs it; a developer machine without it skips the browser tests. */
export const CHROMIUM = '/usr/bin/chromium'
export const HAVE_CHROMIUM = existsSync(CHROMIUM) || !!process.env.CI

/**
 * Launches headless Chromium through playwright-core, quiet (no background traffic); `extra`
 * flags added; `executablePath`: a wrapper that starts CHROMIUM (e.g. under a ulimit).
 */
export async function launchChromium(extra: string[] = [], executablePath = CHROMIUM): Promise<Browser> {
  const { chromium } = await import(PLAYWRIGHT) as typeof import('playwright-core')
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', ...extra],
  })
}

const ROOT = new URL('../../', import.meta.url).pathname

/**
 * Hub stand-in routes of a page with the built bundles: '/' loads them into
 * `window.bitnet(Worker)`; /dist/ and /build/ are the package's built files.
 */
export const bundlePage: ExtraRoutes = (path, _req, res) => {
  if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><script type="module">import * as b from "/dist/index.browser.js"; import * as w from "/dist/worker.js"; ' +
      'window.bitnetWorker = w; window.bitnet = b</script>')
    return true
  }
  const m = /^\/(dist\/[\w.-]+\.js|build\/[\w.-]+\.wasm)$/.exec(path)
  if (!m) return false
  res.writeHead(200, { 'content-type': m[1].endsWith('.js') ? 'text/javascript' : 'application/wasm' })
  res.end(readFileSync(ROOT + m[1]))
  return true
}

/** Starts demo/serve.mjs on a free port; resolves with its base URL and the process. */
export function startDemoServer(args: string[] = []): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [new URL('../../demo/serve.mjs', import.meta.url).pathname, '--port', '0', ...args])
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`demo server exited with ${code}`)))
    proc.stdout!.on('data', (d: Buffer) => {
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(String(d))
      if (m) resolve({ url: m[0], proc })
    })
  })
}

/**
 * Serves `dir` on 127.0.0.1 (a free port) as a static host would: Content-Length, HEAD, Range,
 * and the COOP/COEP headers when `isolated`; `extra` maps URL paths to files outside it.
 */
export async function serveStatic(dir: string, isolated: boolean, extra: Record<string, string> = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const { createServer } = await import('node:http')
  const { createReadStream, existsSync, statSync } = await import('node:fs')
  const { extname, join } = await import('node:path')
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' }
  const server = createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    const file = extra[pathname] ?? join(dir, pathname === '/' ? 'index.html' : pathname)
    if (!file.startsWith(dir) && !extra[pathname] || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404).end()
      return
    }
    const size = statSync(file).size
    const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '')
    const start = range ? Number(range[1]) : 0
    const end = range?.[2] ? Number(range[2]) : size - 1
    res.writeHead(range ? 206 : 200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      ...(isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {}),
    })
    if (req.method === 'HEAD') res.end()
    else createReadStream(file, { start, end }).pipe(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

export interface PackInfo { tarball: string; unpackedSize: number; size: number; files: { path: string }[] }

/**
 * `npm pack` into `dest` as `npm publish` packs: the prepack/postpack manifest step runs
 * (the tarball's package.json loses `prepare`), the build does not (npm test's pretest
 * just built dist/ and build/).
 */
export async function packTarball(dest: string): Promise<PackInfo> {
  const run = promisify(execFile)
  const root = new URL('../../', import.meta.url).pathname
  const manifest = join(root, 'scripts', 'pack-manifest.mjs')
  await run(process.execPath, [manifest, 'strip'])
  try {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: root })
    const info = JSON.parse(stdout)[0] as Omit<PackInfo, 'tarball'> & { filename: string }
    return { ...info, tarball: join(dest, info.filename) }
  } finally {
    await run(process.execPath, [manifest, 'restore'])
  }
}
