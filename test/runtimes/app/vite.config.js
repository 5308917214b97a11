// The README's Vite config: only the two headers that give the page threads.
const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
export default { server: { headers }, preview: { headers }, build: { outDir: 'dist-vite' } }
