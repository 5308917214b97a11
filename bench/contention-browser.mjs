#!/usr/bin/env node
// The demo page in Chromium on a busy machine: tiny-dev decode tok/s with the page's default
// thread count (adaptive), 1 and 2 threads, quiet and with a busy Worker (`for(;;){}`) running in
// another page of the same browser.
//
// node contention-browser.mjs [--loads 0,1] [--runs 3] [--n 128]
//
// Needs Debian's chromium (/usr/bin/chromium) and playwright-core from ../test/runtimes
// (`npm ci --prefix test/runtimes`). Each measurement opens a fresh page (the engine runs in the
// demo's `bitnet-wasm/worker`), loads tiny-dev and generates n tokens greedily; the page's own
// `timings.decodeTokensPerSecond` is read from #speed. Configurations interleave; medians reported.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(path.join(HERE, '../test/runtimes/package.json'))
const { chromium } = require('playwright-core')

const { values: opt } = parseArgs({
  options: {
    loads: { type: 'string', default: '0,1' },
    runs: { type: 'string', default: '3' },
    n: { type: 'string', default: '128' },
  },
})
const CONFIGS = { default: undefined, 't 1': '1', 't 2': '2' }

function startServer() {
  const proc = spawn(process.execPath, [path.join(HERE, '../demo/serve.mjs'), '--port', '0'])
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`demo server exited with ${code}`)))
    proc.stdout.on('data', (d) => {
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(String(d))
      if (m) resolve({ url: m[0], proc })
    })
  })
}

const server = await startServer()
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
    '--disable-component-update', '--disable-sync'],
})
const version = browser.version()

/** Opens a page whose Worker spins forever: one CPU-bound competitor inside the same browser. */
async function busyPage() {
  const page = await browser.newPage()
  await page.goto(`${server.url}/demo/`)
  await page.evaluate(() => { globalThis.busy = new Worker(URL.createObjectURL(new Blob(['for(;;){}'], { type: 'text/javascript' }))) })
  return page
}

async function measure(threads) {
  const page = await browser.newPage()
  try {
    const q = new URLSearchParams({ model: '/test/fixtures/tiny-dev/ggml-model-i2_s.gguf', prompt: 'In the beginning God created', n: opt.n, temp: '0', ignoreEos: '', autorun: '' })
    if (threads) q.set('threads', threads)
    await page.goto(`${server.url}/demo/?${q}`)
    await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 300_000 })
    const speed = await page.textContent('#speed')
    const status = await page.textContent('#status')
    const m = /generation ([\d.]+) tokens\/s/.exec(speed ?? '')
    if (!m) throw new Error(`no speed on the page: ${status} ${speed}`)
    return { tg: Number(m[1]), status }
  } finally {
    await page.close()
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const loads = opt.loads.split(',').map(Number)
const res = {}
try {
  for (let run = 1; run <= Number(opt.runs); run++) {
    for (const load of loads) {
      for (const [name, threads] of Object.entries(CONFIGS)) {
        const busy = await Promise.all(Array.from({ length: load }, busyPage))
        await new Promise((r) => setTimeout(r, 300))
        try {
          const r = await measure(threads)
          ;(res[`${load}|${name}`] ??= []).push(r.tg)
          process.stderr.write(`run ${run}, ${load} busy, ${name}: ${r.tg} tok/s (${r.status})\n`)
        } finally {
          await Promise.all(busy.map((p) => p.close()))
        }
      }
    }
  }
} finally {
  await browser.close()
  server.proc.kill()
}
const cores = (await import('node:os')).availableParallelism()
const lines = [
  `${new Date().toISOString()} · Chromium ${version} · ${cores} cores · demo page, tiny-dev, ${opt.n} tokens greedy, median of ${opt.runs}; decode tok/s`,
  '',
  `| threads | ${loads.map((l) => `${l} busy Worker${l === 1 ? '' : 's'}`).join(' | ')} |`,
  `|---|${loads.map(() => '---:').join('|')}|`,
  ...Object.keys(CONFIGS).map((name) => `| ${name === 'default' ? 'default (adaptive)' : name.replace('t ', '')} | ${loads.map((l) => median(res[`${l}|${name}`]).toFixed(1)).join(' | ')} |`),
  `| default / 1 thread | ${loads.map((l) => (median(res[`${l}|default`]) / median(res[`${l}|t 1`])).toFixed(2) + '×').join(' | ')} |`,
]
process.stdout.write(lines.join('\n') + '\n')
