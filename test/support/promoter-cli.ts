import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What a `promoter` command did: its exit status and everything it printed. */
export interface PromoterRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * `promoter ARGS` in a child process, as a user runs it (bin/promoter.ts under tsx), with only
 * the environment given (PATH always), and `stdin` written to it.
 */
export const runPromoter = (
  args: readonly string[],
  options: { readonly env?: Readonly<Record<string, string>>; readonly stdin?: string } = {},
): Promise<PromoterRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/promoter.ts', ...args], {
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
