#!/usr/bin/env node
// The attention kernels alone (assembly/ops/attention.ts), decode and prompt, on one layer of a
// 2B4T-shape f16 KV cache (head_dim 128, 20 query heads, 5 kv heads) at a given depth, for two or
// more kernel builds interleaved in one run, so a change is measured as a ratio against its base.
//
// node attention-kernels.mjs [--wasm ../build/bitnet-simd.wasm,/tmp/base.wasm] [--depth 4000]
//                            [--rows 1,32 (up to 64)] [--threads 1,2] [--reps 20] [--rounds 5] [--block 128]
//
// Each build runs every round of the host (one; or with a build of before the one-round
// kernel, attention_combine_f32 as a second round) cut into nth equal item ranges, one per
// thread (the main thread and nth − 1 workers on the same shared memory). Reported: median ms per call of one layer and GFLOP/s (2 flops per
// multiply-add of q·k and of w·v), rounds of every build interleaved.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const HEAD_DIM = 128, N_HEAD = 20, N_HEAD_KV = 5, MAX_ROWS = 64
let BLOCK = 128 // positions per work item (--block; the host's ATT_BLOCK)
const TILE_SLOTS = 32, TILE = 32 // the host's widened-tile slots (src/model/transformer.ts)

// The layout of one case on the shared memory: q, the cache, scratch, out (see attention.ts).
function layout(depth) {
  const len = depth + MAX_ROWS, kvDim = N_HEAD_KV * HEAD_DIM, qDim = N_HEAD * HEAD_DIM
  const blocks = Math.ceil(len / BLOCK)
  let at = 1 << 16
  const take = (bytes) => { const p = at; at += Math.ceil(bytes / 64) * 64; return p }
  return {
    q: take(MAX_ROWS * qDim * 4), kc: take(len * kvDim * 2), vc: take(len * kvDim * 2),
    att: take(N_HEAD * blocks * MAX_ROWS * BLOCK * 4 * 2), part: take(MAX_ROWS * N_HEAD * blocks * (4 + HEAD_DIM) * 4 + 4096),
    count: take(N_HEAD_KV * 4), tiles: take(64 + TILE_SLOTS * (64 + TILE * HEAD_DIM * 4)),
    out: take(MAX_ROWS * qDim * 4), end: at,
  }
}

// The calls of one attention of n rows ending at depth, as the host makes them: [export, args, items].
function calls(exports, L, depth, n) {
  const nPos = depth - n + 1, blocks = Math.ceil(depth / BLOCK)
  const rest = [L.out, n, N_HEAD, N_HEAD_KV, HEAD_DIM, nPos, BLOCK]
  const items = N_HEAD_KV * blocks
  // builds with tile slots take them after count (16 parameters)
  const tiles = exports.attention_partial_f16.length === 16 ? [L.tiles] : []
  if (!exports.attention_combine_f32) return [['attention_partial_f16', [L.q, L.kc, L.vc, L.att, L.part, L.count, ...tiles, ...rest], items]]
  const list = [['attention_partial_f16', [L.q, L.kc, L.vc, L.att, L.part, ...rest], items]]
  if (blocks > 1) list.push(['attention_combine_f32', [L.part, L.out, n, N_HEAD, HEAD_DIM, blocks], n * N_HEAD])
  return list
}

// Thread ith's items [first, end) of a call: nth equal ranges.
function range(items, ith, nth) {
  const per = Math.ceil(items / nth), first = Math.min(items, ith * per)
  return [first, Math.min(items, first + per)]
}

