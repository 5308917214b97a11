import { open, readFile, rename, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import process from 'node:process'
import { InvalidArgumentError } from '../errors.js'
import type { ModelFolder } from '../model/load-hf.js'
import type { ByteSource } from './source.js'

/** A source over a local file (Node, Deno, Bun), read with positioned reads. */
export async function fileSource(path: string): Promise<ByteSource> {
  const handle = await open(path, 'r')
  const { size } = await handle.stat()
  return {
    name: path,
    size,
    async read(offset, length, into) {
      const n = Math.max(0, Math.min(length, size - offset))
      const out = into ? into.subarray(0, n) : new Uint8Array(n)
      let done = 0
      while (done < n) {
        const { bytesRead } = await handle.read(out, done, n - done, offset + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return done === n ? out : out.subarray(0, done)
    },
    close: () => handle.close(),
  }
}

/** True if `path` is a directory (a Hugging Face model folder); InvalidArgumentError if nothing is there. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidArgumentError(`no such file or folder: ${path}`)
    throw e
  }
}

/**
 * A local model folder: files open as positioned-read sources; missing ones resolve to undefined.
 * @example const contents = await hfContents(folderSource('models/bitnet-b1.58-2B-4T'))
 */
export function folderSource(dir: string): ModelFolder {
  return {
    name: dir,
    async open(file) {
      try {
        return await fileSource(join(dir, file))
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw e
      }
    },
  }
}

/** Reads a whole small file (configs, tokenizer.json, wasm binaries). */
export async function readFileBytes(path: string | URL): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await readFile(path))
}

/** Reads a whole small text file. */
export async function readFileText(path: string | URL): Promise<string> {
  return readFile(path, 'utf8')
}

/**
 * Streams `chunks` (e.g. from ggufChunks or convertToGguf) into a file at `path`; returns its
 * size. Written under a temporary name and renamed at the end, so a failed or interrupted run
 * never leaves a partial file at `path`.
 */
export async function writeChunksToFile(path: string, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<number> {
  const partial = `${path}.${process.pid}.partial`
  let bytes = 0
  try {
    const handle = await open(partial, 'w')
    try {
      for await (const c of chunks) {
        for (let done = 0; done < c.byteLength;) done += (await handle.write(c, done, c.byteLength - done)).bytesWritten
        bytes += c.byteLength
      }
    } finally {
      await handle.close()
    }
    await rename(partial, path)
    return bytes
  } catch (e) {
    await rm(partial, { force: true })
    throw e
  }
}

/** A file in the OS temp folder made once by `make` and reused after (benchmark models). */
export async function cachedTempFile(name: string, make: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<string> {
  const path = join(tmpdir(), name)
  try {
    await stat(path)
  } catch {
    await writeChunksToFile(path, make())
  }
  return path
}
