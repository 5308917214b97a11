// `bitnet serve` as a process: prints where it listens, answers the openai client, sends CORS
// headers with --cors, and shuts down cleanly on Ctrl-C (SIGINT).
import { spawn } from 'node:child_process'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { loadModel } from '../src/index.js'
import { TINY_GGUF } from './helpers/golden.js'

const CLI = new URL('../dist/cli.js', import.meta.url).pathname

describe('bitnet serve (CLI)', { timeout: 120_000 }, () => {
  it('serves the openai client, CORS preflight, exits 0 on SIGINT', async () => {
    const child = spawn('node', [CLI, 'serve', '-m', TINY_GGUF, '-t', '1', '--port', '0', '--api-key', 'k', '--cors', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    let out = ''
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d
        const m = /listening on (\S+)/.exec(out)
        if (m) resolve(m[1])
      })
      child.on('exit', (code) => reject(new Error(`exited with ${code} before listening`)))
    })
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const messages = [{ role: 'user' as const, content: 'Who slew Goliath?' }]
    const client = new OpenAI({ baseURL: url + '/v1', apiKey: 'k', maxRetries: 0 })
    const r = await client.chat.completions.create({ model: 'tiny-dev', messages, temperature: 0, max_tokens: 8 })
    const model = await loadModel(TINY_GGUF, { threads: 1 })
    expect(r.choices[0].message.content).toBe((await model.chat(messages, { temperature: 0, maxTokens: 8 })).text)
    await model.dispose()

    const pre = await fetch(url + '/v1/chat/completions', { method: 'OPTIONS', headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST' } })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe('*')
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/)

    child.kill('SIGINT')
    expect(await exited).toBe(0)
  })
})
