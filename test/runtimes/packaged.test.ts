// The package as users get it: `npm pack`, installed into an empty folder, then run from
// there by Node (the machine's), Deno and Bun, in this thread on 2 threads and in a
// Worker (bitnet-wasm/worker). Each must print tiny-dev's golden continuation with
// nothing on stderr. Also: the exports map checked by arethetypeswrong, the size budget.
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGolden, TINY_GGUF } from '../helpers/golden.js'
import { BUN, DENO } from './helpers.js'

const run = promisify(execFile)
const ROOT = new URL('../../', import.meta.url).pathname
const TMP = mkdtempSync(join(tmpdir(), 'bitnet-pack-test-'))
const APP = join(TMP, 'app')
const golden = loadGolden().prompts[0]
let tarball = ''
let unpackedSize = 0

beforeAll(async () => {
  // --ignore-scripts: dist/ and build/ are fresh (npm test's pretest built them).
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', TMP], { cwd: ROOT })
  const info = JSON.parse(stdout)[0] as { filename: string; unpackedSize: number }
  tarball = join(TMP, info.filename)
  unpackedSize = info.unpackedSize
  await run('mkdir', [APP])
  writeFileSync(join(APP, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  await run('npm', ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: APP })
  copyFileSync(new URL('./golden-run.mjs', import.meta.url), join(APP, 'golden-run.mjs'))
  writeFileSync(join(APP, 'args.mjs'), `export const MODEL = ${JSON.stringify(TINY_GGUF)}\n` +
    `export const PROMPT = ${JSON.stringify(golden.text)}\nexport const MAX_TOKENS = 32\n`)
}, 300_000)
afterAll(() => rmSync(TMP, { recursive: true, force: true }))

describe('packed tarball', () => {
  it(`unpacked size is within the 3 MB budget`, () => {
    expect(unpackedSize).toBeGreaterThan(100_000)
    expect(unpackedSize).toBeLessThanOrEqual(3_000_000)
  })

  it('exports map resolves with types for every entry (arethetypeswrong, ESM-only profile)', async () => {
    const attw = new URL('../../node_modules/@arethetypeswrong/cli/dist/index.js', import.meta.url).pathname
    // Exits non-zero on any problem outside the ignored CommonJS resolutions.
    const { stdout } = await run(process.execPath, [attw, tarball, '--profile', 'esm-only', '--format', 'table-flipped'])
    for (const entry of ['"bitnet-wasm"', '"bitnet-wasm/worker"']) expect(stdout).toContain(entry)
  }, 120_000)

  const RUNTIMES: [string, string, string[]][] = [
    ['Node', process.execPath, []],
    ['Deno', DENO, ['run', '--allow-read', '--allow-env']],
    ['Bun', BUN, []],
  ]
  it.each(RUNTIMES)('%s runs it from an empty folder: golden continuation, empty stderr', async (name, bin, args) => {
    const { stdout, stderr } = await run(bin, [...args, 'golden-run.mjs'], {
      cwd: APP, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
    })
    expect(stderr).toBe('')
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { how: string; variant: string; threads: number; tokens: number[]; text: string; streamed: string })
    // Node has no global Worker: bitnet-wasm/worker is for browsers, Deno and Bun.
    expect(lines.map((l) => l.how)).toEqual(name === 'Node' ? ['in-thread'] : ['in-thread', 'worker'])
    for (const l of lines) {
      expect(l.threads).toBe(2)
      expect(l.tokens).toEqual(golden.greedy32_ids)
      expect(l.text).toBe(golden.greedy32_text)
      expect(l.streamed).toBe(golden.greedy32_text)
    }
    // Deno 2 and Bun have relaxed SIMD; Node 20 does not.
    expect(lines[0].variant).toBe(name === 'Node' && process.versions.node.startsWith('20.') ? 'simd' : 'relaxed')
  }, 180_000)
})
