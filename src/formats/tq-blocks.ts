/**
 * The block loop TQ1_0 and TQ2_0 share: 256 weights per block, a per-block fp16 scale d that
 * this engine requires to be the same for every non-zero block (per-tensor ternary weights),
 * and shape and scale checks. Each format gives only how one block's codes are packed.
 */
import { InvalidArgumentError, ModelFormatError, UnsupportedFeatureError } from '../errors.js'
import { f16ToF32, f32ToF16 } from './float.js'
import { checkCodes, type TensorContext, type TernaryTensor } from './i2s.js'

/** Weights per block (ggml QK_K). */
export const BLOCK_ELEMS = 256

/** How one TQ format packs a block. */
export interface TqBlock {
  name: 'TQ1_0' | 'TQ2_0'
  /** Bytes per block. */
  bytes: number
  /** Byte offset of the fp16 d in a block. */
  scaleAt: number
  /**
   * Writes the block at bytes[src…] as 256 codes at codes[dst…]; returns whether any is
   * non-zero. Throws ModelFormatError (offset from `at`, the block's file offset) on a code
   * the format cannot hold.
   */
  decode(bytes: Uint8Array, src: number, codes: Int8Array, dst: number, at: (byte: number) => TensorContext): boolean
  /** Packs codes[src … src + 255] into the block at out[dst…] (not d); returns whether any is non-zero. */
  encode(codes: ArrayLike<number>, src: number, out: Uint8Array, dst: number): boolean
}

/**
 * Tracks the per-block fp16 scales of a ternary tensor and returns the common one.
 * A block counts only if it decodes to something non-zero (some code ≠ 0 and d ≠ ±0).
 */
class BlockScaleCheck {
  private common = -1
  constructor(private readonly format: string, private readonly ctx?: TensorContext) {}

  /** Records block `block`'s fp16 bits `d`; returns false if the block is effectively zero. */
  add(d: number, block: number, blockBytes: number, dOffset: number, anyNonZero: boolean): boolean {
    const offset = this.ctx?.offset !== undefined ? this.ctx.offset + block * blockBytes + dOffset : undefined
    if ((d & 0x7c00) === 0x7c00) {
      throw new ModelFormatError(`${this.format} block ${block} scale is not finite`, {
        ...this.ctx, offset, expected: 'a finite fp16', found: `0x${d.toString(16)}`,
      })
    }
    if (!anyNonZero || (d & 0x7fff) === 0) return false
    if (this.common === -1) this.common = d
    else if (this.common !== d) {
      throw new UnsupportedFeatureError(
        `${this.format}${this.ctx?.file ? ` in ${this.ctx.file}` : ''}: per-block scales vary: not a per-tensor ternary tensor ` +
        `(block ${block}${offset !== undefined ? ` @ offset ${offset}` : ''} has d = ${f16ToF32(d)}, earlier blocks ${f16ToF32(this.common)})`,
      )
    }
    return true
  }

  /** The common scale (0 if every block was zero). */
  get scale(): number {
    return this.common === -1 ? 0 : f16ToF32(this.common)
  }
}

/** Validates a TQ shape: cols (= ne0) must be a multiple of 256, as ggml requires for blocked types. */
function tqElementCount(format: string, rows: number, cols: number, what: 'encode' | 'decode', ctx?: TensorContext): number {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || cols % 256 !== 0) {
    const message = `${format} ${what}: cols (ne0) must be a multiple of 256`
    if (what === 'encode') throw new InvalidArgumentError(`${message} (got ${rows}×${cols})`)
    throw new ModelFormatError(message, { ...ctx, expected: 'multiple of 256', found: `${rows}×${cols}` })
  }
  return rows * cols
}

/** fp16 bits of the per-block scale an encoder writes; rejects scales fp16 cannot hold. */
function tqScaleBits(format: string, scale: number): number {
  const d = f32ToF16(scale)
  if (!Number.isFinite(scale) || (d & 0x7c00) === 0x7c00) {
    throw new InvalidArgumentError(`${format} encode: scale ${scale} is not representable as a finite fp16`)
  }
  return d
}

/**
 * Decodes a `rows` × `cols` tensor of format `f` into codes and its per-tensor scale.
 * Throws UnsupportedFeatureError if non-zero blocks have different scales.
 */
export function decodeTqBlocks(f: TqBlock, bytes: Uint8Array, rows: number, cols: number, ctx?: TensorContext): TernaryTensor {
  const n = tqElementCount(f.name, rows, cols, 'decode', ctx)
  const blocks = n / BLOCK_ELEMS
  if (bytes.byteLength < blocks * f.bytes) {
    throw new ModelFormatError(`${f.name} tensor is too short`, { ...ctx, expected: `${blocks * f.bytes} bytes`, found: `${bytes.byteLength} bytes` })
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const codes = new Int8Array(n)
  const scales = new BlockScaleCheck(f.name, ctx)
  const at = (byte: number): TensorContext => ({ ...ctx, offset: ctx?.offset !== undefined ? ctx.offset + byte : undefined })
  for (let b = 0; b < blocks; b++) {
    const src = b * f.bytes, dst = b * BLOCK_ELEMS
    const anyNonZero = f.decode(bytes, src, codes, dst, at)
    // A block whose d is ±0 holds zero weights whatever its codes say: keep codes·scale exact.
    if (!scales.add(dv.getUint16(src + f.scaleAt, true), b, f.bytes, f.scaleAt, anyNonZero)) codes.fill(0, dst, dst + BLOCK_ELEMS)
  }
  return { codes, scale: scales.scale }
}

/**
 * Packs row-major ternary codes into format `f`. Every block with a non-zero code gets
 * d = fp16(scale); all-zero blocks get d = 0 (their absmax, as ggml's `quantize_row_tq*_ref` would write).
 */
export function encodeTqBlocks(f: TqBlock, codes: ArrayLike<number>, rows: number, cols: number, scale: number): Uint8Array {
  const n = tqElementCount(f.name, rows, cols, 'encode')
  checkCodes(codes, n, f.name)
  const d = tqScaleBits(f.name, scale)
  const blocks = n / BLOCK_ELEMS
  const out = new Uint8Array(blocks * f.bytes)
  const dv = new DataView(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const dst = b * f.bytes
    dv.setUint16(dst + f.scaleAt, f.encode(codes, b * BLOCK_ELEMS, out, dst) ? d : 0, true)
  }
  return out
}
