// Shared by the runtime tests: the other runtimes' binaries (test/runtimes/package.json),
// headless Chromium and the demo server.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Browser } from 'playwright-core'

const require = createRequire(new URL('./package.json', import.meta.url))

/** Binaries installed by test/runtimes/package.json (with --ignore-scripts: the platform packages' own). */
export const DENO = require.resolve(`@deno/${process.platform}-${process.arch}${process.platform === 'linux' ? '-glibc' : ''}/deno`)
export const BUN = require.resolve(`@oven/bun-${process.platform}-${process.arch === 'arm64' ? 'aarch64' : process.arch}/bin/bun`)
export const PLAYWRIGHT = require.resolve('playwright-core')

/** Debian's Chromium: .ci/run installs it; a developer machine without it skips the browser tests. */
export const CHROMIUM = '/usr/bin/chromium'
export const HAVE_CHROMIUM = existsSync(CHROMIUM) || !!process.env.CI

/** Launches headless Chromium through playwright-core, quiet (no background traffic). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import(PLAYWRIGHT) as typeof import('playwright-core')
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  })
}

/** Starts demo/serve.mjs on a free port; resolves with its base URL and the process. */
export function startDemoServer(args: string[] = []): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [new URL('../../demo/serve.mjs', import.meta.url).pathname, '--port', '0', ...args])
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`demo server exited with ${code}`)))
    proc.stdout!.on('data', (d: Buffer) => {
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(String(d))
      if (m) resolve({ url: m[0], proc })
    })
  })
}
