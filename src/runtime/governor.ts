/**
 * How many threads take part in the next round, decided from the rounds just measured.
 *
 * On a busy machine (another process, other tabs, an app's UI) more threads can be slower
 * than fewer: each round waits for its last chunk, and a preempted thread holds one. The
 * governor measures, per window of rounds, the speed-up of the current thread count over
 * one thread, S = (time one thread would have taken) / (wall time of the rounds), where one
 * thread's time comes from the leader's own chunk rate (the leader computes chunks like
 * every thread, and its slowest quarter of rounds, preempted ones, is left out), or from
 * the rounds it ran alone just before when that is fresh. One thread's own S is measured the
 * same way: below 1 when the OS shares its core with other processes (with two busy processes
 * on two cores, one thread gets ~2/3 of a core and two threads together ~1 core, so two can
 * be faster although neither runs at full speed). Then:
 *  - at n ≥ 2 threads, S below DOWN × (what n − 1 threads gave, measured recently) → n − 1;
 *    at 2 threads with no recent S(1), S below DOWN (one thread's best) starts a probe at 1;
 *  - every `probeGap`, a probe window runs at n − 1 when n > 2 threads are oversubscribed
 *    (S / n below BUSY_EFFICIENCY), else at n + 1 below the maximum; a probe up is kept when
 *    S ≥ UP × S(n), a probe down unless S < DOWN × S(n); a probe that is not kept doubles
 *    the gap (up to MAX_GAP_MS), a kept one resets it.
 * The gap between DOWN and UP is the hysteresis. A pinned pool (`threads: N`) never
 * changes its count. Either way workers stop spinning when the machine is oversubscribed:
 * after SPIN_STREAK windows in a row below SPIN_OFF per thread; they spin again after as many
 * at SPIN_ON or above. On the project's 2-vCPU VM two threads give 0.7–0.83 per thread when
 * quiet, single windows dipping to 0.4–0.55 from noise, and 0.25–0.55 beside a CPU-bound
 * process while workers spin. Stopping at one window below 0.7 stopped the spinning in 21–33 %
 * of a quiet decode's windows (a round then waits for a worker to wake: ~4 % of decode); these
 * marks stop it in 0–3 %, and, like that rule, in every window beside one or two busy
 * processes (bench/README.md, "Spin cut-off").
 */
/** One round as the leader saw it. */
export interface RoundSample {
  /** Threads that took part. */
  threads: number
  /** Work of the round (multiply-adds, OPS table). */
  units: number
  /** Work the leader did itself, and the time it spent on it. */
  leadUnits: number
  leadMs: number
  /** Wall time of the round, from publishing it to its last chunk done. */
  roundMs: number
}

/** A window closes after this much round time and at least MIN_ROUNDS rounds. */
const WINDOW_MS = 25
const MIN_ROUNDS = 16
/** Go down when S < DOWN × S(n − 1); keep a probe when S ≥ UP × S(n). */
const DOWN = 0.95
const UP = 1.1
const FIRST_GAP_MS = 250
const MAX_GAP_MS = 4000
/** A measured S(n) older than this is not trusted for a decision. */
const FRESH_MS = 2000
/** Below this efficiency (S / n) a machine with more than two threads counts as oversubscribed (probe down). */
const BUSY_EFFICIENCY = 0.7
/** Workers stop spinning after SPIN_STREAK windows in a row below SPIN_OFF, and spin again after as many at SPIN_ON or above. */
const SPIN_OFF = 0.55
const SPIN_ON = 0.7
const SPIN_STREAK = 2
/** How long a worker spins for the next round on a machine that is not oversubscribed. */
export const SPIN_US = 200

export class ThreadGovernor {
  /** Threads for the next round. */
  threads: number
  /** µs a waiting worker spins before it sleeps (SPIN_US, or 0 when oversubscribed). */
  spinUs = SPIN_US
  private window: RoundSample[] = []
  private windowMs = 0
  private speedup = new Map<number, { s: number; at: number }>()
  private probeFrom = 0
  private probeGap = FIRST_GAP_MS
  private lastProbe: number
  private soloRate = 0
  /** Windows in a row that measured against the current spinning state. */
  private spinStreak = 0

