/**
 * The OpenAI client's shape, in process: `model.openai()` answers the request bodies that
 * `bitnet serve` (and api.openai.com) take with the same objects, without HTTP. Code written
 * against the `openai` package (`client.chat.completions.create(…)`) runs on a local model by
 * swapping the client. Requests go through the same parser as the server (wire.ts):
 * an unknown or bad field is an InvalidArgumentError naming it (`param`).
 */
import type { EmbedOptions } from '../api/options.js'
import type { Session } from '../generation/session.js'
import {
  completion, DEFAULT_EMBEDDING, embeddingResponse, modelList, newMeta, parseEmbeddingRequest, parseRequest, preparePrompt, responseChunks, type EmbeddingResponse, type Kind, type OpenAIModel,
} from './wire.js'

/** Fields shared by both endpoints (OpenAI names; `top_k`, `min_p`, `repeat_penalty`, `typical_p` as in llama-server). */
export interface CompletionCreateBase {
  model?: string
  max_tokens?: number | null
  max_completion_tokens?: number | null
  temperature?: number | null
  top_p?: number | null
  top_k?: number
  min_p?: number
  typical_p?: number
  frequency_penalty?: number | null
  presence_penalty?: number | null
  repeat_penalty?: number
  seed?: number | null
  stop?: string | string[] | null
  logit_bias?: Record<string, number> | null
  stream?: boolean | null
  stream_options?: { include_usage?: boolean } | null
  n?: number | null
  user?: string
}

/** A chat completion request (`messages` content: text, or text parts). */
export interface ChatCompletionCreateParams extends CompletionCreateBase {
  messages: { role: string; content: string | { type: 'text'; text: string }[] | null }[]
  logprobs?: boolean | null
  top_logprobs?: number | null
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema: Record<string, unknown>; strict?: boolean } }
}

/** A text completion request: a prompt string or token ids. */
export interface CompletionCreateParams extends CompletionCreateBase {
  prompt: string | number[] | [string] | [number[]]
  logprobs?: number | null
}

export interface CompletionUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details: { cached_tokens: number }
}

type FinishReason = 'stop' | 'length'

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  choices: { index: 0; message: { role: 'assistant'; content: string }; logprobs: unknown; finish_reason: FinishReason }[]
  usage: CompletionUsage
}

export interface ChatCompletionChunk {
  id: string
  object: 'chat.completion.chunk'
  created: number
  model: string
  /** Empty in the usage chunk (`stream_options.include_usage`). */
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; logprobs: unknown; finish_reason: FinishReason | null }[]
  usage?: CompletionUsage
}

export interface Completion {
  id: string
  object: 'text_completion'
  created: number
  model: string
  choices: { index: 0; text: string; logprobs: unknown; finish_reason: FinishReason | null }[]
  usage?: CompletionUsage
}

export interface RequestOptions {
  /** Ends the generation within one token: a finished response (non-streaming) or the end of the stream. */
  signal?: AbortSignal
}

export interface OpenAIFacadeOptions {
  /** Session the requests run on (default: the model's default session, which reuses a shared prefix). */
  session?: Session
  /** Name reported in responses and by `models.list()`. Default 'bitnet'. */
  modelId?: string
  /** How `embeddings.create` pools (see BitnetModel.embed). Default as `bitnet serve`: mean, L2-normalised. */
  embedding?: EmbedOptions
}

/** `chat.completions.create`, `completions.create`, `embeddings.create` and `models.list`, as the `openai` package has them. */
export interface OpenAIFacade {
  chat: {
    completions: {
      create(body: ChatCompletionCreateParams & { stream: true }, opts?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>
      create(body: ChatCompletionCreateParams & { stream?: false | null }, opts?: RequestOptions): Promise<ChatCompletion>
      create(body: ChatCompletionCreateParams, opts?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>
    }
  }
  completions: {
    create(body: CompletionCreateParams & { stream: true }, opts?: RequestOptions): Promise<AsyncIterable<Completion>>
    create(body: CompletionCreateParams & { stream?: false | null }, opts?: RequestOptions): Promise<Completion>
    create(body: CompletionCreateParams, opts?: RequestOptions): Promise<Completion | AsyncIterable<Completion>>
  }
  models: { list(): Promise<ReturnType<typeof modelList>> }
  embeddings: { create(body: EmbeddingCreateParams): Promise<CreateEmbeddingResponse> }
}

/** An embeddings request (OpenAI's fields; `dimensions` only as the model's width). */
export interface EmbeddingCreateParams {
  input: string | string[] | number[] | number[][]
  model?: string
  encoding_format?: 'float' | 'base64'
  dimensions?: number
  user?: string
}

export type CreateEmbeddingResponse = EmbeddingResponse

/** What `model.openai()` returns (see BitnetModel.openai); `model` also has its default session. */
export function openaiFacade(model: OpenAIModel & { readonly defaultSession: Session }, opts: OpenAIFacadeOptions = {}): OpenAIFacade {
  const modelId = opts.modelId ?? 'bitnet'
  const create = async (kind: Kind, body: unknown, ro: RequestOptions = {}): Promise<unknown> => {
    const r = parseRequest(kind, body)
    const { tokens, maxTokens } = preparePrompt(model, r)
    const session = opts.session ?? model.defaultSession
    const gen = session.generate(tokens, { ...r.options, maxTokens, signal: ro.signal })
    const meta = newMeta(kind, modelId)
    return r.stream ? responseChunks(r, meta, gen, model.tokenizer) : completion(kind, meta, await gen, model.tokenizer)
  }
  return {
    chat: { completions: { create: (body: ChatCompletionCreateParams, ro?: RequestOptions) => create('chat', body, ro) } },
    completions: { create: (body: CompletionCreateParams, ro?: RequestOptions) => create('text', body, ro) },
    models: { list: async () => modelList(modelId) },
    embeddings: {
      create: async (body: EmbeddingCreateParams) =>
        embeddingResponse(model, parseEmbeddingRequest(body, model.config.nEmbd), modelId, opts.embedding ?? DEFAULT_EMBEDDING),
    },
  } as OpenAIFacade
}
