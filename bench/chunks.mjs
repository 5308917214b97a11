#!/usr/bin/env node
// Chunk size of the thread pool's rounds (src/runtime/thread-pool.ts CHUNK_COST), measured: decode and
// prompt tok/s of the synthetic 2B4T-shape I2_S model on 2 pinned threads for several chunk costs
// (multiply-adds of the smallest chunks, those that end a round; the first ones are up to 16× that:
// src/runtime/schedule.ts), on a quiet machine and with one competing CPU-bound process.
//
// node chunks.mjs [--costs 65536,131072,262144,524288,1048576,16777216] [--loads 0,1] [--runs 3] [--pp 32] [--tg 32]
//
// Each measurement is a fresh `bitnet bench` process (Node 24 from ../test/runtimes when present),
// configurations interleaved per run; medians reported. The largest cost approximates a
// static split (chunks are never larger than an even share of the round).
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { defaultDir, modelPaths } from './make-model.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const NODE24_BIN = path.join(HERE, '../test/runtimes/node_modules/.bin/node')
const NODE = fs.existsSync(NODE24_BIN) ? NODE24_BIN : process.execPath
const CLI = path.join(HERE, '../dist/cli.js')

const { values: opt } = parseArgs({
  options: {
    costs: { type: 'string', default: '65536,131072,262144,524288,1048576,16777216' },
    loads: { type: 'string', default: '0,1' },
    runs: { type: 'string', default: '3' },
    pp: { type: 'string', default: '32' },
    tg: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    dir: { type: 'string', default: defaultDir() },
  },
})

const model = modelPaths(opt.dir).i2s
if (!fs.existsSync(model)) throw new Error(`${model} is missing: run node make-model.mjs`)

function bench(cost) {
  const out = execFileSync(NODE, [CLI, 'bench', '-m', model, '-p', opt.pp, '-n', opt.tg, '-t', opt.threads, '--chunk-cost', cost, '--json'], { encoding: 'utf8' })
  return JSON.parse(out.slice(out.indexOf('{')))
}

function startLoad(n) {
  const procs = Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { detached: true, stdio: 'ignore' }))
  return () => { for (const p of procs) try { process.kill(-p.pid, 'SIGKILL') } catch {} }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const costs = opt.costs.split(',')
const loads = opt.loads.split(',').map(Number)
const res = {}
for (let run = 1; run <= Number(opt.runs); run++) {
  for (const load of loads) {
    for (const cost of costs) {
      const stop = startLoad(load)
      try {
        const j = bench(cost)
        ;(res[`${load}|${cost}`] ??= []).push(j)
        process.stderr.write(`run ${run}, ${load} busy, cost ${cost}: pp ${j.pp_tok_s.toFixed(2)}, tg ${j.tg_tok_s.toFixed(2)}\n`)
      } finally {
        stop()
      }
    }
  }
}
const lines = [
  `${new Date().toISOString()} · synthetic 2B4T I2_S, ${opt.threads} threads pinned, pp${opt.pp} / tg${opt.tg}, median of ${opt.runs}; decode tok/s (prompt tok/s)`,
  '',
  `| multiply-adds per chunk | ${loads.map((l) => `${l} busy`).join(' | ')} |`,
  `|---:|${loads.map(() => '---:').join('|')}|`,
  ...costs.map((c) => `| ${c} | ${loads.map((l) => {
    const rs = res[`${l}|${c}`]
    return `${median(rs.map((r) => r.tg_tok_s)).toFixed(2)} (${median(rs.map((r) => r.pp_tok_s)).toFixed(2)})`
  }).join(' | ')} |`),
]
process.stdout.write(lines.join('\n') + '\n')
