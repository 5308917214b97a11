/**
 * `bitnet chat`: an interactive terminal chat on one session (KV cache reused across turns,
 * context shift keeping the system prompt). Ctrl-C stops the answer being written, not the
 * program; Ctrl-D or /exit quits.
 */
import { createInterface } from 'node:readline'
import type { ChatMessage } from '../tokenizer/chat-template.js'
import { MODEL_OPTIONS, draftOpt, intOpt, numOpt, openModel, parse } from './common.js'

export const CHAT_HELP = `bitnet chat [-m MODEL] [options]      interactive chat in the terminal
      --system TEXT        system prompt
  -n, --n-predict N        max tokens per answer (default 512)
      --temp T             temperature, 0 = greedy (default 0.8); --top-k/--top-p/--min-p, --seed N
      --ignore-eos         keep writing past end-of-generation tokens (until Ctrl-C or -n)
      --draft prompt-lookup  speculative decoding from text the conversation repeats (same output)
  in the chat: /reset (forget the conversation), /system TEXT (new system prompt, resets), /exit
  Ctrl-C stops the current answer; Ctrl-D quits`

const COMMANDS_HINT = 'commands: /reset, /system TEXT, /exit (Ctrl-C stops an answer, Ctrl-D quits)'

export async function chatCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    system: { type: 'string' },
    'n-predict': { type: 'string', short: 'n' },
    temp: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    seed: { type: 'string' },
    draft: { type: 'string' },
    'ignore-eos': { type: 'boolean', default: false },
  })
  if (values.help) { process.stdout.write(CHAT_HELP + '\n'); return 0 }
  const model = await openModel(values, signal)
  const session = model.createSession({ contextShift: true })
  const opts = {
    maxTokens: intOpt(values['n-predict'], 'n-predict', 1, 512),
    temperature: numOpt(values.temp, 'temp'),
    topK: intOpt(values['top-k'], 'top-k', 0),
    topP: numOpt(values['top-p'], 'top-p'),
    minP: numOpt(values['min-p'], 'min-p'),
    seed: intOpt(values.seed, 'seed', 0),
    draft: draftOpt(values.draft),
    ignoreEos: values['ignore-eos'],
  }
  let system = values.system
  let messages: ChatMessage[] = []
  const restart = () => { messages = system ? [{ role: 'system', content: system }] : [] }
  restart()

  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' })
  let answering: AbortController | undefined
  // Ctrl-C: a terminal delivers it to readline; a signal (no terminal) to the process.
  const interrupt = () => {
    if (answering) answering.abort()
    else { process.stdout.write(`\n(${COMMANDS_HINT})\n`); rl.prompt() }
  }
  rl.on('SIGINT', interrupt)
  process.on('SIGINT', interrupt)
  process.stdout.write(`${model.config.arch} · ${model.contextSize} tokens of context · ${COMMANDS_HINT}\n`)
  rl.prompt()
  try {
    for await (const line of rl) {
      const input = line.trim()
      if (input === '/exit' || input === '/quit') break
      if (input === '/reset') { restart(); session.reset(); process.stdout.write('(conversation cleared)\n') }
      else if (input === '/system' || input.startsWith('/system ')) {
        system = input.slice(7).trim() || undefined
        restart(); session.reset()
        process.stdout.write(system ? '(new system prompt; conversation cleared)\n' : '(system prompt removed; conversation cleared)\n')
      } else if (input.startsWith('/')) process.stdout.write(`(unknown command; ${COMMANDS_HINT})\n`)
      else if (input) {
        messages.push({ role: 'user', content: input })
        answering = new AbortController()
        const gen = session.chat(messages, { ...opts, signal: answering.signal })
        for await (const chunk of gen) process.stdout.write(chunk.text)
        const r = await gen
        answering = undefined
        messages.push({ role: 'assistant', content: r.text })
        process.stdout.write(r.finishReason === 'abort' ? ' [stopped]\n' : '\n')
      }
      rl.prompt()
    }
  } finally {
    process.off('SIGINT', interrupt)
    rl.close()
    await model.dispose()
  }
  return 0
}
