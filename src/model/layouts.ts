/**
 * The in-memory weight layouts, one entry each (like ggml-cpu's `type_traits_cpu`): how a tensor
 * is packed into the layout, how many bytes a row takes, which kernels multiply it and what
 * activation they read. The loader sizes and fills weights from here and the forward pass builds
 * its jobs from here, so neither switches on a layout's name.
 *
 * Ternary projections take the layout of the model's ternary kernel: i2s_c4 (the multiply-add
 * kernel, assembly/formats/i2s.ts) or tl16 (the lookup-table kernel, assembly/formats/tl.ts). The
 * output projection (the embedding when tied) is f16, f32, or a quantized copy made at load: q8b
 * (a byte per weight, assembly/formats/q8b.ts), q6b (6 bits, assembly/formats/q6b.ts) or q4b (4 bits,
 * assembly/formats/q4b.ts), or q8b with a q4b pass copy (the bounded head, output-head.ts).
 */
import { packC4FromCodes } from '../formats/i2s-c4.js'
import { packTlFromCodes } from '../formats/tl16.js'
import type { Job } from '../runtime/protocol.js'
import type { Kernels } from '../runtime/wasm.js'

/** Which ternary kernel, and so which layout, a model's projections use. */
export type TernaryKernel = 'i2s' | 'tl'

/** A ternary projection in its layout. */
export interface TernaryWeight {
  ptr: number
  rows: number
  cols: number
  /** K padded to the kernel block (128). */
  kp: number
  /** Per-tensor weight scale γ (times an optional `.scale` tensor). */
  gamma: number
}

/** Storage of the output matrix: a key of OUTPUT_LAYOUTS. */
export type OutputLayoutName = 'f16' | 'f32' | 'q8b' | 'q6b' | 'q4b'

/**
 * The embedding / output matrix [rows][cols] in wasm memory: rows of `type` at ptr; for the
 * quantized copies f32 block scales at `scales` (after the weights), else scales is 0.
 */
export interface FloatMatrix {
  ptr: number
  rows: number
  cols: number
  type: OutputLayoutName
  kp: number
  scales: number
  /** A q8b matrix's 4-bit pass copy and row bounds (outputType 'q4+q8', src/model/output-head.ts). */
  pass?: OutputPass
}

/**
 * The pass copy of a bounded output head, after the q8b matrix: the q4b copy of the same rows
 * (weights at `ptr`, scales at `scales`) and per row the f32 bound e of |logit_q8 − logit_q4| ≤ e · ‖x̂‖₂
 * (`bounds`, bound_rows_q4b_q8b).
 */
export interface OutputPass { ptr: number; scales: number; bounds: number }

/** Where the pass copy of a rows × cols q8b matrix at `ptr` goes (right after it), and the bytes it adds. */
export function outputPassAt(ptr: number, rows: number, cols: number): { pass: OutputPass; bytes: number } {
  const at = ptr + layoutSize(OUTPUT_LAYOUTS.q8b, rows, cols).bytes
  const q4 = layoutSize(OUTPUT_LAYOUTS.q4b, rows, cols)
  return { pass: { ptr: at, scales: at + q4.scalesAt, bounds: at + q4.bytes }, bytes: q4.bytes + rows * 4 }
}

/** Where a layout's bytes go: rows in groups (rows padded to it), K padded to a block, optional f32 scales after the rows. */
interface Layout {
  /** Rows stored together (interleaved): rows are padded to a multiple. */
  groupRows: number
  /** K is padded to a multiple of this. */
  kBlock: number
  /** Bytes of one row of padded width kp. */
  rowBytes: (kp: number) => number
  /** Weights per f32 scale stored after the rows (none when absent). */
  scaleBlock?: number
}

/** Padded K, total bytes of a rows × cols matrix in layout `l`, and where its scales start. */
export function layoutSize(l: Layout, rows: number, cols: number): { kp: number; bytes: number; scalesAt: number } {
  const kp = Math.ceil(cols / l.kBlock) * l.kBlock
  const stored = Math.ceil(rows / l.groupRows) * l.groupRows
  const scalesAt = stored * l.rowBytes(kp)
  return { kp, scalesAt, bytes: scalesAt + (l.scaleBlock ? stored * (kp / l.scaleBlock) * 4 : 0) }
}

/** Pointers of one quantized-activation slot: int8 rows [n][kp], their {s, Σq} [n], the TL tables [n][kp·16]. */
export interface QuantizedRows { qa: number; meta: number; lut: number }

export interface TernaryLayout extends Layout {
  name: 'i2s_c4' | 'tl16'
  /** Ternary codes (row-major, −1/0/+1) → the layout; any source format, any K. */
  pack: (codes: Int8Array, rows: number, cols: number, out: Uint8Array) => void
  /** The kernel moving an official I2_S tensor (K a multiple of 128) from the scratch area into the layout. */
  repack: 'repack_i2s_c4' | 'repack_i2s_tl'
  /** What the kernels read: the int8 rows, or also the lookup tables built from each row. */
  activation: 'i8' | 'i8+lut'
  /** The jobs y_t = (W_codes · q_t − Σq_t) / s_t · γ for n quantized rows, y: [n][W.rows]. */
  jobs: (W: TernaryWeight, a: QuantizedRows, y: number, n: number) => Job[]
}

