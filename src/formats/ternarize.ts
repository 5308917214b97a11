/**
 * Full-precision weights (F32 / F16 / BF16 tensors, HF bf16 masters, 1bitLLM fp16 latents)
 * → per-tensor ternary codes and scale, as BitNet b1.58 defines its weights (docs/architecture.md#bitlinear):
 * γ = max(mean|W|, 1e-5), code = clip(round(W/γ), −1, 1), computed in f32 like
 * `weight_quant` in the HF / bitnet.cpp converters (round half to even).
 *
 * A tensor that is already ternary-valued (every non-zero |w| the same m: the output of
 * `weight_quant`, e.g. `preprocess-huggingface-bitnet.py`, or `bitnet convert --to f32`)
 * keeps its own scale m, as bitnet.cpp's `quantize_i2_s` does (it takes max|w|): absmean
 * would shrink it to m·(fraction of non-zeros).
 */
import type { TernaryTensor } from './i2s.js'

/**
 * Ternarizes `w` (row-major, any length) per tensor.
 * @example
 * const { codes, scale } = ternarize(dequantizeRows('BF16', bytes, rows * cols))
 */
export function ternarize(w: Float32Array): TernaryTensor {
  let sum = 0
  let m = -1 // the common non-zero magnitude, NaN once two differ
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i])
    sum += a
    if (a !== 0 && a !== m) m = m === -1 ? a : NaN
  }
  const gamma = Math.fround(Math.max(Math.fround(sum / Math.max(1, w.length)), 1e-5))
  const inv = Math.fround(1 / gamma)
  const codes = new Int8Array(w.length)
  for (let i = 0; i < w.length; i++) {
    const x = Math.fround(w[i] * inv)
    // round half to even then clip: |x| ≤ 0.5 → 0, else ±1
    codes[i] = x > 0.5 ? 1 : x < -0.5 ? -1 : 0
  }
  return { codes, scale: m > 0 ? m : gamma }
}

/**
 * True if every non-zero |w| is the same value (and some are non-zero): a tensor written as
 * γ·{−1, 0, 1}, as bitnet.cpp's converters write full-precision ternary weights.
 */
export function isTernaryValued(w: Float32Array): boolean {
  let m = 0
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i])
    if (a === 0) continue
    if (m === 0) m = a
    else if (a !== m) return false
  }
  return m > 0
}
