// The thread pool: results are bit-identical whatever the thread count (more threads than
// cores included), chunk size and chunk order, since every output is an exact integer sum
// computed by exactly one chunk; the guided schedule cuts every item once into chunks that
// shrink toward the round's end; and the governor picks thread counts from measured rounds.
import { availableParallelism } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, openModelContents } from '../src/index.js'
import type { ModelContents } from '../src/model/contents.js'
import { loadWeights } from '../src/model/load.js'
import { stateSize, Transformer } from '../src/model/transformer.js'
import { ThreadPool, type PoolOptions } from '../src/runtime/thread-pool.js'
import { compileKernels, createMemory, instantiateKernels } from '../src/runtime/wasm.js'
import { SPIN_US, ThreadGovernor, type RoundSample } from '../src/runtime/governor.js'
import { CTL_BYTES, MAX_CHUNKS } from '../src/runtime/protocol.js'
import { ITEM_BITS, ITEM_MASK, MAX_SHARE_CHUNKS, shareChunks, type Work } from '../src/runtime/schedule.js'
import { firstDifference, loadGolden, TINY_GGUF } from './helpers/golden.js'

const CTX = 96
const golden = loadGolden()
/** More threads than this machine has cores: the OS must preempt them mid-round. */
const OVERSUBSCRIBED = availableParallelism() + 2

// Opened once for the file (the tokenizer of a 128k vocabulary takes seconds to build); each
// test loads its own weights and threads from it.
let contents: ModelContents
beforeAll(async () => { contents = await openModelContents(TINY_GGUF) })
afterAll(() => contents.close?.())

async function tiny(threads: number, kernel: 'i2s' | 'tl', outputType: 'f16' | 'q8', pool: PoolOptions = {}): Promise<Transformer> {
  const model = await loadWeights(contents, { state: (c) => stateSize(c, CTX, 'f32'), kernel, outputType, variant: 'simd', threads, pool })
  return Transformer.create(model, CTX, 'f32')
}

/** Logits of every prompt position (prefill in batches of 8), then 12 greedy tokens with their logits. */
function run(t: Transformer, ids: number[]): { logits: Float32Array[]; tokens: number[] } {
  const logits = t.prefill(ids, 0, t.kv, 'all')
  const tokens: number[] = []
  let last = logits[logits.length - 1]
  for (let i = 0; i < 12; i++) {
    let best = 0
    for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v
    tokens.push(best)
    last = t.forward(best, ids.length + i)!.slice()
    logits.push(last)
  }
  return { logits, tokens }
}

describe.each([
  { kernel: 'i2s', outputType: 'q8' },
  { kernel: 'tl', outputType: 'f16' },
] as const)('tiny-dev, $kernel kernel, $outputType output: bit-identical on any thread count and chunk order', ({ kernel, outputType }) => {
  const ids = golden.prompts[0].ids
  let one: ReturnType<typeof run>
  beforeAll(async () => {
    const t = await tiny(1, kernel, outputType)
    one = run(t, ids)
    await t.dispose()
  })

  it.each([
    { threads: 2, pool: {} },
    { threads: 2, pool: { chunkCost: 1024, scrambleChunks: true } },
    { threads: OVERSUBSCRIBED, pool: { chunkCost: 4096, scrambleChunks: true } },
    { threads: OVERSUBSCRIBED, pool: { adaptive: true } },
  ])('$threads threads, $pool', async ({ threads, pool }) => {
    const t = await tiny(threads, kernel, outputType, pool)
    try {
      const r = run(t, ids)
      expect(r.tokens).toEqual(one.tokens)
      r.logits.forEach((l, i) => expect(firstDifference(l, one.logits[i]), `position ${i}`).toBe(''))
    } finally {
      await t.dispose()
    }
  })
})

describe('attention in rounds past the short contexts the leader runs alone', () => {
  // run() above stays under ATT_ALONE_POSITIONS, where attention never goes to a round:
  // here every prompt chunk and decode row attends more positions than that.
  it('gives the same bytes on 2 threads, scrambled, as on one', async () => {
    const ids = golden.prompts.flatMap((p) => p.ids)
    const passes = async (threads: number, pool: PoolOptions) => {
      const t = await tiny(threads, 'i2s', 'q8', pool)
      try {
        const logits = t.prefill(ids, 0, t.kv, 'all')
        for (let i = 0; i < 3; i++) logits.push(t.forward(ids[i], ids.length + i)!.slice())
        return logits
      } finally {
        await t.dispose()
      }
    }
    const [one, two] = [await passes(1, {}), await passes(2, { chunkCost: 1024, scrambleChunks: true })]
    expect(ids.length).toBeGreaterThan(48)
    two.forEach((l, i) => expect(firstDifference(l, one[i]), `position ${i}`).toBe(''))
  })
})

