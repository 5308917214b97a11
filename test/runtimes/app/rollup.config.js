// The README's Rollup config: node-resolve finds the package, import-meta-assets emits the
// `.wasm` files and worker scripts it names with `new URL('…', import.meta.url)`.
import { nodeResolve } from '@rollup/plugin-node-resolve'
import { importMetaAssets } from '@web/rollup-plugin-import-meta-assets'

export default { input: 'main.js', output: { dir: 'dist-rollup', format: 'es' }, plugins: [nodeResolve(), importMetaAssets()] }
