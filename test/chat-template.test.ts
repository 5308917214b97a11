/**
 * Chat template tests: exact strings rendered by the real 2B4T template, detection of the official
 * GGUF's placeholder, and reproduction of the golden chat prompt (text and ids).
 */
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  applyChatTemplate,
  BITNET_2B4T_CHAT_TEMPLATE,
  isPlaceholderTemplate,
  resolveChatTemplate,
  type TemplateLimits,
} from '../src/tokenizer/chat-template.js'
import { InvalidArgumentError, ModelFormatError, ResourceLimitError } from '../src/errors.js'
import { metaString, readGguf } from '../src/gguf/reader.js'
import { fileSource } from '../src/io/file.js'
import { tokenizerFromHf } from '../src/tokenizer/tokenizer.js'

const DIR = new URL('./fixtures/tiny-dev/', import.meta.url)
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, DIR), 'utf8'))
const config = readJson('tokenizer_config.json')
const tokens = { bosToken: '<|begin_of_text|>', eosToken: '<|end_of_text|>' }

/** `tokenizer.chat_template` of the fixture GGUF (the official file's placeholder). */
async function ggufChatTemplate(): Promise<string> {
  const source = await fileSource(new URL('ggml-model-i2_s.gguf', DIR).pathname)
  try {
    return metaString((await readGguf(source)).metadata, 'tokenizer.chat_template')
  } finally {
    await source.close?.()
  }
}

describe('chat template: 2B4T', () => {
  it('the constant is the real template from tokenizer_config.json', () => {
    expect(BITNET_2B4T_CHAT_TEMPLATE).toBe(config.chat_template)
  })

  it.each([
    [
      'system + user',
      [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'hi' }],
      true,
      '<|begin_of_text|>System: You are helpful.<|eot_id|>User: hi<|eot_id|>Assistant: ',
    ],
    [
      'multi-turn, no generation prompt',
      [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'x' }],
      false,
      '<|begin_of_text|>User: hi<|eot_id|>Assistant: Hello!<|eot_id|>User: x<|eot_id|>',
    ],
    [
      'content is trimmed',
      [{ role: 'user', content: '  spaced out \n\n' }],
      true,
      '<|begin_of_text|>User: spaced out<|eot_id|>Assistant: ',
    ],
    ['no messages', [], true, 'Assistant: '],
  ])('%s', (_, messages, addGenerationPrompt, want) => {
    expect(applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE, messages, { ...tokens, addGenerationPrompt })).toBe(want)
  })

  it('defaults addGenerationPrompt to true', () => {
    expect(applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE, [{ role: 'user', content: 'a' }], tokens))
      .toBe('<|begin_of_text|>User: a<|eot_id|>Assistant: ')
  })

  it('reproduces the golden chat prompt, text and ids (encoded with addBos: false)', () => {
    const golden = readJson('golden.json') as { prompts: { text: string, ids: number[] }[] }
    const chat = golden.prompts.find((p) => p.text.startsWith('<|begin_of_text|>User: '))!
    const question = chat.text.slice('<|begin_of_text|>User: '.length, chat.text.indexOf('<|eot_id|>'))
    expect(question).toBe('Who led the children of Israel out of Egypt?')
    const text = applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE, [{ role: 'user', content: question }], tokens)
    expect(text).toBe(chat.text)
    const tok = tokenizerFromHf(readJson('tokenizer.json'), config)
    expect(tok.encode(text, { addBos: false })).toEqual(chat.ids)
    expect(applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE, [{ role: 'user', content: question }],
      { bosToken: tok.bosToken, eosToken: tok.eosToken })).toBe(chat.text)
  }, 30_000)
})

