import type { LoadProgress } from '../io/download.js'
/**
 * A one-line progress bar on stderr for long CLI work (loading, perplexity). Draws only
 * on a terminal, so piped and --json output stays clean.
 */
export class ProgressBar {
  private last = 0
  private readonly enabled: boolean

  constructor(private readonly label: string, enabled = process.stderr.isTTY === true) {
    this.enabled = enabled
  }

  update(done: number, total: number, detail = ''): void {
    if (!this.enabled) return
    const now = Date.now()
    if (done < total && now - this.last < 50) return
    this.last = now
    const width = 30
    const frac = total > 0 ? Math.min(1, done / total) : 0
    const fill = Math.round(frac * width)
    const bar = '█'.repeat(fill) + '░'.repeat(width - fill)
    process.stderr.write(`\r${this.label} ${bar} ${(frac * 100).toFixed(0).padStart(3)}% ${detail}\x1b[K`)
  }

  done(): void {
    if (this.enabled) process.stderr.write('\r\x1b[K')
  }
}

/** Human-readable byte count. */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`
  return `${n} B`
}

/**
 * Turns load progress events into one bar: bytes summed over the files of the current
 * phase (several files download at once), labelled by phase.
 */
export function progressHandler(bar: ProgressBar): (p: LoadProgress) => void {
  const files = new Map<string, { loaded: number; total: number }>()
  let phase = ''
  return (p) => {
    if (p.phase !== phase) { phase = p.phase; files.clear() }
    files.set(p.file, p)
    let loaded = 0, total = 0
    for (const f of files.values()) { loaded += f.loaded; total += f.total }
    const what = { download: 'downloading', read: 'verifying', repack: 'loading', compile: 'compiling kernels' }[p.phase]
    bar.update(loaded, total, p.phase === 'compile' ? what : `${what} ${formatBytes(loaded)} / ${formatBytes(total)}`)
  }
}
