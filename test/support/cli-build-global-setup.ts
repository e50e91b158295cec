import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Builds `promoter` (dist/promoter.mjs, what package.json's `bin` installs) once per test run,
 * from the sources as they are: the tests that run the command run the shipped bundle, without
 * tsx compiling the sources again in every child process.
 */
export default function setup(): void {
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build-cli.ts'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: 'inherit',
  });
}
