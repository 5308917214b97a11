#!/usr/bin/env node
// bitnet.cpp (microsoft/BitNet, the native engine of BitNet b1.58; built outside this repository
// by build-bitnet-cpp.sh) as a peer engine for peers.mjs and contention.mjs, and the model file it
// runs: the synthetic 2B4T shape of make-model.mjs (same seed, so the same ternary codes) in
// bitnet.cpp's I2_S with a Q6_K token embedding (= the tied output head), as bitnet.cpp publishes
// its models since its November 2025 update.
//
//   node bitnet-cpp.mjs [--bitnet-cpp DIR] [--dir DIR]   writes <dir>/bitnet-2b4t-synth-i2_s-q6k.gguf
//
// DIR of the build: --bitnet-cpp or $BITNET_CPP_DIR, the cmake build directory or its bin/.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { SHAPES, syntheticChunks } from '../dist/index.js'
import { defaultDir, writeChunks } from './make-model.mjs'

export const BITNET_CPP_HOW = 'build it with bench/build-bitnet-cpp.sh CHECKOUT (bench/README.md, "bitnet.cpp"), then pass --bitnet-cpp DIR or set BITNET_CPP_DIR'
const TOOLS = ['llama-cli', 'llama-quantize']

/** The directory holding the build's llama-cli and llama-quantize, or undefined when there is no build. */
export function bitnetCppBin(dir = process.env.BITNET_CPP_DIR) {
  if (!dir) return undefined
  return [path.join(dir, 'bin'), dir].map((d) => path.resolve(d)).find((d) => TOOLS.every((t) => fs.existsSync(path.join(d, t))))
}

export const bitnetCppModelPath = (dir = defaultDir()) => path.join(dir, 'bitnet-2b4t-synth-i2_s-q6k.gguf')

/**
 * llama-quantize `input` to I2_S with a Q6_K token embedding (tensors already I2_S are copied as
 * they are); `extra`: more options, e.g. ['--override-kv', 'KEY=TYPE:VALUE']. Writes `output`
 * through `output`.part, renamed once complete, so an interrupted run leaves no file that looks done.
 */
export function quantize(bin, input, output, log, extra = []) {
  // One quantizer thread: with more, the fork's I2_S writer places each chunk (and its scale) at
  // start_row × a row size 4× too large, so the file is silently corrupt (the speed is the same).
  const part = output + '.part'
  const args = ['--allow-requantize', '--token-embedding-type', 'Q6_K', ...extra, input, part, 'I2_S', '1']
  log(`${path.join(bin, 'llama-quantize')} ${args.join(' ')}`)
  try {
    const r = spawnSync(path.join(bin, 'llama-quantize'), args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`llama-quantize failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`)
    fs.renameSync(part, output)
  } finally {
    fs.rmSync(part, { force: true })
  }
}

/**
 * Writes bitnet.cpp's model (kept if present): the TQ2_0 synthetic file under bitnet.cpp's own
 * architecture name 'bitnet-b1.58' (in its llama.cpp fork, 'bitnet' is the 2024 3B graph), then
 * llama-quantize to I2_S + Q6_K embedding; TQ2_0 → I2_S keeps every trit (one scale per tensor).
 */
export function makeBitnetCppModel(bin, dir = defaultDir(), log = console.error) {
  const out = bitnetCppModelPath(dir)
  if (fs.existsSync(out)) { log(`cached ${out}`); return out }
  fs.mkdirSync(dir, { recursive: true })
  const tq2 = path.join(dir, 'bitnet-2b4t-synth-tq2_0-b158.tmp.gguf')
  try {
    writeChunks(tq2, syntheticChunks(SHAPES['2b4t'], { format: 'TQ2_0', seed: 1 }))
    quantize(bin, tq2, out, log)
  } finally {
    fs.rmSync(tq2, { force: true })
  }
  log(`wrote ${out} (${(fs.statSync(out).size / 1e9).toFixed(3)} GB)`)
  return out
}

