// The wasm i8 multiply-add and lookup-table ceilings of this machine, per thread:
// `node bench/ceiling/ceiling.mjs` (Node 24 runs the relaxed-SIMD forms too; Node 20 only the
// baseline ones, or all with --experimental-wasm-relaxed-simd). Compiles ceiling.ts and lut.ts
// with the repository's AssemblyScript for baseline and relaxed SIMD, then times each loop
// (best of 7 runs of ≥ 40 ms of CPU time: the least disturbed by other processes).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const asc = join(here, '../../node_modules/.bin/asc')
const out = mkdtempSync(join(tmpdir(), 'ceiling-'))

// cwd = here: asc then reads this folder's asconfig.json (plain memory), not the repository's.
function build(name, features, source = 'ceiling.ts') {
  const file = join(out, `${name}-${source}.wasm`)
  execFileSync(asc, [join(here, source), '-O3', '--runtime', 'stub', '--noAssert', '--initialMemory', '2',
    ...['simd', ...features].flatMap((f) => ['--enable', f]), '-o', file], { stdio: 'inherit', cwd: here })
  return new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file))).exports
}

// CPU time of this (single-threaded) process, in ms: on a machine shared with other work the
// wall clock counts the time the OS gave to others, the CPU time does not.
function cpuMs() { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

function best(fn) {
  let n = 1 << 16
  for (;;) { const t0 = cpuMs(); fn(n); if (cpuMs() - t0 > 40) break; n *= 2 }
  let ms = Infinity
  for (let r = 0; r < 7; r++) { const t0 = cpuMs(); fn(n); ms = Math.min(ms, cpuMs() - t0) }
  return n / (ms * 1e6) // iterations per ns
}

const relaxedOk = (() => {
  try { return WebAssembly.validate(readFileSync(join(here, '../../build/bitnet-relaxed.wasm'))) } catch { return false }
})()
const base = build('clock', [])
const ghz = 3 * best((n) => base.clock(n, 7))
console.log(`node ${process.version}, clock ≈ ${ghz.toFixed(2)} GHz (3-cycle imul chain), 1 thread`)
console.log(`${'form'.padEnd(44)} | from  | dots/cycle | MACs/cycle | GMAC/s`)
const variants = [['simd', []], ...(relaxedOk ? [['relaxed', ['relaxed-simd']]] : [])]
const forms = [
  ['relaxed16', 'i16x8.relaxed_dot_i8x16_i7x16_s + i16x8.add', 16, true],
  ['relaxed32', 'i32x4.relaxed_dot_i8x16_i7x16_add_s', 16, true],
  ['extmul', 'i16x8.extmul_low/high_i8x16_s + 2 adds', 16, false],
  ['dot_i16', 'i32x4.dot_i16x8_s + i32x4.add', 8, false],
  ['mask', '(x & pos) − (x & neg), extadd_pairwise', 16, false],
]
for (const [v, features] of variants) {
  const m = build(v, features)
  for (const [name, label, macs, relaxed] of forms) {
    if (relaxed !== (v === 'relaxed')) continue
    for (const where of ['regs', 'loads']) {
      const fn = m[`${where}_${name}`]
      const perNs = best((n) => fn(n, 1, 4096)) * 8 // 8 dots per iteration
      const perCycle = perNs / ghz
      console.log(`${label.padEnd(44)} | ${where.padEnd(5)} | ${perCycle.toFixed(2).padStart(5)} | ${(perCycle * macs).toFixed(1).padStart(5)} | ${(perNs * macs).toFixed(1)}`)
    }
  }
}

// Lookup-table loops (lut.ts): 16 rows, weights and one tile of tables in L1.
const luts = [
  ['tl16', 'tl16: 2 weights a 4-bit index, hi+lo lookups', 256],
  ['sign3_bytes', '3 weights a sign + 4-bit index, a byte each', 384],
  ['sign3_packed', '3 weights in 5 bits (nibbles + sign bytes)', 384],
]
console.log(`${'LUT loop'.padEnd(44)} | build   | MACs/cycle | GMAC/s`)
for (const [v, features] of variants) {
  const m = build(v, features, 'lut.ts')
  for (const [name, label, macs] of luts) {
    const perNs = best((n) => m[name](n >> 6, 1, 1 << 14, 1 << 15)) * macs // n / 64 tiles of 64 steps
    console.log(`${label.padEnd(44)} | ${v.padEnd(7)} | ${(perNs / ghz).toFixed(1).padStart(5)} | ${perNs.toFixed(1)}`)
  }
}
