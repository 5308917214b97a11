#!/usr/bin/env node
// Speculative decoding from the prompt (`draft: 'prompt-lookup'`) against plain decoding, on a
// trained model at the 2B4T shape, with input-grounded tasks (the answer repeats the prompt).
//
// The model: tiny-dev (a trained BitNet b1.58, Llama 3 vocabulary) zero-padded ×20 by
// padModelContents (src/model/pad.ts: the same function at 2560 / 7680 wide, 80 heads of 32,
// 20 KV heads) plus 22 layers whose ternary weights are all zero (the residual passes through
// them unchanged: attention and FFN outputs are exactly 0), 30 layers in all: ~2.3 G ternary
// weights and the 128256 × 2560 embedding, the cost of a 2B4T step, tiny-dev's text. Written
// once to <dir>/tiny-dev-2b4t-i2_s.gguf (~1.2 GB, a few minutes).
//
// Each measurement is its own process (fresh memory); plain and lookup alternate per task and
// run (interleaved), so a busy machine slows both alike. Decode tok/s = (tokens − 1) / time from
// the first to the last generated token. Greedy texts must be identical or the run fails.
//
// With --bitnet-cpp DIR (a build of build-bitnet-cpp.sh, or $BITNET_CPP_DIR), bitnet.cpp runs the
// same tasks interleaved with ours: plain greedy decoding (llama-cli) and llama.cpp's own lookup
// decoding (llama-lookup: drafts from an n-gram cache of prompt and output, up to --cpp-draft
// tokens a pass), on the same model requantized the way bitnet.cpp publishes models:
// <dir>/tiny-dev-2b4t-i2_s-q6k.gguf, the I2_S tensors copied as they are, the embedding (= the
// tied output head, of which ours keeps a 6-bit copy) Q6_K, and tokenizer.ggml.pre = llama-bpe
// (without it bitnet.cpp splits the prompt into other tokens than ours). Its greedy text is
// compared with ours, not required equal: other numerics may pick another token after a while.
//
//   node lookup.mjs [--runs 3] [--threads 2] [--tokens 96] [--dir DIR] [--node NODE] [--bitnet-cpp DIR] [--cpp-draft 3]
//   node lookup.mjs --rows         # cost of a pass of n rows (1..8) relative to one row
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BITNET_CPP_HOW, bitnetCppBin, llamaCliDecode, quantize, runTool } from './bitnet-cpp.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const TINY = path.join(here, '../test/fixtures/tiny-dev/ggml-model-i2_s.gguf')
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' }, tokens: { type: 'string', default: '96' },
    dir: { type: 'string', default: process.env.BITNET_BENCH_DIR ?? path.join(os.tmpdir(), 'bitnet-wasm-bench') },
    node: { type: 'string', default: process.execPath }, rows: { type: 'boolean', default: false },
    child: { type: 'string' }, task: { type: 'string' },
    'bitnet-cpp': { type: 'string', default: process.env.BITNET_CPP_DIR },
    // llama-lookup's drafts a pass: 3 is what ours drafts at full acceptance (a pass of 4 rows is
    // the cheapest per row, PASS_COST); llama-lookup's own default is 5.
    'cpp-draft': { type: 'string', default: '3' },
  },
})
const FILE = path.join(values.dir, 'tiny-dev-2b4t-i2_s.gguf')
const CPP_FILE = path.join(values.dir, 'tiny-dev-2b4t-i2_s-q6k.gguf')
const LAYERS = 30
const FACTOR = 20

// Input-grounded tasks in tiny-dev's domain (King James text): the answer copies the input;
// and one free continuation.
const VERSES = 'And God said, Let there be light: and there was light. And God saw the light, that it was good: ' +
  'and God divided the light from the darkness. And God called the light Day, and the darkness he called Night. ' +
  'And the evening and the morning were the first day.'
export const TASKS = {
  repeat: `${VERSES}\n\nThe same text again, word for word:\n\n`,
  numbered: `1 ${VERSES}\n2 ${VERSES}\n3 ${VERSES}\n4 `,
  json: `${VERSES}\n\nThe verses as JSON: {"book": "Genesis", "chapter": 1, "text": "And God said,`,
  // extraction: list the names a verse gives
  names: 'These are the names of the children of Israel, which came into Egypt; Reuben, Simeon, Levi, and Judah, ' +
    'Issachar, Zebulun, and Benjamin, Dan, and Naphtali, Gad, and Asher.\n\nThe names, one by one: Reuben, Simeon, Levi,',
  // not input-grounded: what drafting costs when there is little to copy
  free: 'In the beginning God created the heaven and the earth.',
}