/**
 * CPU time of process `pid` sampled from /proc every 50 ms (Linux); `share(ms, threads)` is its
 * CPU time over the last `ms` before the final sample as a share of threads × that time, or
 * null where /proc is missing.
 */
export function cpuSampler(pid) {
  const tick = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)
  const samples = []
  const read = () => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // f[11], f[12]: utime, stime
      samples.push({ t: performance.now(), cpu: (Number(f[11]) + Number(f[12])) * tick })
    } catch {} // exited
  }
  const timer = setInterval(read, 50)
  return {
    stop: () => clearInterval(timer),
    share(ms, threads) {
      const last = samples.at(-1)
      const first = last && samples.find((s) => s.t >= last.t - ms)
      return first && last.t - first.t > ms / 2 ? (last.cpu - first.cpu) / ((last.t - first.t) * threads) : null
    },
  }
}

/** llama_perf_*_print's "NAME time = MS ms / N tokens|runs" line. */
export function perfLine(log, name) {
  const m = log.match(new RegExp(`(?<!prompt )\\b${name} time =\\s*([\\d.]+) ms /\\s*(\\d+) (?:tokens|runs)`))
  if (!m) throw new Error(`bitnet.cpp printed no '${name} time' line`)
  return { ms: Number(m[1]), n: Number(m[2]) }
}

/**
 * Runs the build's `tool` with `args` and resolves { out, err, cpu } (its stdout and stderr text,
 * and its CPU sampler, stopped at exit); rejects when it exits non-zero.
 */
export function runTool(bin, tool, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(bin, tool), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const cpu = cpuSampler(child.pid)
    let out = '', err = ''
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d })
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d })
    child.on('error', reject)
    child.on('close', (code) => {
      cpu.stop()
      if (code === 0) resolve({ out, err, cpu })
      else reject(new Error(`${tool} exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))
    })
  })
}

/**
 * llama-cli's decode from its timings: the decode steps and their eval time plus their share of
 * sampling time, i.e. (tg − 1) tokens over the first to the last generated token as the other
 * engines count it.
 */
export function llamaCliDecode(err) {
  const evals = perfLine(err, 'eval')
  const sampling = perfLine(err, 'sampling')
  return { steps: evals.n, ms: evals.ms + (sampling.ms * evals.n) / sampling.n }
}

/**
 * One measurement with llama-cli: it loads the model, warms up (one decode), evaluates the prompt
 * (BOS + `text`) in one batch and generates `tg` tokens greedily, then prints llama.cpp's timings.
 * Prompt tok/s = prompt tokens / prompt eval time; decode tok/s as llamaCliDecode counts it.
 */
export async function runBitnetCpp(bin, modelPath, { threads, pp, tg, text, contextSize }) {
  // No thread count: llama-cli's own default (one per physical core).
  const pin = threads === undefined ? [] : ['-t', String(threads), '-tb', String(threads)]
  const args = ['-m', modelPath, ...pin, '-c', String(contextSize), '-b', String(pp), '-p', text, '-n', String(tg), '--temp', '0', '--ignore-eos', '--no-display-prompt', '-s', '1']
  const { err, cpu } = await runTool(bin, 'llama-cli', args)
  const prompt = perfLine(err, 'prompt eval')
  const decode = llamaCliDecode(err)
  if (prompt.n !== pp) throw new Error(`bitnet.cpp: the prompt is ${prompt.n} tokens, expected ${pp}`)
  return {
    pp: prompt.n / (prompt.ms / 1000),
    tg: decode.steps / (decode.ms / 1000),
    cpuShare: cpu.share(prompt.ms + decode.ms, threads ?? os.availableParallelism()),
    info: { threads, embedding: 'Q6_K' },
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { 'bitnet-cpp': { type: 'string' }, dir: { type: 'string', default: defaultDir() } } })
  const bin = bitnetCppBin(values['bitnet-cpp'])
  if (!bin) {
    console.error(`no bitnet.cpp build found: ${BITNET_CPP_HOW}`)
    process.exit(1)
  }
  makeBitnetCppModel(bin, values.dir)
}
