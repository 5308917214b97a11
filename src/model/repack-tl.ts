/**
 * Repacking ternary weights into the layout the TL (lookup-table) kernel streams ("tl16",
 * drawn in assembly/formats/tl.ts): rows in groups of 16, K padded to a multiple of 128,
 * one 4-bit index per column pair (idx = 3·(w0+1) + (w1+1)), columns cut into tiles of
 * 1024 so that the kernel's tables of one tile stay in L1.
 *
 *   tile t (pairs 512t … 512t+TP−1), group g (rows 16g … 16g+15): TP·8 bytes at
 *   512·8·G·t + g·TP·8;  vector u = 16 bytes, byte i = idx(row 16g+i, pair 2u) | idx(…, 2u+1) << 4
 *
 * Two entries, as in repack.ts: a fast path from canonical I2_S bytes (the official 2B4T
 * file) that never decodes to one byte per weight, and a generic path from decoded codes.
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

// Two canonical I2_S bytes a (columns p, p+32, p+64, p+96 of a block) and b (the next
// column of each) → the four pair indices idx(a_g, b_g), one per byte of a u32 (g = 0..3,
// g = the 2-bit field, MSB-first). Code 3 is unused and decodes to 0, as in src/formats/i2s.ts.
let pairIdx: Uint32Array | undefined
function pairIdxTable(): Uint32Array {
  if (pairIdx) return pairIdx
  const code = [0, 1, 2, 1]
  pairIdx = new Uint32Array(65536)
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      let v = 0
      for (let g = 0; g < 4; g++) {
        const sh = 6 - 2 * g
        v |= (3 * code[(a >> sh) & 3] + code[(b >> sh) & 3]) << (8 * g)
      }
      pairIdx[(a << 8) | b] = v >>> 0
    }
  }
  return pairIdx
}

/**
 * Canonical I2_S bytes (rows·cols/4 code bytes, cols % 128 == 0) → tl16, without decoding.
 * Byte p of a 128-column block holds columns p + 32g (g = 0..3), so the four input bytes
 * p..p+3 (p % 4 == 0) give the four output bytes of pairs (p + 32g)/2 and (p + 32g)/2 + 1
 * for one row: four bytes in, four out, two table lookups (~12 ms per 6912×2560 on Node 20).
 */
export function packTlFromI2s(src: Uint8Array, rows: number, cols: number, out: Uint8Array): void {
  if (cols % TL_BLOCK_ELEMS !== 0) throw new RangeError(`packTlFromI2s: cols must be a multiple of ${TL_BLOCK_ELEMS}, got ${cols}`)
  const { kp, rowsPadded } = tlShape(rows, cols)
  const groups = rowsPadded / TL_ROWS, np = kp / 2, nb = cols / TL_BLOCK_ELEMS
  const table = pairIdxTable()
  if (rowsPadded !== rows) out.fill(PAD_BYTE)
  for (let r = 0; r < rows; r++) {
    const grp = r >> 4, i = r & 15
    let s = r * nb * 32
    for (let b = 0; b < nb; b++, s += 32) {
      // Field g of byte p is pair 64b + 16g + p/2. A block (64 pairs = 32 vectors) never
      // straddles a tile (512 pairs), so one offset per block, + 128 bytes per field.
      const base = tlOffset(grp, 64 * b, groups, np) + i
      for (let p = 0; p < 32; p += 4) {
        // byte g of x = the output byte of field g: pair 64b + 16g + p/2 low, the next high
        const x = table[(src[s + p] << 8) | src[s + p + 1]] | (table[(src[s + p + 2] << 8) | src[s + p + 3]] << 4)
        const at = base + p * 4 // vector p/4 of the block (pairs p/2, p/2 + 1), 16 bytes each
        out[at] = x
        out[at + 128] = x >>> 8 // field g: + 16g pairs = + 8g vectors = + 128g bytes
        out[at + 256] = x >>> 16
        out[at + 384] = x >>> 24
      }
    }
  }
}
