/**
 * JSON schema (the subset OpenAI's structured outputs and llama.cpp's `json_schema_to_grammar`
 * cover) -> byte-level {@link Grammar} whose sentences are JSON texts that validate.
 *
 * Choices, all toward "every sentence validates" rather than "every valid document is a sentence":
 * - object properties come in the schema's order; optional ones may be left out; properties not
 *   listed are never generated (also when `additionalProperties` allows them);
 * - `enum` / `const` values are written as `JSON.stringify` writes them;
 * - numbers have at most 16 integer digits, 16 fraction digits and a 2-digit exponent, so they
 *   stay finite doubles; integers have no fraction or exponent;
 * - whitespace between tokens is bounded: nothing, one space, or a newline and up to 20 spaces or
 *   tabs (llama.cpp's rule), so a model cannot spin in whitespace forever; none after the value;
 * - `oneOf` is generated as `anyOf` (exclusivity is not enforced);
 * - keywords that constrain values in ways the grammar cannot express (`pattern`, `format`,
 *   `minimum`, `multipleOf`, `uniqueItems`, …) raise {@link UnsupportedFeatureError} rather than
 *   being ignored; annotations (`title`, `description`, `default`, `examples`, …) are ignored.
 */
import { InvalidArgumentError, UnsupportedFeatureError } from '../errors.js'
import { type Grammar, GrammarBuilder, type Seq } from './grammar.js'

/** A JSON schema: an object, or `true` (anything) / `false` (nothing). */
export type JsonSchema = boolean | { readonly [keyword: string]: unknown }

/** Keywords that only annotate; they never change which documents validate. */
const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly',
  'writeOnly', '$defs', 'definitions', 'strict',
])
/** Keywords this compiler implements. */
const HANDLED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const',
  'anyOf', 'oneOf', 'allOf', '$ref', 'minLength', 'maxLength',
])
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const
type TypeName = typeof TYPES[number]
/** Bound on unrolled repetition (minItems/maxItems/minLength/maxLength), to keep grammars small. */
const MAX_UNROLL = 4096

/**
 * Compiles a JSON schema into a grammar of JSON texts that validate against it.
 *
 * @example
 * ```ts
 * const g = jsonSchemaGrammar({
 *   type: 'object',
 *   properties: { name: { type: 'string', maxLength: 20 }, age: { type: 'integer' } },
 *   required: ['name'], additionalProperties: false,
 * })
 * g.accepts(new TextEncoder().encode('{"name": "Ada", "age": 36}'))  // true
 * ```
 */
export function jsonSchemaGrammar(schema: JsonSchema): Grammar {
  const c = new Compiler(schema)
  return c.b.build(c.value(schema, '#'))
}

/**
 * The grammar of OpenAI's JSON mode (`response_format: {type: 'json_object'}`): any JSON object.
 *
 * @example
 * ```ts
 * jsonObjectGrammar().accepts(new TextEncoder().encode('{"a": [1, true, null]}'))  // true
 * ```
 */
export function jsonObjectGrammar(): Grammar {
  const c = new Compiler(true)
  return c.b.build(c.anyObject())
}

class Compiler {
  readonly b = new GrammarBuilder()
  readonly #root: JsonSchema
  /** Compiled rule per schema object ($ref targets and recursion). */
  readonly #done = new Map<object, number>()
  readonly #prims = new Map<string, number>()
  #anyValue?: number

  constructor(root: JsonSchema) {
    this.#root = root
  }

  /** Rule for one JSON value valid against `schema` (at JSON pointer `path`, for messages). */
  value(schema: JsonSchema, path: string): number {
    if (schema === true) return this.anyValue()
    if (schema === false) throw new UnsupportedFeatureError(`json schema ${path}: 'false' admits no value`)
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new InvalidArgumentError(`json schema ${path}: a schema must be an object or a boolean`)
    }
    const known = this.#done.get(schema)
    if (known !== undefined) return known
    const rule = this.b.reserve()
    this.#done.set(schema, rule)
    return this.b.define(rule, this.#alternatives(schema, path))
  }

