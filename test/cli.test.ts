// The `bitnet` CLI as users run it: the built dist/cli.js in a child process.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { loadGolden, TINY_GGUF } from './helpers/golden.js'

const CLI = new URL('../dist/cli.js', import.meta.url).pathname
const golden = loadGolden()
const TMP = mkdtempSync(join(tmpdir(), 'bitnet-cli-test-'))
afterAll(() => rmSync(TMP, { recursive: true, force: true }))

// One compute thread unless a test says otherwise: these tests check the CLI's behaviour,
// and spinning worker threads on a machine busy with other test files would only slow them.
async function bitnet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  if (['run', 'logits', 'ppl'].includes(args[0]) && !args.includes('-t')) args.push('-t', '1')
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [CLI, ...args], { maxBuffer: 64 << 20 })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

describe('bitnet CLI on tiny-dev', () => {
  it('run: greedy continuation (2 threads), streamed text and --json', async () => {
    const p = golden.prompts[0]
    const plain = await bitnet('run', '-m', TINY_GGUF, '-p', p.text, '-n', '32', '--temp', '0', '--ignore-eos', '-t', '2')
    expect(plain.code).toBe(0)
    expect(plain.stdout).toBe(p.greedy32_text + '\n')
    const r = await bitnet('run', '-m', TINY_GGUF, '-p', p.text, '-n', '32', '--temp', '0', '--ignore-eos', '--json')
    const out = JSON.parse(r.stdout)
    expect(out.text).toBe(p.greedy32_text)
    expect(out.tokens).toEqual(p.greedy32_ids)
    expect(out.prompt_tokens).toEqual(p.ids)
    expect(out.timings.tg_tok_s).toBeGreaterThan(0)
  })

  it('run --draft prompt-lookup: the same greedy text, drafts counted; an unknown drafter is refused', async () => {
    const p = golden.prompts[0]
    const r = await bitnet('run', '-m', TINY_GGUF, '-p', p.text, '-n', '32', '--temp', '0', '--ignore-eos', '--draft', 'prompt-lookup', '--json')
    const out = JSON.parse(r.stdout)
    expect(out.tokens).toEqual(p.greedy32_ids)
    expect(out.timings.draft_accepted).toBeLessThanOrEqual(out.timings.draft_tokens)
    const bad = await bitnet('run', '-m', TINY_GGUF, '-p', 'x', '--draft', 'eagle')
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/--draft: the one drafter is 'prompt-lookup', got 'eagle'/)
  })

  it('run: special tokens in the prompt are parsed, --no-bos', async () => {
    const p = golden.prompts[5] // the chat prompt, text starting with <|begin_of_text|>
    const r = await bitnet('run', '-m', TINY_GGUF, '-p', p.text, '-n', '4', '--temp', '0', '--no-bos', '--json')
    expect(JSON.parse(r.stdout).prompt_tokens).toEqual(p.ids)
  })

  it('run: sampling with a seed is reproducible', async () => {
    const args = ['run', '-m', TINY_GGUF, '-p', 'And God said', '-n', '12', '--temp', '0.9', '--seed', '7', '--json']
    const [a, b] = await Promise.all([bitnet(...args), bitnet(...args)])
    expect(JSON.parse(a.stdout).tokens).toEqual(JSON.parse(b.stdout).tokens)
  })

  it('run: -j constrains the output to a JSON schema; --logit-bias bans a token', async () => {
    const schema = { type: 'object', properties: { book: { enum: ['Genesis', 'Exodus'] }, chapter: { type: 'integer' } }, required: ['book', 'chapter'] }
    const r = await bitnet('run', '-m', TINY_GGUF, '-p', 'And God said', '-n', '200', '--temp', '0.8', '--seed', '3', '-j', JSON.stringify(schema), '--json')
    const out = JSON.parse(r.stdout)
    expect(out.finish_reason).toBe('stop')
    const value = JSON.parse(out.text)
    expect(['Genesis', 'Exodus']).toContain(value.book)
    expect(Number.isInteger(value.chapter)).toBe(true)
    const p = golden.prompts[0]
    const banned = await bitnet('run', '-m', TINY_GGUF, '-p', p.text, '-n', '1', '--temp', '0', '--logit-bias', `${p.greedy32_ids[0]}-inf`, '--json')
    expect(JSON.parse(banned.stdout).tokens[0]).not.toBe(p.greedy32_ids[0])
    expect((await bitnet('run', '-m', TINY_GGUF, '-p', 'x', '--logit-bias', '5*2')).code).not.toBe(0)
  }, 120_000)

  it('logits --json: top-k per position matches golden', async () => {
    const p = golden.prompts[1]
    const r = await bitnet('logits', '-m', TINY_GGUF, '-p', p.text, '--top', '5', '--json')
    const out = JSON.parse(r.stdout)
    expect(out.tokens).toEqual(p.ids)
    expect(out.positions).toHaveLength(p.ids.length)
    out.positions.forEach((pos: { pos: number; top: [number, number][] }, i: number) => {
      expect(pos.pos).toBe(i)
      expect(pos.top.map(([id]) => id)[0]).toBe(p.top20_ids[i][0])
      pos.top.forEach(([id, v]) => {
        const j = p.top20_ids[i].indexOf(id)
        if (j >= 0) expect(Math.abs(v - p.top20_logits[i][j])).toBeLessThan(0.05)
      })
    })
  })

  // The span's first chunk (golden.test.ts checks the whole span's perplexity through the library)
  it('ppl --tokens --ctx 512 --json within 0.3% of golden (the first 512-token chunk)', async () => {
    const file = join(TMP, 'span.json')
    writeFileSync(file, JSON.stringify(golden.val_ppl.span_ids.slice(0, 512)))
    const r = await bitnet('ppl', '-m', TINY_GGUF, '--tokens', file, '--ctx', '512', '--json')
    const out = JSON.parse(r.stdout)
    expect(out.tokens).toBe(512)
    expect(Math.abs(out.ppl / Math.exp(golden.val_ppl.chunk_mean_nll[0]) - 1)).toBeLessThan(0.003)
  }, 120_000)

  it('info --json: architecture, shapes, tensor types, template fix', async () => {
    const out = JSON.parse((await bitnet('info', TINY_GGUF, '--json')).stdout)
    expect(out.config).toMatchObject({ arch: 'bitnet-b1.58', nEmbd: 128, nLayer: 8, nHead: 4, nHeadKv: 1, activation: 'relu2' })
    expect(out.tensor_types.I2_S.count).toBe(8 * 7)
    expect(out.chat_template.placeholder_in_file).toBe(true)
    expect(out.chat_template.used).toContain('Assistant: ')
    // 2 (k, v) × 8 layers × 1 kv head × 32 dims × 4 or 2 bytes
    expect(out.kv_bytes_per_token).toEqual({ f32: 2048, f16: 1024 })
    expect(out.kv_auto_f16_from).toBe(32768) // 'auto' turns f16 at 64 MiB of f32
    // the output matrix (128256 × 128) per --output-type: q8 128 bytes + a scale per row, q6 96 + a scale,
    // q4 64 + 4 scales; q4+q8 holds both and each row's bound, and reads the q4 copy with the bounds
    const q8 = 128256 * (128 + 4), q6 = 128256 * (96 + 4), q4 = 128256 * (64 + 16)
    expect(out.output_head).toEqual({ auto: { relaxed: 'f16', simd: 'f16', single: 'f16' }, f16: 128256 * 256, q8, q6, q4, 'q4+q8': { memory: q8 + q4 + 128256 * 4, pass: q4 + 128256 * 4 } })
    expect(out.config.provenance).toMatchObject({ family: "BitNet b1.58 2B4T (general.architecture 'bitnet-b1.58')", activationGuessed: false })
  })

  it('embed: one vector per text, pooled as asked', async () => {
    const r = await bitnet('embed', '-m', TINY_GGUF, '-p', 'In the beginning', '-p', 'the ark', '--pooling', 'last', '--eos', '--normalize', '--json')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.embeddings).toHaveLength(2)
    expect(out.tokens).toEqual([5, 4]) // BOS + text + EOS
    for (const e of out.embeddings) {
      expect(e).toHaveLength(128)
      expect(Math.hypot(...e)).toBeCloseTo(1, 5)
    }
    const plain = await bitnet('embed', '-m', TINY_GGUF, '-p', 'the ark')
    expect(plain.stdout.trim().split('\n')).toHaveLength(1)
    expect(plain.stdout.trim().split(' ')).toHaveLength(128)
    expect((await bitnet('embed', '-m', TINY_GGUF, '-p', 'x', '--pooling', 'cls', '--json')).stderr).toMatch(/--pooling must be one of mean, last/)
  })

  it('info: family, activation and where each was read from', async () => {
    const { stdout } = await bitnet('info', TINY_GGUF)
    expect(stdout).toMatch(/family +BitNet b1.58 2B4T \(general.architecture 'bitnet-b1.58'\)/)
    expect(stdout).toMatch(/activation +relu2 \(arch 'bitnet-b1.58' with a Llama 3 tokenizer/)
    const folder = new URL('./fixtures/tiny-dev/', import.meta.url).pathname
    expect((await bitnet('info', folder)).stdout).toMatch(/family +BitNet b1.58 2B4T \(config.json model_type 'bitnet', quant_method 'bitnet'\)\n.*\n +activation +relu2 \(config.json hidden_act\)/)
  })

  it('convert --json and info on a Hugging Face folder; logits of the converted file are the folder\'s', async () => {
    const folder = new URL('./fixtures/tiny-dev/', import.meta.url).pathname
    const out = join(TMP, 'tiny-tl1.gguf')
    const conv = await bitnet('convert', folder, out, '--to', 'tl1', '--json')
    expect(conv.code).toBe(0)
    expect(JSON.parse(conv.stdout)).toMatchObject({ file: out, to: 'tl1', output_type: 'f16' })
    const info = JSON.parse((await bitnet('info', folder, '--json')).stdout)
    expect(info).toMatchObject({ format: 'huggingface', config: { arch: 'bitnet-b1.58', nLayer: 8 }, tensor_types: { HF_PACKED: { count: 56 } } })
    expect(JSON.parse((await bitnet('info', out, '--json')).stdout).tensor_types.TL1.count).toBe(56)
    const a = JSON.parse((await bitnet('logits', '-m', out, '-p', 'In the beginning', '--json')).stdout)
    const b = JSON.parse((await bitnet('logits', '-m', folder, '-p', 'In the beginning', '--json')).stdout)
    expect(a).toEqual(b)
    const bad = await bitnet('convert', folder, join(TMP, 'x.gguf'), '--to', 'tq2_0', '--json')
    expect(bad.code).toBe(2)
    expect(JSON.parse(bad.stderr).error.message).toMatch(/cannot be stored as TQ2_0/)
  }, 120_000) // six CLI runs: past 60 s on a busy machine

  it('bench --json: speed, RSS and what ran, in the context -c asks for', async () => {
    const out = JSON.parse((await bitnet('bench', '-m', TINY_GGUF, '-p', '8', '-n', '4', '-c', '300', '-t', '1', '--kv-type', 'f16', '--json')).stdout)
    expect(out).toMatchObject({ threads: 1, n_prompt: 8, n_gen: 4, n_ctx: 300, kv_type: 'f16', kv_bytes_per_token: 1024 })
    expect(out.pp_tok_s).toBeGreaterThan(0)
    expect(out.tg_tok_s).toBeGreaterThan(0)
    expect(out.ttft_ms).toBeGreaterThan(0)
    expect(out.peak_rss_mb).toBeGreaterThan(0)
    expect(['i2s', 'tl']).toContain(out.kernel)
    expect(['relaxed', 'simd']).toContain(out.variant)
    const small = await bitnet('bench', '-m', TINY_GGUF, '-p', '8', '-n', '4', '-c', '10', '--json')
    expect(small.code).toBe(2)
    expect(JSON.parse(small.stderr).error.message).toBe('-c 10 cannot hold the 8 prompt and 4 generated tokens: give -c 12 or more, or a smaller -p / -n')
  })

  it('errors: typed JSON on stderr and a non-zero exit', async () => {
    const missing = await bitnet('run', '-m', '/nonexistent.gguf', '-p', 'x', '--json')
    expect(missing.code).not.toBe(0)
    expect(JSON.parse(missing.stderr).error.message).toContain('/nonexistent.gguf')

    const bad = join(TMP, 'bad.gguf')
    writeFileSync(bad, Buffer.from('GGUF\x03\x00\x00\x00garbage'))
    const r = await bitnet('info', bad, '--json')
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stderr).error.code).toBe('MODEL_FORMAT')

    const flag = await bitnet('run', '--bogus')
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/bogus/)
  })
})
