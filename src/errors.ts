/**
 * Typed errors. Every failure a user can cause (a bad file, a full context, a missing
 * wasm feature) is one of these classes, with a stable `code` for programs and a message
 * that names the problem: file, offset, expected vs found.
 *
 * @example
 * ```ts
 * try { await loadModel('model.gguf') }
 * catch (e) { if (e instanceof ModelFormatError) console.error(e.code, e.file, e.offset) }
 * ```
 */
export class BitnetError extends Error {
  /** Stable machine-readable code, e.g. `MODEL_FORMAT`. */
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** Details attached to a {@link ModelFormatError}. */
export interface FormatErrorDetails {
  /** File (or source name) being parsed. */
  file?: string
  /** Byte offset of the offending field, when known. */
  offset?: number
  /** What a valid file would have. */
  expected?: string
  /** What the file has. */
  found?: string
}

/** A model, tokenizer or config file is malformed, truncated or inconsistent. */
export class ModelFormatError extends BitnetError {
  readonly file?: string
  readonly offset?: number
  readonly expected?: string
  readonly found?: string
  constructor(problem: string, details: FormatErrorDetails = {}) {
    const where = [
      details.file,
      details.offset !== undefined ? `offset ${details.offset}` : undefined,
    ].filter(Boolean).join(' @ ')
    const diff = [
      details.expected !== undefined ? `expected ${details.expected}` : undefined,
      details.found !== undefined ? `found ${details.found}` : undefined,
    ].filter(Boolean).join(', ')
    super('MODEL_FORMAT', `${where ? where + ': ' : ''}${problem}${diff ? ` (${diff})` : ''}`)
    Object.assign(this, details)
  }
}

/** The file is valid but uses something this engine does not implement (a tensor type, an architecture). */
export class UnsupportedFeatureError extends BitnetError {
  constructor(message: string) {
    super('UNSUPPORTED', message)
  }
}

/**
 * A model of a ternary-capable architecture whose projections are not ternary: a plain
 * full-precision Llama checkpoint or GGUF (not a 1.58-bit one). Running it ternarized would
 * compute garbage, so it is refused. `tensor` is the first projection checked, `found` what it holds.
 */
export class NotTernaryError extends UnsupportedFeatureError {
  readonly tensor: string
  readonly found: string
  readonly file?: string
  constructor(tensor: string, found: string, file?: string) {
    super(`${file ? file + ': ' : ''}tensor '${tensor}' holds ${found}, not ternary values: this is a full-precision model ` +
      '(or latent training weights, such as a `prequantized` revision), not a BitNet b1.58 release. This engine only runs ' +
      'ternary models (I2_S/TQ/TL files, packed or ternary-valued checkpoints); use the 1.58-bit release of the model, ' +
      'or a general-purpose engine for this one')
    this.tensor = tensor
    this.found = found
    this.file = file
  }
}

/** The KV cache has no room for more tokens. */
export class ContextFullError extends BitnetError {
  readonly contextSize: number
  readonly requested: number
  constructor(contextSize: number, requested: number) {
    super('CONTEXT_FULL', `context is full: ${requested} tokens requested, context size is ${contextSize}`)
    this.contextSize = contextSize
    this.requested = requested
  }
}

/** The runtime lacks a WebAssembly feature the engine needs (SIMD128, threads). */
export class WasmFeatureError extends BitnetError {
  constructor(message: string) {
    super('WASM_FEATURE', message)
  }
}

/** Invalid arguments or options given by the caller. */
export class InvalidArgumentError extends BitnetError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message)
  }
}

/** Numerical failure (NaN/Inf) detected in weights or activations. */
export class NumericalError extends BitnetError {
  /** The tensor holding a non-finite weight (load-time checks). */
  readonly tensor?: string
  /** The first layer whose output went non-finite (per-step checks). */
  readonly layer?: number
  constructor(message: string, details: { tensor?: string, layer?: number } = {}) {
    super('NUMERICAL', message)
    this.tensor = details.tensor
    this.layer = details.layer
  }
}