  #alternatives(s: { readonly [k: string]: unknown }, path: string): Seq[] {
    for (const k of Object.keys(s)) {
      if (!HANDLED.has(k) && !ANNOTATIONS.has(k)) {
        throw new UnsupportedFeatureError(`json schema ${path}: keyword '${k}' is not supported in constrained generation`)
      }
    }
    if (s.$ref !== undefined) return [[this.value(this.#resolve(s.$ref, path), String(s.$ref))]]
    if (s.const !== undefined) return [this.#literalJson(s.const)]
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw new InvalidArgumentError(`json schema ${path}/enum: must be a non-empty array`)
      return s.enum.map((v) => this.#literalJson(v))
    }
    const anyOf = s.anyOf ?? s.oneOf
    if (anyOf !== undefined) {
      if (!Array.isArray(anyOf) || anyOf.length === 0) throw new InvalidArgumentError(`json schema ${path}/anyOf: must be a non-empty array`)
      return anyOf.map((sub, i) => [this.value(sub as JsonSchema, `${path}/anyOf/${i}`)])
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1) {
        throw new UnsupportedFeatureError(`json schema ${path}/allOf: only a single-schema allOf is supported`)
      }
      return [[this.value(s.allOf[0] as JsonSchema, `${path}/allOf/0`)]]
    }
    return this.#types(s, path).map((t) => [this.#typed(t, s, path)])
  }

  /** The types a schema allows: its `type`, else the one its keywords imply, else all. */
  #types(s: { readonly [k: string]: unknown }, path: string): TypeName[] {
    const t = s.type
    if (t === undefined) {
      if (s.properties !== undefined || s.additionalProperties !== undefined || s.required !== undefined) return ['object']
      if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) return ['array']
      if (s.minLength !== undefined || s.maxLength !== undefined) return ['string']
      return [...TYPES]
    }
    const list = Array.isArray(t) ? t : [t]
    for (const x of list) {
      if (!TYPES.includes(x as TypeName)) throw new InvalidArgumentError(`json schema ${path}/type: unknown type ${JSON.stringify(x)}`)
    }
    return list as TypeName[]
  }

