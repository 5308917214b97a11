// The thread pool's per-round overhead in decode (bench/README.md, issue 17): the ternary
// rounds of a 2B4T decode step (30 layers × qkv, o, gate+up, down; 521 MB of weights, each
// matrix its own bytes, as in a model) run interleaved in one process
//   pool:   through this checkout's ThreadPool (src/runtime/thread-pool.ts, the engine's rounds),
//   base:   through the ThreadPool of another built checkout (--base DIR), same memory and kernels,
//   static: the same kernel calls on static even shares (one contiguous range a thread per
//           round) with a spin barrier between rounds: no chunks, no job table, no sleeping,
//   affine: the same even shares, each cut into chunks that shrink toward its end, claimed by
//           its thread from the front and by threads done with their own from the back (a
//           compare-and-swap on a word per thread, its own line), the same barrier: how near a
//           pool whose chunks stay contiguous per thread comes to static shares,
//   one:    the calling thread alone, a call per job,
// token by token A/B/A/B (`--tokens` of each, after 3 to warm up): this VM's speed moves by ±10 %
// within seconds, so modes are compared over the same seconds. Reports each mode's median ms
// a token and its fastest quarter (the least disturbed tokens), and their excess over static.
//   test/runtimes/node_modules/.bin/node bench/ceiling/rounds.mjs                 (i2s, relaxed SIMD)
//   node bench/ceiling/rounds.mjs --kernel tl --variant simd                       (Node 20, baseline)
//   … --base DIR --gap 20 --chunk-cost 100000000 [--base-chunk-cost N] --threads 2 --tokens 60 --modes pool,base,static,affine,one
// (pools: pinned thread count, as `-t N`; the governor still decides whether workers spin).
// `--gap µs` busy-waits on the leader between rounds (decode's serial work: norms, attention).
// Needs `npm run build` (the pool's workers run dist/bitnet-worker.js). The pools are bundled
// from src/ with esbuild into a temporary folder inside each checkout (so that their
// ../dist and ../build resolve), removed at exit.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker, isMainThread, workerData } from 'node:worker_threads'
import { loadavg } from 'node:os'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
/** Per layer: rows × K of each round's jobs (qkv = q, k, v; gate + up; down). */
const LAYER = [[[2560, 2560], [640, 2560], [640, 2560]], [[2560, 2560]], [[6912, 2560], [6912, 2560]], [[2560, 6912]]]
const LAYERS = 30
/**
 * Static and affine shares' sync words: one 64-byte line per thread (its round count), the start
 * word and the split (0 static, 1 affine) in thread 0's; then a line per thread for its claim word.
 */
const LINE = 16, START = 15, SPLIT = 14
/** Affine chunks: the smallest, in multiply-adds (the pool's CHUNK_COST). */
const MIN_CHUNK = 256 * 1024

/** Items of a job (4-row groups for i2s, 16 for tl) and the kernel call on items [first, end). */
function jobOf(kernel, k, mem, w, rows, kp) {
  const lut = kp === 2560 ? mem.lut1 : mem.lut2
  return kernel === 'tl'
    ? { items: rows / 16, kp, call: (a, b) => k.matvec_tl_i8(w, lut, mem.meta, 1, mem.y, rows, kp, a, b), job: ['matvec_tl_i8', w, lut, mem.meta, 1, mem.y, rows, kp] }
    : { items: rows / 4, kp, call: (a, b) => k.matvec_i2s_i8(w, mem.q, mem.meta, 1, mem.y, rows, kp, a, b), job: ['matvec_i2s_i8', w, mem.q, mem.meta, 1, mem.y, rows, kp] }
}

/** The rounds of one token: each a list of jobs, weights laid out one after the other from mem.w. */
function rounds(kernel, k, mem) {
  const out = []
  let w = mem.w
  for (let l = 0; l < LAYERS; l++) {
    for (const shapes of LAYER) {
      out.push(shapes.map(([rows, kp]) => { const j = jobOf(kernel, k, mem, w, rows, kp); w += rows * kp / 4; return j }))
    }
  }
  return out
}

