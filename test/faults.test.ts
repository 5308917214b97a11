// Runtime faults: a compute worker that traps or dies, dispose() during generation, aborted
// loads, and a model too large for wasm memory. Each ends in a typed error and leaves the
// engine usable (or cleanly stopped), never a hang or leaked threads and memory.
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { BitnetError, DisposedError, loadModel, ResourceLimitError, WorkerError } from '../src/index.js'
import { writeGguf } from '../src/gguf/writer.js'
import { syntheticGguf, type SyntheticShape } from '../src/model/synthetic.js'
import { ThreadPool, type PoolOptions } from '../src/runtime/thread-pool.js'
import { CTL_BYTES, CTL_EXIT, CTL_GEN, CTL_SHARE_LINES, CTL_SHARES, SHARE_WORDS, type Job } from '../src/runtime/protocol.js'
import { compileKernels, createMemory, growMemory, HEAP_BASE, instantiateKernels } from '../src/runtime/wasm.js'

const SHAPE: SyntheticShape = { nEmbd: 64, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270, contextLength: 64 }
const MODEL = writeGguf(syntheticGguf(SHAPE))

/** A 2-thread pool on a 1 MiB (or `bytes`) memory, and a 2-row f32 matvec. */
async function pool2(opts: PoolOptions = {}, bytes = 1 << 20) {
  const { module, variant } = await compileKernels({ variant: 'simd' })
  const memory = createMemory(bytes, variant)
  const kernels = instantiateKernels(module, memory)
  const pool = await ThreadPool.create(module, [memory], [kernels], HEAP_BASE, 2, opts)
  const f32 = new Float32Array(memory.buffer)
  const k = 8, w = HEAP_BASE + CTL_BYTES, x = w + 2 * k * 4, y = x + k * 4
  for (let i = 0; i < 2 * k; i++) f32[w / 4 + i] = i
  for (let i = 0; i < k; i++) f32[x / 4 + i] = 1
  const good: Job = ['matvec_f32_f32', w, x, y, 2, k]
  // Row 1 starts at the end of the memory: whichever thread computes it reads out of bounds and traps.
  const trapping: Job = ['matvec_f32_f32', memory.buffer.byteLength - k * 4, x, y, 2, k]
  const result = () => [f32[y / 4], f32[y / 4 + 1]]
  return { pool, good, trapping, result, memory }
}

/** The pool is back on 2 threads (its workers replaced) and computes the right result. */
async function expectRebuilt(pool: ThreadPool, good: Job, result: () => number[]) {
  await pool.whenReady()
  expect(pool.activeThreads).toBe(2)
  pool.run([good])
  expect(result()).toEqual([28, 92])
}

