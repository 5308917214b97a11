// `bitnet pull`, `bitnet cache ls|rm` and `bitnet run` without -m (the default model),
// as users run them (dist/cli.js in a child process), against the local hub stand-in.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGolden } from './helpers/golden.js'
import { fixtureBytes, fixtureSha, HubServer } from './helpers/hub-server.js'

const CLI = new URL('../dist/cli.js', import.meta.url).pathname
const TMP = mkdtempSync(join(tmpdir(), 'bitnet-cli-cache-'))
const CACHE = join(TMP, 'cache')
const GGUF = 'ggml-model-i2_s.gguf'
let hub: HubServer

beforeAll(async () => { hub = await HubServer.start() })
afterAll(async () => { await hub.close(); rmSync(TMP, { recursive: true, force: true }) })

async function bitnet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, BITNET_HF_ENDPOINT: hub.url, BITNET_CACHE_DIR: CACHE }
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [CLI, ...args], { env, maxBuffer: 64 << 20 })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

describe('bitnet pull / cache', { timeout: 120_000 }, () => {
  it('pull downloads into the cache (BITNET_CACHE_DIR, BITNET_HF_ENDPOINT), verified; again is a no-op', async () => {
    const r = await bitnet('pull', 'hf:test/tiny-dev/' + GGUF, '--json')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ kind: 'gguf', files: [{ size: fixtureBytes(GGUF).length, sha256: fixtureSha(GGUF) }] })
    expect(out.path.startsWith(CACHE)).toBe(true)
    hub.log.length = 0
    const again = await bitnet('pull', 'hf:test/tiny-dev:i2_s')
    expect(again.code).toBe(0)
    expect(again.stdout.trim()).toBe(out.path)
    expect(hub.log.filter((l) => l.method === 'GET' && !l.path.startsWith('/api/'))).toEqual([])
  })

  it('pull errors: 404 (exit 1, NOT_FOUND), bad --sha256 (exit 2)', async () => {
    const r = await bitnet('pull', 'hf:test/tiny-dev/missing.gguf', '--json')
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stderr).error.code).toBe('NOT_FOUND')
    expect((await bitnet('pull', 'hf:test/tiny-dev/' + GGUF, '--sha256', 'xyz')).code).toBe(2)
  })

  it('run without -m fetches the default model (here from the local endpoint) and generates', async () => {
    const p = loadGolden().prompts[0]
    const r = await bitnet('run', '-p', p.text, '-n', '8', '--temp', '0', '--ignore-eos', '-t', '1', '--json')
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('using hf:microsoft/bitnet-b1.58-2B-4T-gguf/ggml-model-i2_s.gguf')
    expect(JSON.parse(r.stdout).tokens).toEqual(p.greedy32_ids.slice(0, 8))
  })

  it('cache ls lists entries and the total; cache rm deletes by hf: repo, then --all', async () => {
    const ls = JSON.parse((await bitnet('cache', 'ls', '--json')).stdout)
    expect(ls.dir).toBe(CACHE)
    expect(ls.entries.map((e: { url: string }) => e.url)).toEqual([
      `${hub.url}/microsoft/bitnet-b1.58-2B-4T-gguf/resolve/main/${GGUF}`,
      `${hub.url}/test/tiny-dev/resolve/main/${GGUF}`,
    ])
    expect(ls.total).toBe(2 * fixtureBytes(GGUF).length)
    const text = (await bitnet('cache', 'ls')).stdout
    expect(text).toMatch(/complete\s+http:\/\/127\.0\.0\.1:\d+\/test\/tiny-dev\/resolve\/main\/ggml-model-i2_s\.gguf/)
    expect(JSON.parse((await bitnet('cache', 'rm', 'hf:test/tiny-dev', '--json')).stdout)).toEqual({ deleted: 1 })
    expect(JSON.parse((await bitnet('cache', 'ls', '--json')).stdout).entries).toHaveLength(1)
    expect(JSON.parse((await bitnet('cache', 'rm', '--all', '--json')).stdout)).toEqual({ deleted: 1 })
    expect(JSON.parse((await bitnet('cache', 'ls', '--json')).stdout)).toMatchObject({ total: 0, entries: [] })
    expect((await bitnet('cache', 'rm')).code).toBe(2)
    expect((await bitnet('cache', 'dir')).stdout.trim()).toBe(CACHE)
  })
})
