// Mutation engines: bytes (binary model files), JSON trees (tokenizer.json, configs) and
// Jinja template text. All are driven by a seeded PRNG, so a run is reproducible from its seed
// and an input from (seed, index).
import { mulberry32 } from '../../src/model/synthetic.js'

export class Rng {
  private readonly next: () => number
  constructor(seed: number) { this.next = mulberry32(seed) }
  /** Uniform in [0, 1). */
  float(): number { return this.next() }
  /** Uniform integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n) }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] }
  chance(p: number): boolean { return this.next() < p }
}

// Values that sit on the boundaries parsers get wrong: 0, 1, GGUF type ids, powers of two and
// their neighbours, sign bits, the largest u32/u64 and 2^53.
const INTERESTING_8 = [0, 1, 2, 7, 8, 9, 12, 13, 0x7f, 0x80, 0xff]
const INTERESTING_32 = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 31, 32, 36, 37, 38, 39, 40, 64, 127, 128, 255, 256, 1023, 1024,
  4096, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]
const INTERESTING_64 = [0n, 1n, 2n, 3n, 5n, 0x7fffffffn, 0xffffffffn, 0x100000000n, 2n ** 40n, 2n ** 53n - 1n, 2n ** 53n,
  2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]

/**
 * Offsets in `bytes[from, to)` holding what looks like a GGUF count, length, dim or offset: a
 * u64 whose high half is zero and whose low half is a plausible size. Mutating those reaches
 * the allocation paths far more often than random positions do.
 */
export function lengthFieldOffsets(bytes: Uint8Array, from: number, to: number): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: number[] = []
  for (let o = from; o + 8 <= Math.min(to, bytes.byteLength); o++) {
    const lo = dv.getUint32(o, true)
    if (lo > 0 && lo < 1 << 26 && dv.getUint32(o + 4, true) === 0) out.push(o)
  }
  return out
}

/** A seed for byte mutation: its bytes, the region where mutations matter most, and its length fields. */
export interface ByteSeed {
  bytes: Uint8Array
  /** Mutations land in [0, hotEnd) 80 % of the time (the header of a model file). */
  hotEnd: number
  lengthFields: number[]
}

export function byteSeed(bytes: Uint8Array, hotEnd = bytes.byteLength): ByteSeed {
  return { bytes, hotEnd, lengthFields: lengthFieldOffsets(bytes, 0, hotEnd) }
}

/**
 * One mutated copy of `seed`: 1–8 stacked operations among bit flips, interesting 8/16/32/64-bit
 * values (at random offsets or at length fields), small arithmetic, truncation, extension with
 * random bytes, deletion, duplication and insertion of ranges, and splicing with `other`.
 * `inPlace` keeps the length and layout (only the value-changing operations): the file still
 * parses, and the mutation reaches the weights and the code that uses them.
 */
export function mutateBytes(rng: Rng, seed: ByteSeed, other?: Uint8Array, inPlace = false): Uint8Array {
  let b: Uint8Array = seed.bytes.slice()
  const pos = (len = 1) => {
    const end = rng.chance(0.8) ? Math.min(seed.hotEnd, b.length) : b.length
    return Math.max(0, rng.int(Math.max(1, end - len + 1)))
  }
  const ops = 1 + Math.min(7, Math.floor(-Math.log2(rng.float() + 1e-9)))
  for (let n = 0; n < ops; n++) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
    switch (rng.int(inPlace ? 6 : 11)) {
      case 0: if (b.length) { const p = pos(); b[p] ^= 1 << rng.int(8) } break
      case 1: if (b.length) b[pos()] = rng.pick(INTERESTING_8); break
      case 2: if (b.length >= 4) dv.setUint32(pos(4), rng.pick(INTERESTING_32), true); break
      case 3: if (b.length >= 8) dv.setBigUint64(pos(8), rng.pick(INTERESTING_64), true); break
      case 4: case 5: { // a length field: a boundary value, or off by a little
        const fields = seed.lengthFields.filter((o) => o + 8 <= b.length)
        if (!fields.length) break
        const o = rng.pick(fields)
        if (rng.chance(0.5)) dv.setBigUint64(o, rng.pick(INTERESTING_64), true)
        else dv.setUint32(o, (dv.getUint32(o, true) + rng.int(65) - 32) >>> 0, true)
        break
      }
      case 6: b = b.slice(0, rng.chance(0.7) ? pos() : rng.int(b.length + 1)); break // truncate
      case 7: { // extend with random bytes
        const extra = new Uint8Array(1 + rng.int(rng.chance(0.9) ? 64 : 65536))
        for (let i = 0; i < extra.length; i++) extra[i] = rng.int(256)
        b = concat(b, extra)
        break
      }
      case 8: { // delete a range
        const at = pos(), len = 1 + rng.int(rng.chance(0.8) ? 16 : 4096)
        b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + len)))
        break
      }
      case 9: { // duplicate a range somewhere else
        const at = pos(), len = 1 + rng.int(256), to = pos()
        b = concat(b.subarray(0, to), b.slice(at, at + len), b.subarray(to))
        break
      }
      case 10: // splice: our prefix + the other seed's suffix
        if (other && other.length) b = concat(b.subarray(0, pos()), other.subarray(rng.int(other.length)))
        break
    }
  }
  return b
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

