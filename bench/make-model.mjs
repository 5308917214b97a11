#!/usr/bin/env node
// Writes the synthetic BitNet b1.58 2B4T-shape models the peer benchmark runs on:
//
//   bitnet-2b4t-synth-tq2_0.gguf  TQ2_0 (ggml type 35), metadata in upstream llama.cpp's
//                                 spelling (see peerMetadata); read by all three engines
//   bitnet-2b4t-synth-i2_s.gguf   I2_S (type 36, bitnet.cpp's format), our own metadata; ours only
//
// Same seed → same ternary codes in both files. Usage: node make-model.mjs [dir] (default
// $BITNET_BENCH_DIR or <os.tmpdir()>/bitnet-wasm-bench). A file that exists with the expected
// size is kept (generation takes tens of seconds and ~1.2 GB of RAM per format).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { ggufChunks, GgufType, SHAPES, syntheticGguf } from '../dist/index.js'

export const defaultDir = () => process.env.BITNET_BENCH_DIR ?? path.join(os.tmpdir(), 'bitnet-wasm-bench')
export const modelPaths = (dir = defaultDir()) => ({
  tq2: path.join(dir, 'bitnet-2b4t-synth-tq2_0.gguf'),
  i2s: path.join(dir, 'bitnet-2b4t-synth-i2_s.gguf'),
})

/**
 * Upstream llama.cpp (node-llama-cpp, wllama) has no 'bitnet-b1.58' architecture, only
 * 'bitnet' (src/models/bitnet.cpp, same block: sub-norms, tied embedding, NEOX RoPE). So for
 * the shared TQ2_0 file:
 *  - general.architecture 'bitnet-b1.58' → 'bitnet', and every 'bitnet-b1.58.*' key → 'bitnet.*';
 *  - 'bitnet.hidden_activation' = 'relu2' is kept: upstream reads it (FFN ReLU², the 2B4T
 *    activation; without it upstream defaults to SiLU) and our engine reads it too (an explicit
 *    key wins over its per-arch default), so all engines compute the same network.
 * Nothing else is needed: without tokenizer.ggml.pre upstream only warns and uses 'default'
 * (the benchmark feeds token ids, never text).
 */
function peerMetadata(meta) {
  const out = new Map()
  for (const [k, v] of meta) {
    if (k === 'general.architecture') out.set(k, { type: GgufType.STRING, value: 'bitnet' })
    else out.set(k.startsWith('bitnet-b1.58.') ? 'bitnet.' + k.slice('bitnet-b1.58.'.length) : k, v)
  }
  return out
}

/** Streams `chunks` to `file` (via a temp name, so a half-written file is never cached); returns bytes. */
export function writeChunks(file, chunks) {
  const tmp = file + '.part'
  const fd = fs.openSync(tmp, 'w')
  let n = 0
  try {
    for (const chunk of chunks) { fs.writeSync(fd, chunk); n += chunk.byteLength }
  } finally { fs.closeSync(fd) }
  fs.renameSync(tmp, file)
  return n
}

export function makeModels(dir = defaultDir(), log = console.error) {
  fs.mkdirSync(dir, { recursive: true })
  const paths = modelPaths(dir)
  for (const [format, file, meta] of [['TQ2_0', paths.tq2, peerMetadata], ['I2_S', paths.i2s, (m) => m]]) {
    // Knowing the exact size needs the whole header, so it is kept in a sidecar written last:
    // a file is reused only if it is complete and its size matches.
    const sidecar = file + '.size'
    if (fs.existsSync(file) && fs.existsSync(sidecar) && fs.statSync(file).size === Number(fs.readFileSync(sidecar, 'utf8'))) {
      log(`cached ${file} (${(fs.statSync(file).size / 1e9).toFixed(3)} GB)`)
      continue
    }
    const t0 = performance.now()
    const gguf = syntheticGguf(SHAPES['2b4t'], { format, seed: 1 })
    const t1 = performance.now()
    const bytes = writeChunks(file, ggufChunks({ ...gguf, metadata: meta(gguf.metadata) }))
    const t2 = performance.now()
    fs.writeFileSync(sidecar, String(bytes))
    log(`wrote ${file}: ${format}, ${(bytes / 1e9).toFixed(3)} GB; generate ${((t1 - t0) / 1000).toFixed(1)} s, write ${((t2 - t1) / 1000).toFixed(1)} s`)
  }
  return paths
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) makeModels(process.argv[2])
