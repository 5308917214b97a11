/**
 * The size checks of the blocked float-like formats (Q8_0, Q6_K): an element count that
 * fills whole blocks and, when dequantizing, bytes that hold them.
 */
import { InvalidArgumentError } from '../errors.js'

/**
 * Blocks of `blockElems` weights in `n` elements of `format`; with `bytes`, also checks
 * that they hold that many blocks of `blockBytes`.
 * @throws InvalidArgumentError naming the format, what was asked and the sizes.
 * @example blockCount('Q8_0', 'quantize', 64, 32) // 2
 */
export function blockCount(format: string, what: 'quantize' | 'dequantize', n: number, blockElems: number,
  bytes?: { byteLength: number; blockBytes: number }): number {
  if (!Number.isSafeInteger(n) || n < 0 || n % blockElems !== 0) {
    throw new InvalidArgumentError(`${format} ${what}: element count must be a multiple of ${blockElems}, got ${n}`)
  }
  const blocks = n / blockElems
  if (bytes && bytes.byteLength < blocks * bytes.blockBytes) {
    throw new InvalidArgumentError(`${format} ${what}: need ${blocks * bytes.blockBytes} bytes for ${n} elements, got ${bytes.byteLength}`)
  }
  return blocks
}
