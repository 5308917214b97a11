/**
 * Repacking ternary weights into the layout the I2_S kernel streams ("i2s_x4", drawn in
 * assembly/formats/i2s.ts): rows in groups of 4, K padded to a multiple of 128, each
 * group's 32-byte blocks interleaved so one group is one sequential read.
 *
 * Two entries: a byte-shuffle fast path for canonical I2_S files whose K is a multiple of
 * 128 (the official 2B4T file), and a generic path from decoded codes (any format, any K).
 */
export const X4_ROWS = 4
export const X4_BLOCK_ELEMS = 128
export const X4_BLOCK_BYTES = 32

/** Padded K and byte size of a rows × cols matrix in the x4 layout. */
export function x4Shape(rows: number, cols: number): { kp: number; bytes: number } {
  const kp = Math.ceil(cols / X4_BLOCK_ELEMS) * X4_BLOCK_ELEMS
  const rowsPadded = Math.ceil(rows / X4_ROWS) * X4_ROWS
  return { kp, bytes: (rowsPadded * kp) / 4 }
}

/** Byte offset of (row r, block b) in the x4 layout. */
function x4Offset(r: number, b: number, kp: number): number {
  return (r >> 2) * kp + b * X4_ROWS * X4_BLOCK_BYTES + (r & 3) * X4_BLOCK_BYTES
}

/** Ternary codes (row-major, values −1/0/+1) → x4. Works for any rows and cols. */
export function packX4FromCodes(codes: Int8Array, rows: number, cols: number, out: Uint8Array): void {
  const { kp } = x4Shape(rows, cols)
  out.fill(0x55)
  for (let r = 0; r < rows; r++) {
    const row = r * cols
    for (let c = 0; c < cols; c++) {
      const b = c >> 7, j = c & 127
      const byte = x4Offset(r, b, kp) + (j & 31)
      const shift = 6 - 2 * (j >> 5)
      out[byte] = (out[byte] & ~(3 << shift)) | ((codes[row + c] + 1) << shift)
    }
  }
}
