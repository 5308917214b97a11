/** `bitnet info MODEL`: architecture, shapes, tensor types and sizes, tokenizer, template. */
import { resolveChatTemplate, isPlaceholderTemplate } from '../chat-template.js'
import { InvalidArgumentError } from '../errors.js'
import { metaNumberOpt, metaStringOpt, readGguf } from '../gguf/reader.js'
import { fileSource } from '../io/file.js'
import { isRemote, openRemote } from '../io/remote.js'
import { configFromGguf } from '../model/config.js'
import { parse, printJson } from './common.js'
import { formatBytes } from './progress.js'

export const INFO_HELP = `bitnet info MODEL [--json]
  MODEL: a GGUF path, URL or hf: id (remote models are fetched into the cache)
  prints architecture, shapes, tensor types and sizes, tokenizer and chat template`

export async function infoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }, true)
  if (values.help) { process.stdout.write(INFO_HELP + '\n'); return 0 }
  const path = positionals[0] ?? values.model
  if (!path) throw new InvalidArgumentError('missing MODEL path')
  const src = isRemote(path) ? await openRemote(path) : await fileSource(path)
  if (!('read' in src)) throw new InvalidArgumentError(`${path} is a Hugging Face folder; info reads GGUF files`)
  try {
    const gguf = await readGguf(src)
    const config = configFromGguf(gguf, path)
    const m = gguf.metadata
    const types: Record<string, { count: number; bytes: number }> = {}
    for (const t of gguf.tensors) {
      const e = (types[t.format] ??= { count: 0, bytes: 0 })
      e.count++
      e.bytes += t.byteSize
    }
    const ggufTemplate = metaStringOpt(m, 'tokenizer.chat_template')
    const info = {
      file: path,
      size: src.size,
      gguf_version: gguf.version,
      name: metaStringOpt(m, 'general.name'),
      file_type: metaNumberOpt(m, 'general.file_type'),
      config,
      tensor_count: gguf.tensors.length,
      tensor_types: types,
      tokenizer: {
        model: metaStringOpt(m, 'tokenizer.ggml.model'),
        pre: metaStringOpt(m, 'tokenizer.ggml.pre') ?? '(missing: llama-bpe assumed)',
        vocab: config.vocabSize,
        bos: metaNumberOpt(m, 'tokenizer.ggml.bos_token_id'),
        eos: metaNumberOpt(m, 'tokenizer.ggml.eos_token_id'),
      },
      chat_template: {
        placeholder_in_file: isPlaceholderTemplate(ggufTemplate),
        used: resolveChatTemplate({ ggufTemplate }),
      },
    }
    if (values.json) { printJson(info); return 0 }
    const c = config
    const lines = [
      `${path} (${formatBytes(src.size)}, GGUF v${gguf.version})`,
      `  name          ${info.name ?? '-'}`,
      `  architecture  ${c.arch}, ${c.nLayer} layers, n_embd ${c.nEmbd}, n_ff ${c.nFf}, activation ${c.activation}`,
      `  attention     ${c.nHead} heads × ${c.headDim}, ${c.nHeadKv} kv heads, RoPE NEOX θ=${c.ropeTheta} on ${c.nRot} dims`,
      `  context       ${c.contextLength}, vocab ${c.vocabSize}, rms eps ${c.normEps}`,
      `  tensors       ${gguf.tensors.length}: ` +
        Object.entries(types).map(([k, v]) => `${v.count} ${k} (${formatBytes(v.bytes)})`).join(', '),
      `  tokenizer     ${info.tokenizer.model}, pre ${info.tokenizer.pre}, bos ${info.tokenizer.bos}, eos ${info.tokenizer.eos}`,
      `  chat template ${info.chat_template.placeholder_in_file ? 'placeholder in file, using the real 2B4T template' : 'from file'}`,
    ]
    process.stdout.write(lines.join('\n') + '\n')
    return 0
  } finally {
    await src.close?.()
  }
}
