import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeGitHubEnterprise, startFakeGitHubEnterprise } from './fake-github-enterprise.ts';

const run = promisify(execFile);
const READ_ONLY_TOKEN = 'ghp_readOnlyToken000000000000000000000000';

/** The git CLI as a client: no prompts, no credential helpers, no user configuration. */
const git = (args: readonly string[], cwd?: string) =>
  run(
    'git',
    [
      '-c',
      'credential.helper=',
      '-c',
      'user.name=Tester',
      '-c',
      'user.email=t@example.com',
      ...args,
    ],
    {
      ...(cwd === undefined ? {} : { cwd }),
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmpdir(),
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_TERMINAL_PROMPT: '0',
      },
    },
  );

describe('fake GitHub Enterprise', () => {
  let github: FakeGitHubEnterprise;
  let workspace: string;

  const remote = (token: string) =>
    `http://x-access-token:${token}@127.0.0.1:${github.port}/acme/fleet.git`;

  beforeAll(async () => {
    github = await startFakeGitHubEnterprise({ readOnlyTokens: [READ_ONLY_TOKEN] });
    workspace = await mkdtemp(join(tmpdir(), 'fake-ghe-test-'));
    await github.createRepository('acme', 'fleet', {
      'README.md': '# fleet\n',
      'apps/podinfo/dev.yaml': 'version: 6.4.0\n',
    });
  });

  afterAll(async () => {
    await github?.close();
    if (workspace !== undefined) await rm(workspace, { recursive: true, force: true });
  });

  it('serves a clone over HTTP to a valid token', async () => {
    // Prepare
    const directory = join(workspace, 'clone');

    // Act
    await git(['clone', '--quiet', remote(github.token), directory]);

    // Assess
    expect(await readFile(join(directory, 'apps/podinfo/dev.yaml'), 'utf8')).toBe(
      'version: 6.4.0\n',
    );
    const { stdout } = await git(['rev-parse', 'HEAD'], directory);
    expect(stdout.trim()).toBe(await github.branchHead('acme', 'fleet', 'main'));
  });

  it('refuses a clone with a bad token', async () => {
    // Act
    const clone = git(['clone', '--quiet', remote('ghp_wrong'), join(workspace, 'refused')]);

    // Assess
    await expect(clone).rejects.toThrow(/Authentication failed|401/);
  });

  it('answers 404 for a repository that does not exist', async () => {
    // Act
    const clone = git([
      'clone',
      '--quiet',
      remote(github.token).replace('/fleet.git', '/missing.git'),
      join(workspace, 'missing'),
    ]);

    // Assess
    await expect(clone).rejects.toThrow(/not found/i);
  });

  it('accepts a push from a write token and refuses one from a read-only token', async () => {
    // Prepare
    const directory = join(workspace, 'push');
    await git(['clone', '--quiet', remote(github.token), directory]);
    await writeFile(join(directory, 'apps/podinfo/dev.yaml'), 'version: 6.5.0\n');
    await git(['commit', '--quiet', '-am', 'Bump podinfo'], directory);

    // Act
    const refused = git(
      ['push', '--quiet', remote(READ_ONLY_TOKEN), 'HEAD:refs/heads/bump'],
      directory,
    );
    await expect(refused).rejects.toThrow(/403/);
    await git(['push', '--quiet', remote(github.token), 'HEAD:refs/heads/bump'], directory);

    // Assess
    expect(await github.readBranchFiles('acme', 'fleet', 'bump')).toEqual({
      'README.md': '# fleet\n',
      'apps/podinfo/dev.yaml': 'version: 6.5.0\n',
    });
    expect(await github.readBranchFiles('acme', 'fleet', 'main')).toMatchObject({
      'apps/podinfo/dev.yaml': 'version: 6.4.0\n',
    });
  });

  it('adds upstream commits that a fetch then sees', async () => {
    // Prepare
    const before = await github.branchHead('acme', 'fleet', 'main');

    // Act
    const commit = await github.commitOnBranch('acme', 'fleet', 'main', {
      'apps/podinfo/prod.yaml': 'version: 6.3.0\n',
      'README.md': null,
    });

    // Assess
    expect(commit).not.toBe(before);
    expect(await github.branchHead('acme', 'fleet', 'main')).toBe(commit);
    expect(await github.git('acme', 'fleet', ['rev-parse', `${commit}^`])).toBe(before);
    expect(await github.readBranchFiles('acme', 'fleet', 'main')).toEqual({
      'apps/podinfo/dev.yaml': 'version: 6.4.0\n',
      'apps/podinfo/prod.yaml': 'version: 6.3.0\n',
    });
    const { stdout } = await git(['ls-remote', remote(github.token), 'refs/heads/main']);
    expect(stdout.split('\t')[0]).toBe(commit);
    expect(await github.branchHead('acme', 'fleet', 'nope')).toBeUndefined();
  });

  it('answers the API under /api/v3 with token checks', async () => {
    // Act
    const good = await fetch(`${github.apiBaseUrl}/repos/acme/fleet`, {
      headers: { authorization: `token ${github.token}` },
    });
    const bad = await fetch(`${github.apiBaseUrl}/repos/acme/fleet`, {
      headers: { authorization: 'token ghp_wrong' },
    });
    const limits = await fetch(`${github.apiBaseUrl}/rate_limit`, {
      headers: { authorization: `Bearer ${github.token}` },
    });

    // Assess
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({
      full_name: 'acme/fleet',
      default_branch: 'main',
      clone_url: github.cloneUrl('acme', 'fleet'),
    });
    expect(good.headers.get('x-ratelimit-limit')).toBe('5000');
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ message: 'Bad credentials' });
    expect(await limits.json()).toMatchObject({ resources: { core: { limit: 5000 } } });
  });
});
