/**
 * Pieces every CLI command shares: option parsing, model loading with a progress bar,
 * JSON output and the error contract (non-zero exit, `{"error": {code, message}}` on
 * stderr with --json).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { BitnetModel } from '../api/bitnet-model.js'
import { BitnetError, InvalidArgumentError } from '../errors.js'
import { loadModel } from '../api/load-model.js'
import type { KernelVariant } from '../runtime/wasm.js'
import { KV_TYPES } from '../model/transformer.js'
import { DEFAULT_MODEL } from '../io/hub.js'
import { progressHandler, ProgressBar } from './progress.js'

export type Options = NonNullable<ParseArgsConfig['options']>
type ParsedArgs<T extends Options> = ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>>

/** Options of every model command. */
export const MODEL_OPTIONS = {
  model: { type: 'string', short: 'm' },
  ctx: { type: 'string', short: 'c' },
  threads: { type: 'string', short: 't' },
  'output-type': { type: 'string' },
  'kv-type': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies Options

/** Parses argv strictly: unknown flags are errors, not silently ignored. */
export function parse<T extends Options>(argv: string[], options: T, allowPositionals = false): ParsedArgs<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as ParsedArgs<T>
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message)
  }
}

/** An integer option, validated. */
export function intOpt(v: string | undefined, name: string, min: number, fallback?: number): number | undefined {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`--${name} must be an integer ≥ ${min}, got '${v}'`)
  return n
}

/** An option restricted to a list of values. */
export function oneOf<T extends string>(v: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined
  if (!(allowed as readonly string[]).includes(v)) throw new InvalidArgumentError(`--${name} must be one of ${allowed.join(', ')}, got '${v}'`)
  return v as T
}

/** A number option, validated. */
/** `--draft prompt-lookup` (GenerateOptions.draft); undefined when not given. */
export function draftOpt(v: string | undefined): 'prompt-lookup' | undefined {
  if (v === undefined) return undefined
  if (v !== 'prompt-lookup') throw new InvalidArgumentError(`--draft: the one drafter is 'prompt-lookup', got '${v}'`)
  return v
}

export function numOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`--${name} must be a number, got '${v}'`)
  return n
}

/** Loads `-m MODEL` with a progress bar on the terminal. */
export async function openModel(values: { model?: string; ctx?: string; threads?: string; 'output-type'?: string; 'kv-type'?: string }, signal?: AbortSignal, variant?: KernelVariant): Promise<BitnetModel> {
  if (!values.model) process.stderr.write(`bitnet: no -m given, using ${DEFAULT_MODEL}\n`)
  const bar = new ProgressBar('loading')
  try {
    return await loadModel(values.model ?? DEFAULT_MODEL, {
      contextSize: intOpt(values.ctx, 'ctx', 1),
      threads: intOpt(values.threads, 'threads', 1),
      variant,
      outputType: oneOf(values['output-type'], 'output-type', ['auto', 'f16', 'q8', 'q6', 'q4', 'q4+q8'] as const),
      kvType: oneOf(values['kv-type'], 'kv-type', ['auto', ...KV_TYPES]),
      signal,
      onProgress: progressHandler(bar),
    })
  } finally {
    bar.done()
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n')
}

/** Reports an error the CLI way and returns the exit code. */
export function reportError(e: unknown, json: boolean): number {
  const code = e instanceof BitnetError ? e.code : 'INTERNAL'
  const message = e instanceof Error ? e.message : String(e)
  if (json) process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n')
  else process.stderr.write(`bitnet: ${message}\n`)
  if (!(e instanceof BitnetError) && e instanceof Error && process.env.BITNET_DEBUG) process.stderr.write(`${e.stack}\n`)
  return e instanceof InvalidArgumentError ? 2 : 1
}