export const TERNARY_LAYOUTS: Record<TernaryKernel, TernaryLayout> = {
  // Rows in groups of 4, a byte per column of the group: one sequential read per group.
  // A batch is one matrix-matrix job (each weight group read once for every row).
  i2s: {
    name: 'i2s_c4', groupRows: 4, kBlock: 128, rowBytes: (kp) => kp / 4,
    pack: packC4FromCodes, repack: 'repack_i2s_c4', activation: 'i8',
    jobs: (W, a, y, n) => [n === 1
      ? ['matvec_i2s_i8', W.ptr, a.qa, a.meta, W.gamma, y, W.rows, W.kp]
      : ['matmul_i2s_i8', W.ptr, a.qa, a.meta, W.gamma, y, W.rows, W.kp, n]],
  },
  // Rows in groups of 16, a 4-bit index per column pair, 1024-column tiles. One job per row:
  // each row has its own lookup tables.
  tl: {
    name: 'tl16', groupRows: 16, kBlock: 128, rowBytes: (kp) => kp / 4,
    pack: packTlFromCodes, repack: 'repack_i2s_tl', activation: 'i8+lut',
    jobs: (W, a, y, n) => Array.from({ length: n }, (_, t): Job =>
      ['matvec_tl_i8', W.ptr, a.lut + t * W.kp * 16, a.meta + t * 8, W.gamma, y + t * W.rows * 4, W.rows, W.kp]),
  },
}

/** One row's input to the output projection: the normed f32 row, and its int8 blocks (q, f32 scale per 128, Σq per 32). */
export interface OutputRow { x: number; q: number; scales: number; sums: number }

export interface OutputLayout extends Layout {
  /** The ModelOptions.outputType that picks it for an F16 / BF16 matrix (f32 is for other sources). */
  option?: 'f16' | 'q8' | 'q6' | 'q4'
  /** Load: the kernel quantizing f16 rows into the layout (via the scratch area). */
  convert?: 'quantize_rows_f16_q8b' | 'quantize_rows_f16_q6b' | 'quantize_rows_f16_q4b'
  /** What its kernels read: the f32 row, or its int8 blocks (quantize_blocks_f32_i8). */
  activation: 'f32' | 'i8'
  /** One row's logits job. */
  matvec?: (m: FloatMatrix, a: OutputRow, y: number) => Job
  /** The logits job of n rows whose inputs start at slot 0 (`a`), y: [n][rows]. */
  matmul?: (m: FloatMatrix, a: OutputRow, y: number, n: number) => Job
  /** Row `token` → f32 at dst (the tied embedding). */
  embedRow: (k: Kernels, heap: Uint8Array, m: FloatMatrix, token: number, dst: number) => void
}

export const OUTPUT_LAYOUTS: Record<OutputLayoutName, OutputLayout> = {
  f16: {
    option: 'f16', groupRows: 1, kBlock: 1, rowBytes: (k) => k * 2, activation: 'f32',
    matvec: (m, a, y) => ['matvec_f16_f32', m.ptr, a.x, y, m.rows, m.cols],
    embedRow: (k, _, m, token, dst) => k.f16_to_f32(m.ptr + token * m.cols * 2, dst, m.cols),
  },
  f32: {
    groupRows: 1, kBlock: 1, rowBytes: (k) => k * 4, activation: 'f32',
    matvec: (m, a, y) => ['matvec_f32_f32', m.ptr, a.x, y, m.rows, m.cols],
    embedRow: (_, heap, m, token, dst) => heap.copyWithin(dst, m.ptr + token * m.cols * 4, m.ptr + (token + 1) * m.cols * 4),
  },
  // 127 levels per weight, an f32 scale per 128; rows in groups of 4, every row of a batch in one pass.
  q8b: {
    option: 'q8', groupRows: 4, kBlock: 128, rowBytes: (kp) => kp, scaleBlock: 128, convert: 'quantize_rows_f16_q8b', activation: 'i8',
    matmul: (m, a, y, n) => ['matmul_q8b_i8', m.ptr, m.scales, a.q, a.scales, a.sums, y, m.rows, m.kp, n],
    embedRow: (k, _, m, token, dst) => k.dequantize_row_q8b(m.ptr, m.scales, token, m.cols, m.kp, dst),
  },
  // 6-bit codes in three 16-byte planes per 64 weights, an f32 scale per 128; rows in groups of 4, every row of a batch in one pass.
  q6b: {
    option: 'q6', groupRows: 4, kBlock: 128, rowBytes: (kp) => kp * 3 / 4, scaleBlock: 128, convert: 'quantize_rows_f16_q6b', activation: 'i8',
    matmul: (m, a, y, n) => ['matmul_q6b_i8', m.ptr, m.scales, a.q, a.scales, a.sums, y, m.rows, m.kp, n],
    embedRow: (k, _, m, token, dst) => k.dequantize_row_q6b(m.ptr, m.scales, token, m.cols, m.kp, dst),
  },
  // Nibbles and an f32 scale per 32, rows in groups of 4 (one stream per group, as q8b).
  q4b: {
    option: 'q4', groupRows: 4, kBlock: 128, rowBytes: (kp) => kp / 2, scaleBlock: 32, convert: 'quantize_rows_f16_q4b', activation: 'i8',
    matvec: (m, a, y) => ['matvec_q4b_i8', m.ptr, m.scales, a.q, a.scales, a.sums, y, m.rows, m.kp],
    embedRow: (k, _, m, token, dst) => k.dequantize_row_q4b(m.ptr, m.scales, token, m.cols, m.kp, dst),
  },
}
