/** `bitnet ppl`: perplexity over a text file or a JSON list of token ids. */
import { InvalidArgumentError } from '../errors.js'
import { readFileText } from '../io/file.js'
import { MODEL_OPTIONS, intOpt, openModel, parse, printJson } from './common.js'
import { ProgressBar } from './progress.js'

export const PPL_HELP = `bitnet ppl -m MODEL (-f TEXT_FILE | --tokens IDS_JSON_FILE) [--ctx 512] [--kv-type auto|f16|f32] [--json]
  cuts the tokens into chunks of --ctx, evaluates each as [BOS] + chunk[:-1],
  predicts all its tokens; ppl = exp(mean NLL). --json: {"ppl", "tokens"}`

export async function pplCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    file: { type: 'string', short: 'f' },
    tokens: { type: 'string' },
  })
  if (values.help) { process.stdout.write(PPL_HELP + '\n'); return 0 }
  if ((values.file === undefined) === (values.tokens === undefined)) {
    throw new InvalidArgumentError('give exactly one of -f TEXT_FILE or --tokens IDS_JSON_FILE')
  }
  const ctx = intOpt(values.ctx, 'ctx', 1, 512)!
  // The KV cache only needs one chunk.
  const model = await openModel({ ...values, ctx: String(ctx) }, signal)
  let ids: number[]
  if (values.tokens !== undefined) {
    const parsed: unknown = JSON.parse(await readFileText(values.tokens))
    if (!Array.isArray(parsed) || !parsed.every((v) => Number.isInteger(v) && v >= 0 && v < model.config.vocabSize)) {
      throw new InvalidArgumentError(`${values.tokens}: expected a JSON array of token ids in 0..${model.config.vocabSize - 1}`)
    }
    ids = parsed
  } else {
    ids = model.tokenize(await readFileText(values.file!), { addBos: false })
  }
  const bar = new ProgressBar('perplexity')
  const r = model.perplexity(ids, ctx, (done, total) => bar.update(done, total, `chunk ${done}/${total}`))
  bar.done()
  if (values.json) printJson({ ppl: r.ppl, tokens: r.tokens, nll: r.nll, ctx })
  else process.stdout.write(`perplexity ${r.ppl.toFixed(4)} over ${r.tokens} tokens (ctx ${ctx})\n`)
  return 0
}
