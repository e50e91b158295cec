/**
 * Builds the `promoter` command (package.json `bin`) into dist/, so that it runs on plain Node
 * without tsx: dist/promoter.mjs (the CLI, bundled) and dist/pack-worker.js (the worker thread
 * serve parses git packs in, which pack-parser.ts starts from beside itself). npm runs it as
 * `prepare`, so `npm ci` leaves a working `npx promoter`.
 */
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build } from 'esbuild';
import { ESM_REQUIRE_BANNER } from '../lib/constructs/promoter-function.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const common: BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  mainFields: ['module', 'main'],
  // CommonJS dependencies bundled into ESM need a `require`.
  banner: { js: ESM_REQUIRE_BANNER },
  // A native addon, loaded from node_modules as npm built it for this machine's Node.
  external: ['better-sqlite3'],
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
};

// `--outdir DIR` (inside the repository, so that better-sqlite3 resolves from node_modules):
// the tests build a copy of their own there; npm builds dist/.
const outdirAt = process.argv.indexOf('--outdir');
const outdir = outdirAt === -1 ? 'dist' : (process.argv[outdirAt + 1] ?? 'dist');

await Promise.all([
  build({
    ...common,
    entryPoints: ['bin/promoter.ts'],
    outfile: `${outdir}/promoter.mjs`,
    banner: { js: `#!/usr/bin/env node\n${ESM_REQUIRE_BANNER}` },
  }),
  build({
    ...common,
    entryPoints: ['functions/adapters/git/pack-worker.ts'],
    outfile: `${outdir}/pack-worker.js`,
  }),
]);
await chmod(join(ROOT, outdir, 'promoter.mjs'), 0o755);
