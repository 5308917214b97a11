/**
 * TL1 and TL2: bitnet.cpp's lookup-table layouts (fork type ids 38 and 39; docs/formats.md#tl1-and-tl2), decoded
 * and encoded for ANY shape from the tiling parameters, not from the codegen's fixed shapes.
 *
 * A weight matrix M × K (rows × cols = ne1 × ne0) is tiled by (BM, BK, bm): M/BM row tiles,
 * K/BK column chunks, BM/bm sub-blocks of bm rows; `by` columns per SIMD step.
 *
 * TL1 (by = 256/bm, bm ∈ {32, 64}): one 4-bit index per column pair, idx = 3·w0 + w1 + 4.
 * ```
 *  byte order: [M/BM tile][K/BK chunk][BM/bm sub-block][BK/by slice][bm/16 row group]
 *              [by/4 pair-pair][16 rows]
 *  byte = idx(pair 2q) << 4 | idx(pair 2q + 1)     (q = the pair-pair; high nibble first)
 * ```
 * TL2 (bm = 32, by = 192/bm = 6): K = three_k + two_k, three_k = ⌊K/BK⌋·BK.
 * ```
 *  ┌ index bytes M·three_k/6 ┬ sign bytes M·three_k/24 ┬ two-weight bytes M·two_k/4 ┬ pad ┬ f32 γ ┐
 *  index: [tile][chunk][sub-block][BK/by slice] then 32 bytes, one per row r of the sub-block,
 *         at position perm(r/8)·8 + r%8 (perm = 0,2,1,3: AVX2 unpack lane order);
 *         byte = |v(triple 2s)| << 4 | |v(triple 2s + 1)|, v = 9·w0 + 3·w1 + w2 ∈ [−13, 13]
 *  sign:  [tile][chunk][sub-block][BK/24 group] then 16 LE u16 words; triple j (0..7) of the
 *         group, row r: bit 15 − (2j + r/16) of word r%16 is 1 iff v < 0
 *  two:   the columns three_k.. in TL1 indices with BK = 32, bm = 32, by = 4, bytes per
 *         sub-block step ordered like the index bytes (32 rows, quarter-swapped)
 * ```
 * Both: the tensor's byte size is the fork's `ggml_nbytes` (src/formats/index.ts), the packed
 * data is zero-padded up to its last 32 bytes, which hold γ (f32 LE) at byte size − 32, where
 * bitnet.cpp reads it (its converter places a `<name>_scale` tensor there).
 *
 * Tiling parameters are not stored by bitnet.cpp's converter (they live in the build's
 * kernel_config.ini); {@link findTlTiling} takes them from this engine's GGUF key
 * `bitnet-wasm.tl_tiling`, else from the codegen presets of the published models.
 */

import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { checkCodes, type TensorContext, type TernaryTensor } from './i2s.js'

/** Tiling of one TL matrix: row tile BM, column chunk BK, SIMD rows bm (kernel_config.ini `bmm`). */
export interface TlTiling {
  BM: number
  BK: number
  bm: number
}

type TlFormat = 'TL1' | 'TL2'

/** GGUF metadata key where `bitnet convert` records the tiling: u32 [M, K, BM, BK, bm] per shape. */
export const TL_TILING_KEY = 'bitnet-wasm.tl_tiling'

/**
 * bitnet.cpp's codegen presets (setup_env.py, `[M, K, BM, BK, bm]`): the tilings of every
 * TL file its converter can write (bitnet_b1_58-large, -3B and 2B4T which reuses the 3B table,
 * Llama3-8B-1.58).
 */
export const TL_PRESETS: Record<TlFormat, readonly (readonly number[])[]> = {
  TL1: [
    [1536, 4096, 256, 128, 32], [1536, 1536, 128, 64, 64], [4096, 1536, 256, 128, 32],
    [3200, 8640, 160, 64, 32], [3200, 3200, 320, 128, 64], [8640, 3200, 320, 64, 32],
    [14336, 4096, 256, 128, 32], [4096, 14336, 128, 64, 64], [1024, 4096, 256, 128, 32], [4096, 4096, 128, 64, 64],
  ],
  TL2: [
    [1536, 4096, 256, 96, 32], [1536, 1536, 128, 192, 32], [4096, 1536, 256, 96, 32],
    [3200, 8640, 160, 96, 32], [3200, 3200, 320, 96, 32], [8640, 3200, 320, 96, 32],
    [14336, 4096, 256, 96, 32], [4096, 14336, 128, 96, 32], [1024, 4096, 256, 96, 32], [4096, 4096, 128, 96, 32],
  ],
}

