import { defineConfig } from 'vitest/config'

// Engine tests run real models on real threads: on a busy 2-core machine a CLI run can
// take tens of seconds, so the per-test limit is generous (it bounds hangs, not speed).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
