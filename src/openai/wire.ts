/**
 * The OpenAI wire format: request bodies of /v1/chat/completions and /v1/completions →
 * a prompt and GenerateOptions; results → response objects and SSE chunks; /v1/embeddings. Field names
 * and shapes follow the OpenAI API reference (llama-server's extras `top_k`, `min_p`,
 * `repeat_penalty`, `typical_p` are accepted too).
 */
import type { EmbedOptions } from '../api/options.js'
import type { ModelConfig } from '../model/config.js'
import type { ChatMessage } from '../tokenizer/chat-template.js'
import { InvalidArgumentError } from '../errors.js'
import type { GenerateOptions, Generation, GenerationChunk, GenerationResult } from '../generation/generation.js'
import type { JsonSchema } from '../grammar/json-schema.js'
import { createResponseConstraint, type ResponseFormat } from '../grammar/response-format.js'
import type { BitnetTokenizer } from '../tokenizer/tokenizer.js'

export type Kind = 'chat' | 'text'

/**
 * What the wire format uses of a model. BitnetModel has it; declaring it here keeps the
 * OpenAI layer from importing the model (which imports this layer for `model.openai()`).
 */
export interface OpenAIModel {
  readonly config: Pick<ModelConfig, 'vocabSize' | 'nEmbd'>
  readonly contextSize: number
  readonly tokenizer: BitnetTokenizer
  tokenize(text: string, opts?: { addBos?: boolean }): number[]
  applyChatTemplate(messages: readonly ChatMessage[]): string
  embed(text: string | readonly number[], opts?: EmbedOptions): Float32Array
  embeddingIds(text: string | readonly number[], opts?: EmbedOptions): number[]
}

/** A parsed request: what to generate and how to answer. */
export interface CompletionRequest {
  kind: Kind
  /** Chat messages (kind 'chat'). */
  messages?: ChatMessage[]
  /** Prompt text or token ids (kind 'text'). */
  prompt?: string | number[]
  /** Requested max tokens (undefined: until the context is full). */
  maxTokens?: number
  options: GenerateOptions
  stream: boolean
  includeUsage: boolean
}

type Body = Record<string, unknown>

const bad = (param: string, message: string): never => { throw Object.assign(new InvalidArgumentError(message), { param }) }

function num(b: Body, key: string, min = -Infinity, max = Infinity): number | undefined {
  const v = b[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) bad(key, `'${key}' must be a number in [${min}, ${max}]`)
  return v as number
}

function int(b: Body, key: string, min: number): number | undefined {
  const v = num(b, key, min)
  if (v !== undefined && !Number.isInteger(v)) bad(key, `'${key}' must be an integer`)
  return v
}

