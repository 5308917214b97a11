/**
 * `responseFormat` (OpenAI `response_format`) -> a {@link TokenConstraint} for one generation.
 * Compiled grammars are kept in a small LRU keyed by the schema's JSON text, so repeated requests
 * with one schema also reuse its mask cache (the costly first visit of each parse state).
 */
import { InvalidArgumentError } from '../errors.js'
import type { Grammar } from './grammar.js'
import { jsonObjectGrammar, jsonSchemaGrammar, type JsonSchema } from './json-schema.js'
import { type ConstraintVocabulary, TokenConstraint } from './token-constraint.js'

/**
 * Output format: free text (default), any JSON object (JSON mode), or JSON valid against a schema.
 *
 * @example
 * ```ts
 * await model.chat(messages, { responseFormat: { type: 'json_object' } })
 * await model.chat(messages, {
 *   responseFormat: { type: 'json_schema', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } },
 * })
 * ```
 */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema', schema: JsonSchema }

/** Up to this many grammars (each with up to 256 cached 16 KB masks on a 128k vocabulary). */
const GRAMMAR_CACHE_ENTRIES = 8
const grammars = new Map<string, Grammar>()

/**
 * The constraint for a response format, or undefined for free text.
 *
 * @example
 * ```ts
 * const c = createResponseConstraint({ type: 'json_object' }, model.tokenizer)   // TokenConstraint
 * createResponseConstraint(undefined, model.tokenizer)                          // undefined
 * ```
 */
export function createResponseConstraint(format: ResponseFormat | undefined, vocab: ConstraintVocabulary): TokenConstraint | undefined {
  if (format === undefined || format.type === 'text') return undefined
  let key: string
  if (format.type === 'json_object') key = 'json_object'
  else if (format.type === 'json_schema') key = 'schema:' + JSON.stringify(format.schema)
  else throw new InvalidArgumentError(`responseFormat.type must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify((format as { type: unknown }).type)}`)
  let g = grammars.get(key)
  if (g) {
    grammars.delete(key)
  } else {
    g = format.type === 'json_object' ? jsonObjectGrammar() : jsonSchemaGrammar(format.schema)
    if (grammars.size >= GRAMMAR_CACHE_ENTRIES) grammars.delete(grammars.keys().next().value!)
  }
  grammars.set(key, g)
  return new TokenConstraint(g, vocab)
}
