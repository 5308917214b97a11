// The file:// page (an Electron-style app): webpack 5 defaults, the file-picking entry.
export default { mode: 'production', entry: './main-file.js', output: { path: new URL('./dist-file', import.meta.url).pathname } }