// Message content: a string, or an array of {type:'text', text} parts (joined).
function content(m: Record<string, unknown>, i: number): string {
  const c = m.content
  if (typeof c === 'string') return c
  if (c === null || c === undefined) return ''
  if (Array.isArray(c) && c.every((p) => p && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string')) {
    return c.map((p) => p.text).join('')
  }
  return bad(`messages[${i}].content`, 'message content must be a string or an array of text parts')
}

/**
 * Fields a request may carry: the ones parsed below, plus OpenAI's bookkeeping fields that do not
 * change the output (`model`, `user`, `store`, `metadata`, `service_tier`). Anything else is a
 * 400 naming the field (as the OpenAI API answers), never silently ignored.
 */
const FIELDS = new Set(['model', 'user', 'store', 'metadata', 'service_tier', 'stream', 'stream_options', 'n', 'logprobs',
  'response_format', 'max_tokens', 'max_completion_tokens', 'stop', 'temperature', 'top_p', 'top_k', 'min_p',
  'frequency_penalty', 'presence_penalty', 'repeat_penalty', 'seed', 'top_logprobs', 'typical_p', 'logit_bias'])

/** Validates a request body; throws InvalidArgumentError (with `param`) naming the bad field. */
export function parseRequest(kind: Kind, body: unknown): CompletionRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) bad('', 'the request body must be a JSON object')
  const b = body as Body
  const unknown = Object.keys(b).find((k) => !FIELDS.has(k) && k !== (kind === 'chat' ? 'messages' : 'prompt'))
  if (unknown !== undefined) bad(unknown, `unrecognized request argument '${unknown.slice(0, 64)}'`)
  const req: CompletionRequest = { kind, options: {}, stream: b.stream === true, includeUsage: false }
  if (kind === 'chat') {
    if (!Array.isArray(b.messages) || b.messages.length === 0) bad('messages', "'messages' must be a non-empty array")
    req.messages = (b.messages as unknown[]).map((m, i) => {
      if (!m || typeof m !== 'object' || typeof (m as Body).role !== 'string') bad(`messages[${i}]`, 'each message needs a string role')
      return { role: (m as Body).role as string, content: content(m as Body, i) }
    })
  } else {
    let p = b.prompt
    if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0]
    const ids = Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t) && t >= 0)
    if (typeof p !== 'string' && !ids) bad('prompt', "'prompt' must be a string or an array of token ids (one prompt per request)")
    req.prompt = p as string | number[]
  }
  if ((b.n ?? 1) !== 1) bad('n', "only 'n': 1 is supported")
  const so = b.stream_options as Body | undefined
  req.includeUsage = req.stream && so?.include_usage === true
  req.maxTokens = int(b, 'max_completion_tokens', 0) ?? int(b, 'max_tokens', 0) ?? (kind === 'text' ? 16 : undefined)
  let stop = b.stop
  if (typeof stop === 'string') stop = [stop]
  if (stop !== undefined && stop !== null && (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || !s))) {
    bad('stop', "'stop' must be a string or an array of non-empty strings")
  }
  // OpenAI defaults: temperature 1, top_p 1; no top-k / min-p unless asked (llama-server extras).
  req.options = {
    temperature: num(b, 'temperature', 0, 2) ?? 1,
    topP: num(b, 'top_p', 0, 1) ?? 1,
    topK: int(b, 'top_k', 0) ?? 0,
    minP: num(b, 'min_p', 0, 1) ?? 0,
    frequencyPenalty: num(b, 'frequency_penalty', -2, 2),
    presencePenalty: num(b, 'presence_penalty', -2, 2),
    repeatPenalty: num(b, 'repeat_penalty', 0),
    typicalP: num(b, 'typical_p', 0, 1),
    logitBias: logitBias(b.logit_bias),
    seed: int(b, 'seed', 0),
    stop: (stop as string[] | undefined) ?? undefined,
  }
  if (req.options.topP === 0) bad('top_p', "'top_p' must be > 0")
  Object.assign(req.options, logprobOptions(kind, b), { responseFormat: responseFormat(b.response_format) })
  return req
}

// Chat: `logprobs: true` + `top_logprobs: 0..20`; completions: `logprobs: 0..5` (alternatives).
function logprobOptions(kind: Kind, b: Body): Pick<GenerateOptions, 'logprobs' | 'topLogprobs'> {
  if (kind === 'text') {
    const n = int(b, 'logprobs', 0)
    if (n !== undefined && n > 5) bad('logprobs', "'logprobs' must be in 0..5")
    return n === undefined ? {} : { logprobs: true, topLogprobs: n }
  }
  if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'boolean') bad('logprobs', "'logprobs' must be a boolean")
  const top = int(b, 'top_logprobs', 0)
  if (top !== undefined && (top > 20 || b.logprobs !== true)) bad('top_logprobs', "'top_logprobs' must be in 0..20 and needs 'logprobs': true")
  return b.logprobs === true ? { logprobs: true, topLogprobs: top ?? 0 } : {}
}

// OpenAI `logit_bias`: {"token id": bias in −100..100}; −100 bans the token.
function logitBias(v: unknown): Record<number, number> | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) return bad('logit_bias', "'logit_bias' must be an object of token id → bias")
  return Object.fromEntries(Object.entries(v as Body).map(([id, bias]) => {
    if (!/^\d+$/.test(id) || typeof bias !== 'number' || !(bias >= -100 && bias <= 100)) bad('logit_bias', `'logit_bias' entry ${id}: ${String(bias)} is not a token id → number in −100..100`)
    return [Number(id), bias === -100 ? -Infinity : bias as number]
  }))
}

// OpenAI `response_format` → the library's ResponseFormat.
function responseFormat(v: unknown): ResponseFormat | undefined {
  if (v === undefined || v === null) return undefined
  const rf = v as Body
  if (rf.type === 'text' || rf.type === 'json_object') return { type: rf.type }
  if (rf.type === 'json_schema') {
    const js = rf.json_schema as Body | undefined
    if (!js || typeof js.schema !== 'object' || js.schema === null) bad('response_format.json_schema.schema', "'json_schema' needs a 'schema' object")
    return { type: 'json_schema', schema: js!.schema as JsonSchema }
  }
  return bad('response_format.type', "response_format 'type' must be 'text', 'json_object' or 'json_schema'")
}

/**
 * Log-probabilities of chunks in the wire format: chat `{content: [{token, logprob, bytes,
 * top_logprobs}]}`, completions `{tokens, token_logprobs, top_logprobs, text_offset}`.
 * Null when none were asked for.
 */
