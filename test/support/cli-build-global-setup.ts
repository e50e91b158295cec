import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** This run's build of `promoter` (what package.json's `bin` installs). */
    promoterBin: string;
  }
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Builds `promoter` once per test run, from the sources as they are, into a directory of the
 * run's own (`.test-build-*` beside dist/, removed after the run): the tests that run the command run the shipped bundle, without tsx compiling the sources
 * again in every child process, and two runs at once never rewrite each other's. A build that
 * warns fails the run.
 */
export default function setup(project: TestProject): () => Promise<void> {
  // Beside dist/, as deep: the bundle reads ../package.json (its version) and finds node_modules.
  const outdir = `.test-build-${randomUUID()}`;
  const build = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/build-cli.ts', '--outdir', outdir],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const said = `${build.stdout}${build.stderr}`.trim();
  if (build.status !== 0 || said !== '') {
    throw new Error(`building promoter ${build.status === 0 ? 'warned' : 'failed'}:\n${said}`);
  }
  project.provide('promoterBin', join(ROOT, outdir, 'promoter.mjs'));
  return () => rm(join(ROOT, outdir), { recursive: true, force: true });
}