describe('chat template: resolution', () => {
  let placeholder = ''
  beforeAll(async () => { placeholder = await ggufChatTemplate() })

  it('detects the official GGUF placeholder', () => {
    expect(placeholder).toContain('BITNETAssistant')
    expect(isPlaceholderTemplate(placeholder)).toBe(true)
    expect(isPlaceholderTemplate(BITNET_2B4T_CHAT_TEMPLATE)).toBe(false)
    expect(isPlaceholderTemplate(undefined)).toBe(false)
  })

  it('override > real template > built-in 2B4T', () => {
    const real = '{{ messages[0].content }}'
    expect(resolveChatTemplate({ ggufTemplate: placeholder })).toBe(BITNET_2B4T_CHAT_TEMPLATE)
    expect(resolveChatTemplate({})).toBe(BITNET_2B4T_CHAT_TEMPLATE)
    expect(resolveChatTemplate()).toBe(BITNET_2B4T_CHAT_TEMPLATE)
    expect(resolveChatTemplate({ ggufTemplate: '' })).toBe(BITNET_2B4T_CHAT_TEMPLATE)
    expect(resolveChatTemplate({ ggufTemplate: real })).toBe(real)
    expect(resolveChatTemplate({ hfTemplate: config.chat_template, ggufTemplate: placeholder })).toBe(config.chat_template)
    expect(resolveChatTemplate({ hfTemplate: [{ name: 'default', template: real }] })).toBe(real)
    expect(resolveChatTemplate({ override: 'X', hfTemplate: real, ggufTemplate: real })).toBe('X')
    expect(() => resolveChatTemplate({ override: '' })).toThrow(InvalidArgumentError)
  })

  it('the placeholder, if rendered anyway, is not the real prompt', () => {
    const out = applyChatTemplate(placeholder, [{ role: 'user', content: 'hi' }], tokens)
    expect(out).toBe('<|begin_of_text|>Human: hi\n\nBITNETAssistant: <|end_of_text|>')
  })
})

describe('chat template: errors', () => {
  it('wraps parse and render failures in ModelFormatError', () => {
    expect(() => applyChatTemplate('{% for %}', [], tokens)).toThrow(ModelFormatError)
    expect(() => applyChatTemplate('{% for %}', [], tokens)).toThrow(/chat template failed/)
    expect(() => applyChatTemplate('{{ raise_exception("nope") }}', [], tokens)).toThrow(/chat template failed/)
  })

  it('validates messages', () => {
    expect(() => applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE, [{ role: 'user' } as never], tokens)).toThrow(InvalidArgumentError)
    expect(() => applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE, 'hi' as never, tokens)).toThrow(InvalidArgumentError)
  })
})

describe('untrusted templates are bounded', () => {
  const msgs = [{ role: 'user', content: 'hi' }]
  const render = (t: string, limits?: TemplateLimits) => applyChatTemplate(t, msgs, { ...tokens, limits })
  const limitOf = (t: string, limits?: TemplateLimits) => {
    try { render(t, limits) } catch (e) { if (e instanceof ResourceLimitError) return e.limit; throw e }
    return 'none'
  }
  it('a huge range() is refused before it is built', () => {
    expect(limitOf('{% for i in range(10**9) %}x{% endfor %}')).toBe('template.maxSteps')
  })
  it('nested loops run out of steps, or of time when steps are unbounded', () => {
    const nested = '{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}'
    expect(limitOf(nested)).toBe('template.maxSteps')
    expect(limitOf(nested, { maxSteps: 1e12, maxOutputChars: 1e12, timeoutMs: 50 })).toBe('template.timeoutMs')
  })
  it('output that doubles, as a string or as a list, hits the output limit', () => {
    expect(limitOf('{% set s = "ab" %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s }}')).toBe('template.maxOutputChars')
    expect(limitOf('{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}')).toBe('template.maxOutputChars')
  })
  it('unbounded recursion is a ModelFormatError, and the real template fits well within the limits', () => {
    expect(() => render('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}')).toThrow(ModelFormatError)
    expect(render(BITNET_2B4T_CHAT_TEMPLATE, { maxSteps: 200, maxOutputChars: 200 })).toBe('<|begin_of_text|>User: hi<|eot_id|>Assistant: ')
  })
})