/**
 * The tiling of a rows × cols TL matrix: from `recorded` (the file's `bitnet-wasm.tl_tiling`
 * values), else bitnet.cpp's presets.
 * @throws UnsupportedFeatureError when neither knows the shape (the file came from a custom build).
 * @example findTlTiling('TL1', 1536, 4096) // { BM: 256, BK: 128, bm: 32 }
 */
export function findTlTiling(format: TlFormat, rows: number, cols: number, recorded?: readonly number[]): TlTiling {
  const lists = [recorded ?? [], TL_PRESETS[format].flat()]
  for (const list of lists) {
    for (let i = 0; i + 5 <= list.length; i += 5) {
      if (list[i] === rows && list[i + 1] === cols) return { BM: list[i + 2], BK: list[i + 3], bm: list[i + 4] }
    }
  }
  throw new UnsupportedFeatureError(
    `${format} tensor ${rows}×${cols}: tiling unknown (no ${TL_TILING_KEY} entry and not one of bitnet.cpp's preset shapes); ` +
    're-convert the model with `bitnet convert`',
  )
}

/**
 * The tiling `bitnet convert` writes for a rows × cols matrix: the preset when there is one,
 * else the largest row tile ≤ 256 and a column chunk like the presets' (TL1: ≤ 128; TL2: 96
 * when the remainder fits, else another multiple of 24).
 * @throws InvalidArgumentError when no valid tiling exists (rows not a multiple of 32, …).
 * @example defaultTlTiling('TL2', 128, 384) // { BM: 128, BK: 96, bm: 32 }
 */
export function defaultTlTiling(format: TlFormat, rows: number, cols: number): TlTiling {
  const preset = TL_PRESETS[format].find((p) => p[0] === rows && p[1] === cols)
  if (preset) return { BM: preset[2], BK: preset[3], bm: preset[4] }
  const bm = 32
  let BM = 0
  for (let b = bm; b <= 256; b += bm) if (rows % b === 0) BM = b
  const bkCandidates = format === 'TL1' ? [128, 64, 32, 16, 8] : [96, 192, 48, 24, 72, 120, 144, 168]
  const BK = bkCandidates.find((bk) => tilingProblem(format, rows, cols, { BM, BK: bk, bm }) === undefined)
  if (!BM || BK === undefined) throw new InvalidArgumentError(`${format}: no tiling fits a ${rows}×${cols} matrix (rows must be a multiple of 32)`)
  return { BM, BK, bm }
}

/** Why `t` cannot tile a rows × cols matrix, or undefined if it can (codegen_tl{1,2}.py asserts). */
function tilingProblem(format: TlFormat, rows: number, cols: number, t: TlTiling): string | undefined {
  const { BM, BK, bm } = t
  const ints = [BM, BK, bm].every((v) => Number.isInteger(v) && v > 0)
  if (!ints || rows % BM !== 0 || BM % bm !== 0) return 'M % BM == 0, BM % bm == 0'
  if (format === 'TL1') {
    if (bm !== 32 && bm !== 64) return 'bm ∈ {32, 64}'
    if (cols % BK !== 0 || BK % (256 / bm) !== 0) return 'K % BK == 0, BK % (256/bm) == 0'
    return undefined
  }
  if (bm !== 32) return 'bm == 32'
  const twoK = cols % BK
  if (BK % 24 !== 0 || twoK % 32 !== 0 || twoK > 256 || cols < BK) return 'BK % 24 == 0, (K % BK) % 32 == 0, K % BK ≤ 256'
  return undefined
}

function checkTiling(format: TlFormat, rows: number, cols: number, t: TlTiling, ctx?: TensorContext): void {
  const problem = tilingProblem(format, rows, cols, t)
  if (problem) {
    throw new ModelFormatError(`${format} tiling does not fit the tensor`, {
      ...ctx, expected: problem, found: `${rows}×${cols} with BM ${t.BM}, BK ${t.BK}, bm ${t.bm}`,
    })
  }
}

/** Where the packed data of a TL tensor ends: rows·cols/4 (TL1) or the three regions (TL2). */
function packedBytes(format: TlFormat, rows: number, cols: number, t: TlTiling): number {
  if (format === 'TL1') return (rows * cols) / 4
  const threeK = cols - (cols % t.BK)
  return (rows * threeK) / 6 + (rows * threeK) / 24 + (rows * (cols - threeK)) / 4
}

/**
 * Visits every byte of a TL1-ordered region: `visit(offset, row, pair)` where the byte's high
 * nibble is `pair` of `row` and the low nibble `pair + 1` (pairs count from the region's first
 * column). `quarterSwap` gives TL2's two-weight order (32 rows per step, lanes 0,2,1,3).
 */
