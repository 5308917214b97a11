/**
 * `bitnet bench`: prompt and decode speed of a model file or of a synthetic model of a
 * published shape (random ternary weights, real tensor layout; generated once into the
 * OS temp folder), with an optional per-op time breakdown.
 */
import { InvalidArgumentError } from '../errors.js'
import { convertToGguf, type ConvertTarget } from '../convert/index.js'
import { openModelContents } from '../api/load-model.js'
import { cachedTempFile } from '../io/file.js'
import { SHAPES, syntheticChunks } from '../model/synthetic.js'
import type { KernelVariant } from '../runtime/wasm.js'
import { MODEL_OPTIONS, intOpt, oneOf, openModel, parse, printJson } from './common.js'
import { formatBytes, ProgressBar } from './progress.js'
import { kvBytesPerToken } from '../model/transformer.js'
import { benchKernels } from './bench-kernels.js'
import type { Transformer } from '../model/transformer.js'
import { hardwareConcurrency } from '../env.js'

export const BENCH_HELP = `bitnet bench (-m MODEL | --shape 2b4t|0.7b|3b|8b|20b) [--format i2s|tq2_0|tq1_0|tl1|tl2] [-p 128] [-n 64] [-c N] [-t N] [-r 1] [--variant relaxed|simd|single] [--kv-type auto|f16|f32] [--profile] [--chunk-cost N] [--json]
  prints prompt tokens/s, decode tokens/s, time to first token, peak RSS, kernel, variant, threads;
  -c: the context the model is loaded with (its KV cache and attention buffers; default -p + -n + 8);
  --profile adds time per op and rounds per forward pass with their fixed cost; --chunk-cost sets
  the multiply-adds of a round's smallest chunks (bench/chunks.mjs measures it)
  --json: {"pp_tok_s", "tg_tok_s", "ttft_ms", "peak_rss_mb", "kernel", "kv_type", "kv_bytes_per_token", "n_ctx", "variant", "threads"}
bitnet bench --kernels [-t N] [--variant relaxed|simd|single] [--json]
  matvec kernels in GB/s of weights per thread, L2- and DRAM-resident, 1 and N threads`

// Formats the synthetic generator writes directly; tl1/tl2 are converted from its I2_S file.
const FORMATS = { i2s: 'I2_S', tq2_0: 'TQ2_0', tq1_0: 'TQ1_0' } as const
const CONVERTED = ['tl1', 'tl2'] as const

