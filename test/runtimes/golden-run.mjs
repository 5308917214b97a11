// Runs in an empty folder where the packed tarball is installed, under Node, Deno or Bun
// (test/runtimes/packaged.test.ts copies it there with args.mjs beside it). Prints one JSON
// line per way of running: in this thread on 2 threads, then in a Worker (bitnet-wasm/worker)
// from bytes, a path, a file: URL and a Blob, then what an error crossing the Worker looks like (and how console.error shows it). Node has no
// Web Worker: its line is the typed error loadModelInWorker throws.
import { readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { inspect } from 'node:util'
import { loadModel } from 'bitnet-wasm'
import { loadModelInWorker, ModelFormatError, UnsupportedFeatureError } from 'bitnet-wasm/worker'
import { MODEL, PROMPT, MAX_TOKENS } from './args.mjs'

const opts = { maxTokens: MAX_TOKENS, temperature: 0, ignoreEos: true }

/** Generates the prompt streamed and awaited, prints one line, disposes the model. */
async function report(how, model) {
  let streamed = ''
  for await (const { text } of model.generate(PROMPT, opts)) streamed += text
  const r = await model.generate(PROMPT, opts)
  console.log(JSON.stringify({ how, variant: model.variant, threads: model.threads, tokens: r.tokens, text: r.text, streamed }))
  await model.dispose()
}

/** How this runtime's console.error shows a value. */
const shown = globalThis.Deno?.inspect ?? globalThis.Bun?.inspect ?? inspect

/** The rejection of `p` as a line: class, whether it is the package's own, code, message, stack, console rendering. */
async function reportError(how, p, cls) {
  const e = await p.then(() => undefined, (err) => err)
  console.log(JSON.stringify({ how, name: e?.name, typed: e instanceof cls, code: e?.code, message: e?.message, stack: e?.stack ?? '', shown: shown(e) }))
}

await report('in-thread', await loadModel(MODEL, { threads: 2 }))
if (typeof Worker === 'undefined') {
  await reportError('worker-node', loadModelInWorker(MODEL), UnsupportedFeatureError)
} else {
  await report('worker-bytes', await loadModelInWorker(new Uint8Array(await readFile(MODEL)), { threads: 2 }))
  await report('worker-path', await loadModelInWorker(MODEL, { threads: 2 }))
  await report('worker-file-url', await loadModelInWorker(pathToFileURL(MODEL).href, { threads: 2 }))
  await report('worker-blob', await loadModelInWorker(new Blob([await readFile(MODEL)]), { threads: 2 }))
  await reportError('worker-error', loadModelInWorker(new Uint8Array(64)), ModelFormatError)
}
