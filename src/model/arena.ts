/**
 * A bump allocator over the engine's wasm memory. The whole model (weights, one KV cache,
 * activation buffers) is planned before the memory is created, so loading
 * sizes it once. It grows later only for extra KV caches (`Transformer.createKvCache`),
 * past every planned address: a grown shared memory gets a new buffer, so the host
 * re-takes its views after a call that may grow.
 */
import { HEAP_BASE } from '../runtime/wasm.js'

export class Arena {
  /** Next free byte offset. */
  top = HEAP_BASE

  /** Reserves `bytes` (aligned to 64 bytes: cache lines, v128 loads) and returns the offset. */
  alloc(bytes: number): number {
    const ptr = Math.ceil(this.top / 64) * 64
    this.top = ptr + bytes
    return ptr
  }
}
