// A single-file executable (README, "bun build --compile"): packaged.test.ts compiles it in a
// folder where the packed tarball is installed, with the compute worker as a second entry:
//   bun build --compile app.mjs ./node_modules/bitnet-wasm/dist/bitnet-worker.js --outfile app
// The kernel binary is embedded as a file and passed as bytes; the compute worker is the
// embedded entry, found next to this script inside the executable.
import { loadModel } from 'bitnet-wasm'
import wasmFile from 'bitnet-wasm/wasm/bitnet-relaxed.wasm' with { type: 'file' }
import { MODEL, PROMPT, MAX_TOKENS } from './args.mjs'

const model = await loadModel(MODEL, {
  threads: 2,
  wasm: new Uint8Array(await Bun.file(wasmFile).arrayBuffer()),
  variant: 'relaxed',
  assets: { computeWorker: new URL('./node_modules/bitnet-wasm/dist/bitnet-worker.js', import.meta.url) },
})
const r = await model.generate(PROMPT, { maxTokens: MAX_TOKENS, temperature: 0, ignoreEos: true })
console.log(JSON.stringify({ variant: model.variant, threads: model.threads, tokens: r.tokens, text: r.text }))
await model.dispose()
