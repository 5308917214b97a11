// Fuzz targets: each builds mutated inputs from the seeds and feeds one to a parser (or the
// whole loader). Inputs are bytes, so every target's crashing inputs are saved and replayed the
// same way (test/fuzz/fixtures/<target>-<hash>.bin). A target returns normally or throws; the
// harness accepts only BitnetError subclasses.
import { applyChatTemplate, BITNET_2B4T_CHAT_TEMPLATE, resolveChatTemplate, type ChatMessage } from '../../src/tokenizer/chat-template.js'
import { readGguf, metaStringOpt } from '../../src/gguf/reader.js'
import type { ByteSource } from '../../src/io/source.js'
import { bytesSource } from '../../src/io/source.js'
import { loadModel } from '../../src/api/load-model.js'
import type { BitnetModel } from '../../src/api/bitnet-model.js'
import { configFromGguf, configFromHf } from '../../src/model/config.js'
import type { ModelFolder } from '../../src/model/load-hf.js'
import { readSafetensors } from '../../src/safetensors/reader.js'
import { tokenizerFromGguf, tokenizerFromHf, type BitnetTokenizer } from '../../src/tokenizer/tokenizer.js'
import { byteSeed, mutateBytes, mutateJson, mutateTemplate, type ByteSeed, type Rng } from './mutate.js'
import type { Seeds } from './seeds.js'

export interface Target {
  name: string
  /** Share of the run's inputs. */
  weight: number
  /** Input #i of this target. */
  input(rng: Rng): Uint8Array
  /** Feeds an input to the code under test. */
  run(input: Uint8Array): Promise<void>
}

const text = new TextEncoder()
const untext = new TextDecoder()
const json = (v: unknown) => text.encode(JSON.stringify(v))
const unjson = (b: Uint8Array) => JSON.parse(untext.decode(b))

export const SAMPLE_TEXT = 'Hello world! 123 é🦙 <|eot_id|>  \n\t x'
export const SAMPLE_MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'Hi 🦙' }, { role: 'assistant', content: 'Hello.' },
]

/** Uses a tokenizer the way generation does: encode, decode, stream-decode every id. */
function exercise(tok: BitnetTokenizer): void {
  const ids = tok.encode(SAMPLE_TEXT)
  tok.decode(ids)
  const stream = tok.createStreamDecoder({ skipSpecial: true })
  for (const id of ids) stream.push(id)
  stream.flush()
}

/** Renders the sample chat with a template (the small fuzz limits keep hostile loops cheap). */
function render(template: string, tok?: BitnetTokenizer): void {
  applyChatTemplate(template, SAMPLE_MESSAGES, {
    bosToken: tok?.bosToken ?? '<s>', eosToken: tok?.eosToken ?? '</s>', limits: FUZZ_TEMPLATE_LIMITS,
  })
}

/** Template limits in the fuzz run: hostile loops hit these in ~10 ms instead of the defaults' ~1 s. */
export const FUZZ_TEMPLATE_LIMITS = { maxSteps: 20_000, maxOutputChars: 1 << 16 }

/** The GGUF stack on an in-memory file: header, config, tokenizer, chat template. */
async function ggufStack(source: ByteSource): Promise<void> {
  const gguf = await readGguf(source)
  configFromGguf(gguf, source.name)
  const tok = tokenizerFromGguf(gguf.metadata, source.name)
  exercise(tok)
  render(resolveChatTemplate({ ggufTemplate: metaStringOpt(gguf.metadata, 'tokenizer.chat_template', source.name) }), tok)
}