function walkPairs(rows: number, cols: number, t: TlTiling, by: number, quarterSwap: boolean,
  visit: (offset: number, row: number, pair: number) => void): void {
  const { BM, BK, bm } = t
  let o = 0
  for (let ti = 0; ti < rows / BM; ti++) {
    for (let kc = 0; kc < cols / BK; kc++) {
      for (let sb = 0; sb < BM / bm; sb++) {
        const row0 = ti * BM + sb * bm
        for (let ks = 0; ks < BK / by; ks++) {
          const pair0 = (kc * BK + ks * by) / 2
          if (quarterSwap) {
            for (let r = 0; r < bm; r++) visit(o + QUARTER[r >> 3] * 8 + (r & 7), row0 + r, pair0)
            o += bm
          } else {
            for (let rg = 0; rg < bm / 16; rg++) {
              for (let pp = 0; pp < by / 4; pp++) {
                for (let i = 0; i < 16; i++) visit(o++, row0 + rg * 16 + i, pair0 + 2 * pp)
              }
            }
          }
        }
      }
    }
  }
}

/** AVX2 unpack lane order of TL2's 8-byte quarters (self-inverse). */
const QUARTER = [0, 2, 1, 3]

/**
 * Visits TL2's index bytes (`triple` = the high nibble's, +1 the low's; offsets from the data
 * start) and sign bits (offsets from the sign region's start).
 */
function walkTriples(rows: number, threeK: number, t: TlTiling,
  index: (offset: number, row: number, triple: number) => void,
  sign: (offset: number, bit: number, row: number, triple: number) => void): void {
  const { BM, BK, bm } = t
  const by = 192 / bm
  let o = 0
  for (let ti = 0; ti < rows / BM; ti++) {
    for (let kc = 0; kc < threeK / BK; kc++) {
      for (let sb = 0; sb < BM / bm; sb++) {
        for (let ks = 0; ks < BK / by; ks++) {
          for (let r = 0; r < bm; r++) index(o + QUARTER[r >> 3] * 8 + (r & 7), ti * BM + sb * bm + r, (kc * BK + ks * by) / 3)
          o += bm
        }
      }
    }
  }
  o = 0 // sign offsets are relative to the sign region
  for (let ti = 0; ti < rows / BM; ti++) {
    for (let kc = 0; kc < threeK / BK; kc++) {
      for (let sb = 0; sb < BM / bm; sb++) {
        for (let g = 0; g < BK / (4 * by); g++) {
          for (let j = 0; j < 8; j++) {
            for (let r = 0; r < bm; r++) {
              const f = j * bm + r, word = f % (bm / 2), i = Math.floor(f / (bm / 2))
              sign(o + 2 * word + (i < 8 ? 1 : 0), 7 - (i & 7), ti * BM + sb * bm + r, (kc * BK) / 3 + g * 8 + j)
            }
          }
          o += bm
        }
      }
    }
  }
}

/**
 * Decodes a TL1 or TL2 tensor (rows × cols, cols = ne0) tiled by `t` into codes and γ.
 * `byteSize` is the tensor's size in the file (γ sits 32 bytes before its end).
 * @example
 * const { codes, scale } = decodeTl('TL1', bytes, 1536, 4096, findTlTiling('TL1', 1536, 4096), size)
 */
