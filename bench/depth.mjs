#!/usr/bin/env node
// Long contexts: prompt and decode speed at several depths (prompt lengths) on the synthetic
// 2B4T-shape model (make-model.mjs), with the KV memory each engine holds at that depth.
// Each cell is peers.mjs's measurement (fresh process per run, CPU-share checks, medians):
// a prompt of DEPTH tokens, then --tg greedy tokens decoded at that depth.
//
// node depth.mjs [--depths 128,1024,2048,4000] [--tg 32] [--threads 2] [--runs 1]
//                [--retries 2] [--kv-type auto|f32|f16] [--ours ours-i2s|ours-relaxed] [--peers] [--json] [--dir DIR]
//   --retries  peers.mjs's re-runs of a starved measurement (CPU share < 0.85), each kept in its log
//   --ours    which of peers.mjs's engines is ours (ours-relaxed: Node 24, relaxed SIMD)
//   --peers   adds native llama.cpp (node-llama-cpp, f16 KV cache) in the same run
import { spawn } from 'node:child_process'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { defaultDir } from './make-model.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({
  options: {
    depths: { type: 'string', default: '128,1024,2048,4000' },
    tg: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '1' },
    retries: { type: 'string', default: '2' },
    'kv-type': { type: 'string', default: 'auto' },
    ours: { type: 'string', default: 'ours-i2s' },
    peers: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    dir: { type: 'string', default: defaultDir() },
  },
})
const depths = opt.depths.split(',').map(Number)
const engines = [opt.ours, ...(opt.peers ? ['llama.cpp'] : [])]
// KV bytes per token of the 2B4T shape: 2 (k, v) × 30 layers × 640 (5 kv heads × 128), in
// the type ours reports using ('auto': f16 at this size); llama.cpp keeps f16 by default.
const KV_ELEMS = 2 * 30 * 640
const kvBytes = (e, r) => (e === 'llama.cpp' || r.info?.kv === 'f16' ? 2 : 4)

function peers(depth) {
  const args = [path.join(HERE, 'peers.mjs'), '--json', '--engines', engines.join(','), '--pp', String(depth), '--tg', opt.tg,
    '--threads', opt.threads, '--runs', opt.runs, '--retries', opt.retries, '--kv-type', opt['kv-type'], '--dir', opt.dir]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: HERE, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('close', (code) => code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`peers.mjs exited with ${code}`)))
  })
}

const rows = []
for (const depth of depths) {
  const { results } = await peers(depth)
  for (const e of engines) {
    const r = results[e]
    rows.push({ depth, engine: e, pp: r.pp, tg: r.tg, kv_type: e === 'llama.cpp' ? 'f16' : r.info?.kv, kv_mb: (KV_ELEMS * kvBytes(e, r) * (depth + Number(opt.tg))) / 1e6, error: r.error })
  }
}
if (opt.json) {
  process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
} else {
  const fmt = (x) => (x === undefined ? '—' : x.toFixed(x >= 100 ? 0 : 2))
  const lines = [`synthetic 2B4T shape, ${opt.threads} threads, decode of ${opt.tg} tokens after each prompt, our KV cache ${rows.find((r) => r.engine === opt.ours)?.kv_type ?? opt['kv-type']}`, '',
    '| depth | engine | prompt tok/s | decode tok/s | KV MB |', '|---:|---|---:|---:|---:|']
  for (const r of rows) lines.push(`| ${r.depth} | ${r.engine} | ${r.error ? `error: ${r.error}` : fmt(r.pp)} | ${fmt(r.tg)} | ${r.kv_mb.toFixed(0)} |`)
  process.stdout.write(lines.join('\n') + '\n')
}
