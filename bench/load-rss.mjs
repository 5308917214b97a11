#!/usr/bin/env node
// Peak RSS while loading a model, as a ratio to the file size (issue 7 target: ≤ 1.15×).
// Usage: node bench/load-rss.mjs [MODEL] [--ctx N] [--output-type auto|f16|q8|q6]
// Default MODEL: the synthetic 2B4T-shape I2_S GGUF that `bitnet bench --shape 2b4t` (or
// `node bench/make-model.mjs`) writes; run `npm run build` first (this imports dist/).
import fs from 'node:fs'
import { parseArgs } from 'node:util'
import { loadModel } from '../dist/index.js'
import { modelPaths } from './make-model.mjs'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { ctx: { type: 'string', default: '256' }, 'output-type': { type: 'string', default: 'auto' } } })
const path = positionals[0] ?? modelPaths().i2s
const size = fs.statSync(path).isDirectory()
  ? fs.readdirSync(path).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + fs.statSync(`${path}/${f}`).size, 0)
  : fs.statSync(path).size
const before = process.resourceUsage().maxRSS * 1024
const t0 = performance.now()
const model = await loadModel(path, { threads: 1, contextSize: Number(values.ctx), outputType: values['output-type'] })
const seconds = (performance.now() - t0) / 1000
const peak = process.resourceUsage().maxRSS * 1024
const wasm = model.transformer.memory.buffer.byteLength
await model.dispose()
const gb = (n) => (n / 1e9).toFixed(3)
console.log(JSON.stringify({ model: path, file_gb: gb(size), peak_rss_gb: gb(peak), rss_before_load_gb: gb(before), wasm_memory_gb: gb(wasm), ratio: +(peak / size).toFixed(3), load_s: +seconds.toFixed(1), ctx: Number(values.ctx), output_type: values['output-type'] }))
