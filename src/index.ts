/**
 * bitnet-wasm: BitNet b1.58 ternary language models in TypeScript + WebAssembly SIMD.
 *
 * Exports: {@link loadModel} and the model object; the tokenizer, chat template and
 * sampler for standalone use; GGUF reading/writing; typed errors.
 */
export { loadModel, type ModelSource } from './api/load-model.js'
export { openModelContents } from './api/load-model.js'
export type { ModelContents, ModelTensor } from './model/contents.js'
export type { ModelFolder } from './model/load-hf.js'
export { convertToGguf, type ConvertOptions, type ConvertTarget, type MatrixTarget } from './convert/index.js'
export { BitnetModel } from './api/bitnet-model.js'
export { DEFAULT_MAX_CONTEXT, type EmbedOptions, type ModelOptions } from './api/options.js'
export type { GenerateOptions, GenerationChunk, GenerationResult, GenerationTimings, Generation } from './generation/generation.js'
export { Session, type SessionOptions } from './generation/session.js'
export type {
  OpenAIFacade, OpenAIFacadeOptions, ChatCompletionCreateParams, CompletionCreateParams, ChatCompletion, ChatCompletionChunk,
  Completion, CompletionUsage, RequestOptions, EmbeddingCreateParams, CreateEmbeddingResponse,
} from './openai/client.js'
export { StopStrings } from './generation/stop-strings.js'
export type { Logger } from './logger.js'
export type { ModelConfig, Activation } from './model/config.js'
export type { LoadProgress } from './model/load.js'
export { BitnetTokenizer, tokenizerFromGguf, tokenizerFromHf } from './tokenizer/tokenizer.js'
export { applyChatTemplate, resolveChatTemplate, BITNET_2B4T_CHAT_TEMPLATE, type ChatMessage } from './tokenizer/chat-template.js'
export { Sampler, type SamplerOptions, type SampledToken, type TokenLogprob } from './generation/sampler.js'
export { jsonSchemaGrammar, jsonObjectGrammar, type JsonSchema } from './grammar/json-schema.js'
export { Grammar, GrammarBuilder, ParseState } from './grammar/grammar.js'
export { TokenConstraint, type ConstraintVocabulary } from './grammar/token-constraint.js'
export { createResponseConstraint, type ResponseFormat } from './grammar/response-format.js'
export { readGguf } from './gguf/reader.js'
export { writeGguf, ggufChunks } from './gguf/writer.js'
export { syntheticChunks, syntheticGguf, SHAPES, type SyntheticShape, type SyntheticOptions } from './model/synthetic.js'
export { padModelContents, type PadOptions } from './model/pad.js'
export type { GgufFile, GgufMetadata, GgufValue, GgufTensorInfo } from './gguf/types.js'
export { GgufType } from './gguf/types.js'
export { bytesSource, type ByteSource } from './io/source.js'
export * from './errors.js'
export { memoryLimits, type MemoryLimits } from './env.js'
export type { TemplateLimits } from './tokenizer/chat-template.js'
// Sources, download and cache (src/io/).
export { type LoadModelOptions } from './api/load-model.js'
export { ModelCache, type CacheEntry, type CacheOptions, type FetchOptions } from './io/cache.js'
export { pullModel, type PulledModel, type RemoteOptions } from './io/remote.js'
export { DEFAULT_MODEL, parseHubId, resolveHubFiles, type HubOptions, type HubId, type HubFiles } from './io/hub.js'
