// Writes test/fixtures/llama3-token-ids.json, the expected ids of test/tokenizer-ids.test.ts,
// from an implementation independent of the
// engine's: OpenAI's tiktoken (its Rust core, as wasm), the algorithm Meta's Llama 3 reference
// tokenizer runs. tiktoken merges by the rank of the merged bytes, with Meta's split pattern and
// the vocabulary's ids as ranks; the engine runs HF-style BPE from the merge list. Not a
// dependency of the project: `npm install --no-save tiktoken && node scripts/llama3-token-ids.mjs`.
import { readFileSync, writeFileSync } from 'node:fs'
import { Tiktoken } from 'tiktoken'

// Strings that stress the split pattern, byte-level BPE and special-token parsing.
const STRINGS = [
  // whitespace runs: `\s+(?!\S)` leaves the last space to the next word; newlines group
  'a  b   c    d', '   leading', 'trailing   ', ' ', '  ', '\n', '\n\n\n', ' \n \n', 'x \n\n  y',
  '\t\tindented\ttabs', 'crlf\r\n\r\nend', '\u00a0no-break\u00a0space', 'ideographic\u3000space',
  // digits: groups of at most three, never merged with letters
  '1', '12', '123', '1234', '1234567890', '3.14159', '-42', '1,000,000', 'v2.0.1-rc3', '0x1F', 'abc123def',
  '٣٤٥ Arabic-Indic digits', '²³ superscripts',
  // contractions: case-insensitive in Llama 3, only these seven suffixes
  "don't", "DON'T", "I'm you're we've they'll he'd it's", "HE'S SHE'D", "o'clock", "rock'n'roll", "'twas",
  'don’t (typographic apostrophe)',
  // unicode: no normalization, combining marks stay where they are
  'naïve café', 'nai\u0308ve cafe\u0301', 'ﬁnance ligature', 'Straße', 'İstanbul', 'Ελληνικά', 'русский текст',
  'עברית', 'العربية', 'हिन्दी', 'ไทย', '日本語のテキスト', '中文分词', '한국어', 'mixed漢字and English',
  // emoji: multi-byte, ZWJ sequences, modifiers, flags, variation selectors
  '🦙', '🦙🦙🦙', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷🇯🇵', '❤️', '1️⃣', 'text🙂text',
  // special tokens inside text, next to text and to each other
  '<|begin_of_text|>', '<|eot_id|>', 'Hi<|eot_id|>', '<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>',
  '<|eot_id|><|eot_id|>', 'a <|end_of_text|> b', '<|reserved_special_token_7|>', '<|not_a_special|>', '<|eot_id',
  // code
  'def f(x):\n    return x**2  # square\n', 'if (a && b) { return; }', 'const s = `${x}`;', '#include <stdio.h>',
  '    \n\tfoo()', 'https://example.com/a?b=1&c=2', 'snake_case camelCase kebab-case', '== != <= >= => ->',
  '"quoted" \'single\'', '¡¿Qué?!', '...', '!!!???', '$100 €50 ¥20', '@user #tag', '\\backslash\\',
]

const json = JSON.parse(readFileSync(new URL('../test/fixtures/tiny-dev/tokenizer.json', import.meta.url), 'utf8'))

// GPT-2 byte-level alphabet back to bytes: printable Latin-1 stands for itself, the other 68
// bytes were moved to U+0100 upward in byte order.
const byteOf = new Map()
let next = 256
for (let b = 0; b < 256; b++) {
  const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  byteOf.set(String.fromCodePoint(printable ? b : next++), b)
}
const ranks = Object.entries(json.model.vocab)
  .map(([piece, id]) => `${Buffer.from([...piece].map((ch) => byteOf.get(ch))).toString('base64')} ${id}`)
  .join('\n')
const specials = Object.fromEntries(json.added_tokens.map((t) => [t.content, t.id]))
// Meta's llama3 `tokenizer.py` pat_str.
const PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
const enc = new Tiktoken(ranks, specials, PATTERN)
const rows = STRINGS.map((s) => `  [${JSON.stringify(s)}, [${[...enc.encode(s, 'all')].join(', ')}]]`)
enc.free()
writeFileSync(new URL('../test/fixtures/llama3-token-ids.json', import.meta.url), `[\n${rows.join(',\n')}\n]\n`)
