// Structured-output overhead: JSON-schema token masks over tiny-dev's real Llama 3 vocabulary
// (128,256 tokens), and constrained vs free generation on tiny-dev. Needs `npm run build` (../dist).
// Run: node bench/grammar-mask.mjs
import { readFileSync } from 'node:fs'
import { createResponseConstraint, loadModel, tokenizerFromHf } from '../dist/index.js'

const dir = new URL('../test/fixtures/tiny-dev/', import.meta.url).pathname
const tok = tokenizerFromHf(JSON.parse(readFileSync(dir + 'tokenizer.json', 'utf8')), JSON.parse(readFileSync(dir + 'tokenizer_config.json', 'utf8')))
const schema = {
  type: 'object',
  properties: {
    title: { type: 'string' }, year: { type: 'integer' }, rating: { type: 'number' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 5 },
    author: { type: 'object', properties: { name: { type: 'string' }, alive: { type: 'boolean' } }, required: ['name'] },
    genre: { enum: ['fiction', 'poetry', 'history'] },
  },
  required: ['title', 'year', 'author', 'genre'],
}
const doc = JSON.stringify({ title: 'The "Book" of Ruth \u00e9 \ud83d\ude00', year: 1611, rating: 4.5, tags: ['old', 'short'], author: { name: 'Unknown scribe', alive: false }, genre: 'history' }, null, 1)
const ids = tok.encode(doc, { addBos: false })

/** Replays `ids` through a fresh constraint; returns per-token mask times (ms). */
function replay() {
  const c = createResponseConstraint({ type: 'json_schema', schema }, tok)
  const logits = new Float32Array(tok.vocabSize)
  const times = []
  for (const id of ids) {
    const t = performance.now()
    c.mask(logits)
    times.push(performance.now() - t)
    if (logits[id] !== 0) throw new Error(`token ${id} masked`)
    c.accept(id)
    logits.fill(0)
  }
  return times
}
const stats = (t) => {
  const s = [...t].sort((a, b) => a - b)
  return `mean ${(t.reduce((a, b) => a + b, 0) / t.length).toFixed(2)} ms, median ${s[s.length >> 1].toFixed(2)} ms, max ${s[s.length - 1].toFixed(1)} ms`
}
let t = performance.now()
createResponseConstraint({ type: 'json_object' }, tok) // builds the vocabulary index (once per tokenizer)
console.log(`vocabulary index: ${(performance.now() - t).toFixed(0)} ms (once per tokenizer)`)
console.log(`${ids.length} tokens, cold masks (new schema, first visit of each state): ${stats(replay())}`)
console.log(`${ids.length} tokens, warm masks (same schema again, mask cache): ${stats(replay())}`)

const model = await loadModel(dir + 'ggml-model-i2_s.gguf', { threads: 2 })
const rate = async (opts) => {
  const r = await model.generate('And God said', { temperature: 0, ...opts })
  return { tokens: r.tokens.length, msPerToken: r.timings.decodeMs / Math.max(1, r.tokens.length - 1) }
}
await rate({ maxTokens: 16 }) // warm-up
const free = await rate({ maxTokens: 64, ignoreEos: true })
const json = await rate({ maxTokens: 64, responseFormat: { type: 'json_schema', schema } })
console.log(`tiny-dev decode: free ${free.msPerToken.toFixed(2)} ms/token, json_schema ${json.msPerToken.toFixed(2)} ms/token (${json.tokens} tokens), ratio ${(json.msPerToken / free.msPerToken).toFixed(2)}`)
await model.dispose()
