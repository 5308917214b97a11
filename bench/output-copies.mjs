#!/usr/bin/env node
// Output copies against each other, decode step by decode step: one process per thread count
// loads the model once per --types entry (e.g. q8 and q6), then feeds every model the same
// token at the same position in turn (the order alternating per token), timing the whole
// step and its output round. Interleaved per token, so a busy machine slows each alike; the
// medians and their ratio to the first type are printed as a markdown table.
//
//   node output-copies.mjs [--model FILE] [--types q8,q6] [--threads 1,2] [--tokens 48] [--node NODE]
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(process.env.BITNET_BENCH_DIR ?? path.join(os.tmpdir(), 'bitnet-wasm-bench'), 'bitnet-2b4t-synth-i2_s.gguf') },
    types: { type: 'string', default: 'q8,q6' }, threads: { type: 'string', default: '1,2' }, tokens: { type: 'string', default: '48' },
    node: { type: 'string', default: process.execPath }, child: { type: 'string' },
  },
})
const types = values.types.split(',')
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

// One process at `threads`: per type its models' step and output-round times → a JSON line.
async function child(threads) {
  const { loadModel } = await import('../dist/index.js')
  const models = []
  for (const outputType of types) models.push(await loadModel(values.model, { threads, contextSize: 256, outputType }))
  const step = types.map(() => []), head = types.map(() => [])
  for (let pos = 0; pos < +values.tokens; pos++) {
    const token = (pos * 7919 + 13) % 128000
    const order = pos % 2 ? [...types.keys()].reverse() : [...types.keys()]
    for (const i of order) {
      const t = models[i].transformer
      t.profile = new Map()
      const t0 = performance.now()
      t.forwardBatch([{ token, pos, logits: true }])
      step[i].push(performance.now() - t0)
      head[i].push(t.profile.get('output')?.ms ?? 0)
      t.profile = undefined
    }
  }
  console.log(JSON.stringify(types.map((type, i) => ({ type, storage: models[i].transformer.outputType, step: median(step[i]), head: median(head[i]) }))))
  for (const m of models) await m.dispose()
}

if (values.child) await child(+values.child)
else {
  console.log(`${path.basename(values.model)}, ${values.tokens} decode steps per model, medians; load average ${os.loadavg()[0].toFixed(1)} at start\n`)
  console.log('| threads | output | step ms | output round ms | step ratio | output ratio |')
  console.log('|---:|---|---:|---:|---:|---:|')
  for (const threads of values.threads.split(',')) {
    const out = execFileSync(values.node, [fileURLToPath(import.meta.url), '--child', threads, '--model', values.model, '--types', values.types, '--tokens', values.tokens],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    const rows = JSON.parse(out.trim().split('\n').pop())
    for (const r of rows) {
      console.log(`| ${threads} | ${r.type} (${r.storage}) | ${r.step.toFixed(2)} | ${r.head.toFixed(2)} | ${(r.step / rows[0].step).toFixed(3)} | ${(r.head / rows[0].head).toFixed(3)} |`)
    }
  }
}
