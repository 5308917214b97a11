// Fuzz seeds: the real tiny-dev files, and "mini" copies cut down from them so that a
// mutated input parses in milliseconds. A mini file keeps the real structure (every metadata
// key, the chat template, the real ternary tensors of all 8 layers, the tokenizer's real
// pre-tokenizer/decoder and first tokens and merges); only the vocabulary is cut to MINI_VOCAB
// tokens plus the three Llama 3 specials, so the embedding shrinks from 32 MB to 250 KB.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { readGguf } from '../../src/gguf/reader.js'
import { GgufType, type GgufArray } from '../../src/gguf/types.js'
import { metaArr, metaU32, writeGguf, type GgufWriteTensor } from '../../src/gguf/writer.js'
import { bytesSource } from '../../src/io/source.js'
import { syntheticGguf } from '../../src/model/synthetic.js'

const DIR = fileURLToPath(new URL('../fixtures/tiny-dev/', import.meta.url))
export const fixturePath = (name: string): string => DIR + name

/** Ordinary tokens kept in the mini vocabulary (Llama 3's first 1000: all 256 byte symbols + common merges). */
export const MINI_VOCAB = 1000
/** The Llama 3 specials kept (old id → new id MINI_VOCAB + index). */
const SPECIALS = [128000, 128001, 128009]

export interface Seeds {
  /** The real tiny-dev GGUF (41 MB). */
  realGguf: Uint8Array
  /** Its header part (up to the data section), for header-only targets. */
  realGgufHeaderEnd: number
  /** Mini tiny-dev GGUF: real metadata and layers, vocabulary cut (see above). */
  miniGguf: Uint8Array
  miniGgufHeaderEnd: number
  /** Small synthetic GGUFs covering the other formats: TQ1_0, TQ2_0, F32 embedding, SentencePiece tokenizer. */
  syntheticGgufs: Uint8Array[]
  /** The real tiny-dev model.safetensors (33 MB) and its header's length (8 + N bytes). */
  realSafetensors: Uint8Array
  realSafetensorsHeaderEnd: number
  /** Mini Hugging Face folder: model.safetensors, config.json and tokenizer.json cut like the mini GGUF. */
  miniSafetensors: Uint8Array
  miniConfigJson: object
  /** The real tokenizer.json text (9 MB) and a mini one cut like the mini GGUF. */
  realTokenizerJson: string
  miniTokenizerJson: object
  tokenizerConfig: object
  configJson: object
  generationConfig: object
}

let cached: Promise<Seeds> | undefined

/** Builds the seeds once per process. */
export function loadSeeds(): Promise<Seeds> {
  cached ??= buildSeeds()
  return cached
}

async function buildSeeds(): Promise<Seeds> {
  const realGguf = new Uint8Array(readFileSync(fixturePath('ggml-model-i2_s.gguf')))
  const gguf = await readGguf(bytesSource(realGguf, 'ggml-model-i2_s.gguf'))
  const md = new Map(gguf.metadata)
  const cut = (key: string) => {
    const a = md.get(key) as GgufArray
    const keep = [...a.value.slice(0, MINI_VOCAB), ...SPECIALS.map((id) => a.value[id])] as never[]
    md.set(key, metaArr(a.itemType, keep))
  }
  cut('tokenizer.ggml.tokens')
  cut('tokenizer.ggml.token_type')
  const tokens = new Set((md.get('tokenizer.ggml.tokens') as GgufArray).value as string[])
  const merges = ((md.get('tokenizer.ggml.merges') as GgufArray).value as string[])
    .filter((m) => { const [l, r] = m.split(' '); return tokens.has(l) && tokens.has(r) && tokens.has(l + r) })
  md.set('tokenizer.ggml.merges', metaArr(GgufType.STRING, merges))
  const vocab = MINI_VOCAB + SPECIALS.length
  md.set('bitnet-b1.58.vocab_size', metaU32(vocab))
  for (const key of ['tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id']) {
    const id = Number(md.get(key)!.value)
    md.set(key, metaU32(MINI_VOCAB + SPECIALS.indexOf(id)))
  }
  const tensors: GgufWriteTensor[] = gguf.tensors.map((t) => {
    const at = gguf.dataOffset + t.offset
    if (t.name !== 'token_embd.weight') return { name: t.name, dims: t.dims, typeId: t.typeId, data: realGguf.slice(at, at + t.byteSize) }
    const rowBytes = t.dims[0] * 2 // F16
    const data = new Uint8Array(vocab * rowBytes)
    data.set(realGguf.subarray(at, at + MINI_VOCAB * rowBytes))
    SPECIALS.forEach((id, i) => data.set(realGguf.subarray(at + id * rowBytes, at + (id + 1) * rowBytes), (MINI_VOCAB + i) * rowBytes))
    return { name: t.name, dims: [t.dims[0], vocab], typeId: t.typeId, data }
  })
  const miniGguf = writeGguf({ metadata: md, tensors })
  const miniHeader = await readGguf(bytesSource(miniGguf))

  const realTokenizerJson = readFileSync(fixturePath('tokenizer.json'), 'utf8')
  const realSafetensors = new Uint8Array(readFileSync(fixturePath('model.safetensors')))
  const configJson = JSON.parse(readFileSync(fixturePath('config.json'), 'utf8'))
  return {
    realSafetensors,
    realSafetensorsHeaderEnd: 8 + Number(new DataView(realSafetensors.buffer).getBigUint64(0, true)),
    miniSafetensors: miniSafetensors(realSafetensors),
    miniConfigJson: { ...configJson, vocab_size: MINI_VOCAB + SPECIALS.length },
    realGguf,
    realGgufHeaderEnd: gguf.dataOffset,
    miniGguf,
    miniGgufHeaderEnd: miniHeader.dataOffset,
    syntheticGgufs: syntheticSeeds(),
    realTokenizerJson,
    miniTokenizerJson: miniTokenizerJson(JSON.parse(realTokenizerJson)),
    tokenizerConfig: JSON.parse(readFileSync(fixturePath('tokenizer_config.json'), 'utf8')),
    configJson,
    generationConfig: JSON.parse(readFileSync(fixturePath('generation_config.json'), 'utf8')),
  }
}

