#!/usr/bin/env node
// Speed on a busy machine: decode and prompt tok/s of this engine at its default (thread count
// adapting to the load), pinned at 1 and at 2 threads, and of native llama.cpp (node-llama-cpp) at
// 1 and 2 threads, on the synthetic 2B4T-shape model (make-model.mjs), with 0, 1 and 2 competing
// CPU-bound processes (`node -e 'for(;;){}'`) running beside it; and native bitnet.cpp at 1 and 2
// threads when a build is present (bitnet-cpp.mjs).
//
// node contention.mjs [--loads 0,1,2] [--runs 3] [--pp 64] [--tg 48] [--engines a,b,..] [--json]
//                     [--bitnet-cpp DIR]
//
// Method: every measurement is a fresh process (peers.mjs --child), at the same priority as the
// competing processes and each in a session of its own (Linux gives every session its own
// scheduling group, so the busy processes get their fair share as they would on a user's machine;
// peers.mjs raises its children's priority, this script does not). The competing processes start
// before the engine loads and stop after it exits. Configurations interleave (A B C … per load,
// per run); reported: medians over runs, and per load the default's ratio to the best pinned count
// and to llama.cpp at 2 threads.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { defaultDir, modelPaths } from './make-model.mjs'
import { BITNET_CPP_HOW, bitnetCppBin, bitnetCppModelPath, makeBitnetCppModel } from './bitnet-cpp.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const RESULT = '@@RESULT '
const NODE24_BIN = path.join(HERE, '../test/runtimes/node_modules/.bin/node')
const NODE24 = fs.existsSync(NODE24_BIN) ? [NODE24_BIN] : [process.execPath, '--experimental-wasm-relaxed-simd']

/** Configurations: the peers.mjs engine, its thread setting, and the file. */
const CONFIGS = {
  'ours-default': { label: 'bitnet-wasm, default (adaptive)', engine: 'ours-relaxed', threads: 'auto', node: NODE24 },
  'ours-t1': { label: 'bitnet-wasm, -t 1', engine: 'ours-relaxed', threads: '1', node: NODE24 },
  'ours-t2': { label: 'bitnet-wasm, -t 2', engine: 'ours-relaxed', threads: '2', node: NODE24 },
  'llama.cpp-t1': { label: 'llama.cpp native (node-llama-cpp), 1 thread', engine: 'llama.cpp', threads: '1', node: [process.execPath] },
  'llama.cpp-t2': { label: 'llama.cpp native (node-llama-cpp), 2 threads', engine: 'llama.cpp', threads: '2', node: [process.execPath] },
  'bitnet.cpp-t1': { label: 'bitnet.cpp native, 1 thread', engine: 'bitnet.cpp', threads: '1', node: [process.execPath] },
  'bitnet.cpp-t2': { label: 'bitnet.cpp native, 2 threads', engine: 'bitnet.cpp', threads: '2', node: [process.execPath] },
}

const { values: opt } = parseArgs({
  options: {
    loads: { type: 'string', default: '0,1,2' },
    runs: { type: 'string', default: '3' },
    pp: { type: 'string', default: '64' },
    tg: { type: 'string', default: '48' },
    engines: { type: 'string', default: Object.keys(CONFIGS).join(',') },
    dir: { type: 'string', default: defaultDir() },
    json: { type: 'boolean', default: false },
    'bitnet-cpp': { type: 'string', default: process.env.BITNET_CPP_DIR },
  },
})

const bitnetBin = bitnetCppBin(opt['bitnet-cpp'])

/** Starts `n` CPU-bound processes, each in its own session; returns a function that stops them. */
function startLoad(n) {
  const procs = Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { detached: true, stdio: 'ignore' }))
  return () => { for (const p of procs) try { process.kill(-p.pid, 'SIGKILL') } catch {} }
}

