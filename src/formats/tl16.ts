/**
 * Repacking ternary weights into the layout the TL (lookup-table) kernel streams ("tl16",
 * drawn in assembly/formats/tl.ts): rows in groups of 16, K padded to a multiple of 128,
 * one 4-bit index per column pair (idx = 3·(w0+1) + (w1+1)), columns cut into tiles of
 * 1024 so that the kernel's tables of one tile stay in L1.
 *
 *   tile t (pairs 512t … 512t+TP−1), group g (rows 16g … 16g+15): TP·8 bytes at
 *   512·8·G·t + g·TP·8;  vector u = 16 bytes, byte i = idx(row 16g+i, pair 2u) | idx(…, 2u+1) << 4
 *
 * This is the generic path, from decoded codes; official I2_S files take the kernel
 * repack_i2s_tl (assembly/formats/tl.ts), which never decodes to one byte per weight.
 */
export const TL_ROWS = 16
export const TL_BLOCK_ELEMS = 128 // K padding
export const TL_TILE_PAIRS = 512

/** Index of the pair (0, 0): what padding rows and columns hold. */
const IDX_ZERO = 4
const PAD_BYTE = IDX_ZERO | (IDX_ZERO << 4)

/** Padded K, padded rows and byte size of a rows × cols matrix in the tl16 layout. */
export function tlShape(rows: number, cols: number): { kp: number; bytes: number; rowsPadded: number } {
  const kp = Math.ceil(cols / TL_BLOCK_ELEMS) * TL_BLOCK_ELEMS
  const rowsPadded = Math.ceil(rows / TL_ROWS) * TL_ROWS
  return { kp, bytes: (rowsPadded * kp) / 4, rowsPadded }
}

/**
 * Byte offset of (group g, pair p) in the tl16 layout: the 16 rows' bytes start here
 * (row i at +i), pair p in the low nibble if p is even, the high one if odd.
 */
function tlOffset(g: number, p: number, groups: number, np: number): number {
  const t = Math.floor(p / TL_TILE_PAIRS), pt = p % TL_TILE_PAIRS
  const tp = Math.min(TL_TILE_PAIRS, np - t * TL_TILE_PAIRS)
  return t * TL_TILE_PAIRS * 8 * groups + g * tp * 8 + (pt >> 1) * 16
}

/** Ternary codes (row-major, values −1/0/+1) → tl16. Works for any rows and cols. */
export function packTlFromCodes(codes: Int8Array, rows: number, cols: number, out: Uint8Array): void {
  const { kp, rowsPadded } = tlShape(rows, cols)
  const groups = rowsPadded / TL_ROWS, np = kp / 2
  out.fill(PAD_BYTE)
  for (let r = 0; r < rows; r++) {
    const row = r * cols, g = r >> 4, i = r & 15
    for (let p = 0; p * 2 < cols; p++) {
      const c0 = codes[row + 2 * p] + 1
      const c1 = 2 * p + 1 < cols ? codes[row + 2 * p + 1] + 1 : 1
      const at = tlOffset(g, p, groups, np) + i
      const shift = (p & 1) << 2
      out[at] = (out[at] & ~(15 << shift)) | ((3 * c0 + c1) << shift)
    }
  }
}
