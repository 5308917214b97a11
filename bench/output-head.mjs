#!/usr/bin/env node
// The bounded output head (outputType 'q4+q8': a q4 pass, the tokens that can still win rescored
// with the q8 copy) against the q8 head, in one run: decode speed, candidates per token, bytes
// the head reads per token, and the generated tokens, which must be identical.
//
// Models (each skipped when its file is missing):
//   tiny        tiny-dev (test/fixtures): trained, 128 wide, so its step is mostly the head
//   tiny-2b4t   tiny-dev zero-padded to the 2B4T shape (written by lookup.mjs): trained logits
//               at 2B4T cost; the bound is tiny-dev's (zero columns add nothing to it)
//   synth-2b4t  the synthetic 2B4T (make-model.mjs): untrained, flat logits, the worst case
//
// Each measurement is its own process (fresh memory); q8 and q4+q8 alternate per model and run
// (interleaved), so a busy machine slows both alike. Per process: greedy and top-k sampled
// (temperature 0.8, top-k 40, seed 1) generations of --tokens tokens after each prompt.
//
//   node output-head.mjs [--runs 3] [--threads 2] [--tokens 64] [--models tiny,tiny-2b4t,synth-2b4t] [--node NODE]
//   node output-head.mjs --head [--models …] [--threads 2]   the head alone: one q4+q8 model, each
//        decode row of every prompt run twice in turn, through the q8 pass and through the bounded
//        head (same position, same KV rows), the output rounds timed (--profile's labels):
//        interleaved per token, so a busy machine slows both alike
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' }, tokens: { type: 'string', default: '64' },
    models: { type: 'string', default: 'tiny,tiny-2b4t,synth-2b4t' },
    dir: { type: 'string', default: process.env.BITNET_BENCH_DIR ?? path.join(os.tmpdir(), 'bitnet-wasm-bench') },
    node: { type: 'string', default: process.execPath }, child: { type: 'string' }, output: { type: 'string' },
    head: { type: 'boolean', default: false },
  },
})
const GOLDEN = path.join(here, '../test/fixtures/tiny-dev/golden.json')
const MODELS = {
  tiny: path.join(here, '../test/fixtures/tiny-dev/ggml-model-i2_s.gguf'),
  'tiny-2b4t': path.join(values.dir, 'tiny-dev-2b4t-i2_s.gguf'),
  'synth-2b4t': path.join(values.dir, 'bitnet-2b4t-synth-i2_s.gguf'),
}

// Prompts: golden.json's for the trained models; for the synthetic one random ids (it has no text).
function prompts(name) {
  if (name !== 'synth-2b4t') return JSON.parse(fs.readFileSync(GOLDEN, 'utf8')).prompts.map((p) => p.ids)
  let s = 7
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24
  return Array.from({ length: 3 }, () => Array.from({ length: 16 }, () => Math.floor(rand() * 128000)))
}

// One process: every prompt, greedy then sampled, with one output type → JSON line on stdout.
async function child(name, outputType) {
  const { loadModel } = await import('../dist/index.js')
  const model = await loadModel(MODELS[name], { threads: +values.threads, contextSize: 512, outputType })
  const t = model.transformer
  await model.generate(prompts(name)[0].slice(0, 4), { maxTokens: 4, temperature: 0 }) // warm-up
  Object.assign(t.headStats, { rows: 0, candidates: 0, groups: 0, full: 0 })
  const tokens = [], decode = { tokens: 0, ms: 0 }
  for (const ids of prompts(name)) {
    for (const sampling of [{ temperature: 0 }, { temperature: 0.8, topK: 40, seed: 1 }]) {
      const r = await model.generate(ids, { maxTokens: +values.tokens, ignoreEos: true, ...sampling })
      tokens.push(r.tokens)
      decode.tokens += r.tokens.length - 1
      decode.ms += r.timings.decodeMs
    }
  }
  const c = t.config, kp = Math.ceil(c.nEmbd / 128) * 128
  console.log(JSON.stringify({
    tokS: decode.tokens / (decode.ms / 1000), tokens, stats: { ...t.headStats }, output: t.outputType,
    q8Bytes: c.vocabSize * (kp + kp / 32), passBytes: c.vocabSize * (kp / 2 + kp / 8 + 4), groupBytes: 4 * (kp + kp / 32),
  }))
  await model.dispose()
}

