#!/usr/bin/env node
/**
 * The `bitnet` command line. One subcommand per file in src/cli/.
 */
import { BENCH_HELP, benchCommand } from './cli/bench.js'
import { CACHE_HELP, cacheCommand } from './cli/cache.js'
import { CHAT_HELP, chatCommand } from './cli/chat.js'
import { reportError } from './cli/common.js'
import { CONVERT_HELP, convertCommand } from './cli/convert.js'
import { EMBED_HELP, embedCommand } from './cli/embed.js'
import { INFO_HELP, infoCommand } from './cli/info.js'
import { LOGITS_HELP, logitsCommand } from './cli/logits.js'
import { PPL_HELP, pplCommand } from './cli/ppl.js'
import { PULL_HELP, pullCommand } from './cli/pull.js'
import { RUN_HELP, runCommand } from './cli/run.js'
import { SERVE_HELP, serveCommand } from './cli/serve.js'
import { InvalidArgumentError } from './errors.js'

const COMMANDS: Record<string, (argv: string[], signal: AbortSignal) => Promise<number>> = {
  run: runCommand,
  logits: logitsCommand,
  embed: embedCommand,
  ppl: pplCommand,
  info: (argv) => infoCommand(argv),
  bench: benchCommand,
  serve: serveCommand,
  chat: chatCommand,
  convert: convertCommand,
  pull: pullCommand,
  cache: (argv) => cacheCommand(argv),
}

const HELP = `bitnet: BitNet b1.58 ternary language models in WebAssembly

commands:
${[RUN_HELP, LOGITS_HELP, EMBED_HELP, PPL_HELP, INFO_HELP, BENCH_HELP, SERVE_HELP, CHAT_HELP, CONVERT_HELP, PULL_HELP, CACHE_HELP].map((h) => '  ' + h.split('\n')[0]).join('\n')}

run "bitnet <command> --help" for the options of a command.`

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  const json = rest.includes('--json')
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP + '\n')
    return cmd ? 0 : 2
  }
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  try {
    const command = COMMANDS[cmd]
    if (!command) throw new InvalidArgumentError(`unknown command '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')})`)
    return await command(rest, controller.signal)
  } catch (e) {
    return reportError(e, json)
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code })
