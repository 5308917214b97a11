// `prepack` (after the build) and `postpack`: the published package.json has no `prepare`
// script (npm would warn about an install script in every consumer's project), while this repo
// keeps it so that `npm ci` on a fresh clone builds dist/ and build/ (README: `npm ci && npx
// bitnet run …`). npm reads the manifest after prepack, so `npm pack` builds once, not twice.
//   node scripts/pack-manifest.mjs strip    saves package.json aside, writes it without `prepare`
//   node scripts/pack-manifest.mjs restore  puts the saved package.json back
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'

const FILE = new URL('../package.json', import.meta.url)
const SAVED = new URL('../package.json.prepack', import.meta.url)

const command = process.argv[2]
if (command === 'strip') {
  const text = readFileSync(FILE, 'utf8')
  writeFileSync(SAVED, text)
  const pkg = JSON.parse(text)
  delete pkg.scripts.prepare
  writeFileSync(FILE, JSON.stringify(pkg, null, 2) + '\n')
} else if (command === 'restore') {
  if (existsSync(SAVED)) renameSync(SAVED, FILE)
} else {
  throw new Error(`usage: node scripts/pack-manifest.mjs strip|restore (got ${command})`)
}
