/** `bitnet serve`: the OpenAI-compatible HTTP server (src/server/http.ts) until Ctrl-C. */
import { basename } from 'node:path'
import { DEFAULT_MODEL } from '../io/hub.js'
import type { Logger } from '../logger.js'
import { serve } from '../server/http.js'
import { MODEL_OPTIONS, draftOpt, intOpt, openModel, parse } from './common.js'
import { EMBED_OPTIONS, embedOptions } from './embed.js'

export const SERVE_HELP = `bitnet serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [options]
      --host HOST          interface to bind (default 127.0.0.1: this machine only)
      --port N             port (default 8080; 0 = any free port)
      --api-key KEY        require "Authorization: Bearer KEY" (not on /health)
      --parallel N         sequences generating at once, each with its own KV cache (default 1)
      --queue N            requests that may wait for a slot before HTTP 429 (default 64)
      --timeout S          seconds a request may wait + run (default 600)
      --max-body BYTES     largest request body (default 1048576)
      --cors               allow cross-origin requests from browsers
      --draft prompt-lookup  speculative decoding for every request (same responses; faster when answers quote the input)
      --quiet              no request log on stderr
      --pooling mean|last  how /v1/embeddings pools (default: the model's, else mean; always L2-normalised)
      --eos                /v1/embeddings appends EOS (default: the tokenizer's add_eos_token)
  -c, --ctx N              context size per sequence
      --kv-type auto|f16|f32 KV cache storage (default auto: f16, half the memory, once f32 takes ≥ 64 MiB)
  -t, --threads N          threads`

export async function serveCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'api-key': { type: 'string' },
    parallel: { type: 'string' },
    queue: { type: 'string' },
    timeout: { type: 'string' },
    'max-body': { type: 'string' },
    cors: { type: 'boolean', default: false },
    draft: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    ...EMBED_OPTIONS,
  })
  if (values.help) { process.stdout.write(SERVE_HELP + '\n'); return 0 }
  const port = intOpt(values.port, 'port', 0, 8080)!
  const parallel = intOpt(values.parallel, 'parallel', 1, 1)!
  const model = await openModel(values, signal)
  const logger: Logger = {
    info: values.quiet ? undefined : (m, d) => process.stderr.write(`${new Date().toISOString()} ${m}${d ? ' ' + JSON.stringify(d) : ''}\n`),
    error: (m, d) => process.stderr.write(`${new Date().toISOString()} ERROR ${m}${d ? ' ' + JSON.stringify(d) : ''}\n`),
  }
  const srv = await serve(model, {
    host: values.host,
    port,
    apiKey: values['api-key'],
    parallel,
    maxQueue: intOpt(values.queue, 'queue', 0),
    timeoutMs: (intOpt(values.timeout, 'timeout', 1) ?? 600) * 1000,
    maxBodyBytes: intOpt(values['max-body'], 'max-body', 1),
    cors: values.cors,
    draft: draftOpt(values.draft),
    modelId: basename(values.model ?? DEFAULT_MODEL),
    embedding: embedOptions(values, true),
    logger,
  })
  // The first stdout line says where it listens (scripts and tests wait for it).
  process.stdout.write(`listening on ${srv.url}\n`)
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  process.stderr.write('shutting down\n')
  await srv.close()
  await model.dispose()
  return 0
}
