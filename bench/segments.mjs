#!/usr/bin/env node
// What splitting a model over several wasm memories costs per token: the synthetic 2B4T-shape
// I2_S file loaded twice in one process, in one memory and capped at `--max-mib` per memory
// (several segments, the residual stream copied at each boundary), decode runs interleaved
// A B A B … so machine load hits both alike. Prints tok/s per run and the median ratio.
// Usage: node bench/segments.mjs [--max-mib 512] [--tokens 8] [--reps 4] [--threads 2]  (run `npm run build` first)
import { parseArgs } from 'node:util'
import { loadModel } from '../dist/index.js'
import { makeModels, modelPaths } from './make-model.mjs'

const { values } = parseArgs({ options: {
  'max-mib': { type: 'string', default: '512' }, tokens: { type: 'string', default: '8' },
  reps: { type: 'string', default: '4' }, threads: { type: 'string', default: '2' },
} })
makeModels()
const file = modelPaths().i2s
const opts = { threads: Number(values.threads), contextSize: 512 }
const models = {
  one: await loadModel(file, opts),
  split: await loadModel(file, { ...opts, maxMemoryBytes: Number(values['max-mib']) * 2 ** 20 }),
}
const prompt = [1, 2, 3, 4, 5, 6, 7, 8]
for (const m of Object.values(models)) await m.generate(prompt, { maxTokens: 2, temperature: 0, ignoreEos: true })
const runs = { one: [], split: [] }
for (let r = 0; r < Number(values.reps); r++) {
  for (const [name, m] of Object.entries(models)) {
    const t0 = performance.now()
    const { tokens } = await m.generate(prompt, { maxTokens: Number(values.tokens), temperature: 0, ignoreEos: true })
    runs[name].push(tokens.length / ((performance.now() - t0) / 1000))
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1]
const ratios = runs.one.map((t, i) => runs.split[i] / t)
console.log(JSON.stringify({
  memories: { one: models.one.transformer.segmentCount, split: models.split.transformer.segmentCount },
  tok_s: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((x) => +x.toFixed(2))])),
  split_over_one_median: +median(ratios).toFixed(3), threads: opts.threads,
}))
await Promise.all(Object.values(models).map((m) => m.dispose()))
