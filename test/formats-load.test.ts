// Every model format tiny-dev's shapes allow loads to the golden logits: the Hugging Face
// folder (as shipped, and rewritten as sharded bf16-master and "bitlinear" checkpoints), and
// GGUFs written by `bitnet convert` from the folder (TL1, TL2, F32, F16, BF16; its I2_S output
// is byte-identical in data to the official file, which test/golden.test.ts covers).
// TQ1_0/TQ2_0 need rows of 256 multiples, so they are checked against the I2_S path on a
// synthetic model of such shapes.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { convertToGguf, type ConvertTarget } from '../src/convert/index.js'
import { f16ToF32, f32ToF16 } from '../src/formats/float.js'
import { f32ToBf16 } from '../src/formats/float.js'
import { decodeHfPacked } from '../src/formats/hf-packed.js'
import { decodeTernary, dequantizeRows } from '../src/formats/index.js'
import { bytesSource } from '../src/io/source.js'
import { readSafetensors } from '../src/safetensors/reader.js'
import { readGguf } from '../src/gguf/reader.js'
import { fileSource, writeChunksToFile } from '../src/io/file.js'
import { loadModel, openModelContents, syntheticGguf, writeGguf, type BitnetModel, type ModelContents } from '../src/index.js'
import { compareTop20, loadGolden, TINY_DIR, TINY_GGUF } from './helpers/golden.js'
import { safetensors } from './helpers/hf-folder.js'

