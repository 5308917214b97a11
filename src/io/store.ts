/**
 * What a model cache keeps per entry (EntryMeta) and the storage primitives a backend gives it
 * (Store): a directory (cache-fs.ts) or browser storage (cache-browser.ts). io/cache.ts holds the
 * logic over any Store.
 */
import type { Sink } from './download.js'
import type { ByteSource } from './source.js'

/** An entry's metadata, stored next to its data. */
export interface EntryMeta {
  url: string
  /** True once the data is committed; false while a `.part` is being filled. */
  complete: boolean
  /** Bytes (expected while incomplete, when the server said). */
  size?: number
  sha256?: string
  /** The server's validator when downloaded (notices a changed remote file). */
  etag?: string
  /** When the download completed (ISO 8601). */
  time?: string
  /** The data's {@link Store.fingerprint} when its sha256 last matched (the download, or a re-hash). */
  verified?: string
  /**
   * SHA-256 of each 16 MiB piece, recorded at download by stores without fingerprints
   * (browsers) and checked on use with Web Crypto's native digest instead of the whole sha256.
   */
  pieceSha256?: string[]
}

/** An entry's metadata from its stored text; undefined when absent, unreadable or not an entry's (as if not cached). */
export function parseMeta(text: string | undefined): EntryMeta | undefined {
  try {
    const m = JSON.parse(text ?? '') as EntryMeta | null
    return typeof m?.url === 'string' && typeof m.complete === 'boolean' ? m : undefined
  } catch {
    return undefined
  }
}

/** Storage primitives a cache backend provides; keys are relative paths from cache.ts's `cacheKey`. */
export interface Store {
  /** A directory path, or a browser storage name. */
  readonly location: string
  keys(): Promise<string[]>
  readMeta(key: string): Promise<EntryMeta | undefined>
  writeMeta(key: string, meta: EntryMeta): Promise<void>
  /** Size of the committed data, undefined when there is none. */
  dataSize(key: string): Promise<number | undefined>
  /** Size of the partial download, 0 when there is none. */
  partSize(key: string): Promise<number>
  /** The partial download, to append to (resumes from what it holds). */
  openSink(key: string): Promise<Sink>
  /** Atomically makes the part the entry's data. */
  commit(key: string): Promise<void>
  open(key: string, name: string): Promise<ByteSource>
  /** Removes data, part and metadata. */
  remove(key: string): Promise<void>
  /**
   * Changes whenever the data's bytes may have changed (directories: size, inode, mtime and
   * ctime, which no write or `utimes` can leave as it was). Stores without one re-hash on use.
   */
  fingerprint?(key: string): Promise<string | undefined>
  /** The data's path on disk (directory stores only). */
  localPath?(key: string): string
  /** Waits for and takes the key's lock across processes/tabs; resolves to its release. */
  lock?(key: string, signal?: AbortSignal): Promise<() => Promise<void>>
}
