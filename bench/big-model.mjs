#!/usr/bin/env node
// Models past one wasm32 memory (4 GiB): synthetic big shapes (SHAPES['20b'] ~5.4 GB, '30b'
// ~8.7 GB, 'falcon3-10b' ~3.6 GB untied; I2_S) are written to disk one tensor at a time, then
// loaded with a 4096-token context and decoded, each model in a child process of its own (peak
// RSS is a process's high-water mark, VmHWM), interleaved with the 2B4T-shape file as the
// baseline: 2b4t, shape 1, 2b4t, shape 2, …, 2b4t.
// Prints per run: file size, peak RSS, memories (segments), load time, decode tok/s, and
// tok/s × GB of file (weights streamed per second: equal for all shapes when the split into
// memories costs nothing per token), and the same per CPU-second of the process (steadier than
// the wall clock when other work shares the machine; with --threads 1 there is no spinning). Deletes the big files afterwards unless --keep.
// Usage: node bench/big-model.mjs [--shapes 20b,30b,falcon3-10b] [--tokens N] [--threads N] [--keep]
//        [--runtime 'deno run -A' | bun | PATH-TO-NODE]   (run `npm run build` first)
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { loadModel, SHAPES, syntheticChunks } from '../dist/index.js'
import { defaultDir, makeModels, modelPaths } from './make-model.mjs'

const { values } = parseArgs({ options: {
  tokens: { type: 'string', default: '16' }, threads: { type: 'string', default: '2' }, keep: { type: 'boolean', default: false },
  run: { type: 'string' }, ctx: { type: 'string', default: '4096' }, shapes: { type: 'string', default: '20b' },
  runtime: { type: 'string', default: process.execPath },
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
  const cpu0 = process.cpuUsage()
  const { tokens } = await model.generate(prompt, { maxTokens: Number(values.tokens), temperature: 0, ignoreEos: true })
  // The prompt is cached after the warm-up: the time is decode steps (+ one prompt token).
  const tokS = tokens.length / ((performance.now() - t1) / 1000)
  // Tokens per CPU-second (every thread's): other processes' load changes the wall clock, not this.
  const cpu = process.cpuUsage(cpu0)
  const tokCpuS = tokens.length / ((cpu.user + cpu.system) / 1e6)
  const size = fs.statSync(file).size
  const segments = model.transformer.segmentCount
  await model.dispose()
  const gb = (n) => +(n / 1e9).toFixed(3)
  const rss = peakRss()
  console.log(JSON.stringify({
    model: path.basename(file), runtime: runtimeName(), file_gb: gb(size), peak_rss_gb: gb(rss),
    rss_ratio: +(rss / size).toFixed(3), segments, load_s: +loadS.toFixed(1),
    decode_tok_s: +tokS.toFixed(3), tok_s_x_gb: +(tokS * size / 1e9).toFixed(2),
    tok_cpu_s_x_gb: +(tokCpuS * size / 1e9).toFixed(2), threads: Number(values.threads), ctx: Number(values.ctx),
  }))
  process.exit(0)
}

const dir = defaultDir()
const shapes = values.shapes.split(',')
for (const shape of shapes) if (!SHAPES[shape]) throw new Error(`unknown shape ${shape}: one of ${Object.keys(SHAPES).join(', ')}`)
const bigPath = (shape) => path.join(dir, `bitnet-${shape}-synth-i2_s.gguf`)
makeModels(dir)
const small = modelPaths(dir).i2s
const [cmd, ...cmdArgs] = values.runtime.split(' ')
const child = (file) => JSON.parse(execFileSync(cmd, [...cmdArgs, process.argv[1], '--run', file, '--tokens', values.tokens, '--threads', values.threads, '--ctx', values.ctx],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop())
try {
  console.log(JSON.stringify(child(small)))
  for (const shape of shapes) {
    writeShape(shape, bigPath(shape))
    console.log(JSON.stringify(child(bigPath(shape))))
    console.log(JSON.stringify(child(small)))
  }
} finally {
  if (!values.keep) for (const shape of shapes) fs.rmSync(bigPath(shape), { force: true })
}

// The shape's file, generated one tensor at a time (kept if it exists).
function writeShape(shape, file) {
  if (fs.existsSync(file)) return
  const free = fs.statfsSync(dir)
  if (free.bavail * free.bsize < 12e9) throw new Error(`${dir}: less than 12 GB free for the ${shape} file`)
  const t0 = performance.now()
  const fd = fs.openSync(file + '.part', 'w')
  let n = 0
  try {
    for (const chunk of syntheticChunks(SHAPES[shape], { format: 'I2_S', seed: 1 })) { fs.writeSync(fd, chunk); n += chunk.byteLength }
  } finally { fs.closeSync(fd) }
  fs.renameSync(file + '.part', file)
  console.error(`wrote ${file}: ${(n / 1e9).toFixed(3)} GB in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
}

// The process's peak resident set (VmHWM: Linux, in every runtime), else Node's maxRSS.
function peakRss() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024
}

function runtimeName() {
  if (globalThis.Deno) return `deno ${globalThis.Deno.version.deno}`
  if (globalThis.Bun) return `bun ${globalThis.Bun.version}`
  return `node ${process.versions.node}`
}
