// First touches of fresh memory ahead of need. A wasm memory's pages are mapped on their
// first write, a kernel page fault each (12–15 µs a 4 KiB page in the project's VM); the KV
// cache takes them as a position's keys and values are stored, on the thread that sequences
// the pass. A worker that touches the pages of the next positions while that thread does
// its serial work takes them off the critical path (src/model/transformer.ts: prefaultKv).

import { span } from './split'

/** log2 of the page a touch maps: 4 KiB, the smallest an OS maps (src/runtime/protocol.ts counts them alike). */
const PAGE_BITS: usize = 12

/**
 * Writes one i32 word of each 4 KiB page overlapping [start, stop) back unchanged (an atomic
 * add of 0, so a thread storing into the same page at the same time loses nothing): items are
 * those pages, item i touches the first aligned word of page i inside the range.
 */
export function prefault_pages(start: usize, stop: usize, first: i32, end: i32): void {
  const lo = (start + 3) & ~(<usize>3)
  if (lo + 4 > stop) return
  const pages = <i32>(((stop - 1) >> PAGE_BITS) - (lo >> PAGE_BITS) + 1)
  const s = span(pages, first, end)
  for (let i = <i32>(s >>> 32); i < <i32>s; i++) {
    const p = i == 0 ? lo : ((lo >> PAGE_BITS) + <usize>i) << PAGE_BITS
    if (p + 4 > stop) break
    if (ASC_FEATURE_THREADS) atomic.add<i32>(p, 0)
    else store<i32>(p, load<i32>(p))
  }
}
