// Runs in an empty folder where the packed tarball is installed, under Node, Deno or Bun
// (test/runtimes.test.ts copies it there with args.mjs beside it). Prints one JSON line
// per way of running: in this thread on 2 threads, then in a Worker where one exists.
import { readFile } from 'node:fs/promises'
import { loadModel } from 'bitnet-wasm'
import { loadModelInWorker } from 'bitnet-wasm/worker'
import { MODEL, PROMPT, MAX_TOKENS } from './args.mjs'

const opts = { maxTokens: MAX_TOKENS, temperature: 0, ignoreEos: true }

const model = await loadModel(MODEL, { threads: 2 })
let streamed = ''
for await (const { text } of model.generate(PROMPT, opts)) streamed += text
const r = await model.generate(PROMPT, opts)
console.log(JSON.stringify({ how: 'in-thread', variant: model.variant, threads: model.threads, tokens: r.tokens, text: r.text, streamed }))
await model.dispose()

if (typeof Worker !== 'undefined') {
  const bytes = new Uint8Array(await readFile(MODEL))
  const wm = await loadModelInWorker(bytes, { threads: 2 })
  let streamed = ''
  for await (const { text } of wm.generate(PROMPT, opts)) streamed += text
  const r = await wm.generate(PROMPT, opts)
  console.log(JSON.stringify({ how: 'worker', variant: wm.variant, threads: wm.threads, tokens: r.tokens, text: r.text, streamed }))
  await wm.dispose()
}
