import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { convertToGguf } from '../src/convert/index.js'
import { writeChunksToFile } from '../src/io/file.js'
import { loadModel, openModelContents } from '../src/index.js'
import { padModelContents } from '../src/model/pad.js'
import { compareTop20, loadGolden, TINY_GGUF } from './helpers/golden.js'

const golden = loadGolden()
const dir = mkdtempSync(join(tmpdir(), 'bitnet-pad-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('explore', () => {
  it.each([[2, 'i2s'], [2, 'tq2_0'], [2, 'tq1_0'], [4, 'tq2_0'], [1, 'i2s']] as const)('%s %s', async (factor, to) => {
    const src = await openModelContents(TINY_GGUF)
    const out = join(dir, `p.gguf`)
    await writeChunksToFile(out, convertToGguf(padModelContents(src, { factor }), { to }))
    await src.close?.()
    const m = await loadModel(out, { threads: 1, outputType: 'f16' })
    const o = await loadModel(TINY_GGUF, { threads: 1, outputType: 'f16' })
    let md = 0, n = 0
    for (const p of golden.prompts) {
      const l = m.logits(p.ids), lo = o.logits(p.ids)
      l.forEach((x, i) => { for (let j = 0; j < x.length; j++) { const d = Math.abs(x[j] - lo[i][j]); md = Math.max(md, d); if (d > 0) n++ } })
    }
    console.log(factor, to, 'max vs unpadded', md, 'nonzero', n)
    await m.dispose(); await o.dispose()
  }, 300_000)
})