// ─── JSON trees ──────────────────────────────────────────────────────────────────────────

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** Replacement values: every JSON type, and the numbers and strings that break naive code. */
function randomJson(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => null, () => true, () => false, () => 0, () => -1, () => 1.5, () => 2 ** 31, () => 2 ** 53, () => 1e308, () => -1e308,
    () => '', () => 'x', () => ' ', () => '__proto__', () => 'constructor', () => '\u0000', () => '\ud800', () => 'a'.repeat(1 << (8 + rng.int(9))),
    () => [], () => [rng.int(100)], () => ({}), () => ({ type: 'BPE' }), () => ({ __proto__: 1 } as unknown as Json),
  ])()
}

/** A mutated deep copy of `value`: 1–4 operations at random nodes (replace, delete, duplicate, grow). */
export function mutateJson(rng: Rng, value: object): object {
  const root = structuredClone(value) as { [k: string]: Json }
  const ops = 1 + rng.int(4)
  for (let n = 0; n < ops; n++) {
    // Walk down from the root, stopping at a random depth.
    let parent: Json[] | { [k: string]: Json } = root
    let key: string | number = ''
    for (let depth = 0; depth < 6; depth++) {
      const keys: (string | number)[] = Array.isArray(parent) ? parent.map((_, i) => i) : Object.keys(parent)
      if (!keys.length) break
      key = rng.pick(keys)
      const child: Json = (parent as Record<string | number, Json>)[key]
      if (child === null || typeof child !== 'object' || rng.chance(0.25)) break
      parent = child
    }
    const p = parent as Record<string | number, Json>
    switch (rng.int(5)) {
      case 0: case 1: p[key] = randomJson(rng); break
      case 2: if (Array.isArray(parent)) parent.splice(Number(key), 1); else delete p[key]; break
      case 3: if (Array.isArray(parent)) parent.push(...parent.slice(0, 1 + rng.int(1000))); else p[`${String(key)}_`] = p[key]; break
      case 4: p[key] = typeof p[key] === 'number' ? (p[key] as number) + rng.int(2001) - 1000 : typeof p[key] === 'string' ? (p[key] as string).slice(rng.int(4)) : randomJson(rng); break
    }
  }
  return root
}

// ─── Jinja template text ────────────────────────────────────────────────────────────────

/** Snippets that stress the template engine: huge loops, growth, recursion, bad syntax, errors. */
const TEMPLATE_SNIPPETS = [
  '{% for i in range(1000000000) %}x{% endfor %}',
  '{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}',
  '{% set s = "ab" %}{% for i in range(64) %}{% set s = s + s %}{% endfor %}{{ s }}',
  '{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}',
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  '{{ "x" | indent(100000000) }}', '{{ raise_exception("boom") }}', '{{ messages[10**9] }}', '{{ 10 ** 400 }}',
  '{{ messages | tojson(indent=4) }}', '{{ strftime_now("%d %b %Y") }}', '{% for m in messages %}{{ m.content * 3 }}{% endfor %}',
  '{{', '}}', '{%', '%}', '{% endfor %}', '{% if %}', '{{ x.y.z() }}', '{{ none.x }}', '{{ range(-5) }}', '{{ range(1, 10, 0) }}',
  '{% for a, b in messages %}{% endfor %}', '{{ messages | map(attribute="role") | join(",") }}', '{{ "é🦙\u0000" }}',
]

/** A mutated template: snippets inserted, ranges deleted or duplicated. */
export function mutateTemplate(rng: Rng, template: string): string {
  let t = template
  const ops = 1 + rng.int(3)
  for (let n = 0; n < ops; n++) {
    const at = rng.int(t.length + 1)
    // Snippets go between tags mostly (a template that parses reaches the interpreter).
    const boundaries = [0, t.length, ...[...t.matchAll(/[%}]}/g)].map((m) => m.index + 2)]
    const gap = rng.chance(0.8) ? rng.pick(boundaries) : at
    switch (rng.int(4)) {
      case 0: case 1: t = t.slice(0, gap) + rng.pick(TEMPLATE_SNIPPETS) + t.slice(gap); break
      case 2: t = t.slice(0, at) + t.slice(at + 1 + rng.int(20)); break
      case 3: t = t.slice(0, at) + t.slice(at, at + 1 + rng.int(60)) + t.slice(at); break
    }
  }
  return t
}
