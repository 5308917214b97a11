/** `bitnet embed`: one embedding vector per text (BitnetModel.embed). */
import type { EmbedOptions } from '../api/options.js'
import { InvalidArgumentError } from '../errors.js'
import { MODEL_OPTIONS, oneOf, openModel, parse, printJson } from './common.js'

export const EMBED_HELP = `bitnet embed -m MODEL -p TEXT [-p TEXT …] [--pooling mean|last] [--eos] [--normalize] [--prefix TEXT] [--json]
  prints one embedding per text: the final normed hidden states, pooled
      --pooling mean|last  average over the tokens (default) or the last token's state
      --eos                append the EOS token first (last-token pooled embedding models)
      --normalize          scale to unit L2 norm
      --prefix TEXT        put before every text (a query instruction)
  --json: {"embeddings": [[…], …], "tokens": [n per text]}`

/** The pooling flags shared by `embed` and `serve`. */
export const EMBED_OPTIONS = {
  pooling: { type: 'string' },
  eos: { type: 'boolean', default: false },
} as const

export function embedOptions(values: { pooling?: string; eos?: boolean }, normalize: boolean, prefix?: string): EmbedOptions {
  return { pooling: oneOf(values.pooling, 'pooling', ['mean', 'last'] as const), appendEos: values.eos, normalize, prefix }
}

export async function embedCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    ...EMBED_OPTIONS,
    prompt: { type: 'string', short: 'p', multiple: true },
    normalize: { type: 'boolean', default: false },
    prefix: { type: 'string' },
  })
  if (values.help) { process.stdout.write(EMBED_HELP + '\n'); return 0 }
  const texts = values.prompt ?? []
  if (texts.length === 0) throw new InvalidArgumentError('missing -p TEXT')
  const opts = embedOptions(values, values.normalize, values.prefix)
  const model = await openModel(values, signal)
  try {
    const embeddings = model.embedBatch(texts, opts).map((e) => Array.from(e))
    if (values.json) {
      printJson({ embeddings, tokens: texts.map((t) => model.tokenize((opts.prefix ?? '') + t).length + (opts.appendEos ? 1 : 0)) })
    } else {
      for (const e of embeddings) process.stdout.write(e.map((v) => v.toPrecision(7)).join(' ') + '\n')
    }
  } finally {
    await model.dispose()
  }
  return 0
}
