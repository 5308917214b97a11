// The in-memory layout table (src/model/layouts.ts) against the packers' own shapes and the
// kernels: sizes from the table equal those the packers write, and every job a layout builds
// names an op the thread pool can run with the table's argument count.
import { describe, expect, it } from 'vitest'
import { c4Shape } from '../src/formats/i2s-c4.js'
import { tlShape } from '../src/formats/tl16.js'
import { layoutSize, OUTPUT_LAYOUTS, TERNARY_LAYOUTS, type FloatMatrix, type OutputLayoutName } from '../src/model/layouts.js'
import { resolveOutputType } from '../src/model/load.js'
import { OPS } from '../src/runtime/protocol.js'
import type { KernelVariant } from '../src/runtime/wasm.js'

const SHAPES = [[1, 1], [3, 127], [4, 128], [17, 129], [33, 1000], [64, 2560]]

describe('layout table', () => {
  it('sizes ternary layouts as their packers do', () => {
    for (const [rows, cols] of SHAPES) {
      const c4 = c4Shape(rows, cols), tl = tlShape(rows, cols)
      expect(layoutSize(TERNARY_LAYOUTS.i2s, rows, cols)).toMatchObject({ kp: c4.kp, bytes: c4.bytes })
      expect(layoutSize(TERNARY_LAYOUTS.tl, rows, cols)).toMatchObject({ kp: tl.kp, bytes: tl.bytes })
    }
  })

  it('sizes the output layouts: rows, padding, scales after the rows', () => {
    expect(layoutSize(OUTPUT_LAYOUTS.f16, 5, 130)).toEqual({ kp: 130, bytes: 5 * 130 * 2, scalesAt: 5 * 130 * 2 })
    expect(layoutSize(OUTPUT_LAYOUTS.f32, 5, 130)).toEqual({ kp: 130, bytes: 5 * 130 * 4, scalesAt: 5 * 130 * 4 })
    // q8b: 5 rows stored as 8 (groups of 4), K 130 → 256, a scale per 128
    expect(layoutSize(OUTPUT_LAYOUTS.q8b, 5, 130)).toEqual({ kp: 256, scalesAt: 8 * 256, bytes: 8 * 256 + 8 * 2 * 4 })
    // q6b: 3 bytes per 4 weights, a scale per 128, 5 rows stored as 8
    expect(layoutSize(OUTPUT_LAYOUTS.q6b, 5, 130)).toEqual({ kp: 256, scalesAt: 8 * 192, bytes: 8 * 192 + 8 * 2 * 4 })
    // q4b: nibbles, a scale per 32, 5 rows stored as 8
    expect(layoutSize(OUTPUT_LAYOUTS.q4b, 5, 130)).toEqual({ kp: 256, scalesAt: 8 * 128, bytes: 8 * 128 + 8 * 8 * 4 })
  })

  it('builds jobs of ops the pool runs, with their argument counts', () => {
    const jobs = [
      ...Object.values(TERNARY_LAYOUTS).flatMap((l) => [1, 3].flatMap((n) => l.jobs({ ptr: 0, rows: 4, cols: 128, kp: 128, gamma: 1 }, { qa: 0, meta: 0, lut: 0 }, 0, n))),
      ...(Object.keys(OUTPUT_LAYOUTS) as OutputLayoutName[]).flatMap((type) => {
        const l = OUTPUT_LAYOUTS[type], m: FloatMatrix = { ptr: 0, rows: 4, cols: 128, kp: 128, scales: 0, type }
        const a = { x: 0, q: 0, scales: 0, sums: 0 }
        expect(!!l.matvec !== !!l.matmul, type).toBe(true) // exactly one way to run it
        return [l.matvec?.(m, a, 0), l.matmul?.(m, a, 0, 2)].filter((j) => j !== undefined)
      }),
    ]
    expect(jobs.length).toBe(2 + 4 + 5) // i2s: 1 + 1, tl: a job per row, output: one each
    for (const [name, ...args] of jobs) expect(args.length, name).toBe(OPS[name].kinds.length)
  })
})

describe("outputType 'auto'", () => {
  it('keeps exact f16 below 64 Mi weights, else the copy that is faster on the build: q6 relaxed, q8 baseline', () => {
    const big = 128256 * 2560, small = 128256 * 256
    expect(['relaxed', 'simd', 'single'].map((v) => resolveOutputType('auto', big, v as KernelVariant))).toEqual(['q6', 'q8', 'q8'])
    expect(['relaxed', 'simd', 'single'].map((v) => resolveOutputType('auto', small, v as KernelVariant))).toEqual(['f16', 'f16', 'f16'])
    expect(resolveOutputType('q4+q8', big, 'relaxed')).toBe('q4+q8')
    expect(resolveOutputType('f16', big, 'simd')).toBe('f16')
  })
})