export function logprobsOf(kind: Kind, tok: BitnetTokenizer, chunks: readonly GenerationChunk[] | undefined, textOffset = 0): Record<string, unknown> | null {
  if (!chunks) return null
  const piece = (id: number) => tok.tokenToPiece(id)
  if (kind === 'chat') {
    const entry = (token: number, logprob: number) => ({ token: piece(token), logprob, bytes: Array.from(tok.tokenToBytes(token)) })
    return {
      content: chunks.map((c) => ({ ...entry(c.tokenId, c.logprob!), top_logprobs: (c.topLogprobs ?? []).map((t) => entry(t.token, t.logprob)) })),
    }
  }
  let offset = textOffset
  const text_offset = chunks.map((c) => { const o = offset; offset += piece(c.tokenId).length; return o })
  return {
    tokens: chunks.map((c) => piece(c.tokenId)),
    token_logprobs: chunks.map((c) => c.logprob!),
    top_logprobs: chunks.map((c) => Object.fromEntries((c.topLogprobs ?? []).map((t) => [piece(t.token), t.logprob]))),
    text_offset,
  }
}

const FINISH: Record<GenerationResult['finishReason'], string> = { stop: 'stop', length: 'length', abort: 'length' }

/** Identity of one response: every chunk of a stream repeats it. */
export interface ResponseMeta {
  id: string
  created: number
  model: string
}

/** The /v1/models answer: the one model served. */
export function modelList(id: string): { object: 'list'; data: { id: string; object: 'model'; created: number; owned_by: string }[] } {
  return { object: 'list', data: [{ id, object: 'model', created: 0, owned_by: 'bitnet-wasm' }] }
}

