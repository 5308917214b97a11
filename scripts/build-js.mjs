// Bundles the package with esbuild (the .d.ts files come from tsc).
//   Node, Deno, Bun (exports condition "node"): dist/index.js, dist/cli.js, dist/bitnet-worker.js,
//     dist/worker.node.js + dist/engine-worker.node.js (`bitnet-wasm/worker`); dependencies stay
//     imports of the installed packages.
//   Browsers and other runtimes ("browser", "default"): dist/index.browser.js, dist/worker.js
//     (`bitnet-wasm/worker`), dist/engine-worker.js, dist/bitnet-worker.browser.js; each
//     self-contained (dependencies inlined) so a page can import it with no build step.
// The wasm binaries stay in build/; src/assets.ts (src/assets.browser.ts in browser bundles) locates
// them and the worker scripts in the literal forms bundlers follow.
import path from 'node:path'
import * as esbuild from 'esbuild'

/**
 * In browser bundles, `node:` modules (reached only on paths guarded by env.ts, such as
 * reading a model from a path) become modules that throw when loaded: the bundles keep
 * no `node:` import a browser or a user's bundler would trip on.
 */
const nodeAbsent = {
  name: 'node-absent',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path, namespace: 'node-absent' }))
    build.onLoad({ filter: /.*/, namespace: 'node-absent' }, (a) => ({
      // CommonJS form: the importers' named imports then need no matching exports.
      contents: `module.exports = (() => { throw new Error(${JSON.stringify(`${a.path} is not available in this runtime`)}) })()`,
      loader: 'js',
    }))
  },
}

/** Browser bundles locate the browser worker scripts: src/assets.browser.ts replaces src/assets.ts. */
const browserAssets = {
  name: 'browser-assets',
  setup(build) {
    build.onResolve({ filter: /^(\.\.?\/)+assets\.js$/ }, (a) => ({
      path: path.join(a.resolveDir, path.dirname(a.path), 'assets.browser.ts'),
    }))
  },
}

const common = { bundle: true, format: 'esm', outdir: 'dist', logLevel: 'warning', legalComments: 'none' }

await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: {
      index: 'src/index.ts',
      cli: 'src/cli.ts',
      'bitnet-worker': 'src/runtime/compute-worker.ts',
      // `bitnet-wasm/worker` in Deno and Bun: an engine worker that reads paths and file: URLs.
      'worker.node': 'src/worker.ts',
      'engine-worker.node': 'src/engine-worker/host.ts',
    },
    platform: 'node',
    target: 'node20',
    packages: 'external',
  }),
  esbuild.build({
    ...common,
    entryPoints: {
      'index.browser': 'src/index.ts',
      worker: 'src/worker.ts',
      'engine-worker': 'src/engine-worker/host.ts',
      'bitnet-worker.browser': 'src/runtime/compute-worker.ts',
    },
    platform: 'browser',
    // WebAssembly SIMD + top-level await: Chrome/Edge 91, Firefox 89, Safari 16.4.
    target: ['es2022', 'chrome91', 'firefox89', 'safari16.4'],
    minify: true,
    // Error classes keep their names: `e.name` is what users match on, and typed errors cross
    // from the engine worker to the page by name (engine-worker/protocol.ts).
    keepNames: true,
    plugins: [nodeAbsent, browserAssets],
  }),
])
