import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PROMOTER_BIN, type PromoterRun, runPromoter } from '../support/promoter-cli.ts';

/**
 * `promoter` as a user types it (issue 13): `--help` after any command or subcommand,
 * `--version`, and mistakes told in words before anything starts; then the built `bin`
 * (dist/promoter.mjs) on plain Node, without tsx.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
};

const run = (command: string, args: readonly string[]): Promise<PromoterRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
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
  });

describe('promoter --help and --version', () => {
  it('prints the usage of a command, a subcommand or every command, and the version', async () => {
    // Act
    const [serve, deadLettersList, ui, all, versionRun] = await Promise.all([
      runPromoter(['serve', '--help']),
      runPromoter(['dead-letters', 'list', '-h']),
      runPromoter(['ui', '--help']),
      runPromoter(['--help']),
      runPromoter(['--version']),
    ]);

    // Assess
    expect(serve).toMatchObject({ code: 0, stderr: '' });
    expect(serve.stdout).toMatch(/^promoter serve \[--port 8080\]/);
    expect(serve.stdout).toContain('--promoting-reasons');
    expect(deadLettersList).toMatchObject({ code: 0, stderr: '' });
    expect(deadLettersList.stdout).toMatch(/^promoter dead-letters list\|retry/);
    expect(ui).toMatchObject({ code: 0, stderr: '' });
    expect(ui.stdout).toMatch(/^promoter ui /);
    expect(all.code).toBe(0);
    for (const command of [
      'serve',
      'sync',
      'status',
      'ui',
      'approve',
      'freeze',
      'unfreeze',
      'dead-letters',
      'sign',
      'keys',
    ]) {
      expect(all.stdout).toContain(`\npromoter ${command} `);
    }
    expect(versionRun).toEqual({ code: 0, stdout: `promoter ${version}\n`, stderr: '' });
  });
});

describe('promoter serve mistakes', () => {
  it('says what a bad value should have been, before it loads anything', async () => {
    // Act
    const runs = await Promise.all(
      [
        ['--port', '99999'],
        ['--port'],
        ['--max-event-age', '15m'],
        ['--prot', '8080'],
        ['--promoting-reasons', 'UpgradeSucceeded,RollbackSucceeded'],
      ].map((args) => runPromoter(['serve', ...args])),
    );

    // Assess
    const hint = '\n(promoter serve --help shows the usage)\n';
    expect(runs).toEqual(
      [
        '--port: expected a port number from 0 to 65535 (0: any free port), got "99999"',
        '--port needs a value (--port VALUE or --port=VALUE)',
        '--max-event-age: expected a whole number of seconds 1 or more, got "15m"',
        'unknown option --prot (did you mean --port?)',
        '--promoting-reasons: RollbackSucceeded reports a release going back or away, which is never promoted: leave it out',
      ].map((message) => ({ code: 2, stdout: '', stderr: `promoter serve: ${message}${hint}` })),
    );
  });

  it('reports a missing secrets file as missing, with its path', async () => {
    // Prepare
    const folder = await mkdtemp(join(tmpdir(), 'promoter-cli-'));
    const secrets = join(folder, 'secrets.json');

    // Act
    const result = await runPromoter([
      'serve',
      '--port',
      '0',
      '--data',
      join(folder, 'data'),
      '--secrets',
      secrets,
    ]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `promoter serve: [INVALID_CONFIG] secrets file ${secrets} does not exist\n`,
    );
  });
});

describe('the built promoter bin', () => {
  // Built for this run by the global set-up (cli-build-global-setup.ts), which fails the run on a
  // build that fails or warns; npm builds the same into dist/ (`prepare`).
  it('is dist/promoter.mjs and runs on plain Node: version, usage, and a signature of the example event', async () => {
    // Prepare
    const bin = PROMOTER_BIN;
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };

    // Act
    const [versionRun, help, sign] = await Promise.all([
      run(process.execPath, [bin, '--version']),
      run(process.execPath, [bin, 'sign', '--help']),
      run(process.execPath, [
        bin,
        'sign',
        '--key',
        'dev-key-of-the-example',
        'examples/events/helmrelease-upgrade-succeeded.json',
      ]),
    ]);

    // Assess
    expect(manifest.bin.promoter).toBe('dist/promoter.mjs');
    expect(versionRun).toEqual({ code: 0, stdout: `promoter ${version}\n`, stderr: '' });
    expect(help.stdout).toMatch(/^promoter sign /);
    expect(sign).toMatchObject({ code: 0, stderr: '' });
    expect(sign.stdout).toMatch(/^X-Signature: sha256=[0-9a-f]{64}\n$/);
  });
});
