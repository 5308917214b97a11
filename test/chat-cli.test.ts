// `bitnet chat` as people use it: in a real terminal (a tmux pane: typed keys, Ctrl-C,
// Ctrl-D) and with piped stdin (Ctrl-C as a SIGINT). The answer must be the library's greedy
// reply; Ctrl-C must stop the answer and leave the chat running.
import { execFileSync, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel } from '../src/index.js'
import { TINY_GGUF } from './helpers/golden.js'

const CLI = new URL('../dist/cli.js', import.meta.url).pathname
const QUESTION = 'Who built the ark?'
const ARGS = ['chat', '-m', TINY_GGUF, '-t', '1', '--temp', '0', '-n', '100000', '--ignore-eos']
let firstLine: string // the first line of the greedy answer
beforeAll(async () => {
  const model = await loadModel(TINY_GGUF, { threads: 1 })
  const r = await model.chat([{ role: 'user', content: QUESTION }], { temperature: 0, maxTokens: 40, ignoreEos: true })
  firstLine = r.text.split('\n')[0]
  await model.dispose()
  expect(firstLine.length).toBeGreaterThan(10)
})

// Polls `read` until `done` holds (no time limit of its own: the test's timeout bounds it).
async function waitFor(read: () => string, done: (s: string) => boolean): Promise<string> {
  for (;;) {
    const s = read()
    if (done(s)) return s
    await new Promise((r) => setTimeout(r, 100))
  }
}
const count = (s: string, sub: string) => s.split(sub).length - 1

describe('bitnet chat', { timeout: 120_000 }, () => {
  const tmuxSession = `bitnet-chat-${process.pid}`
  afterAll(() => { try { execFileSync('tmux', ['kill-session', '-t', tmuxSession], { stdio: 'ignore' }) } catch { /* already gone */ } })

  it('in a terminal: streamed answer, Ctrl-C stops it, the chat goes on, /reset, Ctrl-D quits', async () => {
    const tmux = (...a: string[]) => execFileSync('tmux', a, { encoding: 'utf8' })
    const cmd = ['node', CLI, ...ARGS].map((a) => `'${a}'`).join(' ')
    tmux('new-session', '-d', '-s', tmuxSession, '-x', '160', '-y', '50', `${cmd}; echo EXITED $?; sleep 60`)
    const pane = () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', tmuxSession)
    await waitFor(pane, (s) => /^> $/m.test(s))
    tmux('send-keys', '-t', tmuxSession, QUESTION, 'Enter')
    await waitFor(pane, (s) => s.includes(firstLine))
    tmux('send-keys', '-t', tmuxSession, 'C-c')
    await waitFor(pane, (s) => /\[stopped\]\n> $/m.test(s.trimEnd() + ' '))
    tmux('send-keys', '-t', tmuxSession, '/reset', 'Enter')
    await waitFor(pane, (s) => s.includes('(conversation cleared)'))
    tmux('send-keys', '-t', tmuxSession, QUESTION, 'Enter')
    await waitFor(pane, (s) => count(s, firstLine) === 2) // same reply after /reset
    tmux('send-keys', '-t', tmuxSession, 'C-c')
    await waitFor(pane, (s) => count(s, '[stopped]') === 2)
    tmux('send-keys', '-t', tmuxSession, 'C-d')
    expect(await waitFor(pane, (s) => s.includes('EXITED'))).toContain('EXITED 0')
  })

  it('with piped stdin: SIGINT stops the answer, /exit quits with 0', async () => {
    const child = spawn('node', [CLI, ...ARGS], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    await waitFor(() => out, (s) => s.includes('> '))
    child.stdin.write(QUESTION + '\n')
    await waitFor(() => out, (s) => s.includes(firstLine))
    child.kill('SIGINT')
    await waitFor(() => out, (s) => s.includes('[stopped]'))
    child.stdin.write('/system Be brief.\n')
    await waitFor(() => out, (s) => s.includes('(new system prompt; conversation cleared)'))
    child.stdin.write('/exit\n')
    expect(await exited).toBe(0)
  })
})