/** tiny-dev padded to the 2B4T shape (see the header), as I2_S. */
async function makeModel() {
  if (fs.existsSync(FILE)) return
  const { convertToGguf, GgufType, openModelContents, padModelContents } = await import('../dist/index.js')
  const padded = padModelContents(await openModelContents(TINY), { factor: FACTOR })
  const layer0 = padded.tensors.filter((t) => t.name.startsWith('blk.0.'))
  const zeroLayers = []
  for (let l = padded.config.nLayer; l < LAYERS; l++) {
    for (const t of layer0) zeroLayers.push(t.dims.length === 2 ? zeroTernary(t, l) : { ...t, name: t.name.replace('blk.0.', `blk.${l}.`) })
  }
  // convert copies the source file's metadata: its block_count too
  const metadata = new Map(padded.gguf.metadata).set(`${padded.config.arch}.block_count`, { type: GgufType.UINT32, value: LAYERS })
  const contents = { ...padded, config: { ...padded.config, nLayer: LAYERS }, tensors: [...padded.tensors, ...zeroLayers], gguf: { ...padded.gguf, metadata } }
  fs.mkdirSync(values.dir, { recursive: true })
  const fd = fs.openSync(FILE + '.part', 'w')
  try { for await (const c of convertToGguf(contents, { to: 'i2s' })) fs.writeSync(fd, c) } finally { fs.closeSync(fd) }
  fs.renameSync(FILE + '.part', FILE)
}

// An I2_S tensor of `like`'s shape with every weight 0 (code 1 = 0b01 in each 2-bit field) and scale 1.
function zeroTernary(like, layer) {
  const [cols, rows] = like.dims
  const bytes = new Uint8Array(rows * cols / 4 + 32)
  bytes.fill(0x55, 0, rows * cols / 4)
  new DataView(bytes.buffer).setFloat32(rows * cols / 4, 1, true)
  return { ...like, name: like.name.replace('blk.0.', `blk.${layer}.`), format: 'I2_S', byteSize: bytes.length, decode: undefined, read: async (at, n) => bytes.subarray(at, at + n) }
}

// One process: one generation of `task` with or without drafts → JSON line on stdout.
async function child(mode, task) {
  const { loadModel } = await import('../dist/index.js')
  const model = await loadModel(FILE, { threads: +values.threads, contextSize: 512 })
  await model.generate('In the beginning', { maxTokens: 4, temperature: 0 }) // warm-up
  const gen = model.generate(TASKS[task], { maxTokens: +values.tokens, temperature: 0, ignoreEos: true, draft: mode === 'lookup' ? 'prompt-lookup' : false })
  // CPU time of the process from the first token to the last: the work, even on a busy machine.
  let c0, n = 0
  const pieces = [] // each token's text: names the first token where bitnet.cpp's text differs
  for await (const c of gen) {
    if (c.tokenId < 0) { pieces[pieces.length - 1] += c.text; continue }
    pieces.push(c.text)
    if (n++ === 0) c0 = process.cpuUsage()
  }
  const c = process.cpuUsage(c0), r = await gen
  const cpuTokS = (n - 1) / ((c.user + c.system) / 1e6)
  console.log(JSON.stringify({ text: r.text, pieces, tokS: r.timings.decodeTokensPerSecond, cpuTokS, drafted: r.timings.draftTokens, accepted: r.timings.draftAccepted }))
  await model.dispose()
}

