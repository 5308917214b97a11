/** `bitnet run`: generate text after a prompt, streamed to stdout. */
import { InvalidArgumentError } from '../errors.js'
import type { ResponseFormat } from '../grammar/response-format.js'
import { MODEL_OPTIONS, draftOpt, intOpt, numOpt, openModel, parse, printJson } from './common.js'

export const RUN_HELP = `bitnet run [-m MODEL] -p PROMPT [options]
  -m, --model MODEL        GGUF path, http(s) URL or hf:owner/repo[/file | :quant]; remote models
                           are downloaded once into the cache (default: the official 2B4T GGUF)
  -p, --prompt TEXT        prompt (special tokens like <|eot_id|> are parsed)
  -n, --n-predict N        tokens to generate (default 128)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N
      --frequency-penalty F --presence-penalty P --typical P
      --logit-bias ID(+|-)B   add B to token ID's logit; repeatable; ID-inf bans it (llama.cpp syntax)
  -j, --json-schema SCHEMA output JSON valid against SCHEMA (inline JSON; '{}' = any JSON object)
      --seed N             sampling seed (reproducible)
      --draft prompt-lookup  speculative decoding: drafts the tokens that followed a repeated
                           n-gram of the prompt or output, verified in one pass (same output)
      --no-bos             do not prepend BOS
      --ignore-eos         keep generating past end-of-generation tokens
  -c, --ctx N              context size (KV cache tokens)
      --kv-type auto|f16|f32 KV cache storage (default auto: f16, half the memory, once f32 takes ≥ 64 MiB)
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
    typical: { type: 'string' },
    'logit-bias': { type: 'string', multiple: true },
    'json-schema': { type: 'string', short: 'j' },
    seed: { type: 'string' },
    draft: { type: 'string' },
    'no-bos': { type: 'boolean', default: false },
    'ignore-eos': { type: 'boolean', default: false },
  })
  if (values.help) { process.stdout.write(RUN_HELP + '\n'); return 0 }
  if (values.prompt === undefined) throw new InvalidArgumentError('missing -p PROMPT')
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
    typicalP: numOpt(values.typical, 'typical'),
    logitBias: logitBiasOpt(values['logit-bias']),
    responseFormat: responseFormatOpt(values['json-schema']),
    seed: intOpt(values.seed, 'seed', 0),
    draft: draftOpt(values.draft),
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
        draft_tokens: t.draftTokens, draft_accepted: t.draftAccepted,
      },
    })
  } else {
    process.stderr.write(`[${r.promptTokens.length} prompt tokens: ${t.promptTokensPerSecond.toFixed(1)} tok/s; ` +
      `${r.tokens.length} generated: ${t.decodeTokensPerSecond.toFixed(1)} tok/s; ${r.finishReason}]\n`)
  }
  return 0
}

/** `--logit-bias 15043+1 --logit-bias 13-inf` -> { 15043: 1, 13: -Infinity }. */
function logitBiasOpt(items: string[] | undefined): Record<number, number> | undefined {
  if (!items) return undefined
  const bias: Record<number, number> = {}
  for (const item of items) {
    const m = /^(\d+)([+-])(inf|\d+(?:\.\d+)?)$/.exec(item)
    if (!m) throw new InvalidArgumentError(`--logit-bias: expected TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1, 13-inf), got '${item}'`)
    bias[Number(m[1])] = (m[2] === '-' ? -1 : 1) * (m[3] === 'inf' ? Infinity : Number(m[3]))
  }
  return bias
}

/** `-j SCHEMA`: '{}' means JSON mode (any object), as with llama.cpp's `-j '{}'`. */
function responseFormatOpt(text: string | undefined): ResponseFormat | undefined {
  if (text === undefined) return undefined
  let schema: unknown
  try { schema = JSON.parse(text) } catch { throw new InvalidArgumentError(`--json-schema: not valid JSON: ${text}`) }
  if (typeof schema === 'object' && schema !== null && Object.keys(schema).length === 0) return { type: 'json_object' }
  return { type: 'json_schema', schema: schema as never }
}