/**
 * Untrusted input asked for more than a configured bound allows (a chat template's steps, output
 * or time; a wasm memory larger than the runtime can give). `limit` names the bound, `max` is its
 * value and `needed` what the input asked for, when known.
 *
 * @example
 * ```ts
 * try { model.applyChatTemplate(messages) }
 * catch (e) { if (e instanceof ResourceLimitError) console.error(e.limit, e.max) }
 * ```
 */
export class ResourceLimitError extends BitnetError {
  readonly limit: string
  readonly max: number
  readonly needed?: number
  constructor(limit: string, max: number, message: string, needed?: number) {
    super('RESOURCE_LIMIT', message)
    this.limit = limit
    this.max = max
    this.needed = needed
  }
}

/**
 * The object was disposed (`model.dispose()`), so it cannot compute any more; a generation
 * running at that moment ends with this error instead of waiting for stopped threads.
 */
export class DisposedError extends BitnetError {
  constructor(message: string) {
    super('DISPOSED', message)
  }
}

/** A download failed: the server answered with an error, or the connection broke off too often. */
export class DownloadError extends BitnetError {
  /** The URL being fetched. */
  readonly url: string
  /** HTTP status, when the server answered. */
  readonly status?: number
  constructor(url: string, message: string, options: { status?: number; cause?: unknown; code?: string } = {}) {
    super(options.code ?? 'DOWNLOAD', `${url}: ${message}`, { cause: options.cause })
    this.url = url
    this.status = options.status
  }
}

/** The server has no such file (HTTP 404), or an `hf:` repository has no file matching the request. */
export class NotFoundError extends DownloadError {
  constructor(url: string, message = 'not found (HTTP 404)', status = 404) {
    super(url, message, { status, code: 'NOT_FOUND' })
  }
}

/** Downloaded or cached bytes do not match their expected size or sha256. */
export class IntegrityError extends BitnetError {
  readonly file: string
  readonly expected: string
  readonly found: string
  constructor(file: string, what: 'size' | 'sha256', expected: string, found: string) {
    super('INTEGRITY', `${file}: ${what} mismatch (expected ${expected}, found ${found})`)
    this.file = file
    this.expected = expected
    this.found = found
  }
}

/** A worker thread (a compute worker or the engine's own Worker) failed or stopped responding. */
export class WorkerError extends BitnetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WORKER', message, options)
  }
}

/**
 * A generation was stopped through its `AbortSignal` and the caller asked to be told by an
 * error (`throwOnAbort: true`); `partialText` holds what was generated before the abort.
 * Without `throwOnAbort` an abort resolves normally with `finishReason: 'abort'`.
 */
export class AbortError extends BitnetError {
  readonly partialText: string
  constructor(partialText: string) {
    super('ABORTED', 'the generation was aborted')
    this.partialText = partialText
  }
}

/** An operation needs a session (or the model's default session) that is busy generating. */
export class BusyError extends BitnetError {
  constructor(message: string) {
    super('BUSY', message)
  }
}

/** The server's request queue is full (HTTP 429); retry later. */
export class QueueFullError extends BitnetError {
  constructor(message: string) {
    super('QUEUE_FULL', message)
  }
}

/** A request waited or ran longer than its time limit (HTTP 503 while queued). */
export class TimeoutError extends BitnetError {
  constructor(message: string) {
    super('TIMEOUT', message)
  }
}

/** A client sent its request body too slowly (HTTP 408): a slowloris connection is cut. */
export class RequestTimeoutError extends BitnetError {
  constructor(ms: number) {
    super('REQUEST_TIMEOUT', `the request body did not arrive within ${ms} ms`)
  }
}

/** A request body is larger than the server accepts (HTTP 413). */
export class PayloadTooLargeError extends BitnetError {
  constructor(limit: number) {
    super('PAYLOAD_TOO_LARGE', `the request body is larger than ${limit} bytes`)
  }
}
