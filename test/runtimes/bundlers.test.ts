// The package in apps built for production by the bundlers users build with: Vite, webpack 5
// and Parcel (their default configs, plus only the two COOP/COEP headers the README names),
// Rollup (node-resolve and import-meta-assets, the README's two plugins: Rollup alone neither
// finds packages nor emits `new URL(…, import.meta.url)` files) and esbuild (which does not
// follow `new URL(…, import.meta.url)`: the README's `wasm` and `assets` options point at the
// package's files copied next to the bundle). Each app (the packed tarball installed into it,
// test/runtimes/app/) is served as a static host would and opened in Debian's Chromium: with
// COOP/COEP it must generate the golden text on 2 threads, without them on 1 thread with the
// one warning; never a page error. And an Electron-style page: the webpack build opened from
// file:// with a model the user picks (a File).
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGolden, TINY_GGUF } from '../helpers/golden.js'
import { HAVE_CHROMIUM, launchChromium, packTarball, serveStatic } from './helpers.js'

const run = promisify(execFile)
const require = createRequire(new URL('./package.json', import.meta.url))
/** The bundlers' command-line entries (their packages do not export them). */
const BIN = (pkg: string, file: string) => join(require.resolve(`${pkg}/package.json`), '..', file)
const TMP = mkdtempSync(join(tmpdir(), 'bitnet-bundlers-'))
const APP = join(TMP, 'app')
const golden = loadGolden().prompts[0]
const ROLLUP_PLUGINS = ['@rollup/plugin-node-resolve', '@web/rollup-plugin-import-meta-assets']

const page = (script: string, module = true) =>
  `<!doctype html>\n<html><body><pre id="out"></pre><div id="status">loading</div><script ${module ? 'type="module" ' : ''}src="/${script}"></script></body></html>\n`

