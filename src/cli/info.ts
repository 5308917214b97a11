/** `bitnet info MODEL`: architecture, shapes, tensor types and sizes, tokenizer, template. */
import { resolveChatTemplate, isPlaceholderTemplate } from '../tokenizer/chat-template.js'
import { InvalidArgumentError } from '../errors.js'
import { metaNumberOpt, metaStringOpt } from '../gguf/reader.js'
import { openModelContents } from '../api/load-model.js'
import { parse, printJson } from './common.js'
import { formatBytes } from './progress.js'
import { KV_AUTO_F16_BYTES, kvBytesPerToken } from '../model/transformer.js'
import { layoutSize, outputPassAt, OUTPUT_LAYOUTS } from '../model/layouts.js'
import { AUTO_QUANTIZED, resolveOutputType } from '../model/load.js'
import type { KernelVariant } from '../runtime/wasm.js'
import type { ModelConfig } from '../model/config.js'

export const INFO_HELP = `bitnet info MODEL [--json]
  prints architecture, shapes, tensor types and sizes, tokenizer and chat template
  (MODEL: a GGUF file or a Hugging Face folder, local, an http(s) URL or an hf: id)`

export async function infoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }, true)
  if (values.help) { process.stdout.write(INFO_HELP + '\n'); return 0 }
  const path = positionals[0] ?? values.model
  if (!path) throw new InvalidArgumentError('missing MODEL path')
  const contents = await openModelContents(path)
  try {
    const { config, gguf, tokenizer } = contents
    const m = gguf?.metadata
    const types: Record<string, { count: number; bytes: number }> = {}
    for (const t of contents.tensors) {
      const e = (types[t.format] ??= { count: 0, bytes: 0 })
      e.count++
      e.bytes += t.byteSize
    }
    const ggufTemplate = contents.chatTemplate.ggufTemplate
    const info = {
      file: path,
      size: contents.tensors.reduce((n, t) => n + t.byteSize, 0),
      format: gguf ? 'gguf' : 'huggingface',
      gguf_version: gguf?.version,
      name: m && metaStringOpt(m, 'general.name'),
      file_type: m && metaNumberOpt(m, 'general.file_type'),
      config,
      tensor_count: contents.tensors.length,
      tensor_types: types,
      kv_bytes_per_token: { f16: kvBytesPerToken(config, 'f16'), f32: kvBytesPerToken(config, 'f32') },
      kv_auto_f16_from: Math.ceil(KV_AUTO_F16_BYTES / kvBytesPerToken(config, 'f32')),
      output_head: outputHead(config),
      tokenizer: {
        model: m ? metaStringOpt(m, 'tokenizer.ggml.model') : 'tokenizer.json',
        pre: m ? metaStringOpt(m, 'tokenizer.ggml.pre') ?? '(missing: llama-bpe assumed)' : 'tokenizer.json',
        vocab: config.vocabSize,
        bos: tokenizer.bosId,
        eos: m ? metaNumberOpt(m, 'tokenizer.ggml.eos_token_id') : tokenizer.eosIds[0],
      },
      chat_template: {
        placeholder_in_file: isPlaceholderTemplate(ggufTemplate),
        used: resolveChatTemplate(contents.chatTemplate),
      },
    }
    if (values.json) { printJson(info); return 0 }
    const c = config
    const lines = [
      `${path} (${formatBytes(info.size)} of tensors, ${gguf ? `GGUF v${gguf.version}` : 'Hugging Face folder'})`,
      `  name          ${info.name ?? '-'}`,
      `  family        ${c.provenance.family}`,
      `  architecture  ${c.arch}, ${c.nLayer} layers, n_embd ${c.nEmbd}, n_ff ${c.nFf}`,
      `  activation    ${c.activation} (${c.provenance.activation})`,
      `  attention     ${c.nHead} heads × ${c.headDim}, ${c.nHeadKv} kv heads, RoPE NEOX θ=${c.ropeTheta} on ${c.nRot} dims` +
        (c.rope === 'norm' ? ' (q/k rows stored permuted for NORM RoPE, un-permuted at load)' : ''),
      `  context       ${c.contextLength}, vocab ${c.vocabSize}, rms eps ${c.normEps}`,
      `  KV cache      ${formatBytes(info.kv_bytes_per_token.f32)} per token in f32, ${formatBytes(info.kv_bytes_per_token.f16)} in f16; ` +
        `${formatBytes(info.kv_bytes_per_token.f32 * c.contextLength)} / ${formatBytes(info.kv_bytes_per_token.f16 * c.contextLength)} at ${c.contextLength} tokens; ` +
        `default (auto) f16 from ${info.kv_auto_f16_from} tokens of context`,
      `  output head   ${formatOutputHead(info.output_head)}`,
      `  tensors       ${contents.tensors.length}: ` +
        Object.entries(types).map(([k, v]) => `${v.count} ${k} (${formatBytes(v.bytes)})`).join(', '),
      `  tokenizer     ${info.tokenizer.model}, pre ${info.tokenizer.pre}, bos ${info.tokenizer.bos}, eos ${info.tokenizer.eos}`,
      `  chat template ${info.chat_template.placeholder_in_file ? 'placeholder in file, using the real 2B4T template' : 'from the model'}`,
    ]
    process.stdout.write(lines.join('\n') + '\n')
    return 0
  } finally {
    await contents.close?.()
  }
}

/** Bytes of the output projection per --output-type (read per token = held, but for q4+q8). */
function outputHead(c: ModelConfig) {
  const bytes = (t: keyof typeof OUTPUT_LAYOUTS) => layoutSize(OUTPUT_LAYOUTS[t], c.vocabSize, c.nEmbd).bytes
  const pass = outputPassAt(0, c.vocabSize, c.nEmbd).bytes
  return {
    /** what 'auto' picks on each kernel build */
    auto: Object.fromEntries((Object.keys(AUTO_QUANTIZED) as KernelVariant[])
      .map((v) => [v, resolveOutputType('auto', c.vocabSize * c.nEmbd, v)])) as Record<KernelVariant, string>,
    f16: bytes('f16'), q8: bytes('q8b'), q6: bytes('q6b'), q4: bytes('q4b'),
    /** q4+q8 holds both copies and reads the q4 one (+ bounds) and the rescored rows per token. */
    'q4+q8': { memory: bytes('q8b') + pass, pass },
  }
}

function formatOutputHead(h: ReturnType<typeof outputHead>): string {
  return `f16 ${formatBytes(h.f16)}, q8 ${formatBytes(h.q8)}, q6 ${formatBytes(h.q6)}, q4 ${formatBytes(h.q4)} per token (auto: ${Object.entries(h.auto).map(([v, t]) => `${t} on ${v}`).join(', ')}); ` +
    `q4+q8 holds ${formatBytes(h['q4+q8'].memory)}, reads ${formatBytes(h['q4+q8'].pass)} + the rescored rows`
}