// One process: the head alone, q8 pass against the bounded head, token by token (see the header).
async function headChild(name) {
  const { loadModel } = await import('../dist/index.js')
  const model = await loadModel(MODELS[name], { threads: +values.threads, contextSize: 512, outputType: 'q4+q8' })
  const t = model.transformer
  const ms = { q8: [], bounded: [] }
  const timed = (row) => {
    t.profile = new Map()
    t.forwardBatch([row])
    const p = t.profile
    t.profile = undefined
    return ['output', 'output_pass', 'output_select', 'output_rescore'].reduce((a, l) => a + (p.get(l)?.ms ?? 0), 0)
  }
  for (const ids of prompts(name)) {
    ids.forEach((token, pos) => {
      const first = pos % 2 ? 'q8' : 'bounded' // alternate which goes first
      for (const mode of [first, first === 'q8' ? 'bounded' : 'q8']) {
        ms[mode].push(timed({ token, pos, logits: true, need: mode === 'q8' ? undefined : { topK: 1, exactIds: [] } }))
      }
    })
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
  console.log(JSON.stringify({ q8: med(ms.q8), bounded: med(ms.bounded), stats: { ...t.headStats }, n: ms.q8.length }))
  await model.dispose()
}

const run = (args) => JSON.parse(execFileSync(values.node, [fileURLToPath(import.meta.url), ...args, '--threads', values.threads, '--tokens', values.tokens, '--dir', values.dir],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop())
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const MB = (b) => `${(b / 1e6).toFixed(1)} MB`

if (values.child && values.head) await headChild(values.child)
else if (values.child) await child(values.child, values.output)
else if (values.head) {
  console.log(`${new Date().toISOString()} · ${os.cpus()[0].model.trim()} × ${os.cpus().length} · Node ${process.version} · ${values.threads} threads, greedy\n`)
  console.log('| model | q8 pass ms / token | bounded head ms / token | ratio | candidates / token | full q8 passes | tokens |')
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  for (const name of values.models.split(',').filter((m) => fs.existsSync(MODELS[m]))) {
    const r = run(['--child', name, '--head'])
    const s = r.stats
    console.log(`| ${name} | ${r.q8.toFixed(2)} | ${r.bounded.toFixed(2)} | ${(r.bounded / r.q8).toFixed(2)}× | ${(s.candidates / Math.max(1, s.rows - s.full)).toFixed(1)} | ${(100 * s.full / s.rows).toFixed(1)} % | ${r.n} |`)
  }
} else {
  const names = values.models.split(',').filter((m) => fs.existsSync(MODELS[m]) || !console.error(`${m}: ${MODELS[m]} missing, skipped`))
  const res = {}
  for (let i = 0; i < +values.runs; i++) {
    for (const name of names) {
      for (const output of ['q8', 'q4+q8']) {
        const r = run(['--child', name, '--output', output])
        ;((res[name] ??= {})[output] ??= []).push(r)
        console.error(`run ${i + 1} ${name} ${output}: ${r.tokS.toFixed(2)} tok/s`)
      }
      const [a, b] = [res[name].q8.at(-1), res[name]['q4+q8'].at(-1)]
      if (JSON.stringify(a.tokens) !== JSON.stringify(b.tokens)) throw new Error(`${name}: q4+q8 generated other tokens than q8`)
    }
  }
  console.log(`${new Date().toISOString()} · ${os.cpus()[0].model.trim()} × ${os.cpus().length} · Node ${process.version} · ${values.threads} threads, ` +
    `${values.tokens} tokens per generation (greedy and top-k 40), median of ${values.runs}; tokens identical to q8 in every run\n`)
  console.log('| model | q8 decode tok/s | q4+q8 decode tok/s | ratio | candidates / rescored token | rescored rows / rescored token | full q8 passes | head bytes / token (q8 → q4+q8) |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const name of names) {
    const [q8, hb] = [res[name].q8, res[name]['q4+q8']]
    const s = hb[0].stats, rows = Math.max(1, s.rows)
    const bytes = hb[0].passBytes + (s.full / rows) * hb[0].q8Bytes + (s.groups / rows) * hb[0].groupBytes
    const [x, y] = [median(q8.map((r) => r.tokS)), median(hb.map((r) => r.tokS))]
    const served = Math.max(1, s.rows - s.full) // rows the rescoring served
    console.log(`| ${name} | ${x.toFixed(2)} | ${y.toFixed(2)} | ${(y / x).toFixed(2)}× | ${(s.candidates / served).toFixed(1)} | ${(4 * s.groups / served).toFixed(1)} | ` +
      `${(100 * s.full / rows).toFixed(1)} % | ${MB(hb[0].q8Bytes)} → ${MB(bytes)} |`)
  }
}