/** Rows a kernel item covers (i2s: 4-row groups; tl: 16-row groups). */
const rowsPerItem = (kernel) => (kernel === 'tl' ? 16 : 4)

const weightBytes = () => LAYERS * LAYER.flat().reduce((a, [r, k]) => a + r * k / 4, 0)

/** Thread `ith`'s contiguous share of a round (the jobs' items end to end), as kernel calls. */
function staticShare(round, ith, nth) {
  const total = round.reduce((a, j) => a + j.items, 0)
  const from = Math.floor(total * ith / nth), to = Math.floor(total * (ith + 1) / nth)
  const calls = []
  let at = 0
  for (const j of round) {
    const a = Math.max(from, at), b = Math.min(to, at + j.items)
    if (a < b) calls.push(() => j.call(a - at, b - at))
    at += j.items
  }
  return () => { for (const c of calls) c() }
}

/** Items [a, b) of the round's jobs end to end, a kernel call per job they touch. */
function runRange(round, a, b) {
  let at = 0
  for (const j of round) {
    const x = Math.max(a, at), y = Math.min(b, at + j.items)
    if (x < y) j.call(x - at, y - at)
    at += j.items
  }
}

/**
 * Affine shares of a round for thread `ith`: every thread's even share cut into chunks (half
 * of what is left, down to MIN_CHUNK), as boundaries; claim word t (sync line nth + 1 + t) holds
 * front << 16 | back of thread t's chunks left. The owner takes from the front, others from the
 * back. Words are reset by their owner at the round's start: a thief that reads one before sees
 * the last round's, empty, and steals nothing.
 */
function affineShare(round, ith, nth, sync, rowsPerItem) {
  const total = round.reduce((a, j) => a + j.items, 0)
  const minItems = Math.ceil(MIN_CHUNK / (rowsPerItem * round[0].kp))
  const bounds = Array.from({ length: nth }, (_, t) => {
    const to = Math.floor(total * (t + 1) / nth), b = [Math.floor(total * t / nth)]
    while (b[b.length - 1] < to) { const left = to - b[b.length - 1]; b.push(b[b.length - 1] + Math.min(left, Math.max(minItems, Math.ceil(left / 2)))) }
    return b
  })
  const word = (t) => (nth + 1 + t) * LINE
  const claim = (t, front) => {
    for (;;) {
      const w = Atomics.load(sync, word(t)), f = w >>> 16, k = w & 0xffff
      if (f >= k) return -1
      if (Atomics.compareExchange(sync, word(t), w, front ? w + 0x10000 : w - 1) === w) return front ? f : k - 1
    }
  }
  return () => {
    Atomics.store(sync, word(ith), bounds[ith].length - 1)
    for (let c; (c = claim(ith, true)) >= 0;) runRange(round, bounds[ith][c], bounds[ith][c + 1])
    for (let o = 1; o < nth; o++) {
      const t = (ith + o) % nth
      for (let c; (c = claim(t, false)) >= 0;) runRange(round, bounds[t][c], bounds[t][c + 1])
    }
  }
}

/**
 * Static (or affine) shares of every round of a token, a spin barrier after each: every thread
 * bumps its own line and waits for the others' (and, with a gap, for the leader's gap to end).
 */
function staticToken(shares, sync, ith, nth, gapUs) {
  let r = Atomics.load(sync, ith * LINE)
  for (const share of shares) {
    share()
    r++
    Atomics.store(sync, ith * LINE, r)
    for (let o = 0; o < nth; o++) while (Atomics.load(sync, o * LINE) < r);
    if (gapUs && ith === 0) busy(gapUs)
    if (gapUs) { Atomics.store(sync, ith * LINE + 1, r); for (let o = 0; o < nth; o++) while (Atomics.load(sync, o * LINE + 1) < r); }
  }
}

function busy(us) { for (const end = performance.now() + us / 1000; performance.now() < end;); }