describe('oversubscribed model through the public API', () => {
  let model: Awaited<ReturnType<typeof loadModel>>
  beforeAll(async () => { model = await loadModel(TINY_GGUF, { threads: OVERSUBSCRIBED, outputType: 'f16' }) })
  afterAll(() => model.dispose())

  it('generates the golden greedy continuation', async () => {
    const p = golden.prompts[0]
    const r = await model.generate(p.ids, { maxTokens: 8, temperature: 0, ignoreEos: true })
    expect(r.tokens).toEqual(p.greedy32_ids.slice(0, 8))
    expect(model.threads).toBe(OVERSUBSCRIBED)
  })
})

describe('a control block past 2 GiB', () => {
  // A model over several memories fills the first one with its output projection and layers,
  // so the pool's control block (and kernel pointers) can sit above 2^31: word indices must
  // come from an unsigned shift. Untouched pages of the memory cost no RAM.
  it('runs rounds on 2 threads and gets the product', async () => {
    const { module } = await compileKernels({ variant: 'simd' })
    const memory = createMemory(2 ** 31 + (1 << 20), 'simd')
    const ctl = 2 ** 31 + 4096, w = ctl + CTL_BYTES, x = w + 4096, y = x + 256
    const f = new Float32Array(memory.buffer)
    const rows = 8, k = 16
    for (let i = 0; i < rows * k; i++) f[(w >>> 2) + i] = (i % 7) - 3
    for (let i = 0; i < k; i++) f[(x >>> 2) + i] = i / 4
    const pool = await ThreadPool.create(module, [memory], [instantiateKernels(module, memory)], ctl, 2, { chunkCost: 16 })
    try {
      pool.run([['matvec_f32_f32', w, x, y, rows, k]])
      const want = Array.from({ length: rows }, (_, r) => Array.from({ length: k }, (_, i) => ((r * k + i) % 7 - 3) * (i / 4)).reduce((a, b) => a + b))
      expect(Array.from(new Float32Array(memory.buffer, y, rows))).toEqual(want)
      expect(pool.activeThreads).toBe(2) // the worker runs: not a fallback to the calling thread alone
    } finally {
      await pool.dispose()
    }
  })
})

describe('a posted round (ThreadPool.post)', () => {
  // prefault_pages rewrites one word of each page unchanged while the calling thread
  // goes on; the next round finishes it first. Every byte must stay what it was, whoever ran
  // which page, and the round after must run as usual.
  it.each([1, 2])('leaves every byte of the range as it was, then the next round runs (%i threads)', async (threads) => {
    const { module } = await compileKernels({ variant: 'simd' })
    const memory = createMemory(1 << 20, 'simd')
    const ctl = 1 << 17, start = (1 << 18) + 6 * 4096, pages = 6, stop = start + pages * 4096
    const bytes = new Uint8Array(memory.buffer)
    for (let i = start - 64; i < stop + 64; i++) bytes[i] = (i * 37) & 255
    const before = bytes.slice(start - 64, stop + 64)
    const pool = await ThreadPool.create(module, [memory], [instantiateKernels(module, memory)], ctl, threads, { chunkCost: 16 })
    try {
      pool.post([['prefault_pages', start, pages], ['prefault_pages', stop, 0]])
      const w = 1 << 19, x = w + 64, y = x + 16
      new Float32Array(memory.buffer, w, 16).set(Array.from({ length: 16 }, (_, i) => i - 8))
      new Float32Array(memory.buffer, x, 4).set([1, 2, 3, 4])
      pool.run([['matvec_f32_f32', w, x, y, 4, 4]])
      expect(Array.from(new Float32Array(memory.buffer, y, 4))).toEqual([-60, -20, 20, 60])
      expect(firstByteDiff(bytes.slice(start - 64, stop + 64), before)).toBe(-1)
      pool.post([['prefault_pages', start, pages]])
      pool.settle()
      expect(firstByteDiff(bytes.slice(start - 64, stop + 64), before)).toBe(-1)
    } finally {
      await pool.dispose()
    }
  })
})

function firstByteDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}

describe('ThreadGovernor', () => {
  /** A governor on a hand-driven clock, and rounds of 1 ms in which the leader did `leadShare` of the work. */
  function setup(max: number, adaptive = true) {
    let t = 0
    const changes: [number, number][] = []
    const g = new ThreadGovernor(max, adaptive, (from, to) => changes.push([from, to]), () => t)
    /**
     * Feeds one window (25 rounds of 1 ms) at the governor's count, at speed-up `s` over one
     * unshared thread; at one thread, `solo` is the share of its core it gets: every fifth
     * round is preempted for the time lost.
     */
    const window = (s: number, solo = 1) => {
      const n = g.threads
      const lost = (25 / solo - 25) / 5
      for (let i = 0; i < 25; i++) {
        const ms = i % 5 === 0 ? 1 + lost : 1
        const r: RoundSample = n === 1
          ? { threads: 1, units: 1000, leadUnits: 1000, leadMs: ms, roundMs: ms }
          : { threads: n, units: 1000 * s, leadUnits: 1000 / n, leadMs: 1 / n, roundMs: 1 }
        t += 1
        g.record(r)
      }
    }
    return { g, changes, window, advance: (ms: number) => { t += ms } }
  }

  it('stays at the full count while it is faster, and tells workers to spin', () => {
    const { g, changes, window } = setup(2)
    for (let i = 0; i < 20; i++) window(1.8)
    expect(g.threads).toBe(2)
    expect(g.spinUs).toBeGreaterThan(0)
    expect(changes).toEqual([])
  })

  it('drops to one thread when two are slower', () => {
    const { g, changes, window } = setup(2)
    window(0.4)
    expect(g.threads).toBe(1) // a probe: one thread's speed is not known yet
    window(1)
    expect(g.threads).toBe(1)
    expect(changes).toEqual([[2, 1]])
  })

  it('keeps two threads when one thread gets less of a core than two threads give (two busy processes)', () => {
    const { g, changes, window } = setup(2)
    window(0.75)
    expect(g.threads).toBe(1) // the probe
    window(1, 0.64) // one thread gets 0.64 of a core: slower than the 0.75 of two
    expect(g.threads).toBe(2)
    for (let i = 0; i < 20; i++) window(0.75) // 0.5 s: S(1) is still fresh, no new probe
    expect(g.threads).toBe(2)
    expect(changes).toEqual([])
  })

  it('keeps one thread inside the hysteresis band (0.95–1.1×)', () => {
    const { g, window, advance } = setup(2)
    window(0.5)
    window(1) // the probe at one thread, kept
    expect(g.threads).toBe(1)
    for (let i = 0; i < 5; i++) {
      advance(5000)
      window(1) // the solo window that opens the probe
      window(1.05) // the probe at 2 threads: not 1.1× better
      expect(g.threads).toBe(1)
    }
  })

  it('probes back up with a growing gap, and grows when the load goes', () => {
    const { g, changes, window, advance } = setup(2)
    window(0.4)
    window(1) // the probe at one thread, kept
    expect(g.threads).toBe(1)
    // Busy: each probe fails; the gap doubles (250, 500, 1000 ms …), so a window right
    // after a failed probe starts none.
    advance(300)
    window(1)
    expect(g.threads).toBe(2) // probing
    window(0.4)
    expect(g.threads).toBe(1)
    advance(300)
    window(1)
    expect(g.threads).toBe(1) // 300 ms < the doubled gap
    advance(300)
    window(1)
    expect(g.threads).toBe(2)
    // The load went: the probe measures 1.8× and is kept.
    window(1.8)
    expect(g.threads).toBe(2)
    expect(changes).toEqual([[2, 1], [1, 2]])
  })

  it('stops workers spinning after two oversubscribed windows in a row, not one, and resumes after two good ones', () => {
    const { g, window } = setup(2, false)
    window(0.9) // 0.45 a thread: noise, or the start of a busy spell
    expect(g.spinUs).toBe(SPIN_US)
    window(1.6) // 0.8: it was noise
    window(0.9)
    expect(g.spinUs).toBe(SPIN_US)
    window(0.6)
    expect(g.spinUs).toBe(0) // two in a row: oversubscribed
    window(1.5) // 0.75
    window(1.2) // 0.6: not yet a good one
    expect(g.spinUs).toBe(0)
    window(1.5)
    expect(g.spinUs).toBe(0)
    window(1.6)
    expect(g.spinUs).toBe(SPIN_US)
  })

  it('never changes a pinned count', () => {
    const { g, changes, window } = setup(2, false)
    for (let i = 0; i < 10; i++) window(0.3)
    expect(g.threads).toBe(2)
    expect(changes).toEqual([])
    expect(g.spinUs).toBe(0) // but its workers stop spinning on an oversubscribed machine
  })

  it('steps down one thread at a time from a larger count when oversubscribed', () => {
    const { g, changes, window, advance } = setup(4)
    window(3.5)
    expect(g.threads).toBe(4)
    advance(300)
    window(1.2) // 4 threads at 0.3 efficiency: probe 3
    expect(g.threads).toBe(3)
    window(1.5) // kept: not slower
    expect(g.threads).toBe(3)
    window(1.2) // 3 threads at 0.4 efficiency, but no slower than 4 were (1.2): stays until the next gap
    expect(g.threads).toBe(3)
    expect(changes).toEqual([[4, 3]])
  })
})

