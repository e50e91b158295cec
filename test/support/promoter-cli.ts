import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

/** What a `promoter` command did: its exit status and everything it printed. */
export interface PromoterRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The `promoter` command as npm installs it (package.json `bin`): the bundle the tests' global
 * set-up builds from the sources for this run (cli-build-global-setup.ts). Run it with
 * `process.execPath`.
 */
export const PROMOTER_BIN = inject('promoterBin');

/**
 * `promoter ARGS` in a child process, as a user runs it (the installed bundle), with only the
 * environment given (PATH always), and `stdin` written to it.
 */
export const runPromoter = (
  args: readonly string[],
  options: { readonly env?: Readonly<Record<string, string>>; readonly stdin?: string } = {},
): Promise<PromoterRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROMOTER_BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
