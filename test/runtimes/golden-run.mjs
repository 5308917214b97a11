// Runs in an empty folder where the packed tarball is installed, under Node, Deno or Bun
// (test/runtimes.test.ts copies it there with args.mjs beside it). Prints one JSON line
// per way of running: in this thread on 2 threads, then in a Worker where one exists.
import { readFile } from 'node:fs/promises'
import { loadModel } from 'bitnet-wasm'
import { loadModelInWorker } from 'bitnet-wasm/worker'
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

await report('in-thread', await loadModel(MODEL, { threads: 2 }))
if (typeof Worker !== 'undefined') await report('worker', await loadModelInWorker(new Uint8Array(await readFile(MODEL)), { threads: 2 }))