/** Each bundler's production build of the app: its output folder. */
const BUILDS: Record<string, () => Promise<void>> = {
  vite: async () => { await run(process.execPath, [BIN('vite', 'bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: APP }) },
  webpack: async () => {
    await run(process.execPath, [BIN('webpack-cli', 'bin/cli.js'), '--config', 'webpack.config.js'], { cwd: APP })
    writeFileSync(join(APP, 'dist-webpack', 'index.html'), page('main.js', false))
  },
  rollup: async () => {
    await run(process.execPath, [BIN('rollup', 'dist/bin/rollup'), '-c', '--silent'], { cwd: APP })
    writeFileSync(join(APP, 'dist-rollup', 'index.html'), page('main.js'))
  },
  // Parcel builds from the page; --no-autoinstall: a Node built-in reached from the browser
  // bundle fails the build instead of Parcel installing a polyfill into the app.
  parcel: async () => {
    await run(process.execPath, [BIN('parcel', 'lib/bin.js'), 'build', 'index.html', '--dist-dir', 'dist-parcel', '--no-autoinstall', '--log-level', 'warn'], { cwd: APP })
  },
  esbuild: async () => {
    const esbuild = await import('esbuild')
    await esbuild.build({ entryPoints: [join(APP, 'main-esbuild.js')], bundle: true, format: 'esm', outdir: join(APP, 'dist-esbuild'), logLevel: 'error' })
    // The README's esbuild step: copy the kernel binaries and the compute worker next to the bundle.
    const pkg = join(APP, 'node_modules', 'bitnet-wasm')
    for (const f of readdirSync(join(pkg, 'build'))) if (f.endsWith('.wasm')) copyFileSync(join(pkg, 'build', f), join(APP, 'dist-esbuild', f))
    copyFileSync(join(pkg, 'dist', 'bitnet-worker.browser.js'), join(APP, 'dist-esbuild', 'bitnet-worker.browser.js'))
    writeFileSync(join(APP, 'dist-esbuild', 'index.html'), page('main-esbuild.js'))
  },
}

/** The Electron-style page: webpack's build of main-file.js, opened from file://. */
async function buildFilePage(): Promise<void> {
  await run(process.execPath, [BIN('webpack-cli', 'bin/cli.js'), '--config', 'webpack.file.config.js'], { cwd: APP })
  copyFileSync(TINY_GGUF, join(APP, 'dist-file', 'model.gguf'))
  writeFileSync(join(APP, 'dist-file', 'index.html'), page('main.js', false).replace('<pre', '<input type="file" id="model"><pre').replace('src="/', 'src="'))
}

/** Waits for the app's #status line, then checks the golden text and no page error; returns the status. */
async function finished(tab: Page, errors: string[]): Promise<{ state: string; message?: string; threads: number; active: number; isolated: boolean; warnings: string[] }> {
  await tab.waitForFunction(() => document.getElementById('status')?.textContent !== 'loading', null, { timeout: 120_000 })
  const status = JSON.parse((await tab.textContent('#status'))!)
  expect(status.state, status.message).toBe('done')
  expect(errors).toEqual([])
  expect(await tab.textContent('#out')).toBe(golden.greedy32_text)
  return status
}

const ONE_THREAD_WARNING = /^bitnet-wasm: running on 1 thread instead of 2: .*Cross-Origin-Opener-Policy/

describe.runIf(HAVE_CHROMIUM)('production builds of an app', () => {
  let browser: Browser
  beforeAll(async () => {
    const { tarball } = await packTarball(TMP)
    cpSync(new URL('./app/', import.meta.url).pathname, APP, { recursive: true })
    writeFileSync(join(APP, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
    await run('npm', ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: APP })
    // rollup.config.js imports its plugins: the app's devDependencies, linked from test/runtimes.
    for (const plugin of ROLLUP_PLUGINS) {
      mkdirSync(dirname(join(APP, 'node_modules', plugin)), { recursive: true })
      symlinkSync(new URL(`./node_modules/${plugin}`, import.meta.url).pathname, join(APP, 'node_modules', plugin))
    }
    await Promise.all([...Object.values(BUILDS), buildFilePage].map((build) => build()))
    // Lets a file:// page read the files beside it, as Electron's file:// pages do (see README).
    browser = await launchChromium(['--allow-file-access-from-files'])
  }, 300_000)
  afterAll(async () => {
    await browser?.close()
    rmSync(TMP, { recursive: true, force: true })
  })

  it.each(Object.keys(BUILDS).flatMap((bundler) => [true, false].map((isolated) => ({ bundler, isolated }))))(
    '$bundler, cross-origin isolated: $isolated', async ({ bundler, isolated }) => {
      const server = await serveStatic(join(APP, `dist-${bundler}`), isolated, { '/model.gguf': TINY_GGUF })
      const tab = await browser.newPage()
      try {
        const errors: string[] = []
        tab.on('pageerror', (e) => errors.push(e.message))
        await tab.goto(server.url + '/')
        const status = await finished(tab, errors)
        expect(status.isolated).toBe(isolated)
        expect([status.threads, status.active]).toEqual(isolated ? [2, 2] : [1, 1])
        if (isolated) expect(status.warnings).toEqual([])
        else expect(status.warnings).toEqual([expect.stringMatching(ONE_THREAD_WARNING)])
      } finally {
        await tab.close()
        await server.close()
      }
    }, 150_000)

  it.each(['a picked File', 'a URL beside the page'])('Electron-style page from file:// (webpack build), model as %s: golden text on 1 thread with the warning', async (how) => {
    const tab = await browser.newPage()
    try {
      const errors: string[] = []
      tab.on('pageerror', (e) => errors.push(e.message))
      const url = pathToFileURL(join(APP, 'dist-file', 'index.html')).href
      if (how === 'a picked File') {
        await tab.goto(url)
        await tab.setInputFiles('#model', TINY_GGUF)
      } else {
        await tab.goto(url + '#url')
      }
      const status = await finished(tab, errors)
      // file:// pages are never cross-origin isolated: no SharedArrayBuffer, one thread.
      expect([status.isolated, status.threads, status.active]).toEqual([false, 1, 1])
      expect(status.warnings).toEqual([expect.stringMatching(ONE_THREAD_WARNING)])
    } finally {
      await tab.close()
    }
  }, 150_000)
})