export async function benchCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    shape: { type: 'string' },
    format: { type: 'string', default: 'i2s' },
    'n-prompt': { type: 'string', short: 'p' },
    'n-gen': { type: 'string', short: 'n' },
    repetitions: { type: 'string', short: 'r' },
    variant: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'chunk-cost': { type: 'string' },
    kernels: { type: 'boolean', default: false },
  })
  if (values.help) { process.stdout.write(BENCH_HELP + '\n'); return 0 }
  const variant = oneOf(values.variant, 'variant', ['relaxed', 'simd', 'single'] as const)
  if (values.kernels) {
    const threads = intOpt(values.threads, 'threads', 1, await hardwareConcurrency())!
    const rows = await benchKernels(threads, variant, values.json ? undefined : (r) => process.stdout.write(
      `${r.variant.padEnd(8)} ${r.kernel.padEnd(18)} ${r.size.padEnd(5)} ${String(r.threads).padStart(2)} thr  ` +
      `${r.gbPerSecPerThread.toFixed(2).padStart(6)} GB/s/thread  ${r.usPerCall.toFixed(1).padStart(8)} µs\n`))
    if (values.json) printJson(rows)
    return 0
  }
  const pp = intOpt(values['n-prompt'], 'n-prompt', 1, 128)!
  const tg = intOpt(values['n-gen'], 'n-gen', 1, 64)!
  const reps = intOpt(values.repetitions, 'repetitions', 1, 1)!
  const ctx = intOpt(values.ctx, 'ctx', 1, pp + tg + 8)!
  if (ctx < pp + tg) throw new InvalidArgumentError(`-c ${ctx} cannot hold the ${pp} prompt and ${tg} generated tokens: give -c ${pp + tg} or more, or a smaller -p / -n`)
  let path = values.model
  if (values.shape !== undefined) {
    if (path) throw new InvalidArgumentError('give -m MODEL or --shape, not both')
    const shape = SHAPES[values.shape as keyof typeof SHAPES]
    if (!shape) throw new InvalidArgumentError(`unknown --shape '${values.shape}' (${Object.keys(SHAPES).join(', ')})`)
    const fmt = values.format!
    const format = FORMATS[fmt as keyof typeof FORMATS]
    const converted = (CONVERTED as readonly string[]).includes(fmt)
    if (!format && !converted) throw new InvalidArgumentError(`--format must be one of ${[...Object.keys(FORMATS), ...CONVERTED].join(', ')}`)
    const bar = new ProgressBar(`generating synthetic ${values.shape}`)
    bar.update(0, 1)
    path = await cachedTempFile(`bitnet-synthetic-${values.shape}-${converted ? 'i2s' : fmt}.gguf`,
      () => syntheticChunks(shape, { format: format ?? 'I2_S', seed: 1 }))
    if (converted) {
      const contents = await openModelContents(path)
      try {
        path = await cachedTempFile(`bitnet-synthetic-${values.shape}-${fmt}.gguf`,
          () => convertToGguf(contents, { to: fmt as ConvertTarget, signal }))
      } finally {
        await contents.close?.()
      }
    }
    bar.done()
  }
  const model = await openModel({ ...values, model: path, ctx: String(ctx) }, signal, variant)
  const vocab = model.config.vocabSize
  // Random prompt tokens (fixed seed): speed does not depend on which tokens they are.
  const prompt = Array.from({ length: pp }, (_, i) => (i * 7919 + 13) % vocab)
  if (values.profile) model.transformer.profile = new Map()
  const chunkCost = intOpt(values['chunk-cost'], 'chunk-cost', 1)
  if (chunkCost) model.transformer.pool.chunkCost = chunkCost
  const runs = []
  for (let r = 0; r < reps; r++) {
    const res = await model.generate(prompt, { maxTokens: tg, temperature: 0, ignoreEos: true, signal })
    runs.push(res.timings)
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const out = {
    model: path,
    pp_tok_s: median(runs.map((t) => t.promptTokensPerSecond)),
    tg_tok_s: median(runs.map((t) => t.decodeTokensPerSecond)),
    ttft_ms: median(runs.map((t) => t.timeToFirstTokenMs)),
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    kernel: model.transformer.kernel,
    output: model.transformer.outputType,
    kv_type: model.transformer.kvType,
    kv_bytes_per_token: kvBytesPerToken(model.config, model.transformer.kvType),
    n_ctx: model.contextSize,
    variant: model.variant as KernelVariant,
    threads: model.threads,
    n_prompt: pp,
    n_gen: tg,
    repetitions: reps,
    profile: values.profile ? profileTable(model.transformer.profile!) : undefined,
    rounds: values.profile ? roundStats(model.transformer) : undefined,
  }
  await model.dispose()
  if (values.json) { printJson(out); return 0 }
  process.stdout.write(
    `${path}\n  kernel ${out.kernel} (${out.variant} build), output ${out.output}, ${out.threads} threads\n` +
    `  KV cache ${out.kv_type}, ${formatBytes(out.kv_bytes_per_token)} per token, ${out.n_ctx} tokens of context\n` +
    `  prompt  ${out.pp_tok_s.toFixed(2)} tok/s (${pp} tokens)\n` +
    `  decode  ${out.tg_tok_s.toFixed(2)} tok/s (${tg} tokens)\n` +
    `  ttft    ${out.ttft_ms.toFixed(1)} ms\n  peak RSS ${out.peak_rss_mb.toFixed(0)} MB\n`)
  if (out.profile) {
    process.stdout.write('  per op (all tokens):\n')
    for (const p of out.profile) process.stdout.write(`    ${p.op.padEnd(14)} ${p.ms.toFixed(1).padStart(9)} ms ${p.share.toFixed(1).padStart(5)} %  ${p.calls} calls\n`)
    const r = out.rounds!
    process.stdout.write(`  rounds: ${r.per_pass.toFixed(1)} per forward pass, ${r.round_us.toFixed(1)} µs each on average, of which ` +
      `the leader waits ${r.wait_us.toFixed(1)} µs for others' last chunks; ${r.active_threads} of ${out.threads} threads taking part at the end\n`)
  }
  return 0
}

/** Rounds per forward pass and their fixed cost: the leader's wait after it ran out of chunks. */
function roundStats(t: Transformer) {
  const s = t.pool.stats
  return {
    per_pass: s.rounds / Math.max(1, t.passes),
    round_us: (1000 * s.roundMs) / Math.max(1, s.rounds),
    wait_us: (1000 * (s.roundMs - s.leadMs)) / Math.max(1, s.rounds),
    active_threads: t.activeThreads,
  }
}

function profileTable(p: Map<string, { ms: number; calls: number }>) {
  const total = [...p.values()].reduce((s, e) => s + e.ms, 0)
  return [...p].map(([op, e]) => ({ op, ms: e.ms, calls: e.calls, share: (100 * e.ms) / total })).sort((a, b) => b.ms - a.ms)
}
