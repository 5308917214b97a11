// Entry for esbuild, which does not follow `new URL(…, import.meta.url)`: the README's two
// options point at the package's files, copied next to the bundle.
import { run } from './app.js'
run({ wasm: '/', assets: { computeWorker: '/bitnet-worker.browser.js' } })
