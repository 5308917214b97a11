/** `bitnet embed`: one embedding vector per text (BitnetModel.embed). */
import type { EmbedOptions } from '../api/options.js'
import { InvalidArgumentError } from '../errors.js'
import { MODEL_OPTIONS, oneOf, openModel, parse, printJson } from './common.js'

export const EMBED_HELP = `bitnet embed -m MODEL -p TEXT [-p TEXT …] [--pooling mean|last] [--eos] [--normalize] [--prefix TEXT | --instruction TASK] [--json]
  prints one embedding per text: the final normed hidden states, pooled. Defaults follow the model:
  BitNet-embedding models pool the last token, L2-normalise, and append EOS where their tokenizer says
      --pooling mean|last  average over the tokens or the last token's state (default: the model's, else mean)
      --eos                append the EOS token (default: the tokenizer's add_eos_token)
      --normalize          scale to unit L2 norm (default: for embedding models)
      --prefix TEXT        put before every text
      --instruction TASK   embed queries as "Instruct: TASK\\nQuery: TEXT" (BitNet-embedding's query format)
  --json: {"embeddings": [[…], …], "tokens": [n per text]}`

/** The pooling flags shared by `embed` and `serve`. */
export const EMBED_OPTIONS = {
  pooling: { type: 'string' },
  eos: { type: 'boolean' },
} as const

export function embedOptions(values: { pooling?: string; eos?: boolean }, normalize?: boolean, prefix?: string, instruction?: string): EmbedOptions {
  return { pooling: oneOf(values.pooling, 'pooling', ['mean', 'last'] as const), appendEos: values.eos, normalize, prefix, instruction }
}

export async function embedCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    ...EMBED_OPTIONS,
    prompt: { type: 'string', short: 'p', multiple: true },
    normalize: { type: 'boolean' },
    prefix: { type: 'string' },
    instruction: { type: 'string' },
  })
  if (values.help) { process.stdout.write(EMBED_HELP + '\n'); return 0 }
  const texts = values.prompt ?? []
  if (texts.length === 0) throw new InvalidArgumentError('missing -p TEXT')
  const opts = embedOptions(values, values.normalize, values.prefix, values.instruction)
  const model = await openModel(values, signal)
  try {
    const embeddings = model.embedBatch(texts, opts).map((e) => Array.from(e))
    if (values.json) {
      printJson({ embeddings, tokens: texts.map((t) => model.embeddingIds(t, opts).length) })
    } else {
      for (const e of embeddings) process.stdout.write(e.map((v) => v.toPrecision(7)).join(' ') + '\n')
    }
  } finally {
    await model.dispose()
  }
  return 0
}