// One process: ms per pass of n rows of one cache (n = 1..8), interleaved, median of 5.
async function rowsChild() {
  const { loadModel } = await import('../dist/index.js')
  const model = await loadModel(FILE, { threads: +values.threads, contextSize: 512 })
  const t = model.transformer
  t.prefill(model.tokenize(VERSES), 0, t.kv, 'none')
  // Wall time, and CPU time of the process (all threads: on a busy machine the work itself).
  const ms = Array.from({ length: 8 }, () => []), cpu = Array.from({ length: 8 }, () => [])
  for (let rep = 0; rep < 5; rep++) {
    for (let n = 1; n <= 8; n++) {
      const t0 = performance.now(), c0 = process.cpuUsage()
      t.forwardBatch(Array.from({ length: n }, (_, i) => ({ token: 1000 + i, pos: 100 + i, logits: true })))
      const c = process.cpuUsage(c0)
      ms[n - 1].push(performance.now() - t0)
      cpu[n - 1].push((c.user + c.system) / 1000)
    }
  }
  const med = (xs) => xs.map((x) => x.sort((a, b) => a - b)[2])
  const [wall, work] = [med(ms), med(cpu)]
  const rel = (m, i, one) => ({ vsOne: +(m / one).toFixed(2), perExtraRow: i ? +((m - one) / i / one).toFixed(2) : 0 })
  console.log(JSON.stringify(wall.map((m, i) => ({ rows: i + 1, ms: +m.toFixed(1), ...rel(m, i, wall[0]), cpuMs: +work[i].toFixed(1), cpu: rel(work[i], i, work[0]) }))))
  await model.dispose()
}

/** bitnet.cpp's copy of FILE (see the header), kept if present. */
function makeCppModel(bin) {
  if (!fs.existsSync(CPP_FILE)) quantize(bin, FILE, CPP_FILE, console.error, ['--override-kv', 'tokenizer.ggml.pre=str:llama-bpe'])
}

// One bitnet.cpp generation of `task`, plain (llama-cli) or drafted (llama-lookup): the fields of
// child's line but pieces; tokens per CPU second from the process's CPU share over the decode.
async function runCpp(bin, mode, task) {
  const t = values.threads, tokens = +values.tokens, prompt = TASKS[task]
  const args = ['-m', CPP_FILE, '-t', t, '-tb', t, '-c', '512', '-p', prompt, '--temp', '0', '--ignore-eos', '-s', '1']
  const rate = (text, steps, ms, cpu) => {
    const tokS = steps / (ms / 1000), share = cpu.share(ms, +t)
    // both tools end their output with "\n\n"
    return { text: text.endsWith('\n\n') ? text.slice(0, -2) : text, tokS, cpuTokS: share ? tokS / share : NaN }
  }
  if (mode === 'plain') {
    const { out, err, cpu } = await runTool(bin, 'llama-cli', [...args, '-n', String(tokens), '--no-display-prompt'])
    const d = llamaCliDecode(err)
    return rate(out, d.steps, d.ms, cpu)
  }
  // llama-lookup stops once it has sampled more than -n tokens. It prints BOS, the prompt, then the
  // tokens with a line per draft candidate among them; its decode time runs from the first token
  // to the last, as ours.
  const { out, err, cpu } = await runTool(bin, 'llama-lookup', [...args, '-n', String(tokens - 1), '--draft', values['cpp-draft']])
  const decoded = err.match(/decoded\s+(\d+) tokens in\s+([\d.]+) seconds/)
  const stat = (name) => Number(err.match(new RegExp(`${name}\\s*=\\s*(\\d+)`))?.[1])
  const printed = out.replace(/ - draft candidate: token=\d+\n/g, '')
  const at = printed.indexOf(prompt)
  if (!decoded || at < 0) throw new Error(`llama-lookup printed no prompt or no 'decoded … tokens' line: ${err.trim().split('\n').slice(-3).join(' | ')}`)
  return { ...rate(printed.slice(at + prompt.length), +decoded[1] - 1, +decoded[2] * 1000, cpu), drafted: stat('n_drafted'), accepted: stat('n_accept') }
}

// Where `other` stops repeating `text`: the index of the first differing character, or -1 when
// `other` starts with all of `text`.
function firstDiff(text, other) {
  for (let i = 0; i < text.length; i++) if (text[i] !== other[i]) return i
  return -1
}

// bitnet.cpp's greedy text against ours (`pieces`: our tokens' texts): 'same' or the first of our
// tokens (1-based) it does not repeat.
function versusOurs(pieces, text) {
  const at = firstDiff(pieces.join(''), text)
  if (at < 0) return `same ${pieces.length} tokens`
  let start = 0, k = 0
  while (start + pieces[k].length <= at) start += pieces[k++].length
  return `from token ${k + 1}: ours ${JSON.stringify(pieces[k])}, bitnet.cpp ${JSON.stringify(text.slice(start, start + pieces[k].length + 6))}…`
}

