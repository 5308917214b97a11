/**
 * Chat prompt formatting with Jinja templates (`@huggingface/jinja`, the engine transformers.js uses).
 *
 * BitNet-b1.58-2B-4T's real template (HF `tokenizer_config.json`) renders
 * `<|begin_of_text|>System: …<|eot_id|>User: …<|eot_id|>Assistant: `. The official GGUF instead
 * carries a placeholder (`Human: … BITNETAssistant: ` in `tokenizer.chat_template`) that
 * bitnet.cpp never renders: its fork special-cases any template containing `BITNET`.
 * {@link resolveChatTemplate} swaps that placeholder for the real template.
 *
 * The rendered prompt already begins with the BOS text, so tokenize it with `addBos: false`.
 *
 * Templates come from model files, so they are untrusted code: a render is bounded in
 * interpreter steps, produced characters and time ({@link TemplateLimits}). The interpreter is
 * synchronous, so the bounds are counted inside it (hooks on this render's own Interpreter
 * instance: every node evaluation is a step, every rendered block adds its length) and a
 * render over budget throws {@link ResourceLimitError} instead of hanging or exhausting memory.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja'
import { InvalidArgumentError, ModelFormatError, ResourceLimitError } from '../errors.js'

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
  /** Bounds on this render; defaults in {@link TemplateLimits}. */
  limits?: TemplateLimits
}

/**
 * Bounds on one render of an untrusted template. The defaults leave real chat templates
 * (the 2B4T one: ~60 steps per message) over 30 times the room they need.
 */
export interface TemplateLimits {
  /** Node evaluations, plus one per `range()` item (also caps list lengths). Default 100,000 + 2,000 per message. */
  maxSteps?: number
  /** Characters rendered, summed over every block (nested output counts once per level). Default 4 Mi + 16 × the messages' text. */
  maxOutputChars?: number
  /** Wall-clock bound in ms, checked every 1024 steps. Default 5000. */
  timeoutMs?: number
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
  const inputChars = messages.reduce((n, m) => n + m.content.length + m.role.length, 0)
  const limits: Required<TemplateLimits> = {
    maxSteps: 100_000 + 2_000 * messages.length,
    maxOutputChars: (4 << 20) + 16 * inputChars,
    timeoutMs: 5_000,
    ...opts.limits,
  }
  try {
    return renderBounded(compiled, {
      ...opts.extra,
      messages: messages.map((m) => ({ ...m })), // the template must not see (or mutate) caller objects
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: opts.bosToken,
      eos_token: opts.eosToken,
    }, limits)
  } catch (e) {
    if (e instanceof ResourceLimitError) throw e
    throw new ModelFormatError(`chat template failed: ${(e as Error)?.message ?? String(e)}`)
  }
}

/** What the interpreter's node evaluations return (`@huggingface/jinja` runtime values). */
interface RuntimeValue { type: string; value: unknown }
type Evaluate = (node: unknown, env: Environment) => RuntimeValue

/**
 * `Template.render` with bounds: the same globals as `@huggingface/jinja`'s `setupGlobals`, but
 * a `range()` that refuses more items than the step budget, and an Interpreter whose
 * `evaluate` / `evaluateBlock` (instance properties shadowing the prototype's, so nothing
 * global is patched) count steps, rendered characters and time.
 */
function renderBounded(template: Template, vars: Record<string, unknown>, limits: Required<TemplateLimits>): string {
  const over = (limit: string, max: number, what: string, needed?: number) =>
    new ResourceLimitError(`template.${limit}`, max, `chat template exceeded its ${what} limit (${max})`, needed)
  let steps = 0
  let chars = 0
  const env = new Environment()
  for (const [k, v] of [['false', false], ['true', true], ['none', null], ['False', false], ['True', true], ['None', null]] as const) env.set(k, v)
  env.set('raise_exception', (message: unknown) => { throw new Error(String(message)) })
  env.set('strftime_now', (format: unknown) => strftime(new Date(), String(format)))
  env.set('range', (start: number, stop?: number, step = 1) => {
    if (stop === undefined) [start, stop] = [0, start]
    if (![start, stop, step].every(Number.isInteger) || step === 0) throw new Error('range() needs integers and a non-zero step')
    // Building and looping over the items costs the interpreter work without node evaluations: count them as steps.
    const n = Math.max(0, Math.ceil((stop - start) / step))
    steps += n
    if (steps > limits.maxSteps) throw over('maxSteps', limits.maxSteps, 'step', steps)
    return Array.from({ length: n }, (_, i) => start + i * step)
  })
  for (const [k, v] of Object.entries(vars)) env.set(k, v)

  const interpreter = new Interpreter(env)
  const hooks = interpreter as unknown as { evaluate: Evaluate; evaluateBlock: Evaluate }
  const evaluate = hooks.evaluate.bind(interpreter)
  const evaluateBlock = hooks.evaluateBlock.bind(interpreter)
  const deadline = performance.now() + limits.timeoutMs
  hooks.evaluate = (node, scope) => {
    if (++steps > limits.maxSteps) throw over('maxSteps', limits.maxSteps, 'step')
    if ((steps & 1023) === 0 && performance.now() > deadline) throw over('timeoutMs', limits.timeoutMs, 'time (ms)')
    const v = evaluate(node, scope)
    const size = typeof v?.value === 'string' || Array.isArray(v?.value) ? (v.value as ArrayLike<unknown>).length : 0
    if (size > limits.maxOutputChars) throw over('maxOutputChars', limits.maxOutputChars, 'output size', size)
    return v
  }
  hooks.evaluateBlock = (node, scope) => {
    const v = evaluateBlock(node, scope)
    chars += (v.value as string).length
    if (chars > limits.maxOutputChars) throw over('maxOutputChars', limits.maxOutputChars, 'output size', chars)
    return v
  }
  return interpreter.run(template.parsed).value as string
}

const MONTH = new Intl.DateTimeFormat('en-US', { month: 'long' })
const MONTH_SHORT = new Intl.DateTimeFormat('en-US', { month: 'short' })

/** The strftime subset chat templates use (`strftime_now("%d %b %Y")`), as `@huggingface/jinja` implements it. */
function strftime(d: Date, format: string): string {
  const pad2 = (n: number) => String(n).padStart(2, '0')
  return format.replace(/%[YmdbBHM%]/g, (t) => ({
    '%Y': String(d.getFullYear()), '%m': pad2(d.getMonth() + 1), '%d': pad2(d.getDate()), '%b': MONTH_SHORT.format(d),
    '%B': MONTH.format(d), '%H': pad2(d.getHours()), '%M': pad2(d.getMinutes()), '%%': '%',
  })[t] ?? t)
}