const golden = loadGolden()
const dir = mkdtempSync(join(tmpdir(), 'bitnet-formats-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// The folder is opened once (building its tokenizer takes seconds) and converted many times.
let hf: ModelContents | undefined
afterAll(() => hf?.close?.())

async function convert(input: string, to: ConvertTarget, name = `tiny-${to}.gguf`): Promise<string> {
  const shared = input === TINY_DIR
  const contents = shared ? (hf ??= await openModelContents(TINY_DIR)) : await openModelContents(input)
  const out = join(dir, name)
  try {
    await writeChunksToFile(out, convertToGguf(contents, { to }))
  } finally {
    if (!shared) await contents.close?.()
  }
  return out
}

async function withModel<T>(path: string, fn: (m: BitnetModel) => T | Promise<T>): Promise<T> {
  const model = await loadModel(path, { threads: 1, outputType: 'f16' })
  try {
    return await fn(model)
  } finally {
    await model.dispose()
  }
}

function expectGolden(model: BitnetModel): void {
  for (const p of golden.prompts) {
    expect(model.tokenize(p.text, { addBos: !p.text.startsWith('<|begin_of_text|>') })).toEqual(p.ids)
    const r = compareTop20(p, model.logits(p.ids))
    expect(r.over / r.entries).toBeLessThanOrEqual(0.001)
    expect(r.argmaxWrong).toBe(0)
  }
}

describe('tiny-dev Hugging Face folder', () => {
  it('gives the golden logits and uses the folder chat template', () => withModel(TINY_DIR, (model) => {
    expectGolden(model)
    expect(model.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<|begin_of_text|>User: hi<|eot_id|>Assistant: ')
  }), 60_000)
})

/**
 * tiny-dev rewritten as another kind of HF checkpoint, in two shards with an index:
 * 'bf16' = 2B4T-bf16-style master weights (ternary-valued BF16, no weight_scale);
 * 'bitlinear' = packed U8 with weight_scale as a divisor (F32 1/γ, no linear_class).
 */
async function hfVariant(kind: 'bf16' | 'bitlinear'): Promise<string> {
  const out = join(dir, `hf-${kind}`)
  mkdirSync(out)
  const src = readFileSync(join(TINY_DIR, 'model.safetensors'))
  const st = await readSafetensors(bytesSource(src))
  const data = (name: string) => { const t = st.tensors.get(name)!; return src.subarray(t.offset, t.offset + t.byteSize) }
  const tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[] = []
  for (const t of st.tensors.values()) {
    if (t.name.endsWith('.weight_scale')) continue
    const scaleName = t.name.replace(/\.weight$/, '.weight_scale')
    if (t.dtype !== 'U8') { tensors.push({ ...t, data: data(t.name) }); continue }
    const gamma = dequantizeRows('BF16', data(scaleName), 1)[0]
    if (kind === 'bitlinear') {
      tensors.push({ ...t, data: data(t.name) }, { name: scaleName, dtype: 'F32', shape: [1], data: new Uint8Array(Float32Array.of(1 / gamma).buffer) })
    } else {
      const [q, cols] = t.shape
      const { codes } = decodeHfPacked(data(t.name), 4 * q, cols, gamma)
      tensors.push({ name: t.name, dtype: 'BF16', shape: [4 * q, cols], data: new Uint8Array(Uint16Array.from(codes, (c) => f32ToBf16(c * gamma)).buffer) })
    }
  }
  const half = tensors.length >> 1
  const shards = [tensors.slice(0, half), tensors.slice(half)]
  const weightMap: Record<string, string> = {}
  shards.forEach((list, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`
    writeFileSync(join(out, file), safetensors(list))
    for (const t of list) weightMap[t.name] = file
  })
  writeFileSync(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }))
  const config = JSON.parse(readFileSync(join(TINY_DIR, 'config.json'), 'utf8'))
  if (kind === 'bitlinear') config.quantization_config = { quant_method: 'bitnet' }
  else delete config.quantization_config
  writeFileSync(join(out, 'config.json'), JSON.stringify(config))
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) copyFileSync(join(TINY_DIR, f), join(out, f))
  return out
}

describe.each(['bf16', 'bitlinear'] as const)('tiny-dev as a sharded %s HF checkpoint', (kind) => {
  it('gives the golden logits', async () => {
    await withModel(await hfVariant(kind), expectGolden)
  }, 60_000)
})

describe.each(['tl1', 'tl2', 'f32', 'f16', 'bf16'] as const)('tiny-dev converted from the HF folder to %s', (to) => {
  it('gives the golden logits', async () => {
    const path = await convert(TINY_DIR, to)
    await withModel(path, expectGolden)
  }, 60_000)
})

describe('I2_S output is the official layout', () => {
  it('HF folder → I2_S: same keys, types, tensors and data as the bitnet.cpp file (only the real chat template differs)', async () => {
    const ours = await convert(TINY_DIR, 'i2s', 'hf-i2s.gguf')
    const [a, b] = await Promise.all([ours, TINY_GGUF].map(async (p) => readGguf(await fileSource(p))))
    expect([...a.metadata.keys()]).toEqual([...b.metadata.keys()])
    for (const [k, v] of b.metadata) {
      expect(a.metadata.get(k)!.type).toBe(v.type)
      if (k !== 'tokenizer.chat_template') expect(a.metadata.get(k)).toEqual(v)
    }
    expect(a.tensors.map(({ name, dims, typeId, offset, byteSize }) => ({ name, dims, typeId, offset, byteSize })))
      .toEqual(b.tensors.map(({ name, dims, typeId, offset, byteSize }) => ({ name, dims, typeId, offset, byteSize })))
    const data = (p: string, g: typeof a) => readFileSync(p).subarray(g.dataOffset)
    expect(Buffer.compare(data(ours, a), data(TINY_GGUF, b))).toBe(0)
  }, 60_000)

  it('GGUF → I2_S reproduces the file byte for byte', async () => {
    const ours = await convert(TINY_GGUF, 'i2s', 'gguf-i2s.gguf')
    expect(Buffer.compare(readFileSync(ours), readFileSync(TINY_GGUF))).toBe(0)
  }, 60_000)
})

describe('TQ1_0 / TQ2_0 against the I2_S path (rows of 256 multiples)', () => {
  const shape = { nEmbd: 256, nFf: 512, nLayer: 2, nHead: 4, nHeadKv: 2, vocab: 512, activation: 'relu2' as const }
  const ids = Array.from({ length: 24 }, (_, i) => (i * 37) % 500)

  it.each(['tq2_0', 'tq1_0'] as const)('%s: same codes, γ rounded to fp16, same logits as I2_S with that γ', async (to) => {
    const i2s = join(dir, 'synth-i2s.gguf')
    await writeChunksToFile(i2s, [writeGguf(syntheticGguf(shape, { seed: 5 }))])
    const tq = await convert(i2s, to, `synth-${to}.gguf`)
    // TQ files store γ as fp16: converting back to I2_S gives the reference with that γ
    const back = await convert(tq, 'i2s', `synth-${to}-i2s.gguf`)
    const [a, b] = await Promise.all([i2s, tq].map((p) => openModelContents(p)))
    for (const t of a.tensors.filter((x) => x.format === 'I2_S')) {
      const u = b.tensors.find((x) => x.name === t.name)!
      expect(u.format).toBe(to.toUpperCase())
      const [rows, cols] = [t.dims[1], t.dims[0]]
      const da = decodeTernary(t.format, await t.read(0, t.byteSize), rows, cols)
      const db = decodeTernary(u.format, await u.read(0, u.byteSize), rows, cols)
      expect(Buffer.compare(Buffer.from(da.codes.buffer), Buffer.from(db.codes.buffer))).toBe(0)
      expect(db.scale).toBe(f16ToF32(f32ToF16(da.scale)))
    }
    await Promise.all([a, b].map((c) => c.close?.()))
    const [lTq, lBack] = await Promise.all([tq, back].map((p) => withModel(p, (m) => m.logits(ids))))
    for (let i = 0; i < ids.length; i++) expect(Array.from(lTq[i])).toEqual(Array.from(lBack[i]))
    // the TQ file says 'bitnet' with an explicit activation, as upstream llama.cpp needs
    const g = await readGguf(await fileSource(tq))
    expect(g.metadata.get('general.architecture')?.value).toBe('bitnet')
    expect(g.metadata.get('bitnet.hidden_activation')?.value).toBe('relu2')
  }, 60_000)
})
