/** `bitnet run`: generate text after a prompt, streamed to stdout. */
import { MODEL_OPTIONS, intOpt, numOpt, openModel, parse, printJson } from './common.js'

export const RUN_HELP = `bitnet run [-m MODEL] -p PROMPT [options]
  -m, --model MODEL        GGUF path, http(s) URL or hf:owner/repo[/file | :quant]; remote models
                           are downloaded once into the cache (default: the official 2B4T GGUF)
  -p, --prompt TEXT        prompt (special tokens like <|eot_id|> are parsed)
  -n, --n-predict N        tokens to generate (default 128)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N
      --frequency-penalty F --presence-penalty P
      --seed N             sampling seed (reproducible)
      --no-bos             do not prepend BOS
      --ignore-eos         keep generating past end-of-generation tokens
  -c, --ctx N              context size (KV cache tokens)
  -t, --threads N          threads
      --json               print {"text","tokens","prompt_tokens","timings"}`

export async function runCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    prompt: { type: 'string', short: 'p' },
    'n-predict': { type: 'string', short: 'n' },
    temp: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    'repeat-penalty': { type: 'string' },
    'repeat-last-n': { type: 'string' },
    'frequency-penalty': { type: 'string' },
    'presence-penalty': { type: 'string' },
    seed: { type: 'string' },
    'no-bos': { type: 'boolean', default: false },
    'ignore-eos': { type: 'boolean', default: false },
  })
  if (values.help) { process.stdout.write(RUN_HELP + '\n'); return 0 }
  if (values.prompt === undefined) throw new (await import('../errors.js')).InvalidArgumentError('missing -p PROMPT')
  const model = await openModel(values, signal)
  const gen = model.generate(values.prompt, {
    maxTokens: intOpt(values['n-predict'], 'n-predict', 0, 128),
    temperature: numOpt(values.temp, 'temp'),
    topK: intOpt(values['top-k'], 'top-k', 0),
    topP: numOpt(values['top-p'], 'top-p'),
    minP: numOpt(values['min-p'], 'min-p'),
    repeatPenalty: numOpt(values['repeat-penalty'], 'repeat-penalty'),
    penaltyLastN: intOpt(values['repeat-last-n'], 'repeat-last-n', -1),
    frequencyPenalty: numOpt(values['frequency-penalty'], 'frequency-penalty'),
    presencePenalty: numOpt(values['presence-penalty'], 'presence-penalty'),
    seed: intOpt(values.seed, 'seed', 0),
    addBos: values['no-bos'] ? false : undefined,
    ignoreEos: values['ignore-eos'],
    signal,
  })
  if (!values.json) {
    for await (const chunk of gen) process.stdout.write(chunk.text)
    process.stdout.write('\n')
  }
  const r = await gen
  const t = r.timings
  if (values.json) {
    printJson({
      text: r.text,
      tokens: r.tokens,
      prompt_tokens: r.promptTokens,
      finish_reason: r.finishReason,
      timings: {
        prompt_ms: t.promptMs, ttft_ms: t.timeToFirstTokenMs, decode_ms: t.decodeMs,
        pp_tok_s: t.promptTokensPerSecond, tg_tok_s: t.decodeTokensPerSecond,
      },
    })
  } else {
    process.stderr.write(`[${r.promptTokens.length} prompt tokens: ${t.promptTokensPerSecond.toFixed(1)} tok/s; ` +
      `${r.tokens.length} generated: ${t.decodeTokensPerSecond.toFixed(1)} tok/s; ${r.finishReason}]\n`)
  }
  return 0
}
