// Entry for a page opened from file:// (as Electron apps ship theirs), built by webpack. The
// model: a local file the user picks, or (index.html#url) the file beside the page, by URL.
import { run } from './app.js'
if (location.hash === '#url') run({}, './model.gguf')
else document.getElementById('model').addEventListener('change', (e) => run({}, e.target.files[0]))
