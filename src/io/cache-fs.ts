/**
 * The cache {@link Store} in a directory (Node, Deno, Bun). Layout, per key:
 * `{dir}/{key}` the data, `{key}.part` a download in progress, `{key}.meta.json` its
 * metadata. Metadata is written to a temporary name and renamed; the part is fsynced and
 * renamed onto the data, so a crash never leaves a half-written file under a final name.
 */
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, sep } from 'node:path'
import process from 'node:process'
import { readEnv } from '../env.js'
import { parseMeta, type EntryMeta, type Store } from './store.js'
import { sleep, type Sink } from './download.js'
import { fileSource } from './file.js'
import type { ByteSource } from './source.js'

const META = '.meta.json'

/** BITNET_CACHE_DIR, else $XDG_CACHE_HOME/bitnet-wasm, else ~/.cache/bitnet-wasm (%LOCALAPPDATA% on Windows). */
export async function defaultCacheDir(): Promise<string> {
  const own = readEnv('BITNET_CACHE_DIR')
  if (own) return own
  const base = readEnv('XDG_CACHE_HOME') ?? (process.platform === 'win32' ? readEnv('LOCALAPPDATA') : undefined) ?? join(homedir(), '.cache')
  return join(base, 'bitnet-wasm')
}

export class DirStore implements Store {
  constructor(readonly location: string) {}

  localPath(key: string): string {
    return join(this.location, ...key.split('/'))
  }

  async keys(): Promise<string[]> {
    let names: string[]
    try {
      names = await readdir(this.location, { recursive: true })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
    return names.filter((n) => n.endsWith(META)).map((n) => n.slice(0, -META.length).split(sep).join('/'))
  }

  async readMeta(key: string): Promise<EntryMeta | undefined> {
    return parseMeta(await readFile(this.localPath(key) + META, 'utf8').catch(() => undefined))
  }

  async writeMeta(key: string, meta: EntryMeta): Promise<void> {
    const path = this.localPath(key) + META
    await mkdir(dirname(path), { recursive: true })
    const tmp = `${path}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(meta, null, 1))
    await rename(tmp, path)
  }

  dataSize(key: string): Promise<number | undefined> {
    return fileSize(this.localPath(key))
  }

  async fingerprint(key: string): Promise<string | undefined> {
    try {
      const s = await stat(this.localPath(key), { bigint: true })
      // a runtime whose stat lacks nanosecond times gets no fingerprint, and so re-hashes
      if (typeof s.mtimeNs !== 'bigint' || typeof s.ctimeNs !== 'bigint') return undefined
      return `${s.size}:${s.ino}:${s.mtimeNs}:${s.ctimeNs}`
    } catch {
      return undefined
    }
  }

  async partSize(key: string): Promise<number> {
    return await fileSize(this.localPath(key) + '.part') ?? 0
  }

  async openSink(key: string): Promise<Sink> {
    const path = this.localPath(key) + '.part'
    await mkdir(dirname(path), { recursive: true })
    const handle = await open(path, 'a')
    let offset = (await handle.stat()).size
    let closed = false
    return {
      get offset() { return offset },
      async *existing() {
        if (offset > 0) yield* createReadStream(path, { start: 0, end: offset - 1 }) as AsyncIterable<Uint8Array>
      },
      async write(chunk) {
        for (let done = 0; done < chunk.byteLength;) done += (await handle.write(chunk, done)).bytesWritten
        offset += chunk.byteLength
      },
      async reset() {
        await handle.truncate(0)
        offset = 0
      },
      async close() {
        if (closed) return
        closed = true
        try { await handle.datasync() } finally { await handle.close() }
      },
    }
  }

  async commit(key: string): Promise<void> {
    const path = this.localPath(key)
    await rename(path + '.part', path)
  }

  open(key: string, name: string): Promise<ByteSource> {
    return fileSource(this.localPath(key)).then((s) => ({ ...s, name }))
  }

  /**
   * A `{key}.lock` file created exclusively, holding the owner's pid. A lock whose process is
   * gone (killed mid-download) is stale and taken over; a live one is waited for.
   */
  async lock(key: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const path = this.localPath(key) + '.lock'
    await mkdir(dirname(path), { recursive: true })
    for (;;) {
      try {
        await writeFile(path, String(process.pid), { flag: 'wx' })
        return () => rm(path, { force: true })
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      }
      const pid = Number(await readFile(path, 'utf8').catch(() => ''))
      if (pid > 0 && isAlive(pid)) await sleep(250, signal)
      else await rm(path, { force: true })
    }
  }

  async remove(key: string): Promise<void> {
    const path = this.localPath(key)
    // metadata first: without it nothing below counts as an entry
    for (const p of [path + META, path + '.part', path]) await rm(p, { force: true })
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path)
    return s.isFile() ? s.size : undefined
  } catch {
    return undefined
  }
}
