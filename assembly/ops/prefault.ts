// First touches of fresh memory ahead of need. A wasm memory's pages are mapped on their
// first write, a kernel page fault each (12–15 µs a 4 KiB page in the project's VM); the KV
// cache takes them as a position's keys and values are stored, on the thread that sequences
// the pass. A worker that touches the pages of the next positions while that thread does
// its serial work takes them off the critical path (src/model/transformer.ts: prefaultKv).

import { span } from './split'

/** log2 of the page a touch maps: 4 KiB, the smallest an OS maps. */
const PAGE_BITS: usize = 12

/**
 * Writes the first i32 word of each of `pages` 4 KiB pages from `start` (page-aligned) back
 * unchanged: an atomic add of 0, so a thread storing into the same page at the same time
 * loses nothing. Items: the pages.
 */
export function prefault_pages(start: usize, pages: i32, first: i32, end: i32): void {
  const s = span(pages, first, end)
  for (let i = <i32>(s >>> 32); i < <i32>s; i++) {
    const p = start + (<usize>i << PAGE_BITS)
    if (ASC_FEATURE_THREADS) atomic.add<i32>(p, 0)
    else store<i32>(p, load<i32>(p))
  }
}