const run = (args) => JSON.parse(execFileSync(values.node, [fileURLToPath(import.meta.url), ...args, '--threads', values.threads, '--tokens', values.tokens, '--dir', values.dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop())
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const ENGINES = { 'bitnet-wasm': (mode, task) => run(['--child', mode, '--task', task]) }

if (values.child === 'rows') await rowsChild()
else if (values.child) await child(values.child, values.task)
else {
  await makeModel()
  if (values.rows) {
    console.log(run(['--child', 'rows']))
  } else {
    if (values['bitnet-cpp'] !== undefined) {
      const bin = bitnetCppBin(values['bitnet-cpp'])
      if (!bin) throw new Error(`no bitnet.cpp build at ${values['bitnet-cpp']}: ${BITNET_CPP_HOW}`)
      if (!fs.existsSync(path.join(bin, 'llama-lookup'))) throw new Error(`${bin} has no llama-lookup: build it (cmake --build BUILD_DIR --target llama-lookup; build-bitnet-cpp.sh builds it too)`)
      makeCppModel(bin)
      ENGINES['bitnet.cpp'] = (mode, task) => runCpp(bin, mode, task)
    }
    const res = {}
    for (let i = 0; i < +values.runs; i++) {
      for (const task of Object.keys(TASKS)) {
        for (const [engine, measure] of Object.entries(ENGINES)) {
          for (const mode of ['plain', 'lookup']) {
            const r = await measure(mode, task)
            ;(((res[task] ??= {})[engine] ??= {})[mode] ??= []).push(r)
            console.error(`run ${i + 1} ${task} ${engine} ${mode}: ${r.tokS.toFixed(2)} tok/s, ${r.cpuTokS.toFixed(2)} per CPU s` + (mode === 'lookup' ? `, accepted ${r.accepted}/${r.drafted}` : ''))
          }
        }
        const [p, l] = [res[task]['bitnet-wasm'].plain.at(-1), res[task]['bitnet-wasm'].lookup.at(-1)]
        if (p.text !== l.text) throw new Error(`${task}: greedy text differs with drafts:\n${JSON.stringify(p.text)}\n${JSON.stringify(l.text)}`)
      }
    }
    const cpp = ENGINES['bitnet.cpp'] ? ` · bitnet.cpp llama-cli / llama-lookup --draft ${values['cpp-draft']}` : ''
    console.log(`${new Date().toISOString()} · ${os.cpus()[0].model.trim()} × ${os.cpus().length} · Node ${execFileSync(values.node, ['--version'], { encoding: 'utf8' }).trim()}${cpp} · tiny-dev padded to 2B4T shape, ${values.threads} threads, ${values.tokens} tokens greedy, median of ${values.runs}\n`)
    console.log('| task | engine | plain tok/s | prompt-lookup tok/s | speed-up | plain tok per CPU s | prompt-lookup tok per CPU s | speed-up (CPU) | drafts accepted | greedy text |')
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|')
    for (const [task, engines] of Object.entries(res)) {
      const ours = engines['bitnet-wasm'].plain[0]
      for (const [engine, { plain, lookup }] of Object.entries(engines)) {
        const [p, l] = [plain, lookup].map((rs) => median(rs.map((r) => r.tokS)))
        const [pc, lc] = [plain, lookup].map((rs) => median(rs.map((r) => r.cpuTokS)))
        const acc = lookup.reduce((a, r) => a + r.accepted, 0), dr = lookup.reduce((a, r) => a + r.drafted, 0)
        const text = engine === 'bitnet-wasm' ? 'same with drafts'
          : `drafts ${plain.every((r, i) => firstDiff(r.text, lookup[i].text) < 0) ? 'keep' : 'change'} its text; vs ours: ${versusOurs(ours.pieces, plain[0].text)}`
        console.log(`| ${task} | ${engine} | ${p.toFixed(2)} | ${l.toFixed(2)} | ${(l / p).toFixed(2)}× | ${pc.toFixed(2)} | ${lc.toFixed(2)} | ${(lc / pc).toFixed(2)}× | ${acc}/${dr} (${(100 * acc / Math.max(1, dr)).toFixed(0)} %) | ${text} |`)
      }
    }
    const perRun = (rs) => rs.plain.map((x, i) => `${x.tokS.toFixed(1)}/${rs.lookup[i].tokS.toFixed(1)}`).join(', ')
    console.log('\nPer run (plain / lookup tok/s): ' + Object.entries(res).map(([t, es]) => `${t} ` + Object.entries(es).map(([e, rs]) => `${e} ${perRun(rs)}`).join(', ')).join('; '))
  }
}
