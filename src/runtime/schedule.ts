/**
 * How a round's jobs are cut into chunks: guided self-scheduling over the whole round. A
 * chunk takes about 1/(GUIDE · threads) of the work still unassigned after it, within
 * [minCost, MAX_SPREAD · minCost] multiply-adds, so a round opens with a few large chunks
 * (few compare-and-swaps on the shared CLAIM line) and closes with chunks of `minCost`:
 * the thread that finishes first then waits for at most a small chunk of another, where
 * equal chunks made it wait half a chunk on average at the end of every round.
 *
 * The cut depends only on the jobs, the thread count and minCost, never on timing, and
 * each chunk is a contiguous item range of one job: which thread runs which chunk, in
 * which order, does not change a single output byte (kernels write disjoint items).
 */
/** How much a kernel call has to do: `items` units it can be split into, `cost` of each in multiply-adds. */
export interface Work { items: number; cost: number }

/** Chunks claim this fraction 1/(GUIDE · threads) of the work left. */
const GUIDE = 2
/** The largest chunk is this many times the smallest. */
const MAX_SPREAD = 16

/**
 * Chunk c of a round as one word, `job << ITEM_BITS | first`: items [first, the next chunk's
 * first or the job's end) of job `job`. The control block's chunk table holds these words
 * (protocol.ts); numbers, not objects, since a decode step cuts ~150 rounds (every object a
 * round allocates is garbage whose fresh heap pages cost page faults until the heap has grown).
 */
export const ITEM_BITS = 24
export const ITEM_MASK = (1 << ITEM_BITS) - 1

/**
 * The chunks of a round of `work` on `threads` threads, as chunk words in claim order. Never
 * more than `maxChunks` (minCost grows for a round that would have more), and no chunk larger
 * than an even share of the round (even below minCost), so that every thread gets work.
 */
export function guidedChunks(work: readonly Work[], threads: number, minCost: number, maxChunks: number): number[] {
  const total = work.reduce((a, w) => a + w.items * w.cost, 0)
  // Room for one sliver per job and one chunk per thread beside the ≥ min-cost chunks.
  const min = Math.max(minCost, total / Math.max(1, maxChunks - work.length - threads))
  const max = Math.min(MAX_SPREAD * min, total / threads)
  const chunks: number[] = []
  let left = total
  for (let job = 0; job < work.length; job++) {
    const { items, cost } = work[job]
    for (let first = 0; first < items;) {
      const target = Math.min(max, Math.max(min, left / (GUIDE * threads)))
      let k = Math.min(items - first, Math.max(1, Math.ceil(target / cost)))
      // No sliver at a job's end: a last piece under half a chunk joins this one.
      if (items - first - k < k / 2) k = items - first
      chunks.push((job << ITEM_BITS) | first)
      first += k
      left -= k * cost
    }
  }
  return chunks
}
