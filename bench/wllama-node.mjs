// Runs @wllama/wllama (llama.cpp compiled to wasm, built for browsers) in Node.
//
// What wllama expects from a browser, and what stands in for it here:
//  - `Worker` that runs a blob: URL of classic-script code, with `postMessage`/`onmessage` globals:
//    BrowserWorker below, over worker_threads; the code is written to a temp .cjs file.
//  - pthreads: the emscripten glue detects Node itself and spawns worker_threads from
//    `Module.mainScriptUrlOrBlob`, which wllama sets to a Blob (worker_threads cannot load
//    blob: URLs), so the 'module.init' message gets a file path to the same code instead.
//  - `navigator` (Node 20 has none), `self.location` (to resolve the wasm path): plain objects.
//  - The model: a file-backed Blob from fs.openAsBlob (wllama reads it in slices).
// Node 20's V8 has neither memory64 nor JSPI, which wllama's default build needs, so wllama
// picks its "compat" build (wasm32 + Asyncify, package @wllama/wllama-compat); we point it to the
// local copy instead of its CDN default. Threads: wllama's own check (SharedArrayBuffer + atomics)
// passes in Node, so it runs llama.cpp's threadpool on emscripten pthreads.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { resolveObjectURL } from 'node:buffer'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker as ThreadWorker } from 'node:worker_threads'

const require = createRequire(import.meta.url)
const codeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wllama-node-'))
process.on('exit', () => fs.rmSync(codeDir, { recursive: true, force: true }))
let nFiles = 0

/** Writes worker code to a .cjs file (CommonJS: the emscripten glue uses `require` under Node). */
function codeFile(code) {
  const file = path.join(codeDir, `w${nFiles++}.cjs`)
  fs.writeFileSync(file, code)
  return file
}

// Makes the code a browser-style worker: `self`, `postMessage(data, transfer)`, `onmessage`, `navigator`.
const WORKER_PRELUDE = `
const { parentPort: __port } = require('node:worker_threads');
globalThis.self = globalThis;
globalThis.postMessage = (data, transfer) => __port.postMessage(data, Array.isArray(transfer) ? transfer : transfer?.transfer);
__port.on('message', (data) => globalThis.onmessage?.({ data }));
// No WebGPU: ggml's webgpu backend asks navigator.gpu for an adapter and skips itself on null.
globalThis.navigator ??= { hardwareConcurrency: ${os.cpus().length}, userAgent: 'Node.js' };
navigator.gpu = { requestAdapter: async () => null };
`

/** The subset of the browser Worker API wllama uses. */
class BrowserWorker {
  constructor(url) {
    this.onmessage = null
    this.onerror = null
    // Everything below is async (reading the blob), so messages are chained to keep their order.
    this.ready = resolveObjectURL(url).text().then((code) => {
      this.worker = new ThreadWorker(codeFile(WORKER_PRELUDE + code))
      this.worker.on('message', (data) => this.onmessage?.({ data }))
      this.worker.on('error', (e) => (this.onerror ? this.onerror(e) : console.error(e)))
    })
  }

  postMessage(data, transfer) {
    const list = Array.isArray(transfer) ? transfer : transfer?.transfer
    this.ready = this.ready.then(async () => {
      if (data?.verb === 'module.init' && data.args[0] instanceof Blob) {
        data = { ...data, args: [codeFile(await data.args[0].text()), ...data.args.slice(1)] }
      }
      this.worker.postMessage(data, list)
    })
  }

  terminate() {
    this.ready.then(() => this.worker.terminate())
  }
}

function installBrowserGlobals() {
  globalThis.Worker ??= BrowserWorker
  // navigator exists from Node 21 on; wllama reads hardwareConcurrency and userAgent from it.
  if (!globalThis.navigator) globalThis.navigator = { hardwareConcurrency: os.cpus().length, userAgent: `Node.js/${process.version}` }
  globalThis.self ??= globalThis
  self.location ??= { href: pathToFileURL(process.cwd() + '/').href }
}

/**
 * Loads `modelPath` in wllama with `threads` threads; returns { wllama, info } where info says
 * which build and how many threads it really uses.
 */
export async function loadWllama(modelPath, { threads = 1, contextSize = 256, batchSize = 128 } = {}) {
  installBrowserGlobals()
  const { Wllama } = await import('@wllama/wllama/esm/index.js') // its package.json "main" (index.js) is not in the tarball
  const wasmDir = path.dirname(require.resolve('@wllama/wllama/esm/wasm/wllama.wasm'))
  const compatDir = path.join(path.dirname(require.resolve('@wllama/wllama-compat/package.json')), 'wasm')
  const quiet = process.env.WLLAMA_DEBUG ? console : { debug() {}, log() {}, warn() {}, error: console.error }
  const wllama = new Wllama({ default: pathToFileURL(path.join(wasmDir, 'wllama.wasm')).href }, {
    logger: quiet,
    suppressNativeLog: !process.env.WLLAMA_DEBUG,
    // Its model cache needs a browser storage backend; we never download, so it is never used.
    cacheManager: {},
  })
  // Used only when the runtime lacks memory64 or JSPI (Node 20); a no-op on runtimes that have both.
  wllama.setCompat({ wasm: pathToFileURL(path.join(compatDir, 'wllama.wasm')).href, worker: { code: fs.readFileSync(path.join(compatDir, 'wllama.js'), 'utf8') } })
  const blob = await fs.openAsBlob(modelPath)
  await wllama.loadModel([blob], { n_threads: threads, n_ctx: contextSize, n_batch: batchSize, n_gpu_layers: 0, n_parallel: 1 })
  const compat = wllama.getWorkerResources().compat
  return { wllama, info: { build: compat ? 'compat (wasm32 + Asyncify)' : 'default (memory64 + JSPI)', threads: wllama.getNumThreads(), multithread: wllama.isMultithread() } }
}
