#!/usr/bin/env node
// A model past one wasm32 memory (4 GiB): the synthetic 20B-class shape (SHAPES['20b'], I2_S,
// ~5.4 GB) is written to disk one tensor at a time, then loaded with a 4096-token context and
// decoded, each model in a child process of its own (peak RSS is a process's high-water mark),
// interleaved with the 2B4T-shape file as the baseline: 2b4t, 20b, 2b4t.
// Prints per run: file size, peak RSS, memories (segments), load time, decode tok/s, and
// tok/s × GB of file (weights streamed per second: equal for both shapes when the split into
// memories costs nothing per token). Deletes the 20B file afterwards unless --keep.
// Usage: node bench/big-model.mjs [--tokens N] [--threads N] [--keep]   (run `npm run build` first)
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { loadModel, SHAPES, syntheticChunks } from '../dist/index.js'
import { defaultDir, makeModels, modelPaths } from './make-model.mjs'

const { values } = parseArgs({ options: {
  tokens: { type: 'string', default: '16' }, threads: { type: 'string', default: '2' }, keep: { type: 'boolean', default: false },
  run: { type: 'string' }, ctx: { type: 'string', default: '4096' },
} })

if (values.run) {
  // Child: load one model, decode, report.
  const file = values.run
  const t0 = performance.now()
  const model = await loadModel(file, { threads: Number(values.threads), contextSize: Number(values.ctx) })
  const loadS = (performance.now() - t0) / 1000
  const prompt = [1, 2, 3, 4, 5, 6, 7, 8]
  await model.generate(prompt, { maxTokens: 2, temperature: 0, ignoreEos: true }) // warm-up
  const t1 = performance.now()
  const { tokens } = await model.generate(prompt, { maxTokens: Number(values.tokens), temperature: 0, ignoreEos: true })
  // The prompt is cached after the warm-up: the time is decode steps (+ one prompt token).
  const tokS = tokens.length / ((performance.now() - t1) / 1000)
  const size = fs.statSync(file).size
  const segments = model.transformer.segmentCount
  await model.dispose()
  const gb = (n) => +(n / 1e9).toFixed(3)
  console.log(JSON.stringify({
    model: path.basename(file), file_gb: gb(size), peak_rss_gb: gb(process.resourceUsage().maxRSS * 1024),
    rss_ratio: +((process.resourceUsage().maxRSS * 1024) / size).toFixed(3), segments, load_s: +loadS.toFixed(1),
    decode_tok_s: +tokS.toFixed(3), tok_s_x_gb: +(tokS * size / 1e9).toFixed(2), threads: Number(values.threads), ctx: Number(values.ctx),
  }))
  process.exit(0)
}

const dir = defaultDir()
const big = path.join(dir, 'bitnet-20b-synth-i2_s.gguf')
if (!fs.existsSync(big)) {
  const free = fs.statfsSync(dir)
  if (free.bavail * free.bsize < 8e9) throw new Error(`${dir}: less than 8 GB free for the 20B-class file`)
  const t0 = performance.now()
  const fd = fs.openSync(big + '.part', 'w')
  let n = 0
  try {
    for (const chunk of syntheticChunks(SHAPES['20b'], { format: 'I2_S', seed: 1 })) { fs.writeSync(fd, chunk); n += chunk.byteLength }
  } finally { fs.closeSync(fd) }
  fs.renameSync(big + '.part', big)
  console.error(`wrote ${big}: ${(n / 1e9).toFixed(3)} GB in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
}
makeModels(dir)
const small = modelPaths(dir).i2s
const child = (file) => JSON.parse(execFileSync(process.execPath, [process.argv[1], '--run', file, '--tokens', values.tokens, '--threads', values.threads, '--ctx', values.ctx], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }))
try {
  for (const file of [small, big, small]) console.log(JSON.stringify(child(file)))
} finally {
  if (!values.keep) fs.rmSync(big, { force: true })
}
