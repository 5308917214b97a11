/**
 * Memory segments: how a model larger than one wasm32 memory (4 GiB) is spread over several.
 *
 * Each segment is a WebAssembly.Memory of its own, holding whole layers: their weights, their
 * rows of every KV cache, and a copy of the activation buffers (RunState), so a layer's
 * kernels only ever address one memory. Every thread instantiates the same kernel module
 * once per segment, and a round names the segment its pointers address (runtime/protocol.ts).
 * Between layers of different segments the forward pass copies the residual stream (and the
 * RoPE table): n_embd floats per row, a few KB per token. Segment 0 also holds the output
 * projection and the thread pool's control block. A model that fits one memory has one
 * segment and no copies.
 *
 *   segment 0: [output norm, output matrix][layers 0..a)[buffers][KV of layers 0..a)
 *   segment 1: [layers a..b)[buffers][KV of layers a..b)   …
 */
import type { MemoryLimits } from '../env.js'
import { ResourceLimitError } from '../errors.js'
import { MAX_PAGES, type Kernels, type WasmMemory } from '../runtime/wasm.js'
import { Arena } from './arena.js'

/** wasm32's limit: the default (and largest) segment. */
export const MAX_SEGMENT_BYTES = MAX_PAGES * 65536

/** What the runtime state takes in a segment: buffers in every one, KV rows per layer it holds. */
export interface StateSize {
  buffers: number
  kvPerLayer: number
}

/** One memory of a loaded model. */
export interface Segment {
  memory: WasmMemory
  /** The kernel module instantiated on `memory` (this thread's instance). */
  kernels: Kernels
  /** Allocation point after the weights: the runtime state is allocated from here. */
  arena: Arena
  /** Bytes after the weights that loading used as scratch (not zero any more; the rest is). */
  scratchBytes: number
  /** Layers [first, end) whose weights and KV rows live here. */
  first: number
  end: number
}

/** A segment being planned. */
export interface SegmentPlan {
  arena: Arena
  scratchBytes: number
  first: number
  end: number
}

/** A tensor to place: its bytes, its layer (−1: not a layer's), and the scratch its loading needs. */
export interface Placed {
  bytes: number
  layer: number
  scratch: number
  ptr: number
  seg: number
}

/**
 * Places every tensor (layers in order, the rest first into segment 0) and opens a new
 * segment when the next whole layer would not fit the current one with its state.
 * `label` says what the state is (the context size and where it came from) in errors.
 */
export function planSegments(items: Placed[], state: StateSize, capacity: number, label: string): SegmentPlan[] {
  const open = (first: number): SegmentPlan => ({ arena: new Arena(), scratchBytes: 0, first, end: first })
  const segs = [open(0)]
  const layerItems = new Map<number, Placed[]>()
  for (const p of items) if (p.layer >= 0) layerItems.set(p.layer, (layerItems.get(p.layer) ?? []).concat(p))
  const place = (g: SegmentPlan, p: Placed) => {
    p.seg = segs.indexOf(g)
    p.ptr = g.arena.alloc(p.bytes)
    g.scratchBytes = Math.max(g.scratchBytes, p.scratch)
  }
  for (const p of items) if (p.layer < 0) place(segs[0], p)
  const base = segmentBytes(segs[0], state)
  if (base > capacity) {
    throw new ResourceLimitError('wasmMemory', capacity, `the embedding and output projection with the buffers for ${label} need ` +
      `${gib(base)} of wasm memory; one memory holds ${gib(capacity)}`, base)
  }
  for (const [layer, tensors] of [...layerItems].sort((a, b) => a[0] - b[0])) {
    const grown = (g: SegmentPlan) => {
      const trial: SegmentPlan = { ...g, arena: Object.assign(new Arena(), { top: g.arena.top }), end: layer + 1 }
      for (const p of tensors) { trial.arena.alloc(p.bytes); trial.scratchBytes = Math.max(trial.scratchBytes, p.scratch) }
      return segmentBytes(trial, state)
    }
    let g = segs[segs.length - 1]
    if (grown(g) > capacity) {
      g = open(layer)
      segs.push(g)
      const need = grown(g)
      if (need > capacity) throw layerTooLarge(layer, need, capacity, state, label)
    }
    for (const p of tensors) place(g, p)
    g.end = layer + 1
  }
  return segs
}

/** Bytes of a segment's memory: weights, then the state or the loading scratch, whichever is larger. */
export function segmentBytes(g: SegmentPlan, state: StateSize): number {
  return g.arena.top + Math.max(state.buffers + state.kvPerLayer * (g.end - g.first), g.scratchBytes) + 1024
}

/** Bytes of every memory of a plan, in segment order. */
export function memorySizes(segs: SegmentPlan[], state: StateSize): number[] {
  return segs.map((g) => segmentBytes(g, state))
}