/** tokenizer.json cut to the mini vocabulary: ids < MINI_VOCAB, merges among them, the specials renumbered. */
function miniTokenizerJson(json: Record<string, any>): object {
  const vocab: Record<string, number> = {}
  for (const [text, id] of Object.entries(json.model.vocab as Record<string, number>)) if (id < MINI_VOCAB) vocab[text] = id
  const has = (t: string) => Object.hasOwn(vocab, t)
  const merges = (json.model.merges as string[])
    .filter((m) => { const [l, r] = m.split(' '); return has(l) && has(r) && has(l + r) })
  const added = (json.added_tokens as { id: number }[])
    .filter((t) => SPECIALS.includes(t.id))
    .map((t) => ({ ...t, id: MINI_VOCAB + SPECIALS.indexOf(t.id) }))
  return { ...json, added_tokens: added, model: { ...json.model, vocab, merges } }
}

/** model.safetensors with the embedding cut to the mini vocabulary (rows < MINI_VOCAB, then the specials). */
function miniSafetensors(real: Uint8Array): Uint8Array {
  const n = Number(new DataView(real.buffer, real.byteOffset).getBigUint64(0, true))
  const header = JSON.parse(new TextDecoder().decode(real.subarray(8, 8 + n))) as Record<string, any>
  const parts: Uint8Array[] = []
  const out: Record<string, unknown> = { __metadata__: header.__metadata__ }
  let at = 0
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue
    let data = real.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1])
    let shape = t.shape
    if (name === 'model.embed_tokens.weight') {
      const rowBytes = t.shape[1] * 2 // BF16
      const rows = [...Array.from({ length: MINI_VOCAB }, (_, i) => i), ...SPECIALS]
      const cut = new Uint8Array(rows.length * rowBytes)
      rows.forEach((r, i) => cut.set(data.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes))
      data = cut
      shape = [rows.length, t.shape[1]]
    }
    out[name] = { dtype: t.dtype, shape, data_offsets: [at, at + data.length] }
    parts.push(data)
    at += data.length
  }
  const json = new TextEncoder().encode(JSON.stringify(out))
  const bytes = new Uint8Array(8 + json.length + at)
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true)
  bytes.set(json, 8)
  let p = 8 + json.length
  for (const d of parts) { bytes.set(d, p); p += d.length }
  return bytes
}

/** Small synthetic models for the formats and tokenizer kinds tiny-dev does not use. */
function syntheticSeeds(): Uint8Array[] {
  const shape = { nEmbd: 64, nFf: 128, nLayer: 1, nHead: 2, nHeadKv: 1, vocab: 270, contextLength: 16 }
  const spm = syntheticGguf({ ...shape, arch: 'bitnet', activation: 'silu' }, { embedding: 'F32' })
  // SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then a few pieces.
  const pieces = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)]
  for (const p of ['▁', 'e', 't', '▁t', 'he', '▁the', 'a', 'n', '▁a', 'in', '▁in']) if (pieces.length < shape.vocab) pieces.push(p)
  const types = pieces.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1))
  const md = spm.metadata
  md.set('tokenizer.ggml.model', { type: GgufType.STRING, value: 'llama' })
  md.set('tokenizer.ggml.tokens', metaArr(GgufType.STRING, pieces))
  md.set('tokenizer.ggml.token_type', metaArr(GgufType.INT32, types))
  md.set('tokenizer.ggml.scores', metaArr(GgufType.FLOAT32, pieces.map((_, i) => -i)))
  md.set('tokenizer.ggml.bos_token_id', metaU32(1))
  md.set('tokenizer.ggml.eos_token_id', metaU32(2))
  md.delete('tokenizer.ggml.merges')
  return [
    writeGguf(syntheticGguf({ ...shape, nEmbd: 256, nFf: 256, nHead: 4 }, { format: 'TQ1_0' })),
    writeGguf(syntheticGguf({ ...shape, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 4 }, { format: 'TQ2_0' })),
    writeGguf(spm),
  ]
}
