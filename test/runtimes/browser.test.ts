// The demo page in Chromium (Debian's, driven by playwright-core): served with COOP/COEP
// (cross-origin isolated: threaded kernels on 2 threads) and without (the single-thread
// build, with the fallback warning on the page). Both must stream tiny-dev's golden
// continuation; a screenshot of the output must show exactly that text.
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGolden } from '../helpers/golden.js'
import { HAVE_CHROMIUM, launchChromium, startDemoServer } from './helpers.js'

const golden = loadGolden().prompts[0]

describe.runIf(HAVE_CHROMIUM)('demo page in Chromium', () => {
  let browser: Browser
  beforeAll(async () => { browser = await launchChromium() }, 60_000)
  afterAll(() => browser?.close())

  it.each([
    { isolated: true, kernels: /(relaxed|simd) kernels, 2 threads,/ },
    { isolated: false, kernels: /single kernels, 1 thread,/ },
  ])('cross-origin isolated: $isolated', async ({ isolated, kernels }) => {
    const server = await startDemoServer(isolated ? [] : ['--no-isolation'])
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } })
    try {
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      const q = new URLSearchParams({
        model: '/test/fixtures/tiny-dev/ggml-model-i2_s.gguf', prompt: golden.text, n: '32', temp: '0',
        threads: '2', ignoreEos: '', autorun: '',
      })
      await page.goto(`${server.url}/demo/?${q}`)
      await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 150_000 })
      const status = await page.textContent('#status')
      expect(await page.getAttribute('body', 'data-state'), status ?? '').toBe('done')
      expect(errors).toEqual([])
      expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(isolated)
      expect(status).toMatch(kernels)
      const warnings = (await page.textContent('#warnings')) ?? ''
      if (isolated) expect(warnings).toBe('')
      else expect(warnings).toMatch(/running on 1 thread instead of 2: .*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp/)
      expect(await page.textContent('#out')).toBe(golden.greedy32_text)
      expect(await page.textContent('#speed')).toMatch(/32 tokens \(length\).*generation [\d.]+ tokens\/s/)

      // The pixels show the golden text: the output box as streamed equals the same box
      // rendered from the golden text, and differs from a box with one character less.
      const out = page.locator('#out')
      const shot = await out.screenshot()
      const setText = (t: string) => page.evaluate((s) => { document.getElementById('out')!.textContent = s }, t)
      await setText(golden.greedy32_text)
      expect((await out.screenshot()).equals(shot)).toBe(true)
      await setText(golden.greedy32_text.slice(0, -1))
      expect((await out.screenshot()).equals(shot)).toBe(false)
    } finally {
      await page.close()
      server.proc.kill()
    }
  }, 180_000)
})
