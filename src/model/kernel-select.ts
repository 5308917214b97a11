/**
 * Which ternary kernel (and so which weight layout) a model uses: the I2_S multiply-add
 * kernel (i2s.ts, layout i2s_c4) or the lookup-table kernel (tl.ts, layout tl16).
 *
 * Engines rank them differently (docs/kernels.md#which-ternary-kernel: with relaxed SIMD the MAD kernel
 * wins on V8; without it the LUT is ~2× faster; JSC orders the LUT variants differently),
 * so 'auto' decides by feature first: with relaxed SIMD (V8, SpiderMonkey; never JSC) the
 * MAD kernel, which also has the matrix-matrix twin for prompts; without it, a race of both
 * on one 1024 × 2560 matrix for a few ms at load keeps the faster. A race on a loaded
 * machine can pick wrong, so it runs only where the ranking is really unknown. Both give
 * bit-identical outputs, so the choice changes speed only.
 */
import { createMemory, instantiateKernels, type KernelVariant, type WasmModule } from '../runtime/wasm.js'
import { Arena } from './arena.js'
import { layoutSize, TERNARY_LAYOUTS, type TernaryKernel } from './layouts.js'

const chosen = new Map<KernelVariant, TernaryKernel>()

/** The faster ternary kernel of this module in this runtime (measured once per process and build). */
export function selectTernaryKernel(module: WasmModule, variant: KernelVariant): TernaryKernel {
  let k = chosen.get(variant)
  if (!k) {
    k = variant === 'relaxed' ? 'i2s' : raceKernels(module, variant)
    chosen.set(variant, k)
  }
  return k
}

function raceKernels(module: WasmModule, variant: KernelVariant): TernaryKernel {
  const M = 1024, K = 2560
  const a = new Arena()
  const q = a.alloc(K), meta = a.alloc(16), lut = a.alloc(K * 16), y = a.alloc(M * 4)
  const c4 = a.alloc(layoutSize(TERNARY_LAYOUTS.i2s, M, K).bytes), tl = a.alloc(layoutSize(TERNARY_LAYOUTS.tl, M, K).bytes)
  const memory = createMemory(a.top, variant)
  const k = instantiateKernels(module, memory)
  // Any byte pattern is a weight in both layouts and the kernels' speed does not depend
  // on the values, so the race runs on pseudo-random words instead of packed codes.
  const words = new Uint32Array(memory.buffer, c4, (a.top - c4) >>> 2)
  for (let i = 0, v = 0x9e3779b9; i < words.length; i++) words[i] = v = (Math.imul(v ^ (v >>> 15), 0x2c1b3c6d) + i) | 0
  new Float32Array(memory.buffer, meta, 1)[0] = 1
  const runs: Record<TernaryKernel, () => void> = {
    i2s: () => k.matvec_i2s_i8(c4, q, meta, 1, y, M, K, 0, Math.ceil(M / 4)),
    tl: () => { k.lut_build_i8(q, K, lut); k.matvec_tl_i8(tl, lut, meta, 1, y, M, K, 0, Math.ceil(M / 16)) },
  }
  // Best of 5 rounds of 4 ms each, alternating, after a warm-up (tier-up to the optimizing compiler).
  const best: Record<TernaryKernel, number> = { i2s: Infinity, tl: Infinity }
  for (const run of Object.values(runs)) for (let i = 0; i < 20; i++) run()
  for (let round = 0; round < 5; round++) {
    for (const name of ['i2s', 'tl'] as const) {
      let calls = 0
      const t0 = performance.now()
      let t = t0
      while (t - t0 < 4) { runs[name](); calls++; t = performance.now() }
      best[name] = Math.min(best[name], (t - t0) / calls)
    }
  }
  return best.i2s <= best.tl ? 'i2s' : 'tl'
}
