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

/** Index of the first NaN or ±Inf in `values`, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v - v !== 0) return i // NaN − NaN and Inf − Inf are NaN; every finite v gives 0
  }
  return -1
}

/**
 * Throws a NumericalError naming `tensor` if its values hold a NaN or ±Inf (F16 data is
 * checked in wasm memory by the `find_nonfinite_f16` kernel: see {@link nonFiniteWeight}).
 * @example assertFiniteTensor('blk.0.attn_norm.weight', norm, 'model.gguf')
 */
export function assertFiniteTensor(tensor: string, values: Float32Array, file: string): void {
  const i = firstNonFinite(values)
  if (i >= 0) throw nonFiniteWeight(tensor, file, i, String(values[i]))
}

/** The error for a non-finite weight: element `index` of `tensor` is `value`. */
export function nonFiniteWeight(tensor: string, file: string, index: number, value: string): NumericalError {
  return new NumericalError(`${file}: tensor '${tensor}' holds a non-finite weight: element ${index} is ${value}`, { tensor })
}

/**
 * Throws a NumericalError if a step's logits hold a NaN or ±Inf: `first` is the index of the
 * first non-finite logit, or −1 (firstNonFinite, or the `find_nonfinite_f32` kernel over logits
 * in wasm memory). `locate` re-runs the step with a per-layer check and returns the first layer
 * whose residual is non-finite (or undefined when only the output projection overflowed), so the
 * error names it.
 * @example assertFiniteLogits(logits, pos, () => transformer.locateNonFinite(token, pos, kv), firstNonFinite(logits))
 */
export function assertFiniteLogits(logits: Float32Array, pos: number, locate: () => number | undefined, first: number): void {
  if (first < 0) return
  const layer = locate()
  const where = layer === undefined ? 'the output projection (output_norm.weight / output.weight)' : `layer ${layer} (blk.${layer}.*)`
  throw new NumericalError(`non-finite activations at position ${pos}: logit ${first} is ${logits[first]}; first non-finite in ${where}`,
    { layer, tensor: layer === undefined ? 'output.weight' : undefined })
}
