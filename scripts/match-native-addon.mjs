// npm `postinstall`: makes better-sqlite3's native addon load under the Node that runs the
// project's scripts. npm builds it for the Node that runs npm; package.json's `node`
// devDependency puts Node 22 (what Lambda runs) first on the scripts' PATH, and a machine whose
// own Node is older then holds an addon built for another ABI. This rebuilds it, once, against
// the headers that ship with that Node (no download). Plain JavaScript: it runs before anything
// else is known to work, with or without the development dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Why better-sqlite3 does not load under this Node, or undefined when it does. Tried in a child
 * process each time: a process that failed to load an addon cannot load its rebuilt file.
 */
const whyAddonFails = () => {
  const tried = spawnSync(
    process.execPath,
    [
      '-e',
      "try { new (require('better-sqlite3'))(':memory:').close() } catch (e) { console.error(e.code === 'ERR_DLOPEN_FAILED' ? 'ERR_DLOPEN_FAILED ' + e.message : e.message); process.exit(1) }",
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return tried.status === 0 ? undefined : tried.stderr.trim() || `exit status ${tried.status}`;
};

/** A directory with include/node/ for this very Node version, or undefined. */
const headersOfThisNode = () => {
  const matches = (dir) => {
    const header = join(dir, 'include', 'node', 'node_version.h');
    if (!existsSync(header)) return false;
    const text = readFileSync(header, 'utf8');
    const part = (name) => new RegExp(`#define ${name} (\\d+)`).exec(text)?.[1];
    return (
      `${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}` ===
      process.versions.node
    );
  };
  const candidates = [dirname(dirname(process.execPath))];
  // The npm registry's `node` package keeps the whole distribution in node-<platform>-<arch>.
  for (const name of [
    `node-${process.platform}-${process.arch}`,
    `node-bin-${process.platform}-${process.arch}`,
  ]) {
    try {
      candidates.push(dirname(require.resolve(`node/node_modules/${name}/package.json`)));
    } catch {}
    try {
      candidates.push(dirname(require.resolve(`${name}/package.json`)));
    } catch {}
  }
  return candidates.find(matches);
};

const failure = whyAddonFails();
if (failure === undefined) process.exit(0);
if (!failure.startsWith('ERR_DLOPEN_FAILED')) {
  console.error(`better-sqlite3 does not load: ${failure}`);
  process.exit(1);
}
const nodedir = headersOfThisNode();
if (nodedir === undefined) {
  console.error(
    `better-sqlite3 was built for another Node than ${process.version} (${process.execPath}), and no headers of ${process.version} were found to rebuild it: run npm rebuild better-sqlite3 with that Node`,
  );
  process.exit(1);
}
console.log(`better-sqlite3: rebuilding for Node ${process.version} (headers in ${nodedir})`);
const npm = process.env.npm_execpath;
const rebuilt = spawnSync(
  npm === undefined ? 'npm' : process.execPath,
  [...(npm === undefined ? [] : [npm]), 'rebuild', 'better-sqlite3', '--foreground-scripts'],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      npm_config_nodedir: nodedir,
      // node-gyp and the build run under this Node, not the one npm was started with.
      PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
    },
  },
);
if (rebuilt.status !== 0) process.exit(rebuilt.status ?? 1);
const after = whyAddonFails();
if (after !== undefined) {
  console.error(`better-sqlite3 still does not load after the rebuild: ${after}`);
  process.exit(1);
}
