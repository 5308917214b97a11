/** `bitnet logits`: the top-k logits at every prompt position. */
import { InvalidArgumentError } from '../errors.js'
import { MODEL_OPTIONS, intOpt, openModel, parse, printJson } from './common.js'

export const LOGITS_HELP = `bitnet logits -m MODEL -p PROMPT [--top 20] [--no-bos] [--json]
  prints, per prompt position, the top-k token ids and logits
  --json: {"tokens": [ids incl. BOS], "positions": [{"pos", "top": [[id, logit], …]}]}`

export async function logitsCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    prompt: { type: 'string', short: 'p' },
    top: { type: 'string' },
    'no-bos': { type: 'boolean', default: false },
  })
  if (values.help) { process.stdout.write(LOGITS_HELP + '\n'); return 0 }
  if (values.prompt === undefined) throw new InvalidArgumentError('missing -p PROMPT')
  const top = intOpt(values.top, 'top', 1, 20)!
  const model = await openModel(values, signal)
  const tokens = model.tokenize(values.prompt, { addBos: values['no-bos'] ? false : undefined })
  const positions = model.logits(tokens).map((l, pos) => ({ pos, top: topK(l, top) }))
  if (values.json) {
    printJson({ tokens, positions })
  } else {
    for (const { pos, top } of positions) {
      const piece = JSON.stringify(model.detokenize([tokens[pos]]))
      process.stdout.write(`${pos} ${tokens[pos]} ${piece}: ${top.map(([id, v]) => `${id}:${v.toFixed(4)}`).join(' ')}\n`)
    }
  }
  return 0
}

/** The k largest entries as [id, value], descending (ties: lower id first). */
export function topK(values: Float32Array, k: number): [number, number][] {
  const best: [number, number][] = []
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (best.length === k && v <= best[k - 1][1]) continue
    let j = best.length < k ? best.length : k - 1
    while (j > 0 && best[j - 1][1] < v) j--
    best.splice(j, 0, [i, v])
    if (best.length > k) best.pop()
  }
  return best
}
