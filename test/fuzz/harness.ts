// The fuzz loop: feeds inputs to targets, classifies each outcome, and keeps the numbers the
// issue asks for (inputs tried, outcomes by error type, max time per input, max memory).
// An outcome is acceptable when the call returns or throws a BitnetError subclass with a
// message; anything else (TypeError, RangeError, a wasm RuntimeError, ...) is a crash, and so
// is an input that takes longer than HANG_MS. Crashing inputs are written to test/fuzz/fixtures/.
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { BitnetError, ModelFormatError } from '../../src/errors.js'
import { Rng } from './mutate.js'
import type { Target } from './targets.js'

export const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url))

/**
 * An input running longer than this is reported as a hang. Not a speed check: typical inputs
 * take well under 10 ms; this only catches unbounded loops (which would otherwise stall the run).
 */
export const HANG_MS = 20_000

export interface Crash { target: string; outcome: string; message: string; fixture: string }

export interface FuzzStats {
  inputs: number
  /** Outcome name ('ok' or an error class) → count, per target. */
  outcomes: Record<string, Record<string, number>>
  maxMs: number
  maxMsTarget: string
  /** Total time per target, ms. */
  msByTarget: Record<string, number>
  /** ModelFormatErrors, and how many of them name a file offset (the rest name a key, tensor or field). */
  formatErrors: number
  formatErrorsWithOffset: number
  /** Largest input fed, bytes. */
  maxInputBytes: number
  /** Peak resident set size seen after an input, MiB. */
  maxRssMiB: number
  crashes: Crash[]
}

export function newStats(): FuzzStats {
  return { inputs: 0, outcomes: {}, maxMs: 0, maxMsTarget: '', msByTarget: {}, formatErrors: 0, formatErrorsWithOffset: 0, maxInputBytes: 0, maxRssMiB: 0, crashes: [] }
}

/** 'ok', the BitnetError subclass name, or 'CRASH <name>' for anything else. */
export function classify(e: unknown): string {
  if (e === undefined) return 'ok'
  // A kernel trap wrapped by the thread pool is still an out-of-bounds access: a crash.
  if (e instanceof BitnetError && e.cause instanceof WebAssembly.RuntimeError) return `CRASH wasm trap (${e.name})`
  if (e instanceof BitnetError && e.message.length > 0) return e.name
  return `CRASH ${(e as Error)?.name ?? typeof e}`
}

/** Runs one input through a target and records it; returns the outcome. */
export async function feed(target: Target, input: Uint8Array, stats: FuzzStats, saveCrashes = true): Promise<string> {
  const t0 = performance.now()
  let error: unknown
  try {
    await target.run(input)
  } catch (e) {
    error = e ?? new Error('thrown undefined')
  }
  const ms = performance.now() - t0
  let outcome = classify(error)
  if (ms > HANG_MS) outcome = `CRASH hang (${Math.round(ms)} ms)`
  record(stats, target.name, outcome, ms)
  if (error instanceof ModelFormatError) {
    stats.formatErrors++
    if (error.offset !== undefined) stats.formatErrorsWithOffset++
  }
  stats.maxInputBytes = Math.max(stats.maxInputBytes, input.byteLength)
  stats.maxRssMiB = Math.max(stats.maxRssMiB, process.memoryUsage.rss() / 2 ** 20)
  if (outcome.startsWith('CRASH')) {
    const fixture = saveCrashes ? saveFixture(target.name, input) : ''
    stats.crashes.push({ target: target.name, outcome, message: String((error as Error)?.stack ?? error).slice(0, 2000), fixture })
  }
  return outcome
}

/** Counts one input's outcome and time. */
export function record(stats: FuzzStats, target: string, outcome: string, ms: number): void {
  stats.inputs++
  const per = (stats.outcomes[target] ??= {})
  per[outcome] = (per[outcome] ?? 0) + 1
  stats.msByTarget[target] = (stats.msByTarget[target] ?? 0) + ms
  if (ms > stats.maxMs) { stats.maxMs = ms; stats.maxMsTarget = target }
}

/** Writes a crashing input as test/fuzz/fixtures/<target>-<sha1 prefix>.bin (replayed by fuzz.test.ts). */
function saveFixture(target: string, input: Uint8Array): string {
  mkdirSync(FIXTURES_DIR, { recursive: true })
  const name = `${target}-${createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`
  writeFileSync(FIXTURES_DIR + name, input)
  return name
}

/**
 * Runs `total` inputs split over the targets by weight (at least one each), deterministically
 * from `seed`. `onProgress` is called after every target.
 */
export async function fuzz(targets: Target[], total: number, seed: number, stats = newStats(),
  onProgress?: (target: string, stats: FuzzStats) => void): Promise<FuzzStats> {
  const weights = targets.reduce((s, t) => s + t.weight, 0)
  for (const [i, target] of targets.entries()) {
    const runs = Math.max(1, Math.round((total * target.weight) / weights))
    const rng = new Rng(seed * 1000 + i)
    for (let n = 0; n < runs; n++) {
      const t0 = performance.now()
      const input = target.input(rng)
      stats.msByTarget[`${target.name} (making inputs)`] = (stats.msByTarget[`${target.name} (making inputs)`] ?? 0) + performance.now() - t0
      await feed(target, input, stats)
    }
    onProgress?.(target.name, stats)
  }
  return stats
}

/** Totals over targets: outcome → count. */
export function totals(stats: FuzzStats): Record<string, number> {
  const out: Record<string, number> = {}
  for (const per of Object.values(stats.outcomes)) for (const [k, v] of Object.entries(per)) out[k] = (out[k] ?? 0) + v
  return out
}
