// webpack 5 with its defaults; only the entry and output folder are named.
export default { mode: 'production', entry: './main.js', output: { path: new URL('./dist-webpack', import.meta.url).pathname } }