  constructor(
    readonly max: number,
    /** False: the count is pinned at `max`. */
    readonly adaptive: boolean,
    /** Told each change: from, to, the speed-ups measured (by thread count). */
    private readonly onChange?: (from: number, to: number, measured: ReadonlyMap<number, number>) => void,
    /** Milliseconds, monotonic (tests pass their own). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.threads = max
    this.lastProbe = now()
  }

  /** Adds a measured round; may change `threads` and `spinUs` for the next ones. */
  record(r: RoundSample): void {
    if (r.threads !== this.threads) return
    this.window.push(r)
    this.windowMs += r.roundMs
    if (this.windowMs < WINDOW_MS || this.window.length < MIN_ROUNDS) return
    const n = this.threads
    const s = this.closeWindow(n)
    this.speedup.set(n, { s, at: this.now() })
    this.updateSpin(n, s)
    if (!this.adaptive) return
    if (this.probeFrom) return this.endProbe(n, s)
    if (n > 1 && s < DOWN * this.fresh(n - 1)) return this.change(n - 1)
    if (n === 2 && s < DOWN && !this.fresh(1)) return this.startProbe(2, 1)
    if (this.now() - this.lastProbe < this.probeGap) return
    if (n > 2 && s / n < BUSY_EFFICIENCY) this.startProbe(n, n - 1)
    else if (n < this.max) this.startProbe(n, n + 1)
  }

  /** Workers' spin for the next rounds, from this window's speed-up s at n threads. */
  private updateSpin(n: number, s: number): void {
    if (n === 1) return // no worker takes part
    const against = this.spinUs > 0 ? s / n < SPIN_OFF : s / n >= SPIN_ON
    this.spinStreak = against ? this.spinStreak + 1 : 0
    if (this.spinStreak < SPIN_STREAK) return
    this.spinStreak = 0
    this.spinUs = this.spinUs > 0 ? 0 : SPIN_US
  }

  /** Speed-up over one thread of the window's rounds; the window is emptied. */
  private closeWindow(n: number): number {
    const rounds = this.window
    this.window = []
    this.windowMs = 0
    const rate = leaderRate(rounds)
    const units = rounds.reduce((a, r) => a + r.units, 0)
    const ms = rounds.reduce((a, r) => a + r.roundMs, 0)
    if (n === 1) {
      this.soloRate = rate
      return rate > 0 && ms > 0 ? Math.min(1, units / rate / ms) : 1
    }
    // During a probe from one thread, the rate of the rounds just run alone is the truer
    // reference: it includes what the machine gives one thread right now.
    const solo = this.probeFrom === 1 && this.soloRate > 0 ? this.soloRate : rate
    return solo > 0 && ms > 0 ? units / solo / ms : n
  }

  /** S(n) if measured recently, else 0 (unknown: do not go down for it). */
  private fresh(n: number): number {
    const m = this.speedup.get(n)
    return m && this.now() - m.at < FRESH_MS ? m.s : 0
  }

  private startProbe(from: number, to: number): void {
    this.probeFrom = from
    this.threads = to
  }

  /** A probe up is kept when clearly faster, a probe down unless clearly slower (fewer threads burn less). */
  private endProbe(n: number, s: number): void {
    const from = this.probeFrom
    this.probeFrom = 0
    this.lastProbe = this.now()
    if (s >= (n > from ? UP : DOWN) * this.fresh(from)) {
      this.probeGap = FIRST_GAP_MS
      this.threads = from // so that change() reports from → n
      this.change(n)
    } else {
      this.probeGap = Math.min(MAX_GAP_MS, this.probeGap * 2)
      this.threads = from
    }
  }

  private change(to: number): void {
    const from = this.threads
    this.threads = to
    this.lastProbe = this.now()
    const measured = new Map([...this.speedup].map(([k, v]) => [k, v.s]))
    this.onChange?.(from, to, measured)
  }
}

/**
 * The leader's compute rate (work units per ms) over a window, leaving out its slowest
 * quarter of rounds (those in which the OS preempted it mid-chunk).
 */
function leaderRate(rounds: RoundSample[]): number {
  const timed = rounds.filter((r) => r.leadUnits > 0 && r.leadMs > 0).sort((a, b) => b.leadUnits / b.leadMs - a.leadUnits / a.leadMs)
  const kept = timed.slice(0, Math.max(1, Math.ceil(timed.length * 0.75)))
  const units = kept.reduce((a, r) => a + r.leadUnits, 0)
  const ms = kept.reduce((a, r) => a + r.leadMs, 0)
  return ms > 0 ? units / ms : 0
}
