import { configDefaults, defineConfig } from 'vitest/config'

/**
 * Files the Node 24 pass (`npm run test:node24`, BITNET_TEST_PASS=node24) leaves to the Node 20
 * pass: their results do not depend on the runtime running vitest. The CLI tests run the CLI
 * in a child `node` (the one on PATH, so the same process in both passes); the others test
 * JavaScript logic (tokenizers, chat templates, sampler, grammars, the GGUF parser and the
 * fuzzing of every parser, the HTTP server and the OpenAI facade, prompt-lookup decoding) on
 * top of an engine whose relaxed-SIMD build and workers the Node 24 pass still covers
 * (kernels, golden, threads, kv-batch, faults, variants, …). test/runtimes/ is the Node 20
 * pass's (it drives Node 24, Deno, Bun and Chromium itself).
 */
const NODE20_ONLY = [
  'test/runtimes/**',
  'test/cli.test.ts', 'test/cli-pull-cache.test.ts', 'test/chat-cli.test.ts', 'test/serve-cli.test.ts',
  'test/tokenizer.test.ts', 'test/tokenizer-spm.test.ts', 'test/tokenizer-ids.test.ts', 'test/chat-template.test.ts',
  'test/sampler.test.ts', 'test/grammar.test.ts', 'test/structured-output.test.ts', 'test/gguf.test.ts', 'test/fuzz/**',
  'test/server.test.ts', 'test/server-abuse.test.ts', 'test/openai-facade.test.ts', 'test/prompt-lookup.test.ts',
]

// Engine tests run real models on real threads: on a busy 2-core machine a CLI run can
// take tens of seconds, so the per-test limit is generous (it bounds hangs, not speed).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    exclude: [...configDefaults.exclude, ...(process.env.BITNET_TEST_PASS === 'node24' ? NODE20_ONLY : [])],
  },
})
