/**
 * The interface between BitnetTokenizer (tokenizer.ts: special tokens, BOS/EOS, decoding) and
 * the vocabulary's own encoder, in its own file so both backends and the tokenizer import it
 * without importing each other.
 */
/**
 * @internal The vocabulary-specific half of a tokenizer, implemented by the byte-level BPE
 * (`@huggingface/tokenizers`) and SentencePiece (SpmTokenizer in spm.ts) backends.
 */
export interface TokenizerBackend {
  /** Non-empty text -> ids, without BOS; added/special tokens written in the text are single tokens. */
  encode(text: string): number[]
  /** Id of a vocabulary string (or an added token's text), if present. */
  tokenToId(token: string): number | undefined
  /** Raw bytes of a vocabulary token (kind 0 in `TokenTable`). */
  pieceBytes(id: number): Uint8Array
  /**
   * SentencePiece `add_space_prefix`: encode puts a space before text that starts the input or
   * follows an added token, so decoding removes one leading space there (see
   * `BitnetTokenizer.decode`). False for byte-level BPE.
   */
  readonly addSpacePrefix: boolean
}
