#!/usr/bin/env node
// Long fuzz runs: `npm run fuzz -- --runs 1000000 --seed 7`. Runs test/fuzz/fuzz.test.ts (the
// same targets and checks as the CI run in `npm test`) with more inputs and another seed;
// crashing inputs land in test/fuzz/fixtures/ (commit them: every later run replays them),
// and the counts in the --report file (default fuzz-report.json).
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    report: { type: 'string', default: 'fuzz-report.json' },
  },
})
console.log(`fuzz: ${values.runs} inputs, seed ${values.seed} (replay with --seed ${values.seed})`)
const vitest = new URL('../../node_modules/vitest/vitest.mjs', import.meta.url).pathname
const r = spawnSync(process.execPath, [vitest, 'run', 'test/fuzz/fuzz.test.ts'], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: values.runs, FUZZ_SEED: values.seed, FUZZ_REPORT: values.report },
})
process.exit(r.status ?? 1)
