// Entry for Vite and webpack: the package's files are found by the bundler.
import { run } from './app.js'
run()
