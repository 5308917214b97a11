// Entry for a page opened from file:// (as Electron apps ship theirs), built by webpack: the
// model is a local file the user picks (Chromium does not fetch file:// URLs).
import { run } from './app.js'
document.getElementById('model').addEventListener('change', (e) => run({}, e.target.files[0]))
