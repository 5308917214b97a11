/** `bitnet cache ls | rm | dir`: inspect and prune the model cache. */
import { InvalidArgumentError } from '../errors.js'
import { ModelCache } from '../io/cache.js'
import { parse, printJson } from './common.js'
import { formatBytes } from './progress.js'

export const CACHE_HELP = `bitnet cache ls | rm ID... | rm --all | dir [options]
  ls                       cached files: size, state (complete or partial), URL; and the total
  rm ID...                 delete entries: a URL, hf:owner/repo/file, or hf:owner/repo (all its files)
  rm --all                 delete every entry
  dir                      print the cache location
      --cache-dir DIR      cache directory (default: BITNET_CACHE_DIR, XDG_CACHE_HOME/bitnet-wasm, ~/.cache/bitnet-wasm)
      --json               ls: {"dir", "total", "entries": [{"url", "size", "complete", "sha256", "path"}]}; rm: {"deleted"}`

export async function cacheCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    all: { type: 'boolean', default: false },
    'cache-dir': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }, true)
  const [sub, ...ids] = positionals
  if (values.help) { process.stdout.write(CACHE_HELP + '\n'); return 0 }
  const cache = await ModelCache.open({ cacheDir: values['cache-dir'] })
  if (sub === 'dir') {
    process.stdout.write(cache.location + '\n')
  } else if (sub === 'ls') {
    const entries = await cache.list()
    const total = entries.reduce((s, e) => s + e.size, 0)
    if (values.json) {
      printJson({ dir: cache.location, total, entries })
    } else {
      for (const e of entries) process.stdout.write(`${formatBytes(e.size).padStart(10)}  ${e.complete ? 'complete' : 'partial '}  ${e.url}\n`)
      process.stdout.write(`${formatBytes(total).padStart(10)}  total in ${cache.location}\n`)
    }
  } else if (sub === 'rm') {
    if (values.all === (ids.length > 0)) throw new InvalidArgumentError('cache rm takes IDs or --all (not both)')
    let deleted = 0
    if (values.all) {
      for (const e of await cache.list()) deleted += await cache.delete(e.url)
    } else {
      for (const id of ids) deleted += await cache.delete(id)
    }
    if (values.json) printJson({ deleted })
    else process.stderr.write(`deleted ${deleted} entr${deleted === 1 ? 'y' : 'ies'}\n`)
  } else {
    throw new InvalidArgumentError(`cache needs a subcommand: ls, rm or dir${sub ? ` (got '${sub}')` : ''}`)
  }
  return 0
}
