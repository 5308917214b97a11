/**
 * Chat prompt formatting with Jinja templates (`@huggingface/jinja`, the engine transformers.js uses).
 *
 * BitNet-b1.58-2B-4T's real template (HF `tokenizer_config.json`) renders
 * `<|begin_of_text|>System: …<|eot_id|>User: …<|eot_id|>Assistant: `. The official GGUF instead
 * carries a placeholder (`Human: … BITNETAssistant: `, spec ../shared/docs/bitnet-b158.md §0.6,
 * §2c) that bitnet.cpp never renders: its fork special-cases any template containing `BITNET`.
 * {@link resolveChatTemplate} swaps that placeholder for the real template.
 *
 * The rendered prompt already begins with the BOS text, so tokenize it with `addBos: false`.
 */
import { Template } from '@huggingface/jinja'
import { InvalidArgumentError, ModelFormatError } from './errors.js'

/**
 * The chat template of microsoft/bitnet-b1.58-2B-4T, copied verbatim from the `chat_template` field
 * of its `tokenizer_config.json` (HF repo `microsoft/bitnet-b1.58-2B-4T`; the same file is our
 * fixture test/fixtures/tiny-dev/tokenizer_config.json). Per message:
 * `Role|capitalize + ": " + content|trim + "<|eot_id|>"`, BOS before the first; then `Assistant: `.
 */
export const BITNET_2B4T_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"

/** One chat message. Roles are free-form; the 2B4T template capitalises them (`user` -> `User`). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {})
  content: string
}

/** Options for {@link applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the assistant prefix (`Assistant: `) so the model answers next. Default true. */
  addGenerationPrompt?: boolean
  /** Text of the BOS token (`tokenizer.bosToken`, `'<|begin_of_text|>'`). */
  bosToken: string
  /** Text of the EOS token (`tokenizer.eosToken`, `'<|end_of_text|>'`). */
  eosToken: string
  /** Extra template variables (e.g. `tools`), passed through unchanged. */
  extra?: Record<string, unknown>
}

/** Where a template may come from; see {@link resolveChatTemplate}. */
export interface ChatTemplateSources {
  /** `tokenizer.chat_template` from GGUF metadata. */
  ggufTemplate?: string
  /** `chat_template` from `tokenizer_config.json`: a string, or a list of `{name, template}`. */
  hfTemplate?: string | { name: string, template: string }[]
  /** A user-supplied template; wins over everything. */
  override?: string
}

/**
 * True for the placeholder template of the official 2B4T GGUF (`… 'BITNETAssistant: ' …`). Like the
 * bitnet.cpp fork, any template containing `BITNET` counts.
 *
 * @example
 * ```ts
 * isPlaceholderTemplate(gguf.metadata.get('tokenizer.chat_template')?.value as string)  // true for the official file
 * isPlaceholderTemplate(BITNET_2B4T_CHAT_TEMPLATE)  // false
 * ```
 */
export function isPlaceholderTemplate(template: string | undefined): boolean {
  return typeof template === 'string' && template.includes('BITNET')
}

/**
 * Picks the chat template to use: `override`, else the first real (non-placeholder, non-empty)
 * template of `hfTemplate` and `ggufTemplate`, else {@link BITNET_2B4T_CHAT_TEMPLATE} (which also
 * replaces the GGUF placeholder).
 *
 * @example
 * ```ts
 * const tpl = resolveChatTemplate({ ggufTemplate: md.get('tokenizer.chat_template')?.value as string })
 * // official GGUF -> BITNET_2B4T_CHAT_TEMPLATE
 * ```
 */
export function resolveChatTemplate(sources: ChatTemplateSources = {}): string {
  if (sources.override !== undefined) {
    if (typeof sources.override !== 'string' || sources.override.length === 0) {
      throw new InvalidArgumentError('chat template override must be a non-empty string')
    }
    return sources.override
  }
  for (const t of [pickHfTemplate(sources.hfTemplate), sources.ggufTemplate]) {
    if (typeof t === 'string' && t.length > 0 && !isPlaceholderTemplate(t)) return t
  }
  return BITNET_2B4T_CHAT_TEMPLATE
}

/** tokenizer_config.json may hold named templates; the one called 'default' is the chat one. */
function pickHfTemplate(t: ChatTemplateSources['hfTemplate']): string | undefined {
  if (!Array.isArray(t)) return t
  return t.find((x) => x?.name === 'default')?.template
}

/** Parsed templates keyed by source; a handful per process at most, so a small cap suffices. */
const templateCache = new Map<string, Template>()
const TEMPLATE_CACHE_SIZE = 16

function compile(template: string): Template {
  let t = templateCache.get(template)
  if (t === undefined) {
    try {
      t = new Template(template)
    } catch (e) {
      throw new ModelFormatError(`chat template failed: ${(e as Error).message}`)
    }
    if (templateCache.size >= TEMPLATE_CACHE_SIZE) templateCache.delete(templateCache.keys().next().value!)
    templateCache.set(template, t)
  }
  return t
}

/**
 * Renders `messages` with a Jinja chat template, as HF `apply_chat_template(tokenize=False)` does.
 * Variables: `messages`, `add_generation_prompt`, `bos_token`, `eos_token` and `opts.extra`.
 *
 * @example
 * ```ts
 * applyChatTemplate(BITNET_2B4T_CHAT_TEMPLATE,
 *   [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'hi' }],
 *   { bosToken: '<|begin_of_text|>', eosToken: '<|end_of_text|>' })
 * // '<|begin_of_text|>System: You are helpful.<|eot_id|>User: hi<|eot_id|>Assistant: '
 * ```
 */
export function applyChatTemplate(template: string, messages: readonly ChatMessage[], opts: ChatTemplateOptions): string {
  if (!Array.isArray(messages)) throw new InvalidArgumentError('messages must be an array')
  messages.forEach((m, i) => {
    if (typeof m?.role !== 'string' || typeof m?.content !== 'string') {
      throw new InvalidArgumentError(`messages[${i}] must have string role and content`)
    }
  })
  if (typeof opts?.bosToken !== 'string' || typeof opts.eosToken !== 'string') {
    throw new InvalidArgumentError('bosToken and eosToken must be strings')
  }
  const compiled = compile(template)
  try {
    return compiled.render({
      ...opts.extra,
      messages: messages.map((m) => ({ ...m })), // the template must not see (or mutate) caller objects
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: opts.bosToken,
      eos_token: opts.eosToken,
    })
  } catch (e) {
    throw new ModelFormatError(`chat template failed: ${(e as Error).message}`)
  }
}
