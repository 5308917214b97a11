// The decode and batched kernels against the ceiling (ceiling.mjs), per thread, in CPU time:
// `node bench/ceiling/kernel.mjs [--base DIR] [--tokens 1,2,4,8,32] [--matrix BYTES] [--kernel i2s|tl|q8b]`
// (Node 24: the relaxed build too). Times this checkout's build/ (and --base DIR's build/,
// interleaved) on the 2B4T shapes (K = 2560 and 6912; q8b: the output head's K = 2560):
//   i2s: matvec_i2s_i8 for 1 token (a decode step), matmul_i2s_i8 for more;
//   tl: matvec_tl_i8, 1 token (the lookup-table decode kernel; its tables built once, outside the timing);
//   q8b: matmul_q8b_i8 (the output projection; 1 token in decode, several in a batch).
// --matrix sets the weight bytes per call: 1 MiB (default) sits in L2, 48 MiB streams from DRAM.
// `--kernel norm`: the leader-alone decode kernels instead, µs a call: the norm + quantize of one
// 2560- and a 6912-wide row, the FFN's gated one (ReLU², 6912 wide), and (builds that have them)
// greedy argmax and the finiteness check over 128256 logits.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({ options: {
  base: { type: 'string' }, tokens: { type: 'string', default: '8,32' }, matrix: { type: 'string', default: String(1 << 20) },
  kernel: { type: 'string', default: 'i2s' },
} })
const builds = [['this', join(here, '../../build')], ...(opt.base ? [['base', resolve(opt.base, 'build')]] : [])]
const relaxedOk = WebAssembly.validate(readFileSync(join(here, '../../build/bitnet-relaxed.wasm')))

function cpuMs() { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

const MATRIX = Number(opt.matrix) // bytes of weights (i2s: 4 per byte; q8b: 1)
const MAX_TOK = 32
const memory = new WebAssembly.Memory({ initial: 2048 + (MATRIX >> 16), maximum: 2048 + (MATRIX >> 16), shared: true })
const heap = new Uint8Array(memory.buffer)
const LUT = 1 << 18, W = 1 << 20, X = W + MATRIX, META = X + MAX_TOK * 8192, Y = META + MAX_TOK * 1024
for (let i = 0; i < X - W + MAX_TOK * 8192; i += 4096) crypto.getRandomValues(heap.subarray(W + i, W + i + 4096))
// activations within ±127 (what the quantizers write); q8b codes 1..127
for (let i = X; i < X + MAX_TOK * 8192; i++) if (heap[i] === 128) heap[i] = 0
if (opt.kernel === 'q8b') for (let i = W; i < X; i++) heap[i] = 1 + (heap[i] % 127)
// scales 1 (i2s meta: f32 s; q8b: weight and activation block scales)
new Float32Array(memory.buffer, META, MAX_TOK * 256).fill(1)

const kernels = []
for (const [name, dir] of builds) {
  for (const variant of ['simd', ...(relaxedOk ? ['relaxed'] : [])]) {
    const module = new WebAssembly.Module(readFileSync(join(dir, `bitnet-${variant}.wasm`)))
    const k = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('abort') } } }).exports
    kernels.push({ name, variant, k, all: allItems(k) })
  }
}

// Builds since the item-range change take (…, first, end); older ones (…, ith, nth). Told apart by
// whether (0, 1) computes the last row of an 8-row matrix: returns the (a, b) that covers `rows`
// rows (4-row groups for both kernels).
function allItems(k) {
  const y = new Float32Array(memory.buffer, Y, 8).fill(NaN)
  k.matmul_i2s_i8(W, X, META, 1, Y, 8, 128, 1, 0, 1)
  return Number.isNaN(y[7]) ? (rows) => [0, rows / 4] : () => [0, 1]
}

// One call over `rows` × `kp` weights for `ntok` tokens.
const CALLS = {
  i2s: (k, rows, kp, ntok, [a, b]) => ntok === 1
    ? k.matvec_i2s_i8(W, X, META, 1, Y, rows, kp, a, b)
    : k.matmul_i2s_i8(W, X, META, 1, Y, rows, kp, ntok, a, b),
  tl: (k, rows, kp, ntok) => k.matvec_tl_i8(W, LUT, META, 1, Y, rows, kp, 0, Math.ceil(rows / 16)),
  // weight scales share the meta area: q8b reads wscale [rows/4][kp/128][4], xscale and sums per token
  q8b: (k, rows, kp, ntok, [a, b]) => k.matmul_q8b_i8(W, META, X, META, X, Y, rows, kp, ntok, a, b),
}
if (opt.kernel === 'norm') { leaderAlone(); process.exit(0) }
const call = CALLS[opt.kernel]
if (!call) throw new Error(`--kernel must be one of ${Object.keys(CALLS).join(', ')}`)
const weightsPerByte = opt.kernel === 'q8b' ? 1 : 4

