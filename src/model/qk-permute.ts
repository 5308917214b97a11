/**
 * llama.cpp's q/k row permutation. Its converters (upstream `convert_hf_to_gguf.py` and
 * bitnet.cpp's `convert-hf-to-gguf-bitnet.py`, `LlamaModel.permute`) reorder each head's rows of
 * attn_q / attn_k so that `build_llama`'s NORM RoPE, which rotates adjacent dims (2i, 2i+1),
 * computes what the HF model's rotate-half (NEOX) RoPE computes on dims (i, i + head_dim/2):
 * in each head of `hd` rows, stored row 2i + j holds HF row j·hd/2 + i (j ∈ {0, 1}).
 * The loader undoes it, so the engine has one RoPE (NEOX) for every family.
 */

type Rows = Uint8Array | Int8Array

/** Moves whole rows of `rowLen` elements: out[to(r)] = in[r] for every row r, in place. */
function moveRows<T extends Rows>(data: T, heads: number, rowLen: number, hfToStored: boolean): T {
  const src = data.slice()
  const hd = data.length / rowLen / heads
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const stored = (h * hd + 2 * i + j) * rowLen
        const hf = (h * hd + j * (hd / 2) + i) * rowLen
        const [from, to] = hfToStored ? [hf, stored] : [stored, hf]
        data.set(src.subarray(from, from + rowLen), to)
      }
    }
  }
  return data
}

/** HF row order → llama.cpp's (what its converters write). */
export const permuteQkRows = <T extends Rows>(data: T, heads: number, rowLen: number): T => moveRows(data, heads, rowLen, true)

/** llama.cpp's row order → HF's (what the loader does for NORM-layout files). */
export const unpermuteQkRows = <T extends Rows>(data: T, heads: number, rowLen: number): T => moveRows(data, heads, rowLen, false)
