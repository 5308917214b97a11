// Sessions benchmark (issue 4): KV reuse across turns and throughput of concurrent sequences.
//
//   node bench/sessions.mjs [-m MODEL.gguf] [-t THREADS] [--turns 6] [--turn-tokens 48] [-n 32] [--kernel i2s|tl]
//
// 1. A conversation of --turns turns, each adding --turn-tokens new prompt tokens after the
//    previous turn's history and reply (token ids, so any model works). Per turn: tokens in the
//    prompt, tokens evaluated, prompt ms with the session's KV reuse, and prompt ms of the same
//    prompt on a fresh session (no reuse) for comparison.
// 2. 1 vs 4 concurrent sequences generating -n tokens each (greedy, ignoring EOS) after their
//    (cached) 8-token prompts: aggregate decode tokens/s over wall time.
// Default model: tiny-dev. A synthetic shape: `node dist/cli.js bench --shape 0.7b -p 1 -n 1`
// writes $TMPDIR/bitnet-synthetic-0.7b-i2s.gguf; pass it with -m.
import { parseArgs } from 'node:util'
import { loadModel } from '../dist/index.js'

const { values } = parseArgs({ options: {
  model: { type: 'string', short: 'm', default: new URL('../test/fixtures/tiny-dev/ggml-model-i2_s.gguf', import.meta.url).pathname },
  threads: { type: 'string', short: 't' },
  turns: { type: 'string', default: '6' },
  'turn-tokens': { type: 'string', default: '48' },
  n: { type: 'string', short: 'n', default: '32' },
  ctx: { type: 'string', short: 'c', default: '1024' },
  kernel: { type: 'string', default: 'auto' },
} })
const threads = values.threads ? Number(values.threads) : undefined
const model = await loadModel(values.model, { threads, contextSize: Number(values.ctx), kernel: values.kernel })
const n = Number(values.n)
const greedy = { temperature: 0, maxTokens: n, ignoreEos: true }
console.log(`${values.model} · ${model.threads} threads · ${model.variant} · kernel ${model.transformer.kernel} · ctx ${model.contextSize}`)

// Deterministic "user turns": ids spread over the vocabulary.
const turnTokens = (k) => Array.from({ length: Number(values['turn-tokens']) }, (_, i) => 1000 + ((k * 7919 + i * 104729) % 20000))

console.log('\nturn | prompt tokens | evaluated | prompt ms (reuse) | prompt ms (fresh session)')
const session = model.createSession()
let history = model.tokenize('', { addBos: true })
for (let k = 0; k < Number(values.turns); k++) {
  const prompt = [...history, ...turnTokens(k)]
  const r = await session.generate(prompt, greedy)
  const fresh = model.createSession()
  const f = await fresh.generate(prompt, { ...greedy, maxTokens: 1 })
  fresh.dispose()
  console.log(`${k + 1} | ${prompt.length} | ${r.timings.promptEvaluated} | ${r.timings.promptMs.toFixed(1)} | ${f.timings.promptMs.toFixed(1)}`)
  history = [...prompt, ...r.tokens]
}
session.dispose()

console.log('\nsequences | tokens | wall ms | aggregate tok/s')
for (const seqs of [1, 4, 1, 4]) {
  const sessions = Array.from({ length: seqs }, () => model.createSession())
  const prompts = sessions.map((_, i) => turnTokens(100 + i).slice(0, 8))
  // Prompts first (cached), so the timed part is decode: each call re-evaluates one token.
  for (const [i, s] of sessions.entries()) await s.generate(prompts[i], { maxTokens: 0 })
  const t0 = performance.now()
  const results = await Promise.all(sessions.map((s, i) => s.generate(prompts[i], greedy)))
  const ms = performance.now() - t0
  const tokens = results.reduce((a, r) => a + r.tokens.length, 0)
  console.log(`${seqs} | ${tokens} | ${ms.toFixed(0)} | ${(tokens / (ms / 1000)).toFixed(1)}`)
  sessions.forEach((s) => s.dispose())
}
await model.dispose()