describe('compute workers that fail', () => {
  it('a worker that traps fails the call with WorkerError; the pool rebuilds and computes correctly', async () => {
    const { pool, good, trapping, result } = await pool2()
    try {
      pool.run([good])
      expect(result()).toEqual([28, 92])
      expect(() => pool.run([trapping])).toThrow(WorkerError)
      // Until the new workers are up, rounds run on this thread alone, with the same results.
      expect(pool.activeThreads).toBe(1)
      pool.run([good])
      expect(result()).toEqual([28, 92])
      await expectRebuilt(pool, good, result)
    } finally {
      await pool.dispose()
    }
  })

  it('a worker that dies between calls is replaced; calls keep working', async () => {
    const { pool, good, result } = await pool2()
    try {
      await (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0].terminate()
      pool.run([good]) // the exit was noticed: this round runs on one thread
      expect(result()).toEqual([28, 92])
      await expectRebuilt(pool, good, result)
    } finally {
      await pool.dispose()
    }
  })

  it('a worker that dies during a call (no event seen yet) holds nothing up: the others take its chunks', async () => {
    const { pool, good, result } = await pool2()
    try {
      void (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0].terminate()
      // Block this thread (no event loop turn, so the exit is not noticed) while the worker stops.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
      pool.run([good])
      expect(result()).toEqual([28, 92])
      await new Promise((r) => setTimeout(r, 50)) // the exit is noticed: the pool is replaced
      await expectRebuilt(pool, good, result)
    } finally {
      await pool.dispose()
    }
  })

  it('a chunk claimed by a thread that never finishes it trips the round watchdog instead of hanging', async () => {
    const { pool, good, result, memory } = await pool2({ roundTimeoutMs: 300, chunkCost: 1 }, 48 << 20)
    // A thread wedged mid-chunk, made by hand: spinning, it claims every chunk of the next
    // round left the moment it opens (before the sleeping real worker wakes) and never reports them done.
    const wedged = new Worker(`
      const { workerData: { memory, ctl }, parentPort } = require('node:worker_threads')
      const i32 = new Int32Array(memory.buffer), base = ctl >> 2
      const gen = Atomics.load(i32, base + ${CTL_GEN})
      parentPort.postMessage('ready')
      while (Atomics.load(i32, base + ${CTL_GEN}) === gen);
      // claim what is left of every share (front = back), retrying while the leader's own claims move a word
      for (let t = 0; t < Atomics.load(i32, base + ${CTL_SHARES}); t++) {
        const line = base + ${CTL_SHARE_LINES} + t * ${SHARE_WORDS}
        let w
        do w = Atomics.load(i32, line)
        while (((w >>> 6) & 63) < (w & 63) && Atomics.compareExchange(i32, line, w, (w & ~(63 << 6)) | ((w & 63) << 6)) !== w)
      }
      Atomics.wait(i32, base + ${CTL_EXIT} + 1000, 0)`, { eval: true, workerData: { memory, ctl: HEAP_BASE } })
    try {
      await new Promise((r) => wedged.once('message', r))
      // 4000 rows cut into ~70 chunks, ms of work: the wedged thread gets its claim in whatever the scheduler does.
      const many: Job = ['matvec_f32_f32', good[1], good[2], good[3], 4000, 2048]
      expect(() => pool.run([many])).toThrow(/compute workers stopped responding \(\d+ of \d+ chunks of a round finished within 0.3 s\)/)
      await expectRebuilt(pool, good, result)
    } finally {
      await wedged.terminate()
      await pool.dispose()
    }
  })

  it('workers that cannot start leave a one-thread pool and one warning, not a failed load', async () => {
    // The non-shared build's module cannot be instantiated on a shared memory: every worker fails.
    const { module: single } = await compileKernels({ variant: 'single' })
    const { module, variant } = await compileKernels({ variant: 'simd' })
    const memory = createMemory(1 << 20, variant)
    const warnings: string[] = []
    const pool = await ThreadPool.create(single, [memory], [instantiateKernels(module, memory)], HEAP_BASE, 2, { logger: { warn: (m) => warnings.push(m) } })
    try {
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/^bitnet-wasm: running on 1 thread instead of 2: starting compute workers failed: worker 1: /)
      expect(pool.activeThreads).toBe(1)
      const f32 = new Float32Array(memory.buffer)
      const w = HEAP_BASE + CTL_BYTES, x = w + 16, y = x + 8
      f32.set([1, 2, 3, 4], w / 4)
      f32.set([1, 1], x / 4)
      pool.run([['matvec_f32_f32', w, x, y, 2, 2]])
      expect([f32[y / 4], f32[y / 4 + 1]]).toEqual([3, 7])
    } finally {
      await pool.dispose()
    }
  })

  it('after dispose() a round throws DisposedError instead of waiting for stopped workers', async () => {
    const { pool, good } = await pool2()
    await pool.dispose()
    expect(() => pool.run([good])).toThrow(DisposedError)
    await pool.dispose() // idempotent
  })
})