describe('shareChunks', () => {
  /** Each chunk as [job, first, end), in item order. */
  function ranges(work: Work[], shares: number, minCost: number): [number, number, number][] {
    const chunks = shareChunks(work, shares, minCost, MAX_CHUNKS).chunks.map((w) => ({ job: w >>> ITEM_BITS, first: w & ITEM_MASK }))
    return chunks.map(({ job, first }, c) => {
      const next = chunks[c + 1]
      return [job, first, next?.job === job ? next.first : work[job].items]
    })
  }

  it('cuts every item of every job exactly once, in contiguous ranges', () => {
    const work = [{ items: 640, cost: 10240 }, { items: 3, cost: 8 }, { items: 1728, cost: 10240 }, { items: 1, cost: 1 << 30 }]
    for (const shares of [1, 2, 3, 16]) {
      const seen = work.map((w) => new Uint8Array(w.items))
      for (const [job, first, end] of ranges(work, shares, 256 * 1024)) {
        expect(end).toBeGreaterThan(first)
        for (let i = first; i < end; i++) seen[job][i]++
      }
      for (const s of seen) expect(s.every((v) => v === 1)).toBe(true)
    }
  })

  it('splits a round evenly, each share opening with large chunks and closing with chunks of about minCost', () => {
    const work = [{ items: 1728, cost: 10240 }] // a 2B4T down projection: 17.7 M multiply-adds
    const min = 256 * 1024
    const { chunks, starts } = shareChunks(work, 2, min, MAX_CHUNKS)
    expect(starts).toHaveLength(3)
    const firsts = chunks.map((w) => w & ITEM_MASK)
    expect(Math.abs(firsts[starts[1]] - 864)).toBeLessThanOrEqual(1) // the second share starts halfway
    for (let t = 0; t < 2; t++) {
      const ends = [...firsts.slice(starts[t] + 1, starts[t + 1]), t === 0 ? firsts[starts[1]] : 1728]
      const costs = ends.map((e, i) => (e - firsts[starts[t] + i]) * 10240)
      expect(costs[0]).toBeGreaterThanOrEqual(4 * min)
      for (let c = 1; c < costs.length - 1; c++) expect(costs[c], `share ${t} chunk ${c}`).toBeLessThanOrEqual(costs[c - 1])
      expect(costs.at(-1)).toBeLessThanOrEqual(2 * min)
      expect(costs.length).toBeLessThan(864 * 10240 / min / 2) // far fewer claims than equal min-size chunks
    }
  })

  it('gives every share work, and stays within MAX_CHUNKS and MAX_SHARE_CHUNKS for any round', () => {
    const { starts } = shareChunks([{ items: 64, cost: 1000 }], 4, 1 << 20, MAX_CHUNKS)
    for (let t = 0; t < 4; t++) expect(starts[t + 1]).toBeGreaterThan(starts[t])
    const huge = Array.from({ length: 32 }, () => ({ items: 1 << 20, cost: 1 << 12 }))
    for (const shares of [1, 2, 256]) {
      const cut = shareChunks(huge, shares, 1, MAX_CHUNKS)
      expect(cut.chunks.length).toBeLessThanOrEqual(MAX_CHUNKS)
      for (let t = 0; t < shares; t++) expect(cut.starts[t + 1] - cut.starts[t]).toBeLessThanOrEqual(MAX_SHARE_CHUNKS)
    }
  })
})