export function decodeTl(format: TlFormat, bytes: Uint8Array, rows: number, cols: number, t: TlTiling, byteSize: number, ctx?: TensorContext): TernaryTensor {
  checkTiling(format, rows, cols, t, ctx)
  const data = packedBytes(format, rows, cols, t)
  if (byteSize < data + 32 || bytes.byteLength < byteSize) {
    throw new ModelFormatError(`${format} tensor is too short`, { ...ctx, expected: `${data + 32} bytes`, found: `${Math.min(byteSize, bytes.byteLength)} bytes` })
  }
  const scale = new DataView(bytes.buffer, bytes.byteOffset + byteSize - 32, 4).getFloat32(0, true)
  if (!Number.isFinite(scale)) {
    throw new ModelFormatError(`${format} scale is not finite`, {
      ...ctx, offset: ctx?.offset !== undefined ? ctx.offset + byteSize - 32 : undefined, expected: 'a finite f32', found: String(scale),
    })
  }
  const codes = new Int8Array(rows * cols)
  const bad = (offset: number, what: string, v: number) => {
    throw new ModelFormatError(`${format} ${what} out of range`, {
      ...ctx, offset: ctx?.offset !== undefined ? ctx.offset + offset : undefined, expected: what === 'pair index' ? '0..8' : '0..13', found: String(v),
    })
  }
  const putPair = (offset: number, row: number, col: number, idx: number) => {
    if (idx > 8) bad(offset, 'pair index', idx)
    codes[row * cols + col] = Math.floor(idx / 3) - 1
    codes[row * cols + col + 1] = (idx % 3) - 1
  }
  const pairs = (base: number, col0: number) => (o: number, row: number, pair: number) => {
    const b = bytes[base + o]
    putPair(base + o, row, col0 + 2 * pair, b >> 4)
    putPair(base + o, row, col0 + 2 * pair + 2, b & 15)
  }
  if (format === 'TL1') {
    walkPairs(rows, cols, t, 256 / t.bm, false, pairs(0, 0))
    return { codes, scale }
  }
  const threeK = cols - (cols % t.BK)
  const signBase = (rows * threeK) / 6
  // Magnitudes first, signs applied after (a triple's sign bit flips all three of its weights).
  const putTriple = (offset: number, row: number, triple: number, v: number) => {
    if (v > 13) bad(offset, 'triple magnitude', v)
    const at = row * cols + 3 * triple
    codes[at] = Math.round(v / 9)
    const rest = v - 9 * codes[at]
    codes[at + 1] = Math.round(rest / 3)
    codes[at + 2] = rest - 3 * codes[at + 1]
  }
  walkTriples(rows, threeK, t,
    (o, row, triple) => { putTriple(o, row, triple, bytes[o] >> 4); putTriple(o, row, triple + 1, bytes[o] & 15) },
    (o, bit, row, triple) => {
      if ((bytes[signBase + o] >> bit) & 1) {
        const at = row * cols + 3 * triple
        codes[at] = -codes[at]; codes[at + 1] = -codes[at + 1]; codes[at + 2] = -codes[at + 2]
      }
    })
  const twoBase = signBase + (rows * threeK) / 24
  walkPairs(rows, cols - threeK, { ...t, BK: 32 }, 4, true, pairs(twoBase, threeK))
  return { codes, scale }
}

/**
 * Packs row-major ternary codes into a TL1 / TL2 tensor of `byteSize` bytes (the fork's
 * `ggml_nbytes`, see tensorByteSize) with γ = `scale` at byteSize − 32.
 * @example
 * const t = defaultTlTiling('TL2', 128, 384)
 * const bytes = encodeTl('TL2', codes, 128, 384, 0.042, t, tensorByteSize('TL2', [384, 128]))
 */
export function encodeTl(format: TlFormat, codes: ArrayLike<number>, rows: number, cols: number, scale: number, t: TlTiling, byteSize: number): Uint8Array {
  const problem = tilingProblem(format, rows, cols, t)
  if (problem) throw new InvalidArgumentError(`${format} encode: tiling BM ${t.BM}, BK ${t.BK}, bm ${t.bm} does not fit ${rows}×${cols} (${problem})`)
  checkCodes(codes, rows * cols, format)
  if (!Number.isFinite(scale)) throw new InvalidArgumentError(`${format} encode: scale must be finite, got ${scale}`)
  if (byteSize < packedBytes(format, rows, cols, t) + 32) throw new InvalidArgumentError(`${format} encode: byte size ${byteSize} is too small`)
  const out = new Uint8Array(byteSize)
  const idx = (row: number, col: number) => 3 * codes[row * cols + col] + codes[row * cols + col + 1] + 4
  const pairs = (base: number, col0: number) => (o: number, row: number, pair: number) => {
    out[base + o] = (idx(row, col0 + 2 * pair) << 4) | idx(row, col0 + 2 * pair + 2)
  }
  if (format === 'TL1') {
    walkPairs(rows, cols, t, 256 / t.bm, false, pairs(0, 0))
  } else {
    const threeK = cols - (cols % t.BK)
    const signBase = (rows * threeK) / 6
    const v = (row: number, triple: number) => {
      const at = row * cols + 3 * triple
      return 9 * codes[at] + 3 * codes[at + 1] + codes[at + 2]
    }
    walkTriples(rows, threeK, t,
      (o, row, triple) => { out[o] = (Math.abs(v(row, triple)) << 4) | Math.abs(v(row, triple + 1)) },
      (o, bit, row, triple) => { if (v(row, triple) < 0) out[signBase + o] |= 1 << bit })
    walkPairs(rows, cols - threeK, { ...t, BK: 32 }, 4, true, pairs(signBase + (rows * threeK) / 24, threeK))
  }
  new DataView(out.buffer).setFloat32(byteSize - 32, scale, true)
  return out
}