function runChild(cfg, modelPath) {
  const args = [...cfg.node, path.join(HERE, 'peers.mjs'), '--child', cfg.engine, '--model', modelPath,
    '--threads', cfg.threads, '--pp', opt.pp, '--tg', opt.tg, ...(bitnetBin ? ['--bitnet-cpp', bitnetBin] : [])]
  return new Promise((resolve) => {
    const child = spawn(args[0], args.slice(1), { cwd: HERE, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = '', err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    child.on('close', () => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT))
      resolve(line ? JSON.parse(line.slice(RESULT.length)) : { error: err.trim().split('\n').slice(-2).join(' | ') || 'no output' })
    })
  })
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main() {
  const files = { ...modelPaths(opt.dir), 'bitnet.cpp': bitnetCppModelPath(opt.dir) }
  let names = opt.engines.split(',').filter(Boolean)
  for (const n of names) if (!CONFIGS[n]) throw new Error(`unknown configuration '${n}' (${Object.keys(CONFIGS).join(', ')})`)
  if (!bitnetBin && names.some((n) => CONFIGS[n].engine === 'bitnet.cpp')) {
    process.stderr.write(`bitnet.cpp skipped: no build; ${BITNET_CPP_HOW}\n`)
    names = names.filter((n) => CONFIGS[n].engine !== 'bitnet.cpp')
  }
  if (names.some((n) => CONFIGS[n].engine === 'bitnet.cpp')) makeBitnetCppModel(bitnetBin, opt.dir, (s) => process.stderr.write(s + '\n'))
  const fileOf = (n) => ({ 'llama.cpp': files.tq2, 'bitnet.cpp': files['bitnet.cpp'] })[CONFIGS[n].engine] ?? files.i2s
  for (const n of names) if (!fs.existsSync(fileOf(n))) throw new Error(`${fileOf(n)} is missing: run node make-model.mjs`)
  const loads = opt.loads.split(',').map(Number)
  const res = {}
  for (let run = 1; run <= Number(opt.runs); run++) {
    for (const load of loads) {
      for (const n of names) {
        const stop = startLoad(load)
        await new Promise((r) => setTimeout(r, 300)) // the competing processes are running before the engine starts
        const m = await runChild(CONFIGS[n], fileOf(n))
        stop()
        const key = `${load}|${n}`
        ;(res[key] ??= []).push(m)
        process.stderr.write(`run ${run}, ${load} busy, ${n}: ${m.error ?? `pp ${m.pp.toFixed(2)}, tg ${m.tg.toFixed(2)} tok/s (${JSON.stringify(m.info)})`}\n`)
      }
    }
  }
  const summary = loads.map((load) => {
    const rows = Object.fromEntries(names.map((n) => {
      const ok = res[`${load}|${n}`].filter((m) => !m.error)
      return [n, ok.length ? { pp: median(ok.map((m) => m.pp)), tg: median(ok.map((m) => m.tg)), runs: ok.map((m) => m.tg), info: ok[0].info } : { error: res[`${load}|${n}`][0].error }]
    }))
    return { load, rows }
  })
  if (opt.json) { process.stdout.write(JSON.stringify({ date: new Date().toISOString(), pp: opt.pp, tg: opt.tg, summary }, null, 2) + '\n'); return }
  const f = (x) => (x === undefined ? '—' : x.toFixed(2))
  const lines = [
    `${new Date().toISOString()} · ${os.cpus()[0]?.model} × ${os.cpus().length} · synthetic 2B4T, pp${opt.pp} / tg${opt.tg}, median of ${opt.runs} interleaved runs; decode tok/s (prompt tok/s)`,
    '',
    `| configuration | ${loads.map((l) => `${l} busy`).join(' | ')} |`,
    `|---|${loads.map(() => '---:').join('|')}|`,
    ...names.map((n) => `| ${CONFIGS[n].label} | ${summary.map(({ rows }) => rows[n].error ? 'failed' : `${f(rows[n].tg)} (${f(rows[n].pp)})`).join(' | ')} |`),
  ]
  const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '—')
  if (names.includes('ours-default')) {
    lines.push(`| default / best pinned count (decode) | ${summary.map(({ rows }) => ratio(rows['ours-default'].tg, Math.max(rows['ours-t1']?.tg ?? 0, rows['ours-t2']?.tg ?? 0))).join(' | ')} |`)
    lines.push(`| default / llama.cpp 2 threads (decode) | ${summary.map(({ rows }) => ratio(rows['ours-default'].tg, rows['llama.cpp-t2']?.tg)).join(' | ')} |`)
  }
  lines.push('', 'Per-run decode tok/s: ' + summary.map(({ load, rows }) => `${load} busy: ` + names.map((n) => `${n} ${rows[n].runs?.map(f).join('/') ?? 'failed'}`).join(', ')).join('; '))
  process.stdout.write(lines.join('\n') + '\n')
}

await main()