console.log(`node ${process.version}, ${opt.kernel}, ${MATRIX} bytes of weights, 1 thread, GMAC/s of CPU time (best of 5 interleaved rounds of ≥ 30 ms)`)
for (const kp of opt.kernel === 'q8b' ? [2560] : [2560, 6912]) {
  const rows = Math.floor(MATRIX * weightsPerByte / kp / 4) * 4
  for (const ntok of opt.tokens.split(',').map(Number)) {
    const best = new Map()
    if (opt.kernel === 'tl') for (const { k } of kernels) k.lut_build_i8(X, kp, LUT) // any build's tables: same bytes
    for (let round = 0; round < 5; round++) {
      for (const { name, variant, k, all } of kernels) {
        const range = all(rows)
        let calls = 0
        const t0 = cpuMs()
        do { call(k, rows, kp, ntok, range); calls++ } while (cpuMs() - t0 < 30)
        const gmac = (rows * kp * ntok * calls) / ((cpuMs() - t0) * 1e6)
        const key = `${variant} ${name}`
        best.set(key, Math.max(best.get(key) ?? 0, gmac))
      }
    }
    for (const [key, gmac] of best) console.log(`K ${kp}, ${String(ntok).padStart(2)} tokens, ${key.padEnd(13)} ${gmac.toFixed(1).padStart(6)} GMAC/s`)
  }
}

// The decode step's leader-alone kernels on one row, µs of CPU time a call (best of 5 interleaved rounds).
function leaderAlone() {
  const f32 = new Float32Array(memory.buffer)
  const EPS = Math.fround(1e-5), FF = 6912, VOCAB = 128256
  const x = W, w = x + 4 * FF, g = w + 4 * FF, u = g + 4 * FF, q = u + 4 * FF + 2048, meta = q + FF, logits = meta + 64
  for (let i = 0; i < FF; i++) {
    f32[x / 4 + i] = Math.sin(i * 0.37) * 3
    f32[w / 4 + i] = 0.5 + ((i * 7919) % 1000) / 1000
    // half of g negative (ReLU zeros them); u = 1/g keeps the rest where it is, call after call
    f32[g / 4 + i] = (i % 2 ? -1 : 1) * (0.25 + ((i * 104729) % 1000) / 500)
    f32[u / 4 + i] = 1 / Math.abs(f32[g / 4 + i])
  }
  for (let i = 0; i < VOCAB; i++) f32[logits / 4 + i] = Math.sin(i * 0.011) * 5 + Math.cos(i * 1.7)
  const cases = {
    'norm_quantize 2560': (k) => k.rmsnorm_quantize_rows_f32_i8(x, 0, w, 2560, EPS, 2560, q, meta, 0, 1, 0, 1),
    'norm_quantize 6912': (k) => k.rmsnorm_quantize_rows_f32_i8(x, 0, w, FF, EPS, FF, q, meta, 0, 1, 0, 1),
    'gated relu2 6912': (k) => k.gated_rmsnorm_quantize_rows_f32_i8(0, g, u, w, FF, EPS, FF, q, meta, 0, 1, 0, 1),
    ...(kernels.every(({ k }) => k.argmax_f32) && {
      'argmax 128256': (k) => k.argmax_f32(logits, VOCAB),
      'finite check 128256': (k) => k.find_nonfinite_f32(logits, VOCAB),
    }),
  }
  console.log(`node ${process.version}, 1 thread, µs of CPU time a call (best of 5 interleaved rounds of ≥ 30 ms)`)
  for (const [label, run] of Object.entries(cases)) {
    const best = new Map()
    for (let round = 0; round < 5; round++) {
      for (const { name, variant, k } of kernels) {
        let calls = 0
        const t0 = cpuMs()
        do { for (let i = 0; i < 100; i++) run(k); calls += 100 } while (cpuMs() - t0 < 30) // a clock read costs ~2 µs: 100 calls a read
        const us = (cpuMs() - t0) * 1000 / calls
        const key = `${variant} ${name}`
        best.set(key, Math.min(best.get(key) ?? Infinity, us))
      }
    }
    for (const [key, us] of best) console.log(`${label.padEnd(20)} ${key.padEnd(13)} ${us.toFixed(2).padStart(7)} µs`)
  }
}
