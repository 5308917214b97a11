// The batched I2_S kernel against the ceiling (ceiling.mjs), per thread, in CPU time:
// `node bench/ceiling/kernel.mjs [--base DIR]` (Node 24: the relaxed build too). Times
// matmul_i2s_i8 of this checkout's build/ (and of --base DIR's build/, interleaved) on the 2B4T
// shapes (K = 2560 and 6912) with a matrix of 1 MiB (in L2) and 32 and 8 tokens per call.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({ options: { base: { type: 'string' } } })
const builds = [['this', join(here, '../../build')], ...(opt.base ? [['base', resolve(opt.base, 'build')]] : [])]
const relaxedOk = WebAssembly.validate(readFileSync(join(here, '../../build/bitnet-relaxed.wasm')))

function cpuMs() { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

const MATRIX = 1 << 20 // bytes of weights: 4096 rows × 2560 / 4
const memory = new WebAssembly.Memory({ initial: 1024, maximum: 1024, shared: true }) // 64 MiB
const heap = new Uint8Array(memory.buffer)
const W = 1 << 20, Q = W + MATRIX, META = Q + 32 * 8192, Y = META + 32 * 8
for (let i = 0; i < Q - W + 32 * 8192; i += 4096) crypto.getRandomValues(heap.subarray(W + i, W + i + 4096))
// activations within ±127 (what the quantizer writes), scale 1
for (let i = Q; i < Q + 32 * 8192; i++) if (heap[i] === 128) heap[i] = 0
for (let t = 0; t < 32; t++) new Float32Array(memory.buffer, META + 8 * t, 1)[0] = 1

const kernels = []
for (const [name, dir] of builds) {
  for (const variant of ['simd', ...(relaxedOk ? ['relaxed'] : [])]) {
    const module = new WebAssembly.Module(readFileSync(join(dir, `bitnet-${variant}.wasm`)))
    const k = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('abort') } } }).exports
    kernels.push({ name, variant, k, all: allItems(k) })
  }
}

// Builds since the item-range change take (…, first, end); older ones (…, ith, nth). Told apart by
// whether (0, 1) computes the last row of an 8-row matrix: returns the (a, b) that covers every row.
function allItems(k) {
  const y = new Float32Array(memory.buffer, Y, 8).fill(NaN)
  k.matmul_i2s_i8(W, Q, META, 1, Y, 8, 128, 1, 0, 1)
  return Number.isNaN(y[7]) ? (rows) => [0, rows / 4] : () => [0, 1]
}

console.log(`node ${process.version}, 1 thread, GMAC/s of CPU time (best of 5 interleaved rounds of ≥ 30 ms)`)
for (const kp of [2560, 6912]) {
  const rows = Math.floor(MATRIX * 4 / kp / 4) * 4
  for (const ntok of [8, 32]) {
    const best = new Map()
    for (let round = 0; round < 5; round++) {
      for (const { name, variant, k, all } of kernels) {
        const [a, b] = all(rows)
        let calls = 0
        const t0 = cpuMs()
        do { k.matmul_i2s_i8(W, Q, META, 1, Y, rows, kp, ntok, a, b); calls++ } while (cpuMs() - t0 < 30)
        const gmac = (rows * kp * ntok * calls) / ((cpuMs() - t0) * 1e6)
        const key = `${variant} ${name}`
        best.set(key, Math.max(best.get(key) ?? 0, gmac))
      }
    }
    for (const [key, gmac] of best) console.log(`K ${kp}, ${String(ntok).padStart(2)} tokens, ${key.padEnd(13)} ${gmac.toFixed(1).padStart(6)} GMAC/s`)
  }
}
