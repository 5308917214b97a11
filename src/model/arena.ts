/**
 * A bump allocator over the engine's wasm memory. The whole model (weights, KV cache,
 * activation buffers) is planned before the memory is created, so the memory is sized
 * once and never grows (growing a shared memory invalidates every thread's views).
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