export function newMeta(kind: Kind, model: string): ResponseMeta {
  return { id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomUUID()}`, created: Math.floor(Date.now() / 1000), model }
}

export function usage(r: GenerationResult): Record<string, unknown> {
  return {
    prompt_tokens: r.usage.promptTokens,
    completion_tokens: r.usage.completionTokens,
    total_tokens: r.usage.totalTokens,
    prompt_tokens_details: { cached_tokens: r.usage.cachedTokens },
  }
}

/** The non-streaming response. */
export function completion(kind: Kind, meta: ResponseMeta, r: GenerationResult, tok: BitnetTokenizer): Record<string, unknown> {
  const finish_reason = FINISH[r.finishReason]
  const logprobs = logprobsOf(kind, tok, r.logprobs)
  const choice = kind === 'chat'
    ? { index: 0, message: { role: 'assistant', content: r.text }, logprobs, finish_reason }
    : { index: 0, text: r.text, logprobs, finish_reason }
  return { ...meta, object: kind === 'chat' ? 'chat.completion' : 'text_completion', choices: [choice], usage: usage(r) }
}

/**
 * One SSE chunk: text (`finish` null), the final chunk (`finish` set, empty text), or the
 * usage chunk (`usage` set, no choices). The first chat chunk carries the role.
 */
export function chunk(kind: Kind, meta: ResponseMeta, text: string, finish: string | null, opts: { role?: boolean; usage?: Record<string, unknown>; logprobs?: Record<string, unknown> | null } = {}): Record<string, unknown> {
  const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'
  if (opts.usage) return { ...meta, object, choices: [], usage: opts.usage }
  const delta: Record<string, string> = {}
  if (opts.role) delta.role = 'assistant'
  if (text || opts.role) delta.content = text
  const logprobs = opts.logprobs ?? null
  const choice = kind === 'chat'
    ? { index: 0, delta, logprobs, finish_reason: finish }
    : { index: 0, text, logprobs, finish_reason: finish }
  return { ...meta, object, choices: [choice] }
}

/** The finish reason as OpenAI names it. */
export function finishReason(r: GenerationResult): string {
  return FINISH[r.finishReason]
}

/**
 * The prompt's token ids and the token budget, checked against the model before any work: a
 * 400 naming the field (max_tokens, prompt, messages, response_format), not a clamp or an
 * engine error.
 */
export function preparePrompt(model: OpenAIModel, r: CompletionRequest): { tokens: number[]; maxTokens: number } {
  if (r.maxTokens !== undefined && r.maxTokens >= model.contextSize) {
    bad('max_tokens', `max_tokens ${r.maxTokens} is larger than the context (${model.contextSize} tokens)`)
  }
  const tokens = r.kind === 'chat'
    ? model.tokenize(model.applyChatTemplate(r.messages!), { addBos: false })
    : typeof r.prompt === 'string' ? model.tokenize(r.prompt) : r.prompt!
  const vocab = model.config.vocabSize
  const outside = tokens.find((t) => t >= vocab)
  if (outside !== undefined) bad('prompt', `token id ${outside} is not in the vocabulary (size ${vocab})`)
  const room = model.contextSize - 1 - tokens.length
  if (room < 1) {
    throw Object.assign(new InvalidArgumentError(`the prompt has ${tokens.length} tokens; the context holds ${model.contextSize}`), { param: 'messages', openaiCode: 'context_length_exceeded' })
  }
  createResponseConstraint(r.options.responseFormat, model.tokenizer) // a bad schema fails here (compiled once, cached)
  return { tokens, maxTokens: Math.min(r.maxTokens ?? room, room) }
}

/**
 * A streamed response's chunks in order: the role (chat), text with its log-probabilities,
 * the finish reason, then usage when asked. Ends when the generation does.
 */
export async function* responseChunks(r: CompletionRequest, meta: ResponseMeta, gen: Generation, tok: BitnetTokenizer): AsyncGenerator<Record<string, unknown>> {
  if (r.kind === 'chat') yield chunk(r.kind, meta, '', null, { role: true })
  let offset = 0
  for await (const c of gen) {
    const logprobs = c.logprob !== undefined ? logprobsOf(r.kind, tok, [c], offset) : null
    if (c.text || logprobs) yield chunk(r.kind, meta, c.text, null, { logprobs })
    offset += c.text.length
  }
  const result = await gen
  yield chunk(r.kind, meta, '', finishReason(result))
  if (r.includeUsage) yield chunk(r.kind, meta, '', null, { usage: usage(result) })
}

/** Mean-pooled and L2-normalised, as OpenAI's and llama-server's embeddings are unit vectors. */
export const DEFAULT_EMBEDDING: EmbedOptions = { normalize: true }

/** A parsed /v1/embeddings request: texts or token-id lists, and the wire encoding. */
export interface EmbeddingRequest {
  inputs: (string | number[])[]
  /** `encoding_format: 'base64'` (the `openai` package asks for it): little-endian f32 bytes. */
  base64: boolean
}

const EMBEDDING_FIELDS = new Set(['model', 'user', 'input', 'encoding_format', 'dimensions'])
const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0)

/**
 * Validates an embeddings body (OpenAI: `input` a string, an array of strings, an array of token
 * ids or of id arrays); `dimensions` is accepted only as the model's own width (no truncation).
 */
export function parseEmbeddingRequest(body: unknown, nEmbd: number): EmbeddingRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) bad('', 'the request body must be a JSON object')
  const b = body as Body
  const unknown = Object.keys(b).find((k) => !EMBEDDING_FIELDS.has(k))
  if (unknown !== undefined) bad(unknown, `unrecognized request argument '${unknown.slice(0, 64)}'`)
  const input = b.input
  const inputs = typeof input === 'string' || isIds(input) ? [input]
    : Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string' || isIds(x)) ? input as (string | number[])[]
      : bad('input', "'input' must be a string, an array of strings, an array of token ids or an array of such arrays")
  if (inputs.some((x) => x.length === 0)) bad('input', "'input' must not contain empty strings")
  if (b.encoding_format !== undefined && b.encoding_format !== 'float' && b.encoding_format !== 'base64') {
    bad('encoding_format', "'encoding_format' must be 'float' or 'base64'")
  }
  if (b.dimensions !== undefined && b.dimensions !== nEmbd) bad('dimensions', `'dimensions' must be the model's width ${nEmbd} (no truncation)`)
  return { inputs, base64: b.encoding_format === 'base64' }
}

/** An embeddings response (OpenAI's `CreateEmbeddingResponse`). */
export interface EmbeddingResponse {
  object: 'list'
  /** `embedding`: floats, or base64 of little-endian f32 bytes (`encoding_format: 'base64'`). */
  data: { object: 'embedding'; index: number; embedding: number[] | string }[]
  model: string
  usage: { prompt_tokens: number; total_tokens: number }
}

/** The embeddings response: one vector per input, in order, and the tokens read. */
export function embeddingResponse(model: OpenAIModel, r: EmbeddingRequest, modelId: string, opts: EmbedOptions): EmbeddingResponse {
  let tokens = 0
  const data = r.inputs.map((input, index) => {
    const ids = model.embeddingIds(input, opts)
    tokens += ids.length
    const v = model.embed(ids, { ...opts, appendEos: false })
    const embedding = r.base64 ? base64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) : Array.from(v)
    return { object: 'embedding' as const, index, embedding }
  })
  return { object: 'list', data, model: modelId, usage: { prompt_tokens: tokens, total_tokens: tokens } }
}

/** Base64 of bytes with the web platform's `btoa` (this module also runs in browsers: model.openai()). */
function base64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}
