/**
 * Numerical health checks: NaN / ±Inf in weights (at load) and in activations (per step).
 *
 * A single NaN in a norm vector or an embedding row turns every later activation into NaN and
 * the sampler into a generator of garbage tokens; these checks stop that with a
 * {@link NumericalError} naming the tensor (at load) or the first layer whose residual stream
 * went non-finite (per step). They are cheap: one pass over each float tensor at load
 * (ternary tensors have one scale, checked by the loader), one pass over the logits per step,
 * and the per-layer walk only after a step has already failed.
 */
import { NumericalError } from '../errors.js'
import type { KvCache, Transformer } from './transformer.js'

/** Index of the first NaN or ±Inf in `values`, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v - v !== 0) return i // NaN − NaN and Inf − Inf are NaN; every finite v gives 0
  }
  return -1
}

/** Index of the first NaN or ±Inf among little-endian F16 values (exponent bits all ones), or -1. */
export function firstNonFiniteF16(bytes: Uint8Array): number {
  // Fast pass over two halves per u32 (embeddings are 10^8 values): adding 0x0400 to a half's
  // exponent field (mask 0x7c00) carries into its bit 15 exactly when all five bits are set.
  const words = bytes.byteOffset % 4 === 0 ? bytes.length >> 2 : 0
  if (words > 0) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, words)
    let acc = 0
    for (let i = 0; i < words; i++) acc |= (w[i] & 0x7c007c00) + 0x04000400
    if ((acc & 0x80008000) === 0 && bytes.length === words * 4) return -1
  }
  for (let i = 1; i < bytes.length; i += 2) if ((bytes[i] & 0x7c) === 0x7c) return i >> 1
  return -1
}

/**
 * Throws a NumericalError naming `tensor` if its data holds a NaN or ±Inf: `values` decoded to
 * f32, or raw little-endian F16 bytes (`f16: true`).
 * @example assertFiniteTensor('blk.0.attn_norm.weight', norm, 'model.gguf')
 */
export function assertFiniteTensor(tensor: string, values: Float32Array | Uint8Array, file: string, f16 = false): void {
  const i = f16 ? firstNonFiniteF16(values as Uint8Array) : firstNonFinite(values as Float32Array)
  if (i < 0) return
  const v = f16 ? 'NaN or Inf (F16)' : String(values[i])
  throw new NumericalError(`${file}: tensor '${tensor}' holds a non-finite weight: element ${i} is ${v}`, { tensor })
}

/**
 * Throws a NumericalError if a step's logits hold a NaN or ±Inf. `locate` re-runs the step
 * with a per-layer check and returns the first layer whose residual is non-finite (or
 * undefined when only the output projection overflowed), so the error names it.
 * @example assertFiniteLogits(logits, pos, () => transformer.locateNonFinite(token, pos))
 */
export function assertFiniteLogits(logits: Float32Array, pos: number, locate: () => number | undefined): void {
  const i = firstNonFinite(logits)
  if (i < 0) return
  const layer = locate()
  const where = layer === undefined ? 'the output projection (output_norm.weight / output.weight)' : `layer ${layer} (blk.${layer}.*)`
  throw new NumericalError(`non-finite activations at position ${pos}: logit ${i} is ${logits[i]}; first non-finite in ${where}`,
    { layer, tensor: layer === undefined ? 'output.weight' : undefined })
}

/**
 * Re-runs the step of `token` at `pos` of `kv` (rewriting the same KV rows with the same values) with a
 * check of the residual stream after every layer; returns the first layer where it holds a NaN
 * or ±Inf, or undefined if all layers stay finite.
 */
export function locateNonFinite(t: Transformer, token: number, pos: number, kv?: KvCache): number | undefined {
  let found: number | undefined
  const n = t.config.nEmbd
  t.onLayer = (layer, x) => {
    if (found === undefined && firstNonFinite(new Float32Array(t.memory.buffer, x, n)) >= 0) found = layer
  }
  try {
    t.forward(token, pos, false, kv)
  } finally {
    t.onLayer = undefined
  }
  return found
}
