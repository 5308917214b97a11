/**
 * The engine inside a dedicated Worker (bundled to dist/engine-worker.js): answers the
 * requests of src/worker.ts over ./protocol.ts. Compute threads, when there are any,
 * are this worker's own workers; the caller's thread only posts and receives messages.
 */
import type { BitnetModel } from '../api/bitnet-model.js'
import { InvalidArgumentError } from '../errors.js'
import { loadModel } from '../api/load-model.js'
import { postError, type Reply, type Request, type Results } from './protocol.js'

const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<Request>) => void) | null; postMessage(m: Reply): void }
const post = (r: Reply) => scope.postMessage(r)

let model: BitnetModel | undefined
const running = new Map<number, AbortController>()

scope.onmessage = (e) => {
  const req = e.data
  answer(req).then(
    (value) => post({ id: req.id, type: 'done', value }),
    (err: unknown) => post({ id: req.id, type: 'error', error: postError(err) }))
}

function loaded(): BitnetModel {
  if (!model) throw new InvalidArgumentError('no model is loaded in this worker (or it was disposed)')
  return model
}

async function answer(req: Request): Promise<Results[Request['op']]> {
  switch (req.op) {
    case 'load': {
      if (model) throw new InvalidArgumentError('this worker already holds a model')
      const m = model = await loadModel(req.source, {
        ...req.options,
        onProgress: (progress) => post({ id: req.id, type: 'progress', progress }),
        logger: { warn: (message) => post({ id: req.id, type: 'warn', message }) },
      })
      return { config: m.config, contextSize: m.contextSize, chatTemplate: m.chatTemplate, variant: m.variant, threads: m.threads }
    }
    case 'generate':
    case 'chat': {
      const m = loaded()
      const ctl = new AbortController()
      running.set(req.id, ctl)
      try {
        const opts = { ...req.options, signal: ctl.signal }
        const gen = req.op === 'chat' ? m.chat(req.messages, opts) : m.generate(req.prompt, opts)
        for await (const chunk of gen) {
          post({ id: req.id, type: 'chunk', chunk })
          // Decoding is synchronous per token: yield a task so an `abort` request gets in.
          await nextTask()
        }
        return await gen
      } finally {
        running.delete(req.id)
      }
    }
    case 'tokenize': return loaded().tokenize(req.text, { addBos: req.addBos })
    case 'detokenize': return loaded().detokenize(req.ids)
    case 'abort': running.get(req.target)?.abort(); return undefined
    case 'dispose': {
      const m = model
      model = undefined
      await m?.dispose()
      return undefined
    }
  }
}

/** Resolves in a new task (a MessageChannel round trip: unlike setTimeout, never clamped to 4 ms). */
function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel()
    ch.port1.onmessage = () => { ch.port1.close(); resolve() }
    ch.port2.postMessage(0)
  })
}
