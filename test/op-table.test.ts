// The thread pool's op table (src/runtime/protocol.ts OPS) against the kernel module itself:
// every op a round can run is a wasm export of every build, taking the table's arguments plus
// the trailing item range (first, end). The TypeScript types check the host's calls against `Kernels`; this
// checks `Kernels` and the table against what the binaries really export.
import { describe, expect, it } from 'vitest'
import { OPS, type OpName } from '../src/runtime/protocol.js'
import { compileKernels, createMemory, instantiateKernels } from '../src/runtime/wasm.js'
import { VARIANTS } from './helpers/kernels.js'

describe.each(VARIANTS)('op table vs the %s build', (variant) => {
  it('names exports with the arity the table gives', async () => {
    const { module } = await compileKernels({ variant })
    const exports = new Map(WebAssembly.Module.exports(module as WebAssembly.Module).map((e) => [e.name, e.kind]))
    const fns = instantiateKernels(module, createMemory(1 << 20, variant)) as unknown as Record<string, (...a: number[]) => void>
    for (const name of Object.keys(OPS) as OpName[]) {
      expect(exports.get(name), name).toBe('function')
      expect(fns[name].length, name).toBe(OPS[name].kinds.length + 2)
    }
  })
})
