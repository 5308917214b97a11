// Is a column-per-byte ternary layout ("c4", layout-c4.ts) faster than the engine's i2s_x4?
// `test/runtimes/node_modules/.bin/node bench/ceiling/layout-c4.mjs [--matrix BYTES] [--tokens 1,2,8,32]`
// (Node 24: relaxed SIMD). Same weights (i2s_x4 bytes and their c4 repack) in one memory; checks
// both kernels give the same sums, then times them interleaved, 1 thread, GMAC/s of CPU time
// (best of 5 rounds of ≥ 30 ms). --matrix: weight bytes per call (1 MiB in L2; 48 MiB from DRAM).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({ options: {
  matrix: { type: 'string', default: String(1 << 20) }, tokens: { type: 'string', default: '1,2,8,32' },
} })
const out = join(mkdtempSync(join(tmpdir(), 'layout-c4-')), 'c4.wasm')
execFileSync(join(here, '../../node_modules/.bin/asc'), [join(here, 'layout-c4.ts'), '-O3', '--runtime', 'stub',
  '--noAssert', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
  ...['simd', 'threads', 'relaxed-simd'].flatMap((f) => ['--enable', f]), '-o', out], { stdio: 'inherit', cwd: here })

const MATRIX = Number(opt.matrix), MAX_TOK = 32, KMAX = 6912
const pages = 64 + Math.ceil((2 * MATRIX + MAX_TOK * KMAX * 5) / 65536)
const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
const heap = new Uint8Array(memory.buffer)
const W = 1 << 20, C = W + MATRIX, X = C + MATRIX, META = X + MAX_TOK * KMAX, Y = META + MAX_TOK * 8
const env = { memory, abort: () => { throw new Error('abort') } }
const load = (file) => new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env }).exports
const x4 = load(join(here, '../../build/bitnet-relaxed.wasm')), c4 = load(out)

// codes 0..2 (ternary), activations within ±127, scales 1, Σq 0: y = Σ c·q
for (let i = W; i < C; i++) heap[i] = [0, 1, 2].map((s) => Math.floor(Math.random() * 3) << s * 2).reduce((a, b) => a | b) | (Math.floor(Math.random() * 3) << 6)
for (let i = X; i < META; i += 65536) crypto.getRandomValues(heap.subarray(i, Math.min(META, i + 65536)))
for (let i = X; i < META; i++) if (heap[i] === 128) heap[i] = 0
const meta = new DataView(memory.buffer, META, MAX_TOK * 8)
for (let t = 0; t < MAX_TOK; t++) { meta.setFloat32(t * 8, 1, true); meta.setInt32(t * 8 + 4, 0, true) }

// i2s_x4 group (KP bytes per 4 rows): 128-column blocks of 4 rows × 32 bytes, byte p of row j holding
// columns p, p+32, p+64, p+96 in bits 7:6 … 1:0 → c4: byte k holds column k of row j in bits 2j+1:2j.
function repack(rows, kp) {
  heap.fill(0, C, C + rows / 4 * kp)
  for (let g = 0; g < rows / 4; g++) {
    for (let k = 0; k < kp; k++) {
      const b = k >> 7, col = k & 127, p = col & 31, shift = 6 - 2 * (col >> 5)
      for (let j = 0; j < 4; j++) {
        const code = (heap[W + g * kp + b * 128 + j * 32 + p] >> shift) & 3
        heap[C + g * kp + k] |= code << (2 * j)
      }
    }
  }
}

function cpuMs() { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
const y = (n) => new Float32Array(memory.buffer, Y, n).slice()

console.log(`node ${process.version}, ${MATRIX} bytes of weights, 1 thread, GMAC/s of CPU time (best of 5 interleaved rounds of ≥ 30 ms)`)
for (const kp of [2560, 6912]) {
  const rows = Math.floor(MATRIX * 4 / kp / 4) * 4, groups = rows / 4
  repack(rows, kp)
  const calls = {
    x4: (ntok) => ntok === 1 ? x4.matvec_i2s_i8(W, X, META, 1, Y, rows, kp, 0, groups)
      : x4.matmul_i2s_i8(W, X, META, 1, Y, rows, kp, ntok, 0, groups),
    c4: (ntok) => ntok === 1 ? c4.matvec_c4(C, X, META, Y, rows, kp, 0, groups)
      : c4.matmul_c4(C, X, META, Y, rows, kp, ntok, 0, groups),
  }
  for (const ntok of opt.tokens.split(',').map(Number)) {
    const n = ntok * rows
    calls.x4(ntok); const want = y(n)
    calls.c4(ntok); const got = y(n)
    const bad = got.findIndex((v, i) => v !== want[i])
    if (bad >= 0) throw new Error(`K ${kp}, ${ntok} tokens: c4 ${got[bad]} ≠ x4 ${want[bad]} at ${bad}`)
    if (ntok <= 2) {
      c4.matmul_c4_ref(C, X, META, Y, rows, kp, ntok, 0, Math.min(groups, 8))
      const ref = y(Math.min(rows, 32))
      if (ref.some((v, i) => v !== want[i])) throw new Error(`K ${kp}: c4 reference differs from x4`)
    }
    const best = { x4: 0, c4: 0 }
    for (let round = 0; round < 5; round++) {
      for (const name of ['x4', 'c4']) {
        let count = 0
        const t0 = cpuMs()
        do { calls[name](ntok); count++ } while (cpuMs() - t0 < 30)
        best[name] = Math.max(best[name], rows * kp * ntok * count / ((cpuMs() - t0) * 1e6))
      }
    }
    console.log(`K ${kp}, ${String(ntok).padStart(2)} tokens: x4 ${best.x4.toFixed(1).padStart(6)}, c4 ${best.c4.toFixed(1).padStart(6)} GMAC/s, c4/x4 ${(best.c4 / best.x4).toFixed(2)}`)
  }
}
