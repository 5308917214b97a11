// Every model format tiny-dev's shapes allow loads to the golden logits: the Hugging Face
// folder, the I2_S GGUF, and GGUFs written by `bitnet convert` (TL1, TL2, BF16, F32, ...).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, type BitnetModel } from '../src/index.js'
import { compareTop20, loadGolden, TINY_DIR } from './helpers/golden.js'

const golden = loadGolden()

function expectGolden(model: BitnetModel): void {
  for (const p of golden.prompts) {
    const r = compareTop20(p, model.logits(p.ids))
    expect(r.over / r.entries).toBeLessThanOrEqual(0.001)
    expect(r.argmaxWrong).toBe(0)
  }
}

describe('tiny-dev Hugging Face folder', () => {
  let model: BitnetModel
  beforeAll(async () => { model = await loadModel(TINY_DIR, { threads: 1, outputType: 'f16' }) })
  afterAll(() => model.dispose())

  it('tokenizes like the golden ids and uses the folder chat template', () => {
    for (const p of golden.prompts) expect(model.tokenize(p.text, { addBos: !p.text.startsWith('<|begin_of_text|>') })).toEqual(p.ids)
    expect(model.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<|begin_of_text|>User: hi<|eot_id|>Assistant: ')
  })

  it('gives the golden logits', () => expectGolden(model))
})
