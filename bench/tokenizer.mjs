// Tokenizer speed: building the Llama 3 tokenizer from tiny-dev's GGUF metadata (128,256 tokens,
// 280,147 merges) and from its tokenizer.json, and encoding long texts, including the long runs
// of one character where quadratic merging would take minutes; the same runs through the
// SentencePiece tokenizer (llama-tokenizer-js's LLaMA-2 vocabulary, scores from its merge ranks).
// Needs `npm run build` (../dist). Run: node bench/tokenizer.mjs [--runs 3]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import llamaTokenizer from 'llama-tokenizer-js'
import { bytesSource, GgufType, readGguf, tokenizerFromGguf, tokenizerFromHf } from '../dist/index.js'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)
const dir = new URL('../test/fixtures/tiny-dev/', import.meta.url)
const readJson = (name) => JSON.parse(readFileSync(new URL(name, dir), 'utf8'))

/** Median wall time (ms) of `runs` calls of fn. */
function time(fn) {
  const ms = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    fn()
    ms.push(performance.now() - t0)
  }
  return ms.sort((a, b) => a - b)[Math.floor(runs / 2)]
}

const ggufBytes = readFileSync(new URL('ggml-model-i2_s.gguf', dir))
const { metadata } = await readGguf(bytesSource(ggufBytes, 'ggml-model-i2_s.gguf'))
const hfJson = readJson('tokenizer.json'), hfConfig = readJson('tokenizer_config.json')

// LLaMA-2 SentencePiece metadata: a piece scores minus the rank of the first merge producing it.
const firstMerge = new Map()
for (const [pair, rank] of llamaTokenizer.merges) {
  const piece = pair.replace(' ', '')
  if (!firstMerge.has(piece) || rank < firstMerge.get(piece)) firstMerge.set(piece, rank)
}
const pieces = llamaTokenizer.vocabById
const arr = (itemType, value) => ({ type: GgufType.ARRAY, itemType, value })
const spmMetadata = new Map([
  ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'llama' }],
  ['tokenizer.ggml.tokens', arr(GgufType.STRING, pieces)],
  ['tokenizer.ggml.scores', arr(GgufType.FLOAT32, pieces.map((p, id) => (id <= 258 ? 0 : -(firstMerge.get(p) ?? 1e6 + id))))],
  ['tokenizer.ggml.token_type', arr(GgufType.INT32, pieces.map((_, id) => (id === 0 ? 2 : id <= 2 ? 3 : id <= 258 ? 6 : 1)))],
])

const llama3 = tokenizerFromGguf(metadata)
const spm = tokenizerFromGguf(spmMetadata)
const mixed = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const runsOfOne = 'a'.repeat(20_000) + ' '.repeat(20_000)

const rows = [
  ['Llama 3: build from GGUF metadata', time(() => tokenizerFromGguf(metadata))],
  ['Llama 3: build from tokenizer.json', time(() => tokenizerFromHf(hfJson, hfConfig))],
  [`Llama 3: encode README.md (${mixed.length} chars)`, time(() => llama3.encode(mixed))],
  ['Llama 3: encode 20k × "a" + 20k spaces', time(() => llama3.encode(runsOfOne))],
  [`SentencePiece: encode README.md (${mixed.length} chars)`, time(() => spm.encode(mixed))],
  ['SentencePiece: encode 20k × "a" + 20k spaces', time(() => spm.encode(runsOfOne))],
]
console.log(`${new Date().toISOString()} · Node ${process.versions.node} · median of ${runs}\n`)
console.log('| step | ms |\n|---|---:|')
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(1)} |`)
