#!/usr/bin/env node
// Are `bitnet convert --to tq2_0|tq1_0` files readable by upstream llama.cpp, and does it compute
// the same network? node-llama-cpp (upstream llama.cpp, native CPU) vs this engine on the same
// converted file, teacher-forced over a long prompt: the share of positions whose top-1 next
// token agrees (issue 7 target ≥ 99%). The two engines quantize activations differently
// (llama.cpp: Q8_K per 256-block; BitNet: int8 per token), so a few near-ties may flip.
//
// Model: synthetic, random ternary weights, rows of 256 multiples (TQ blocks are 256 wide),
// written as I2_S by src/model/synthetic.ts and converted by convertToGguf. Two adjustments:
// - SiLU (the 1bitLLM 'bitnet' graph): the upstream llama.cpp in node-llama-cpp 3.22.1 ignores
//   `bitnet.hidden_activation` and always runs SiLU, so a ReLU² (2B4T) model cannot agree;
// - γ scaled by 1/√K (weights of trained scale: each projection keeps its input's magnitude).
//   With the synthetic default γ ∈ [0.5, 1.5) every layer multiplies the residual ~20× and the
//   network is chaotic: any rounding difference (Q8_K vs per-token int8) flips most argmaxes.
// Usage (after `npm run build` and `cd bench && npm ci`): node bench/tq-agreement.mjs [--tokens 512] [--json]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { convertToGguf, ggufChunks, loadModel, openModelContents, syntheticGguf } from '../dist/index.js'

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '512' }, json: { type: 'boolean', default: false } } })
const n = Number(values.tokens)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitnet-tq-'))
const shape = { arch: 'bitnet', nEmbd: 512, nFf: 1536, nLayer: 4, nHead: 8, nHeadKv: 2, vocab: 2048, contextLength: 2048, activation: 'silu' }

/** The synthetic model with each I2_S tensor's γ (f32 after the packed codes) divided by √K. */
function trainedScale(gguf) {
  for (const t of gguf.tensors.filter((x) => x.typeId === 36)) {
    const dv = new DataView(t.data.buffer, t.data.byteOffset)
    const at = (t.dims[0] * t.dims[1]) / 4
    dv.setFloat32(at, dv.getFloat32(at, true) / Math.sqrt(t.dims[0]), true)
  }
  return gguf
}

async function write(file, chunks) {
  const fd = fs.openSync(file, 'w')
  try { for await (const c of chunks) fs.writeSync(fd, c) } finally { fs.closeSync(fd) }
  return file
}

const argmax = (l) => { let b = 0; for (let i = 1; i < l.length; i++) if (l[i] > l[b]) b = i; return b }
// Random byte-level tokens (the synthetic vocabulary's first 256 ids), fixed seed.
let seed = 12345
const prompt = Array.from({ length: n }, () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % 256)

const i2s = await write(path.join(dir, 'synth-i2s.gguf'), ggufChunks(trainedScale(syntheticGguf(shape, { seed: 3 }))))
const { getLlama, LlamaLogLevel } = await import('node-llama-cpp')
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
async function upstreamTop(file) {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 })
  const ctx = await model.createContext({ contextSize: n + 8, batchSize: n, threads: 2 })
  const out = await ctx.getSequence().controlledEvaluate(prompt.map((t) => [t, { generateNext: { logits: true } }]))
  await ctx.dispose()
  await model.dispose()
  return out.map((o) => [...o.next.logits.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0])
}

// Yardstick: upstream against itself, TQ2_0 (Q8_K activations) vs F16 weights (float activations).
const convertTo = async (to) => {
  const contents = await openModelContents(i2s)
  const file = await write(path.join(dir, `synth-${to}.gguf`), convertToGguf(contents, { to }))
  await contents.close()
  return file
}
const upstreamF16 = await upstreamTop(await convertTo('f16'))
const results = []
for (const to of ['tq2_0', 'tq1_0']) {
  const file = await convertTo(to)
  const ours = await loadModel(file, { threads: 2, outputType: 'f16', contextSize: n + 8 })
  const oursLogits = ours.logits(prompt)
  const oursTop = oursLogits.map(argmax)
  // top-1 − top-2 logit gap of ours: disagreements should sit at near-ties
  const margin = oursLogits.map((l) => { const s = Array.from(l).sort((a, b) => b - a); return s[0] - s[1] })
  await ours.dispose()

  const theirTop = await upstreamTop(file)
  const upstreamSelf = theirTop.filter((t, i) => t === upstreamF16[i]).length

  const agree = oursTop.filter((t, i) => t === theirTop[i]).length
  const median = [...margin].sort((a, b) => a - b)[n >> 1]
  const disagreeMargins = margin.filter((_, i) => oursTop[i] !== theirTop[i]).map((m) => +m.toFixed(3))
  results.push({ format: to, positions: n, agree, rate: +(agree / n).toFixed(4), upstreamVsItsF16: +(upstreamSelf / n).toFixed(4), medianMargin: +median.toFixed(3), disagreeMargins })
}
fs.rmSync(dir, { recursive: true, force: true })
if (values.json) console.log(JSON.stringify(results))
else {
  for (const r of results) {
    console.log(`${r.format}: top-1 agrees at ${r.agree}/${r.positions} positions (${(100 * r.rate).toFixed(2)} %; llama.cpp ${r.format} vs llama.cpp F16: ${(100 * r.upstreamVsItsF16).toFixed(2)} %); ` +
      `top-1/top-2 logit gap: median ${r.medianMargin}, at the disagreements ${r.disagreeMargins.join(' ')}`)
  }
}