export function makeTargets(seeds: Seeds): Target[] {
  const small: ByteSeed[] = [byteSeed(seeds.miniGguf, seeds.miniGgufHeaderEnd), ...seeds.syntheticGgufs.map((b) => byteSeed(b, 4096))]
  const pickSmall = (rng: Rng) => {
    const s = rng.pick(small)
    return mutateBytes(rng, s, rng.pick(small).bytes)
  }
  const whole = small.map((s) => byteSeed(s.bytes))
  const realStHeader = byteSeed(seeds.realSafetensors.subarray(0, seeds.realSafetensorsHeaderEnd))
  const realStTail = seeds.realSafetensors.subarray(seeds.realSafetensorsHeaderEnd)
  const miniSt = byteSeed(seeds.miniSafetensors)
  // The real 41 MB file: only its header is mutated; the tensor data follows unchanged.
  const realHeader = byteSeed(seeds.realGguf.subarray(0, seeds.realGgufHeaderEnd))
  const realTail = seeds.realGguf.subarray(seeds.realGgufHeaderEnd)
  const hfTemplate = (seeds.tokenizerConfig as { chat_template: string }).chat_template
  const templates = [hfTemplate, BITNET_2B4T_CHAT_TEMPLATE, LLAMA3_STYLE_TEMPLATE]

  return [
    { name: 'gguf', weight: 4000, input: pickSmall, run: (b) => ggufStack(bytesSource(b, 'fuzz.gguf')) },
    {
      name: 'gguf-real', weight: 3,
      input: (rng) => mutateBytes(rng, realHeader),
      run: async (b) => {
        const gguf = await readGguf(concatSource(b, realTail))
        configFromGguf(gguf, 'fuzz-real.gguf')
      },
    },
    {
      // Mutations spread over the whole file: most land in the weights, so most inputs load.
      name: 'load-model', weight: 300, input: (rng) => mutateBytes(rng, rng.pick(whole), undefined, rng.chance(0.6)),
      run: (b) => useModel(loadModel(b, { threads: 1, kernel: 'i2s', contextSize: 256 })),
    },
    {
      name: 'tokenizer-json', weight: 1500,
      input: (rng) => json(mutateJson(rng, seeds.miniTokenizerJson)),
      run: async (b) => exercise(tokenizerFromHf(unjson(b), seeds.tokenizerConfig, seeds.generationConfig)),
    },
    {
      name: 'tokenizer-config', weight: 500,
      input: (rng) => json(mutateJson(rng, rng.chance(0.8) ? seeds.tokenizerConfig : seeds.generationConfig)),
      run: async (b) => {
        const cfg = unjson(b)
        const tok = tokenizerFromHf(seeds.miniTokenizerJson, cfg, cfg)
        exercise(tok)
        render(resolveChatTemplate({ hfTemplate: cfg?.chat_template }), tok)
      },
    },
    {
      // The real 33 MB model.safetensors: its header mutated, the tensor data after it unchanged.
      name: 'safetensors', weight: 1500,
      input: (rng) => mutateBytes(rng, realStHeader),
      run: async (b) => { await readSafetensors(concatSource(b, realStTail, 'fuzz.safetensors')) },
    },
    {
      name: 'config-json', weight: 1000,
      input: (rng) => json(mutateJson(rng, seeds.configJson)),
      run: async (b) => { configFromHf(unjson(b), 'config.json') },
    },
    {
      // A whole Hugging Face folder through loadModel: byte 0 picks the mutated file (see hfFolder).
      name: 'hf-folder', weight: 150,
      input: (rng) => {
        const which = rng.int(3)
        const body = which === 0 ? mutateBytes(rng, miniSt, undefined, rng.chance(0.6))
          : json(mutateJson(rng, which === 1 ? seeds.miniConfigJson : seeds.miniTokenizerJson))
        const input = new Uint8Array(1 + body.length)
        input[0] = which
        input.set(body, 1)
        return input
      },
      run: (b) => useModel(loadModel(hfFolder(seeds, b[0], b.subarray(1)), { threads: 1, kernel: 'i2s', contextSize: 256 })),
    },
    {
      name: 'chat-template', weight: 6000,
      input: (rng) => text.encode(mutateTemplate(rng, rng.pick(templates))),
      run: async (b) => render(untext.decode(b)),
    },
  ]
}

/** Generates with a loaded model (text and chat), then disposes it. */
async function useModel(loading: Promise<BitnetModel>): Promise<void> {
  const model = await loading
  try {
    await model.generate('Hello', { maxTokens: 3, temperature: 0 })
    await model.chat(SAMPLE_MESSAGES, { maxTokens: 2, temperature: 0 })
  } finally {
    await model.dispose()
  }
}

/** The mini HF folder in memory, with file `which` (0 model.safetensors, 1 config.json, 2 tokenizer.json) replaced by `body`. */
function hfFolder(seeds: Seeds, which: number, body: Uint8Array): ModelFolder {
  const files: Record<string, Uint8Array> = {
    'model.safetensors': seeds.miniSafetensors,
    'config.json': json(seeds.miniConfigJson),
    'tokenizer.json': json(seeds.miniTokenizerJson),
    'tokenizer_config.json': json(seeds.tokenizerConfig),
    'generation_config.json': json(seeds.generationConfig),
  }
  files[['model.safetensors', 'config.json', 'tokenizer.json'][which % 3]] = body
  return { name: 'fuzz-hf', open: async (f) => (files[f] ? bytesSource(files[f], `fuzz-hf/${f}`) : undefined) }
}

/** A Llama-3.1-style template (system prompt, date, tool-less), a second real-world shape. */
const LLAMA3_STYLE_TEMPLATE =
  "{{- bos_token }}{%- set date_string = strftime_now('%d %b %Y') %}{%- if messages[0]['role'] == 'system' %}" +
  "{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}" +
  "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Today Date: ' + date_string + '\\n\\n' }}{{- system_message }}{{- '<|eot_id|>' }}" +
  "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"

/** A ByteSource over `head` followed by `tail`. */
function concatSource(head: Uint8Array, tail: Uint8Array, name = 'fuzz-real.gguf'): ByteSource {
  const size = head.length + tail.length
  return {
    name,
    size,
    read: async (offset, length) => {
      const end = Math.min(size, offset + length)
      const out = new Uint8Array(Math.max(0, end - offset))
      if (offset < head.length) out.set(head.subarray(offset, Math.min(head.length, end)))
      if (end > head.length) out.set(tail.subarray(Math.max(0, offset - head.length), end - head.length), Math.max(0, head.length - offset))
      return out
    },
  }
}
