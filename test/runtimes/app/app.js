// The small app the bundler tests build (test/runtimes/bundlers.test.ts), written as a user
// would: import the package, load a model from the page's origin, generate, show the result.
// #status gets one JSON line the test reads.
import { loadModel } from 'bitnet-wasm'

/** Loads `source` (a URL on the page's origin, or a File) with `options` and generates. */
export async function run(options = {}, source = '/model.gguf') {
  const status = document.getElementById('status')
  const warnings = []
  try {
    const model = await loadModel(source, { threads: 2, logger: { warn: (m) => warnings.push(m) }, ...options })
    const r = await model.generate('In the beginning God created', { maxTokens: 32, temperature: 0, ignoreEos: true })
    document.getElementById('out').textContent = r.text
    status.textContent = JSON.stringify({ state: 'done', threads: model.threads, active: model.transformer.activeThreads, isolated: crossOriginIsolated, warnings })
    await model.dispose()
  } catch (e) {
    status.textContent = JSON.stringify({ state: 'error', message: e.message, warnings })
  }
}
