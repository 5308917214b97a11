// The demo page: the engine runs in a Worker (bitnet-wasm/worker), so the page stays
// responsive while it decodes. Query parameters drive it from tests:
//   ?model=URL&prompt=…&n=32&temp=0&threads=2&autorun=1
import { loadModelInWorker } from '../dist/worker.js'

const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(location.search)
let model
let stopper

$('runtime').textContent = globalThis.crossOriginIsolated
  ? `Cross-origin isolated: WebAssembly threads available (${navigator.hardwareConcurrency} cores).`
  : 'Not cross-origin isolated: the engine will run on one thread.'

function setState(state, status) {
  document.body.dataset.state = state
  if (status) $('status').textContent = status
}

/** A URL's body as a Blob, with the download on the progress bar. */
async function download(url) {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  const total = Number(res.headers.get('content-length')) || 0
  const parts = []
  let loaded = 0
  for await (const chunk of res.body) {
    parts.push(chunk)
    loaded += chunk.byteLength
    if (total) $('progress').value = loaded / total
    $('status').textContent = `Downloading ${(loaded / 2 ** 20).toFixed(1)} MiB${total ? ` of ${(total / 2 ** 20).toFixed(1)}` : ''}`
  }
  return new Blob(parts)
}

async function load() {
  const file = $('file').files[0]
  const url = $('url').value.trim()
  if (!file && !url) { setState('idle', 'Pick a model file or give its URL.'); return }
  $('load').disabled = $('go').disabled = true
  $('warnings').textContent = ''
  try {
    await model?.dispose()
    model = undefined
    setState('loading', 'Loading…')
    const source = file ?? await download(url)
    const threads = params.get('threads') ? Number(params.get('threads')) : undefined
    const t0 = performance.now()
    model = await loadModelInWorker(source, {
      threads,
      onProgress: (p) => {
        $('progress').value = p.total ? p.loaded / p.total : 0
        $('status').textContent = `${p.phase} ${p.file}`
      },
      logger: { warn: (m) => { $('warnings').textContent += m + '\n' } },
    })
    $('progress').value = 1
    setState('ready', `Loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${model.config.nLayer} layers, ` +
      `${model.variant} kernels, ${model.threads} thread${model.threads > 1 ? 's' : ''}, context ${model.contextSize}.`)
    $('go').disabled = false
  } catch (e) {
    setState('error', `Load failed: ${e.message}`)
  } finally {
    $('load').disabled = false
  }
}

const history = []

async function generate() {
  $('go').disabled = true
  $('stop').disabled = false
  $('out').textContent = ''
  $('speed').textContent = ''
  stopper = new AbortController()
  const opts = { maxTokens: Number($('n').value), temperature: Number($('temp').value), signal: stopper.signal }
  if (params.has('ignoreEos')) opts.ignoreEos = true
  setState('generating')
  try {
    const prompt = $('prompt').value
    if ($('chat').checked) history.push({ role: 'user', content: prompt })
    const gen = $('chat').checked ? model.chat(history, opts) : model.generate(prompt, opts)
    const t0 = performance.now()
    let n = 0
    for await (const { text } of gen) {
      $('out').textContent += text
      n++
      $('speed').textContent = `${n} tokens, ${(n / ((performance.now() - t0) / 1000)).toFixed(1)} tokens/s`
    }
    const r = await gen
    if ($('chat').checked) history.push({ role: 'assistant', content: r.text })
    $('speed').textContent = `${r.usage.completionTokens} tokens (${r.finishReason}); prompt ${r.timings.promptTokensPerSecond.toFixed(1)} tokens/s, ` +
      `generation ${r.timings.decodeTokensPerSecond.toFixed(1)} tokens/s`
    setState('done')
  } catch (e) {
    setState('error', `Generation failed: ${e.message}`)
  } finally {
    $('go').disabled = false
    $('stop').disabled = true
  }
}

$('load').onclick = load
$('go').onclick = generate
$('stop').onclick = () => stopper?.abort()

if (params.has('model')) $('url').value = params.get('model')
if (params.has('prompt')) $('prompt').value = params.get('prompt')
if (params.has('n')) $('n').value = params.get('n')
if (params.has('temp')) $('temp').value = params.get('temp')
if (params.has('autorun')) {
  await load()
  if (model) await generate()
}