if (!isMainThread) {
  // A static-share thread: sleeps on START until the leader starts a token (or stops: −1).
  const { module, memory, mem, ith, nth, kernel, gapUs, instantiate } = workerData
  const { instantiateKernels } = await import(instantiate)
  const k = instantiateKernels(module, memory)
  const sync = new Int32Array(memory.buffer, mem.sync, LINE * (2 * nth + 1))
  const work = rounds(kernel, k, mem)
  const shares = [work.map((round) => staticShare(round, ith, nth)), work.map((round) => affineShare(round, ith, nth, sync, rowsPerItem(kernel)))]
  for (let started = 0; ;) {
    Atomics.wait(sync, START, started)
    started = Atomics.load(sync, START)
    if (started < 0) break
    staticToken(shares[Atomics.load(sync, SPLIT)], sync, ith, nth, gapUs)
  }
} else {
  const { values: opt } = parseArgs({ options: {
    kernel: { type: 'string', default: 'i2s' }, variant: { type: 'string' }, threads: { type: 'string', default: '2' },
    tokens: { type: 'string', default: '60' }, gap: { type: 'string', default: '0' },
    base: { type: 'string' }, 'chunk-cost': { type: 'string' }, 'base-chunk-cost': { type: 'string' }, modes: { type: 'string', default: 'pool,static,affine,one' },
  } })
  const nth = Number(opt.threads), tokens = Number(opt.tokens), gapUs = Number(opt.gap), kernel = opt.kernel
  const esbuild = await import(pathToFileURL(join(repo, 'node_modules/esbuild/lib/main.js')).href)
  // What to stop and remove at the end, also when a run throws (sleeping workers would keep the process alive).
  const temps = [], workers = [], pools = []
  let sync
  /** This checkout's (or `dir`'s) runtime, bundled from its src/ into a folder inside it. */
  async function runtimeOf(dir) {
    const out = mkdtempSync(join(dir, '.rounds-'))
    temps.push(out)
    await esbuild.build({
      stdin: { resolveDir: dir, loader: 'ts', contents: `export { ThreadPool } from './src/runtime/thread-pool.ts'
        export { CTL_BYTES } from './src/runtime/protocol.ts'
        export { compileKernels, createMemory, instantiateKernels } from './src/runtime/wasm.ts'` },
      bundle: true, format: 'esm', platform: 'node', outfile: join(out, 'runtime.mjs'), logLevel: 'warning',
    })
    return { url: pathToFileURL(join(out, 'runtime.mjs')).href, rt: await import(pathToFileURL(join(out, 'runtime.mjs')).href) }
  }
  try {
    const { url, rt } = await runtimeOf(repo)
    const variant = opt.variant ?? (WebAssembly.validate(readFileSync(join(repo, 'build/bitnet-relaxed.wasm'))) ? 'relaxed' : 'simd')
    const { module } = await rt.compileKernels({ variant })
    // Layout: small buffers, then the weights (random bytes: every code pattern, no zero page).
    const bytes = weightBytes()
    const small = 1 << 20
    const memory = rt.createMemory(bytes + 4 * small, variant)
    const mem = { q: small, lut1: 2 * small, lut2: 2 * small + 2560 * 16, meta: 3 * small, y: 3 * small + 4096, sync: 3 * small + 65536,
      ctlA: 3 * small + 131072, ctlB: 3 * small + 196608, w: 4 * small }
    const heap = new Uint8Array(memory.buffer)
    for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(heap.subarray(mem.w + i, mem.w + Math.min(bytes, i + 65536)))
    for (let i = 0; i < 8192; i++) heap[mem.q + i] = ((i * 37) % 200 - 100) & 255
    new Float32Array(memory.buffer, mem.meta, 4).fill(1)
    const k = rt.instantiateKernels(module, memory)
    k.lut_build_i8(mem.q, 2560, mem.lut1); k.lut_build_i8(mem.q, 6912, mem.lut2)
    const work = rounds(kernel, k, mem)
    const poolOpts = opt['chunk-cost'] ? { chunkCost: Number(opt['chunk-cost']) } : {}

    const modes = {}
    const want = opt.modes.split(',')
    // One token of a mode: its ms, without the gaps.
    const timed = (token) => () => { const t0 = performance.now(); token(); return performance.now() - t0 - gapUs * work.length / 1000 }
    const poolMode = (pool) => pools.push(pool) && timed(() => { for (const r of work) { pool.run(r.map((j) => j.job)); if (gapUs) busy(gapUs) } })
    if (want.includes('pool')) modes.pool = poolMode(await rt.ThreadPool.create(module, [memory], [k], mem.ctlA, nth, poolOpts))
    if (opt.base) {
      const base = await runtimeOf(resolve(opt.base))
      const baseCost = opt['base-chunk-cost'] ?? opt['chunk-cost']
      modes.base = poolMode(await base.rt.ThreadPool.create(module, [memory], [k], mem.ctlB, nth, baseCost ? { chunkCost: Number(baseCost) } : {}))
    }
    sync = new Int32Array(memory.buffer, mem.sync, LINE * (2 * nth + 1))
    if (want.includes('static') || want.includes('affine')) {
      for (let i = 1; i < nth; i++) {
        workers.push(new Worker(new URL(import.meta.url), { workerData: { module, memory, mem, ith: i, nth, kernel, gapUs, instantiate: url } }))
      }
    }
    const split = (n, shares) => timed(() => {
      Atomics.store(sync, SPLIT, n); Atomics.add(sync, START, 1); Atomics.notify(sync, START)
      staticToken(shares, sync, 0, nth, gapUs)
    })
    if (want.includes('static')) modes.static = split(0, work.map((round) => staticShare(round, 0, nth)))
    if (want.includes('affine')) modes.affine = split(1, work.map((round) => affineShare(round, 0, nth, sync, rowsPerItem(kernel))))
    if (want.includes('one')) modes.one = timed(() => { for (const r of work) { for (const j of r) j.call(0, j.items); if (gapUs) busy(gapUs) } })

    for (let t = 0; t < 3; t++) for (const m of Object.values(modes)) m()
    const runs = Object.fromEntries(Object.keys(modes).map((m) => [m, []]))
    for (let t = 0; t < tokens; t++) for (const [m, f] of Object.entries(modes)) runs[m].push(f())
    console.log(`${kernel} ${variant}, ${nth} threads, ${work.length} rounds a token, ${(bytes / 1e6).toFixed(0)} MB, gap ${gapUs} µs, ` +
      `${tokens} tokens each; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
    const stat = Object.fromEntries(Object.entries(runs).map(([m, ms]) => [m, { median: quantile(ms, 0.5), fast: quantile(ms, 0.25) }]))
    // µs a round more than static shares take, at the same statistic.
    const over = (m, q) => {
      if (!stat.static || m === 'one' || m === 'static') return ''
      const us = (stat[m][q] - stat.static[q]) * 1000 / work.length
      return ` (${us < 0 ? '−' : '+'}${Math.abs(us).toFixed(1)} µs a round)`
    }
    for (const [m, { median, fast }] of Object.entries(stat)) {
      console.log(`  ${m.padEnd(6)} median ${median.toFixed(2)} ms/token${over(m, 'median')}, ${(bytes / median / 1e6).toFixed(1)} GB/s; ` +
        `fastest quarter ${fast.toFixed(2)}${over(m, 'fast')}`)
    }
  } finally {
    if (sync) { Atomics.store(sync, START, -1); Atomics.notify(sync, START) }
    await Promise.all([...workers.map((w) => w.terminate()), ...pools.map((p) => p.dispose())])
    for (const t of temps) rmSync(t, { recursive: true, force: true })
  }
}

/** The q-quantile of xs (0.5: the median; 0.25: the fastest quarter's upper end). */
function quantile(xs, q) { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) * q)] }
