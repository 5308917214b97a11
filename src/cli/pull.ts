/** `bitnet pull`: download a model into the cache (resumable, verified) without loading it. */
import { InvalidArgumentError } from '../errors.js'
import { DEFAULT_MODEL } from '../io/hub.js'
import { pullModel } from '../io/remote.js'
import { parse, printJson } from './common.js'
import { formatBytes, progressHandler, ProgressBar } from './progress.js'

export const PULL_HELP = `bitnet pull [MODEL] [options]
  MODEL                    hf:owner/repo[@rev][/file | :quant] or an http(s) URL
                           (default: ${DEFAULT_MODEL})
      --revision REV       branch, tag or commit (default main)
      --sha256 HEX         expected sha256 of the file (else the hub's, when it gives one)
      --cache-dir DIR      cache directory (default: BITNET_CACHE_DIR, XDG_CACHE_HOME/bitnet-wasm, ~/.cache/bitnet-wasm)
      --json               print {"kind", "path", "files": [{"url", "size", "sha256"}]}
  Hub: HF_TOKEN (token), BITNET_HF_ENDPOINT or HF_ENDPOINT (mirror).`

export async function pullCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(argv, {
    revision: { type: 'string' },
    sha256: { type: 'string' },
    'cache-dir': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }, true)
  if (values.help) { process.stdout.write(PULL_HELP + '\n'); return 0 }
  if (positionals.length > 1) throw new InvalidArgumentError(`pull takes one model, got ${positionals.length}`)
  if (values.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.sha256)) throw new InvalidArgumentError('--sha256 must be 64 hex digits')
  const bar = new ProgressBar('pull')
  let pulled
  try {
    pulled = await pullModel(positionals[0] ?? DEFAULT_MODEL, {
      revision: values.revision, sha256: values.sha256, cacheDir: values['cache-dir'], signal, onProgress: progressHandler(bar),
    })
  } finally {
    bar.done()
  }
  if (values.json) {
    printJson({ kind: pulled.kind, path: pulled.path, files: pulled.entries.map(({ url, size, sha256 }) => ({ url, size, sha256 })) })
  } else {
    const bytes = pulled.entries.reduce((s, e) => s + e.size, 0)
    process.stdout.write(`${pulled.path ?? pulled.entries[0].url}\n`)
    process.stderr.write(`[${pulled.entries.length} file${pulled.entries.length > 1 ? 's' : ''}, ${formatBytes(bytes)}, verified]\n`)
  }
  return 0
}
