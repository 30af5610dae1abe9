// Builds dist/stream.js and dist/react.js (ES modules, no runtime dependency; React stays an
// import of react.js only) and dist/types (tsc). dist/ is committed: the Python package serves
// these files at /_client/ (runtime/server/client_js is a link to dist), so no user needs Node.
// `node build.mjs --check` builds into a temporary directory and fails if dist/ is stale.
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const check = process.argv.includes('--check')
const out = check ? mkdtempSync(join(tmpdir(), 'stream-client-')) : 'dist'

// react.js imports the stream module as the served sibling file, so a page loads it once
const streamAsSibling = {
  name: 'stream-as-sibling',
  setup(b) {
    b.onResolve({ filter: /^\.\/(index|stream)\.js$/ }, (args) =>
      args.importer.endsWith('react.ts') ? { path: './stream.js', external: true } : undefined)
  },
}

const common = { bundle: true, format: 'esm', target: 'es2020', platform: 'browser', legalComments: 'none',
  charset: 'utf8', banner: { js: '// built from clients/js/src by clients/js/build.mjs: do not edit' } }
await build({ ...common, entryPoints: ['src/index.ts'], outfile: join(out, 'stream.js') })
await build({ ...common, entryPoints: ['src/react.ts'], outfile: join(out, 'react.js'), external: ['react'],
  plugins: [streamAsSibling] })
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.', '--outDir', join(out, 'types')],
  { stdio: 'inherit' })

if (check) {
  const stale = []
  const compare = (dir) => {
    for (const entry of readdirSync(join(out, dir), { withFileTypes: true })) {
      const name = join(dir, entry.name)
      if (entry.isDirectory()) compare(name)
      else {
        let committed = null
        try { committed = readFileSync(join('dist', name), 'utf8') } catch { /* missing */ }
        if (committed !== readFileSync(join(out, name), 'utf8')) stale.push(name)
      }
    }
  }
  compare('.')
  rmSync(out, { recursive: true, force: true })
  if (stale.length) {
    console.error(`dist/ is stale (run npm run build in clients/js): ${stale.join(', ')}`)
    process.exit(1)
  }
}
