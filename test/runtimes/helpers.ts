// Shared by the runtime tests: the other runtimes' binaries (test/runtimes/package.json)
// and the demo server.
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'

const require = createRequire(new URL('./package.json', import.meta.url))

/** Binaries installed by test/runtimes/package.json (with --ignore-scripts: the platform packages' own). */
export const DENO = require.resolve(`@deno/${process.platform}-${process.arch}${process.platform === 'linux' ? '-glibc' : ''}/deno`)
export const BUN = require.resolve(`@oven/bun-${process.platform}-${process.arch === 'arm64' ? 'aarch64' : process.arch}/bin/bun`)
export const PLAYWRIGHT = require.resolve('playwright-core')

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