if (!isMainThread) {
  const { memory, modules, depth, ith, ctl } = workerData
  BLOCK = workerData.block
  const kernels = modules.map((m) => new WebAssembly.Instance(m, { env: { memory, abort() { throw new Error('abort') } } }).exports)
  const c = new Int32Array(ctl)
  const L = layout(depth)
  for (let gen = 1; ; gen++) {
    Atomics.wait(c, 0, gen - 1) // c[0]: generation; c[1]: build; c[2]: rows; c[3]: nth; c[4]: call; c[5]: done count
    const k = kernels[c[1]], [name, args, items] = calls(k, L, depth, c[2])[c[4]]
    if (ith < c[3]) k[name](...args, ...range(items, ith, c[3]))
    Atomics.add(c, 5, 1)
    Atomics.notify(c, 5)
  }
} else {
  const { values: opt } = parseArgs({
    options: {
      wasm: { type: 'string', default: path.join(HERE, '../build/bitnet-simd.wasm') },
      depth: { type: 'string', default: '4000' },
      rows: { type: 'string', default: '1,32' },
      threads: { type: 'string', default: '1,2' },
      reps: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '5' },
      block: { type: 'string', default: '128' },
    },
  })
  const files = opt.wasm.split(','), depth = Number(opt.depth)
  BLOCK = Number(opt.block)
  const threads = opt.threads.split(',').map(Number), rowsList = opt.rows.split(',').map(Number)
  const L = layout(depth)
  const memory = new WebAssembly.Memory({ initial: Math.ceil(L.end / 65536), maximum: 65536, shared: true })
  const modules = await Promise.all(files.map((f) => WebAssembly.compile(fs.readFileSync(f))))
  const kernels = modules.map((m) => new WebAssembly.Instance(m, { env: { memory, abort() { throw new Error('abort') } } }).exports)
  // q and the cache: random values of the scale of real ones (scores of a few units)
  const heap = memory.buffer
  let seed = 1
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 3
  const qv = new Float32Array(heap, L.q, MAX_ROWS * N_HEAD * HEAD_DIM)
  for (let i = 0; i < qv.length; i++) qv[i] = rand()
  const tmp = L.out, cacheLen = (depth + MAX_ROWS) * N_HEAD_KV * HEAD_DIM
  for (const dst of [L.kc, L.vc]) {
    for (let o = 0; o < cacheLen; o += MAX_ROWS * N_HEAD * HEAD_DIM) {
      const cnt = Math.min(MAX_ROWS * N_HEAD * HEAD_DIM, cacheLen - o), f = new Float32Array(heap, tmp, cnt)
      for (let i = 0; i < cnt; i++) f[i] = rand()
      kernels[0].f32_to_f16(tmp, dst + o * 2, cnt)
    }
  }
  new Int32Array(heap, L.tiles, 2).set([TILE_SLOTS, TILE * HEAD_DIM])
  const ctl = new SharedArrayBuffer(64), c = new Int32Array(ctl)
  const maxT = Math.max(...threads)
  const workers = Array.from({ length: maxT - 1 }, (_, i) => new Worker(fileURLToPath(import.meta.url), { workerData: { memory, modules, depth, ith: i + 1, ctl, block: BLOCK } }))
  await new Promise((r) => setTimeout(r, 300))
  let gen = 0
  // One call as parts 0..nth−1: this thread takes part 0, the workers the others.
  const runCall = (b, n, nth, ci) => {
    c[1] = b; c[2] = n; c[3] = nth; c[4] = ci; c[5] = 0
    new Int32Array(heap, L.count, N_HEAD_KV).fill(0)
    Atomics.store(c, 0, ++gen)
    Atomics.notify(c, 0)
    const k = kernels[b], [name, args, items] = calls(k, L, depth, n)[ci]
    k[name](...args, ...range(items, 0, nth))
    while (Atomics.load(c, 5) < maxT - 1) Atomics.wait(c, 5, Atomics.load(c, 5), 1)
  }
  const layer = (b, n, nth) => { for (let ci = 0; ci < calls(kernels[b], L, depth, n).length; ci++) runCall(b, n, nth, ci) }
  const reps = Number(opt.reps), rounds = Number(opt.rounds)
  console.log(`attention of one 2B4T layer at depth ${depth}, f16 cache; machine load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`)
  console.log('rows | threads | ' + files.map((f) => path.basename(f)).join(' | ') + ' | ratio to first (ms/ms)')
  for (const n of rowsList) {
    for (const nth of threads) {
      const times = files.map(() => [])
      const outs = files.map(() => null)
      for (let r = 0; r < rounds; r++) {
        files.forEach((_, b) => {
          layer(b, n, nth) // warm
          const t0 = performance.now()
          for (let i = 0; i < reps; i++) layer(b, n, nth)
          times[b].push((performance.now() - t0) / reps)
          outs[b] = new Float32Array(heap, L.out, n * N_HEAD * HEAD_DIM).slice()
        })
      }
      const med = times.map((t) => t.sort((a, b) => a - b)[t.length >> 1])
      const flop = 4 * N_HEAD * HEAD_DIM * n * (depth - (n - 1) / 2)
      const diff = outs.map((o) => o.reduce((m, v, i) => Math.max(m, Math.abs(v - outs[0][i])), 0))
      console.log(`${n} | ${nth} | ` + med.map((m, b) => `${m.toFixed(3)} ms ${(flop / m / 1e6).toFixed(1)} GFLOP/s (max |Δ| ${diff[b].toExponential(1)})`).join(' | ') +
        ' | ' + med.map((m) => (med[0] / m).toFixed(2)).join(' / '))
    }
  }
  process.exit(0)
}
