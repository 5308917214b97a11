/**
 * Repacking ternary weights into the layout the I2_S kernel streams ("i2s_c4", drawn in
 * assembly/formats/i2s.ts): rows in groups of 4, K padded to a multiple of 128, each byte
 * one column of a group's 4 rows (row j in bits 2j+1:2j), so one group is one sequential read.
 *
 * Two entries: an exact SIMD repack for canonical I2_S files whose K is a multiple of 128
 * (the official 2B4T file; `repack_i2s_c4`), and a generic path from decoded codes (any
 * format, any K): this one.
 */
export const C4_ROWS = 4
export const C4_BLOCK_ELEMS = 128

/** Padded K and byte size of a rows × cols matrix in the c4 layout. */
export function c4Shape(rows: number, cols: number): { kp: number; bytes: number } {
  const kp = Math.ceil(cols / C4_BLOCK_ELEMS) * C4_BLOCK_ELEMS
  const rowsPadded = Math.ceil(rows / C4_ROWS) * C4_ROWS
  return { kp, bytes: (rowsPadded * kp) / 4 }
}

/** Ternary codes (row-major, values −1/0/+1) → c4. Works for any rows and cols; padding is code 1 (weight 0). */
export function packC4FromCodes(codes: Int8Array, rows: number, cols: number, out: Uint8Array): void {
  const { kp } = c4Shape(rows, cols)
  out.fill(0x55)
  for (let r = 0; r < rows; r++) {
    const row = r * cols, group = (r >> 2) * kp, shift = 2 * (r & 3)
    for (let c = 0; c < cols; c++) {
      const byte = group + c
      out[byte] = (out[byte] & ~(3 << shift)) | ((codes[row + c] + 1) << shift)
    }
  }
}
