// The package as users get it: `npm pack`, installed into an empty folder, then run from
// there by Node (the machine's), Deno and Bun, in this thread on 2 threads and in a
// Worker (bitnet-wasm/worker). Each must print tiny-dev's golden continuation with
// nothing on stderr. Also: the exports map checked by arethetypeswrong, the file list and
// size budget, the published package.json (no install script), and the .d.ts files
// type-checked by consumer projects with a Node-only lib and with the DOM lib.
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGolden, TINY_GGUF } from '../helpers/golden.js'
import { BUN, DENO, packTarball, type PackInfo } from './helpers.js'

const run = promisify(execFile)
const ROOT = new URL('../../', import.meta.url).pathname
const TMP = mkdtempSync(join(tmpdir(), 'bitnet-pack-test-'))
const APP = join(TMP, 'app')
const golden = loadGolden().prompts[0]
let pack: PackInfo

beforeAll(async () => {
  pack = await packTarball(TMP)
  const { tarball } = pack
  await run('mkdir', [APP])
  writeFileSync(join(APP, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  await run('npm', ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: APP })
  copyFileSync(new URL('./golden-run.mjs', import.meta.url), join(APP, 'golden-run.mjs'))
  copyFileSync(new URL('./bun-compile-app.mjs', import.meta.url), join(APP, 'app.mjs'))
  writeFileSync(join(APP, 'args.mjs'), `export const MODEL = ${JSON.stringify(TINY_GGUF)}\n` +
    `export const PROMPT = ${JSON.stringify(golden.text)}\nexport const MAX_TOKENS = 32\n`)
}, 300_000)
afterAll(() => rmSync(TMP, { recursive: true, force: true }))

describe('packed tarball', () => {
  it(`unpacked size is within the 3 MB budget, the tarball within 1 MB`, () => {
    expect(pack.unpackedSize).toBeGreaterThan(100_000)
    expect(pack.unpackedSize).toBeLessThanOrEqual(3_000_000)
    expect(pack.size).toBeLessThanOrEqual(1_000_000)
  })

  it('holds the bundles, their types, the three kernel builds, README and package.json; nothing else', () => {
    const files = pack.files.map((f) => f.path)
    const code = files.filter((f) => !f.endsWith('.d.ts')).sort()
    expect(code).toEqual(['README.md', 'build/bitnet-relaxed.wasm', 'build/bitnet-simd.wasm', 'build/bitnet-single.wasm',
      'dist/bitnet-worker.browser.js', 'dist/bitnet-worker.js', 'dist/cli.js', 'dist/engine-worker.js', 'dist/engine-worker.node.js',
      'dist/index.browser.js', 'dist/index.js', 'dist/worker.js', 'dist/worker.node.js', 'package.json'])
    expect(files.filter((f) => f.endsWith('.d.ts')).every((f) => f.startsWith('dist/') && !f.startsWith('dist/cli/'))).toBe(true)
    for (const d of ['dist/index.d.ts', 'dist/worker.d.ts']) expect(files).toContain(d)
  })

  it('published package.json has no install-time script (prepare is stripped on pack)', () => {
    const pkg = JSON.parse(readFileSync(join(APP, 'node_modules', 'bitnet-wasm', 'package.json'), 'utf8'))
    for (const s of ['prepare', 'preinstall', 'install', 'postinstall']) expect(pkg.scripts?.[s]).toBeUndefined()
    // The repo keeps it: `npm ci` on a fresh clone builds dist/ for `npx bitnet`.
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.prepare).toBe('npm run build')
  })

  // A Node app (lib es2022, @types/node, no DOM) and a browser app (lib es2022 + DOM, no
  // @types/node), both with skipLibCheck off: the package's .d.ts files must check in each.
  const CONSUMERS: [string, object][] = [
    ['Node-only lib (es2022 + @types/node)', { lib: ['es2022'], types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] }],
    ['DOM lib (es2022 + DOM, no @types/node)', { lib: ['es2022', 'dom'], types: [] }],
  ]
  it.each(CONSUMERS)('its .d.ts files type-check in a consumer project: %s', async (name, libs) => {
    const dir = join(APP, `tsc-${CONSUMERS.findIndex(([n]) => n === name)}`)
    mkdirSync(dir)
    writeFileSync(join(dir, 'main.ts'), [
      "import { loadModel, type BitnetModel } from 'bitnet-wasm'",
      "import { loadModelInWorker, type WorkerModel } from 'bitnet-wasm/worker'",
      'export const load: (s: string) => Promise<BitnetModel> = (s) => loadModel(s, { threads: 2 })',
      'export const inWorker: (s: Uint8Array) => Promise<WorkerModel> = (s) => loadModelInWorker(s)',
    ].join('\n') + '\n')
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: false, noEmit: true, ...libs },
      files: ['main.ts'],
    }))
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    await expect(run(process.execPath, [tsc, '-p', dir]).then(() => 'ok', (e) => String(e.stdout))).resolves.toBe('ok')
  }, 60_000)

  it('exports map resolves with types for every entry (arethetypeswrong, ESM-only profile)', async () => {
    const attw = new URL('../../node_modules/@arethetypeswrong/cli/dist/index.js', import.meta.url).pathname
    // Exits non-zero on any problem outside the ignored CommonJS resolutions.
    const { stdout } = await run(process.execPath, [attw, pack.tarball, '--profile', 'esm-only', '--format', 'table-flipped'])
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
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, never>)
    const runs = lines.filter((l) => !l.name) as { how: string; variant: string; threads: number; tokens: number[]; text: string; streamed: string }[]
    expect(lines.map((l) => l.how)).toEqual(name === 'Node'
      ? ['in-thread', 'worker-node']
      : ['in-thread', 'worker-bytes', 'worker-path', 'worker-file-url', 'worker-blob', 'worker-error'])
    for (const l of runs) {
      expect(l.threads).toBe(2)
      expect(l.tokens).toEqual(golden.greedy32_ids)
      expect(l.text).toBe(golden.greedy32_text)
      expect(l.streamed).toBe(golden.greedy32_text)
    }
    // Deno 2 and Bun have relaxed SIMD; Node 20 does not.
    expect(runs[0].variant).toBe(name === 'Node' && process.versions.node.startsWith('20.') ? 'simd' : 'relaxed')
    // Errors keep their class (instanceof the package's own), code, message and stack across the Worker;
    // Node's names the alternative.
    const err = lines.at(-1) as unknown as { name: string; typed: boolean; code: string; message: string; stack: string; shown: string }
    expect(err.typed).toBe(true)
    expect([err.name, err.code]).toEqual(name === 'Node' ? ['UnsupportedFeatureError', 'UNSUPPORTED'] : ['ModelFormatError', 'MODEL_FORMAT'])
    expect(err.message).toMatch(name === 'Node' ? /Node has none: .*loadModel from 'bitnet-wasm'/ : /\S/)
    expect(err.stack).toContain(`${err.name}: ${err.message}`)
    // The console shows it as the error it is: name and message once, the stack's frames, the code.
    expect(err.shown.split(`${err.name}: ${err.message}`)).toHaveLength(2)
    expect(err.shown).toMatch(new RegExp(`code: ["']${err.code}["']`))
    // the worker's own frames: where the GGUF reader refused the bytes
    if (name !== 'Node') for (const s of [err.stack, err.shown]) expect(s).toMatch(/at .*readGguf .*engine-worker\.node\.js/)
  }, 180_000)

  it('bun build --compile: a single-file executable (README recipe) generates the golden text on 2 threads', async () => {
    await run(BUN, ['build', '--compile', 'app.mjs', './node_modules/bitnet-wasm/dist/bitnet-worker.js', '--outfile', 'app'], { cwd: APP })
    // Run from elsewhere: nothing may be read from the app folder but the model.
    const { stdout, stderr } = await run(join(APP, 'app'), [], { cwd: TMP })
    expect(stderr).toBe('')
    const r = JSON.parse(stdout) as { variant: string; threads: number; tokens: number[]; text: string }
    expect([r.variant, r.threads]).toEqual(['relaxed', 2])
    expect(r.tokens).toEqual(golden.greedy32_ids)
    expect(r.text).toBe(golden.greedy32_text)
  }, 120_000)
})