/** A browser's device has at most 1.5× `navigator.deviceMemory` of RAM (the nearest power of two). */
const DEVICE_MEMORY_BOUND = 1.5
/**
 * `navigator.deviceMemory` from 8 GiB up bounds nothing: the spec caps it at 8 (8 means 8 or
 * more), and browsers that report more (Chromium 156 says 16 on a 24 GiB machine) may cap higher.
 */
const DEVICE_MEMORY_CAP = 2 ** 33

/**
 * Refuses a plan of memories (`sizes`, bytes) larger than what the runtime says it has, before
 * any is reserved or a weight is read: the machine's RAM (Node, Deno, Bun), or in a browser the
 * most RAM its `navigator.deviceMemory` allows. Loading would push the machine into swap or the
 * OOM killer, or crash the tab.
 * @throws ResourceLimitError (limit 'memory') naming both sizes and what to ask for instead.
 */
export function checkMemoryLimits(sizes: readonly number[], limits: MemoryLimits, label: string): void {
  const planned = sizes.reduce((s, n) => s + n, 0)
  const device = limits.deviceMemory !== undefined && limits.deviceMemory < DEVICE_MEMORY_CAP ? limits.deviceMemory * DEVICE_MEMORY_BOUND : undefined
  const bound = limits.ram ?? device
  if (bound === undefined || planned <= bound) return
  const has = limits.ram !== undefined ? `this machine has ${gib(bound)} of RAM`
    : `this device has at most ${gib(bound)} of RAM (navigator.deviceMemory ${limits.deviceMemory! / 2 ** 30} GiB)`
  throw new ResourceLimitError('memory', bound, `${needs(planned, sizes.length, label)}; ${has}: ${remedy(limits)}`, planned)
}

/**
 * The error for a plan whose memory `refused` the runtime would not reserve (runtime/wasm.ts
 * createMemories). The first memory alone: limit 'wasmMemory', `max` the largest size that could
 * be reserved (`largest`, 0 if none), which `maxMemoryBytes` can ask for. A later one: limit
 * 'memory', the page (process) holds fewer memories at once than the plan, `max` what it held.
 */
export function reservationError(sizes: readonly number[], refused: number, largest: number, limits: MemoryLimits, label: string): ResourceLimitError {
  const planned = sizes.reduce((s, n) => s + n, 0)
  const held = sizes.slice(0, refused).reduce((s, n) => s + n, 0)
  const where = limits.browser ? 'this page' : 'this process'
  const about = describeLimits(limits)
  if (refused > 0) {
    return new ResourceLimitError('memory', held, `${needs(planned, sizes.length, label)}; ${where} could reserve only ${refused} of them ` +
      `(${gib(held)}) at once${about}: ${remedy(limits)}`, planned)
  }
  const only = largest > 0 ? `, only one of ${gib(largest)}` : ''
  const options = [largest > 0 && `maxMemoryBytes: ${largest} spreads the model over smaller memories`,
    limits.bits === 32 && 'use a 64-bit browser or runtime', remedy(limits)]
  return new ResourceLimitError('wasmMemory', largest, `${needs(planned, sizes.length, label)}; ${where} cannot reserve a memory of ` +
    `${gib(sizes[0])}${only}${about}: ${options.filter(Boolean).join(', or ')}`, sizes[0])
}

const needs = (planned: number, n: number, label: string) =>
  `the model with its buffers and KV cache for ${label} needs ${gib(planned)} of memory${n > 1 ? ` in ${n} wasm memories` : ''}`

/** What to ask for instead, for every limit: less memory, or a runtime with more. */
const remedy = (limits: MemoryLimits) => `ask for a smaller contextSize or kvType 'f16', or use a smaller model` +
  (limits.browser ? ', or run it in Node, Deno or Bun, where the machine\'s RAM is the limit' : '')

/** The detected limits, for a user's report ('(64-bit, navigator.deviceMemory 8 GiB, memory64 yes)'). */
function describeLimits(l: MemoryLimits): string {
  const parts = [l.bits && `${l.bits}-bit`, l.deviceMemory !== undefined && `navigator.deviceMemory ${l.deviceMemory / 2 ** 30} GiB`,
    l.ram !== undefined && `${gib(l.ram)} of RAM`, `memory64 ${l.memory64 ? 'yes' : 'no'}`]
  return ` (${parts.filter(Boolean).join(', ')})`
}

const gib = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`)

function layerTooLarge(layer: number, need: number, capacity: number, state: StateSize, label: string): ResourceLimitError {
  return new ResourceLimitError('wasmMemory', capacity,
    `layer ${layer} alone needs ${gib(need)} of wasm memory (its KV cache ${gib(state.kvPerLayer)} and buffers ${gib(state.buffers)} ` +
    `for ${label}); one memory holds ${gib(capacity)}: ask for a smaller contextSize`, need)
}
