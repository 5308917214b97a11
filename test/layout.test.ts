// The house rules of the source tree, checked on every file: no import circles (type-only
// imports included: a circle is an interface in the wrong file), file-system and network access
// only under src/io/, kernels that import nothing of the host, and an ARCHITECTURE.md that
// names every folder of src/.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = new URL('..', import.meta.url).pathname

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
}

/** Every import specifier of a file: static, dynamic, type-only and re-exports. */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true).importedFiles.map((f) => f.fileName)
}

/** The source file a relative specifier names ('./x.js' → x.ts), or undefined for packages. */
function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined
  return normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts')
}

/** One import circle as a list of files, or undefined when the graph has none. */
function findCircle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (f: string): string[] | undefined => {
    if (state.get(f) === 'done') return undefined
    if (state.get(f) === 'open') return [...stack.slice(stack.indexOf(f)), f]
    state.set(f, 'open')
    stack.push(f)
    for (const g of graph.get(f) ?? []) {
      const circle = visit(g)
      if (circle) return circle
    }
    stack.pop()
    state.set(f, 'done')
    return undefined
  }
  for (const f of graph.keys()) {
    const circle = visit(f)
    if (circle) return circle
  }
  return undefined
}

describe('source layout', () => {
  const src = sourceFiles('src')

  it('has no import circles in src/', () => {
    const graph = new Map(src.map((f) => [f, importsOf(f).map((s) => resolve(f, s)).filter((g): g is string => !!g)]))
    for (const [f, deps] of graph) for (const d of deps) expect(src, `${f} imports ${d}`).toContain(d)
    expect(findCircle(graph)).toBeUndefined()
    // The check itself finds circles.
    expect(findCircle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual(['a', 'b', 'c', 'a'])
  })

  it('touches the file system and the network only in src/io/', () => {
    const outside = src.filter((f) => !f.startsWith('src/io/'))
    const fsUsers = outside.filter((f) => importsOf(f).some((s) => /^node:fs(\/|$)|^fs(\/|$)/.test(s)))
    const fetchUsers = outside.filter((f) => /\bfetch\(/.test(readFileSync(join(ROOT, f), 'utf8').replace(/\/\/.*|\/\*[\s\S]*?\*\//g, '')))
    expect({ fsUsers, fetchUsers }).toEqual({ fsUsers: [], fetchUsers: [] })
  })

  it('keeps assembly/ pure compute: it imports only assembly/ files', () => {
    for (const f of sourceFiles('assembly')) {
      for (const s of importsOf(f)) expect(resolve(f, s) ?? s, `${f} imports ${s}`).toMatch(/^assembly\//)
    }
  })

  it('names every folder of src/ in ARCHITECTURE.md', () => {
    const map = readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8')
    const folders = [...new Set(src.map((f) => dirname(f)).filter((d) => d !== 'src'))]
    for (const d of folders) expect(map, `ARCHITECTURE.md does not name ${d}/`).toContain(`${d.slice('src/'.length)}/`)
  })
})
