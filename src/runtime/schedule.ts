/**
 * How a round's jobs are cut into chunks: one contiguous share of the work per thread taking
 * part, each cut into chunks that halve toward the share's end, within [minCost, MAX_SPREAD ·
 * minCost] multiply-adds. A thread claims its own share's chunks from the front (large first,
 * one stream through contiguous memory, on a claim word no other thread touches until it is
 * done with its own share) and, done with its share, others' from the back (the small ones):
 * the first thread done waits for at most a small chunk of another, and a thread the OS
 * preempts holds up only the chunk it is in. One counter for the whole round, claimed
 * alternately, had two threads streaming interleaved chunks, which on the project's VM run
 * 11–22 % slower than far-apart halves at 256–1024 rows a chunk (bench/README.md, "Per-thread shares").
 *
 * The cut depends only on the jobs, the share count and minCost, never on timing, and each
 * chunk is a contiguous item range of one job: which thread runs which chunk, in which order,
 * does not change a single output byte (kernels write disjoint items).
 */
/** How much a kernel call has to do: `items` units it can be split into, `cost` of each in multiply-adds. */
export interface Work { items: number; cost: number }

/** The largest chunk is this many times the smallest. */
const MAX_SPREAD = 16
/** Chunks of one share at most: its claim word holds chunk indices in 6 bits (protocol.ts). */
export const MAX_SHARE_CHUNKS = 63

/**
 * Chunk c of a round as one word, `job << ITEM_BITS | first`: items [first, the next chunk's
 * first or the job's end) of job `job`. The control block's chunk table holds these words
 * (protocol.ts); numbers, not objects, since a decode step cuts ~150 rounds (every object a
 * round allocates is garbage whose fresh heap pages cost page faults until the heap has grown).
 */
export const ITEM_BITS = 24
export const ITEM_MASK = (1 << ITEM_BITS) - 1

/** A round's chunks in item order; share t is chunks [starts[t], starts[t + 1]). */
export interface Cut { chunks: number[]; starts: number[] }

/**
 * The chunks of a round of `work` in `shares` shares. Never more than `maxChunks` in all nor
 * MAX_SHARE_CHUNKS in a share: minCost doubles for a round that would have more.
 */
export function shareChunks(work: readonly Work[], shares: number, minCost: number, maxChunks: number): Cut {
  // Fewer than maxChunks chunks of min each cannot hold a larger round: start from there.
  const total = work.reduce((a, w) => a + w.items * w.cost, 0)
  for (let min = Math.max(minCost, total / maxChunks); ; min *= 2) {
    const cut = cutShares(work, shares, min, total, maxChunks)
    if (cut) return cut
  }
}

/**
 * Shares end at the item boundary nearest an even split of the work; the last takes the rest.
 * Undefined as soon as the cut has more than `maxChunks` chunks, or a share MAX_SHARE_CHUNKS.
 */
function cutShares(work: readonly Work[], shares: number, min: number, total: number, maxChunks: number): Cut | undefined {
  const max = MAX_SPREAD * min
  const chunks: number[] = [], starts = [0]
  let job = 0, first = 0, done = 0
  for (let t = 0; t < shares; t++) {
    const end = t === shares - 1 ? total : (total * (t + 1)) / shares
    while (job < work.length) {
      const { items, cost } = work[job]
      if (first === items) { job++; first = 0; continue }
      const left = end - done
      if (t < shares - 1 && left < cost / 2) break
      const inShare = t < shares - 1 ? Math.min(items - first, Math.round(left / cost)) : items - first
      let k = Math.min(inShare, Math.max(1, Math.ceil(Math.min(max, Math.max(min, left / 2)) / cost)))
      // No sliver at the end of a share or a job: a last piece under half a chunk joins this one.
      if (inShare - k < k / 2) k = inShare
      if (chunks.length === maxChunks || chunks.length - starts[t] === MAX_SHARE_CHUNKS) return undefined
      chunks.push((job << ITEM_BITS) | first)
      first += k
      done += k * cost
    }
    starts.push(chunks.length)
  }
  return { chunks, starts }
}
