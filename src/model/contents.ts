/**
 * The one loader interface: a model as the weight loader (load.ts) and the converter
 * (src/cli/convert.ts) see it, whatever holds it. A GGUF file and a Hugging Face folder
 * (load-hf.ts) both become a `ModelContents`: the config, the tensors under their GGUF names
 * with logical dims and a byte reader each (nothing read yet), the tokenizer and the chat
 * template source.
 */
import type { ChatTemplateSources } from '../tokenizer/chat-template.js'
import type { FormatName, TernaryCodecOptions } from '../formats/index.js'
import { findTlTiling, TL_TILING_KEY } from '../formats/tl.js'
import { metaArrayOpt, metaStringOpt, readGguf } from '../gguf/reader.js'
import type { GgufFile } from '../gguf/types.js'
import type { ByteSource } from '../io/source.js'
import { tokenizerFromGguf, type BitnetTokenizer } from '../tokenizer/tokenizer.js'
import { configFromGguf, type ModelConfig } from './config.js'

/** One tensor, not yet read. */
export interface ModelTensor {
  /** GGUF name (`blk.0.attn_q.weight`). */
  name: string
  /** Logical dims, ne0 (the input dimension K) first. */
  dims: number[]
  /** Format of the stored bytes. */
  format: FormatName
  byteSize: number
  /** Reads `length` bytes at `offset` within the tensor's data (`into`: see ByteSource.read). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>
  /** What decoding a ternary tensor needs besides its bytes (TL tiling, HF scale). */
  decode?: TernaryCodecOptions
  /** For error messages: the file and the absolute offset of the data. */
  file: string
  offset: number
  /** Bytes from the data's start to the next tensor's (or the file's end): GGUF only. */
  extent?: number
}

/** A model before loading. */
export interface ModelContents {
  /** Name for messages (file or folder). */
  name: string
  config: ModelConfig
  tensors: ModelTensor[]
  tokenizer: BitnetTokenizer
  /** Where the model's own chat template comes from. */
  chatTemplate: ChatTemplateSources
  /** The GGUF header when the model is a GGUF file (its metadata is copied by `convert`). */
  gguf?: GgufFile
  /** The parsed JSON files when the model is a Hugging Face folder (for `convert`'s metadata). */
  hf?: { config: Record<string, any>; tokenizer: Record<string, any>; tokenizerConfig: Record<string, any> }
  /** Releases files the contents opened (not a source passed in by the caller). */
  close?(): Promise<void>
}

/**
 * What planning a model's memory needs: its config and tensor directory, not its tokenizer
 * (building a 128k-token tokenizer costs about a second, which a pre-download check spares).
 */
export type ModelLayout = Pick<ModelContents, 'name' | 'config' | 'tensors'>

/**
 * Reads a GGUF file's header into a ModelContents (tensor data is read later, on demand).
 * @example
 * const contents = await ggufContents(await fileSource('ggml-model-i2_s.gguf'))
 */
export async function ggufContents(source: ByteSource): Promise<ModelContents> {
  const layout = await ggufLayout(source)
  const { gguf, name: file } = layout
  return {
    ...layout,
    tokenizer: tokenizerFromGguf(gguf.metadata, file),
    chatTemplate: { ggufTemplate: metaStringOpt(gguf.metadata, 'tokenizer.chat_template') },
  }
}

/**
 * A GGUF file's header as a ModelLayout, without building its tokenizer (see checkModelFits).
 * @example
 * const { config, tensors } = await ggufLayout(rangeSource(url, size))
 */
export async function ggufLayout(source: ByteSource): Promise<ModelLayout & { gguf: GgufFile }> {
  const file = source.name
  const gguf = await readGguf(source)
  const config = configFromGguf(gguf, file)
  const tiling = metaArrayOpt(gguf.metadata, TL_TILING_KEY, file)?.value as number[] | undefined
  const starts = [...gguf.tensors.map((t) => gguf.dataOffset + t.offset), source.size].sort((a, b) => a - b)
  const tensors = gguf.tensors.map((t): ModelTensor => {
    const offset = gguf.dataOffset + t.offset
    const next = starts.find((s) => s > offset) ?? source.size
    const tl = t.format === 'TL1' || t.format === 'TL2'
    return {
      name: t.name,
      dims: t.dims,
      format: t.format,
      byteSize: t.byteSize,
      read: (at, length, into) => source.read(offset + at, length, into),
      // Tiling is looked up lazily: a TL file whose shape is unknown fails only if it is loaded.
      decode: tl ? { get tiling() { return findTlTiling(t.format as 'TL1' | 'TL2', t.dims[1], t.dims[0], tiling) } } : undefined,
      file,
      offset,
      extent: next - offset,
    }
  })
  return { name: file, config, tensors, gguf }
}