describe('dispose and abort', () => {
  it.each([1, 2])('dispose() during generation ends it at once; later calls fail with a typed error (%i threads)', async (threads) => {
    const model = await loadModel(MODEL, { threads })
    const it = model.generate('Hello', { maxTokens: 20, temperature: 0, ignoreEos: true })[Symbol.asyncIterator]()
    expect((await it.next()).done).toBe(false)
    await model.dispose()
    // The running generation stops at once: it ends (its session was disposed) or fails with
    // DisposedError; it neither hangs nor yields another token. New work fails with a typed error.
    const next = await it.next().then((r) => r, (e: unknown) => e)
    if (next instanceof Error) expect(next).toBeInstanceOf(DisposedError)
    else expect(next).toEqual({ done: true, value: undefined })
    const err = await model.generate('Hello', { maxTokens: 2 }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(BitnetError)
    expect((err as Error).message).toMatch(/disposed/)
    expect(() => model.transformer.forward(1, 0)).toThrow(DisposedError)
  })

  it('aborting at every load stage, and load/dispose cycles, leave no threads or memory behind', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    // A big KV cache (2 × 16384 positions × 256 × 8 B = 64 MiB, zeroed at load) makes a leak visible.
    const big = writeGguf(syntheticGguf({ ...SHAPE, nEmbd: 256, nHead: 4, nHeadKv: 4, nLayer: 2, contextLength: 16384 }))
    const threadCount = () => Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
    const settle = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 20)) } }
    // Warm up (compiled module, worker bundle), then take the baseline.
    await (await loadModel(big, { threads: 2, contextSize: 16384 })).dispose()
    await settle()
    const threads0 = threadCount()
    const rss0 = process.memoryUsage.rss()
    // Abort points: before parsing (an aborted signal), at kernel compile, at the first and
    // after the last tensor's repack (the load completes), before the prompt, after one token.
    const STAGES = ['parse', 'compile', 'repack', 'repack-last', 'prefill', 'decode']
    const stages: string[] = []
    for (let cycle = 0; cycle < 12; cycle++) {
      const stage = STAGES[cycle % STAGES.length]
      const ac = new AbortController()
      if (stage === 'parse') ac.abort()
      const load = loadModel(big, {
        threads: 2, contextSize: 16384, signal: ac.signal,
        onProgress: (p) => {
          if (p.phase === stage || (stage === 'repack-last' && p.phase === 'repack' && p.loaded === p.total)) ac.abort()
        },
      })
      const outcome = await load.then(async (m) => {
        const gen = new AbortController()
        if (stage === 'prefill') gen.abort()
        let n = 0
        const { finishReason } = await (async () => {
          const it = m.generate('Hi', { maxTokens: 50, ignoreEos: true, signal: gen.signal })
          for await (const chunk of it) if (chunk.tokenId >= 0 && ++n === 1 && stage === 'decode') gen.abort()
          return it
        })()
        await m.dispose()
        return `${finishReason}:${n}`
      }, (e: Error) => e.name)
      stages.push(`${stage}:${outcome}`)
    }
    await settle()
    expect(stages).toEqual([...Array(2)].flatMap(() => [
      'parse:AbortError', 'compile:AbortError', 'repack:AbortError', 'repack-last:length:50', 'prefill:abort:0', 'decode:abort:1']))
    expect(threadCount()).toBeLessThanOrEqual(threads0 + 1)
    // 12 cycles × 64 MiB would show as ~770 MiB if models leaked.
    expect(process.memoryUsage.rss() - rss0).toBeLessThan(256 * 2 ** 20)
  }, 120_000)
})

describe('memory limits', () => {
  it('a memory that cannot grow (runtime refusal or the 4 GiB limit) is a ResourceLimitError with the needed size', () => {
    const fixed = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })
    const err = (() => { try { growMemory(fixed, 3 * 65536) } catch (e) { return e } })() as ResourceLimitError
    expect(err).toBeInstanceOf(ResourceLimitError)
    expect(err.needed).toBe(3 * 65536)
    expect(err.message).toMatch(/cannot grow wasm memory from 0 MiB to 0 MiB/)
    expect(() => growMemory(createMemory(65536, 'simd'), 2 ** 33)).toThrow(/cannot grow wasm memory to 8192 MiB: the limit is 4 GiB/)
  })

  it('a session the memory cannot grow for: a ResourceLimitError saying to dispose another session or use a smaller context', async () => {
    // 2^22 tokens: 1 GiB of f32 keys and values a cache and as much of attention buffers; the
    // plan holds one cache, a second grows the memory past 3 GiB, a third would pass 4 GiB
    const model = await loadModel(MODEL, { threads: 1, contextSize: 1 << 22, kvType: 'f32' })
    try {
      const sessions = [model.createSession(), model.createSession()]
      const err = (() => { try { model.createSession() } catch (e) { return e } })() as ResourceLimitError
      expect(err).toBeInstanceOf(ResourceLimitError)
      expect(err.needed).toBeGreaterThan(2 ** 32)
      expect(err.message).toMatch(/^cannot grow wasm memory to \d+ MiB: the limit is 4 GiB\. A new session needs a KV cache of its own \(1024 MiB: 4194304 tokens of f32 keys and values\): dispose another session \(session\.dispose\(\)\) to hand its cache on, or load the model with a smaller contextSize/)
      sessions[1].dispose()
      expect(() => model.createSession()).not.toThrow() // the disposed session's cache
    } finally {
      await model.dispose()
    }
  })

  it('a layer too large for one wasm memory is a ResourceLimitError with the needed size', async () => {
    // 2^23 tokens: 2.6 GiB of buffers (32-row attention scratch) fit one memory, with layer 0's 2 GiB of f32 keys and values they do not
    const err = await loadModel(MODEL, { threads: 1, contextSize: 1 << 23, kvType: 'f32' }).catch((e) => e)
    expect(err).toBeInstanceOf(ResourceLimitError)
    expect(err.limit).toBe('wasmMemory')
    expect(err.needed).toBeGreaterThan(2 ** 32)
    expect(err.message).toMatch(/layer 0 alone needs \d+\.\d+ GiB of wasm memory .*; one memory holds 4\.00 GiB/)
  })
})