  #typed(t: TypeName, s: { readonly [k: string]: unknown }, path: string): number {
    switch (t) {
      case 'object': return this.#object(s, path)
      case 'array': return this.#array(s, path)
      case 'string': {
        const min = count(s.minLength, 0, `${path}/minLength`)
        const max = count(s.maxLength, Infinity, `${path}/maxLength`)
        if (min > max) throw new InvalidArgumentError(`json schema ${path}: minLength ${min} > maxLength ${max}`)
        return this.#string(min, max)
      }
      case 'number': return this.#prim('number', () => this.#number(true))
      case 'integer': return this.#prim('integer', () => this.#number(false))
      case 'boolean': return this.#prim('boolean', () => this.b.rule([this.b.literal('true'), this.b.literal('false')]))
      case 'null': return this.#prim('null', () => this.b.rule([this.b.literal('null')]))
    }
  }

  #object(s: { readonly [k: string]: unknown }, path: string): number {
    const props = s.properties
    const extra = s.additionalProperties
    if (props === undefined) {
      if (extra === false) return this.b.rule([[...this.b.literal('{'), this.ws(), ...this.b.literal('}')]])
      if (extra === undefined || extra === true) return this.anyObject()
      return this.#map(this.value(extra as JsonSchema, `${path}/additionalProperties`))
    }
    if (typeof props !== 'object' || props === null || Array.isArray(props)) {
      throw new InvalidArgumentError(`json schema ${path}/properties: must be an object`)
    }
    const names = Object.keys(props)
    if (s.required !== undefined && !(Array.isArray(s.required) && s.required.every((r) => typeof r === 'string'))) {
      throw new InvalidArgumentError(`json schema ${path}/required: must be an array of strings`)
    }
    const required = new Set((s.required ?? []) as string[])
    for (const r of required) {
      if (!names.includes(r)) throw new UnsupportedFeatureError(`json schema ${path}/required: '${r}' has no entry in properties`)
    }
    // prop_i ::= "name" ws ":" ws value ws. first_i: the properties from i on with none written
    // yet; rest_i: the same after at least one (so each starts with a comma). Optional properties
    // may be skipped; required ones may not. Object ::= "{" ws first_0 "}".
    const ws = this.ws()
    const prop = names.map((n) => [
      ...this.b.literal(JSON.stringify(n)), ws, ...this.b.literal(':'), ws,
      this.value((props as Record<string, JsonSchema>)[n], `${path}/properties/${n}`), ws,
    ])
    let first = this.b.rule([[]])
    let rest = this.b.rule([[]])
    for (let i = names.length - 1; i >= 0; i--) {
      const optional = !required.has(names[i])
      const nextFirst = first
      const nextRest = rest
      rest = this.b.rule([[...this.b.literal(','), ws, ...prop[i], nextRest], ...(optional ? [[nextRest]] : [])])
      first = this.b.rule([[...prop[i], nextRest], ...(optional ? [[nextFirst]] : [])])
    }
    return this.b.rule([[...this.b.literal('{'), ws, first, ...this.b.literal('}')]])
  }

  /** `{ "key": value, ... }` with any keys and values of one rule. */
  #map(valueRule: number): number {
    const ws = this.ws()
    const member = [this.#string(0, Infinity), ws, ...this.b.literal(':'), ws, valueRule, ws]
    const more = this.b.repeat([...this.b.literal(','), ws, ...member], 0, Infinity)
    const body = this.b.optional([...member, more])
    return this.b.rule([[...this.b.literal('{'), ws, body, ...this.b.literal('}')]])
  }

  #array(s: { readonly [k: string]: unknown }, path: string): number {
    if (Array.isArray(s.items)) throw new UnsupportedFeatureError(`json schema ${path}/items: tuple arrays are not supported`)
    const item = s.items === undefined ? this.anyValue() : this.value(s.items as JsonSchema, `${path}/items`)
    const min = count(s.minItems, 0, `${path}/minItems`)
    const max = count(s.maxItems, Infinity, `${path}/maxItems`)
    if (min > max) throw new InvalidArgumentError(`json schema ${path}: minItems ${min} > maxItems ${max}`)
    return this.#list(item, min, max)
  }

  /** `[ item, ... ]` with min..max items. */
  #list(item: number, min: number, max: number): number {
    const ws = this.ws()
    const open = this.b.literal('[')
    const close = this.b.literal(']')
    if (max === 0) return this.b.rule([[...open, ws, ...close]])
    const more = this.b.repeat([...this.b.literal(','), ws, item, ws], Math.max(0, min - 1), max - 1)
    const body: Seq = [item, ws, more]
    return this.b.rule([[...open, ws, ...(min === 0 ? [this.b.optional(body)] : body), ...close]])
  }

  /**
   * A JSON string of min..max characters (code points; a `\uXXXX` escape counts as one, so a
   * surrogate pair written as two escapes counts as two, unlike JSON schema validators).
   */
  #string(min: number, max: number): number {
    return this.#prim(`string:${min}:${max}`, () => {
      const quote = this.b.literal('"')
      return this.b.rule([[...quote, this.b.repeat([this.#char()], min, max), ...quote]])
    })
  }

  /** One string character: unescaped printable ASCII, a well-formed UTF-8 sequence, or an escape. */
  #char(): number {
    return this.#prim('char', () => {
      const b = this.b
      const cont = b.bytes([[0x80, 0xbf]])
      const hex = b.bytes([[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]])
      return b.rule([
        [b.bytes([[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7f]])], // not '"' (0x22), not '\' (0x5c)
        [b.bytes([[0xc2, 0xdf]]), cont],
        [b.bytes([[0xe0, 0xe0]]), b.bytes([[0xa0, 0xbf]]), cont],
        [b.bytes([[0xe1, 0xec], [0xee, 0xef]]), cont, cont],
        [b.bytes([[0xed, 0xed]]), b.bytes([[0x80, 0x9f]]), cont], // no UTF-16 surrogates
        [b.bytes([[0xf0, 0xf0]]), b.bytes([[0x90, 0xbf]]), cont, cont],
        [b.bytes([[0xf1, 0xf3]]), cont, cont, cont],
        [b.bytes([[0xf4, 0xf4]]), b.bytes([[0x80, 0x8f]]), cont, cont],
        [...b.literal('\\'), b.bytes([[0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x62], [0x66, 0x66], [0x6e, 0x6e], [0x72, 0x72], [0x74, 0x74]])],
        [...b.literal('\\u'), hex, hex, hex, hex],
      ])
    })
  }

  /** `-? (0 | [1-9][0-9]{0,15}) (. [0-9]{1,16})? ([eE] [+-]? [0-9]{1,2})?`, the fraction and exponent only if `real`. */
  #number(real: boolean): number {
    const b = this.b
    const digit = b.bytes([[0x30, 0x39]])
    const int = b.rule([b.literal('0'), [b.bytes([[0x31, 0x39]]), b.repeat([digit], 0, 15)]])
    const seq: Seq = [b.optional(b.literal('-')), int]
    if (real) {
      seq.push(b.optional([...b.literal('.'), b.repeat([digit], 1, 16)]))
      seq.push(b.optional([b.bytes([[0x45, 0x45], [0x65, 0x65]]), b.optional([b.bytes([[0x2b, 0x2b], [0x2d, 0x2d]])]), b.repeat([digit], 1, 2)]))
    }
    return b.rule([seq])
  }

  /** Any JSON value (schema `true`, and the values of JSON mode). */
  anyValue(): number {
    if (this.#anyValue !== undefined) return this.#anyValue
    const rule = this.#anyValue = this.b.reserve()
    const object = this.#map(rule)
    this.#prims.set('object', object)
    return this.b.define(rule, [
      [object], [this.#list(rule, 0, Infinity)], [this.#string(0, Infinity)],
      [this.#prim('number', () => this.#number(true))],
      this.b.literal('true'), this.b.literal('false'), this.b.literal('null'),
    ])
  }

  /** Any JSON object. */
  anyObject(): number {
    this.anyValue()
    return this.#prims.get('object')!
  }

  /** Bounded whitespace: "" | " " | "\n" [ \t]{0,20}. */
  ws(): number {
    return this.#prim('ws', () => this.b.rule([
      [], this.b.literal(' '), [...this.b.literal('\n'), this.b.repeat([this.b.bytes([[0x20, 0x20], [0x09, 0x09]])], 0, 20)],
    ]))
  }

  /** One shared rule per primitive (strings by their length bounds). */
  #prim(key: string, make: () => number): number {
    let r = this.#prims.get(key)
    if (r === undefined) {
      r = make()
      this.#prims.set(key, r)
    }
    return r
  }

  /** The exact text JSON.stringify gives for `v`. */
  #literalJson(v: unknown): Seq {
    return this.b.literal(JSON.stringify(v))
  }

  /** Resolves a local `$ref` (`#`, `#/$defs/x`, `#/definitions/x`, any JSON pointer into the root). */
  #resolve(ref: unknown, path: string): JsonSchema {
    if (typeof ref !== 'string' || !ref.startsWith('#')) {
      throw new UnsupportedFeatureError(`json schema ${path}/$ref: only local references ('#/...') are supported, got ${JSON.stringify(ref)}`)
    }
    let node: unknown = this.#root
    for (const raw of ref.slice(1).split('/').slice(1)) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined
      if (node === undefined) throw new InvalidArgumentError(`json schema ${path}/$ref: ${ref} does not resolve`)
    }
    return node as JsonSchema
  }
}

/** A non-negative integer keyword (minItems, maxLength, …) or its default. */
function count(v: unknown, dflt: number, path: string): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || (v as number) < 0) throw new InvalidArgumentError(`json schema ${path}: must be a non-negative integer, got ${JSON.stringify(v)}`)
  if ((v as number) > MAX_UNROLL) throw new UnsupportedFeatureError(`json schema ${path}: bounds above ${MAX_UNROLL} are not supported`)
  return v as number
}
