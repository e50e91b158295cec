import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/core';
import { restEndpointMethods } from '@octokit/plugin-rest-endpoint-methods';
import { verify } from '@octokit/webhooks-methods';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeGitHubEnterprise, startFakeGitHubEnterprise } from './fake-github-enterprise.ts';
import type { PullRequestPayload } from './github-stand-in.ts';

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

/** A webhook receiver on loopback: what it was sent, and the status it answers. */
const startReceiver = async (status: (index: number) => number = () => 202) => {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(status(received.length - 1), { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/github`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

const WEBHOOK_SECRET = 'webhook-secret-for-tests';
const RestOctokit = Octokit.plugin(restEndpointMethods);

describe('fake GitHub Enterprise: merging, closing, comments, ETags and webhooks', () => {
  let github: FakeGitHubEnterprise;
  let octokit: InstanceType<typeof RestOctokit>;
  let repositories = 0;

  /** A repository of its own with branch `promote` one commit ahead of `main`, and its PR. */
  const repositoryWithPullRequest = async (
    options: { readonly deleteBranchOnMerge?: boolean } = {},
  ) => {
    repositories += 1;
    const repo = `fleet-${repositories}`;
    await github.createRepository(
      'acme',
      repo,
      { 'apps/podinfo/prod.yaml': 'version: 6.4.0\n', 'README.md': '# fleet\n' },
      'main',
      options,
    );
    const head = await github.commitOnBranch(
      'acme',
      repo,
      'promote',
      { 'apps/podinfo/prod.yaml': 'version: 6.5.0\n' },
      'Promote podinfo to 6.5.0',
    );
    const { data: pull } = await octokit.rest.pulls.create({
      owner: 'acme',
      repo,
      head: 'promote',
      base: 'main',
      title: 'Promote podinfo in prod to 6.5.0',
      body: 'acme/podinfo/prod',
    });
    return { repo, head, number: pull.number };
  };

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${github.apiBaseUrl}${path}`, {
      ...init,
      headers: {
        authorization: `token ${github.token}`,
        'content-type': 'application/json',
        ...init.headers,
      },
    });

  beforeAll(async () => {
    github = await startFakeGitHubEnterprise({ readOnlyTokens: [READ_ONLY_TOKEN] });
    octokit = new RestOctokit({ auth: github.token, baseUrl: github.apiBaseUrl });
  });

  afterEach(async () => {
    github.standIn.stopDeliveringWebhooks();
    await github.standIn.deliveries.settled();
    github.standIn.deliveries.clear();
  });

  afterAll(async () => {
    await github?.close();
  });

  it('merges a pull request into the base branch of the real repository', async () => {
    // Prepare
    const { repo, head, number } = await repositoryWithPullRequest();
    const before = await github.branchHead('acme', repo, 'main');

    // Act
    const { data: result, status } = await octokit.rest.pulls.merge({
      owner: 'acme',
      repo,
      pull_number: number,
      sha: head,
    });

    // Assess
    expect(status).toBe(200);
    expect(result).toEqual({
      sha: await github.branchHead('acme', repo, 'main'),
      merged: true,
      message: 'Pull Request successfully merged',
    });
    expect(await github.readBranchFiles('acme', repo, 'main')).toEqual({
      'apps/podinfo/prod.yaml': 'version: 6.5.0\n',
      'README.md': '# fleet\n',
    });
    expect(await github.git('acme', repo, ['rev-list', '--parents', '-n', '1', 'main'])).toBe(
      `${result.sha} ${before} ${head}`,
    );
    expect(await github.git('acme', repo, ['log', '-1', '--format=%s%n%n%b', 'main'])).toBe(
      `Merge pull request #${number} from acme/promote\n\nPromote podinfo in prod to 6.5.0`,
    );
    const { data: pull } = await octokit.rest.pulls.get({
      owner: 'acme',
      repo,
      pull_number: number,
    });
    expect(pull).toMatchObject({
      state: 'closed',
      merged: true,
      merged_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      closed_at: pull.merged_at,
      merge_commit_sha: result.sha,
      merged_by: { login: 'promoter-bot' },
      head: { sha: head },
    });
    expect(
      (await octokit.rest.pulls.checkIfMerged({ owner: 'acme', repo, pull_number: number })).status,
    ).toBe(204);
  });

  it('squashes as a person clicking merge, and deletes the branch when the repository says so', async () => {
    // Prepare
    const { repo, number } = await repositoryWithPullRequest({ deleteBranchOnMerge: true });
    const before = await github.branchHead('acme', repo, 'main');

    // Act
    const result = await github.standIn.mergePullRequest('acme', repo, number, {
      method: 'squash',
    });

    // Assess
    expect(await github.git('acme', repo, ['rev-list', '--parents', '-n', '1', 'main'])).toBe(
      `${result.sha} ${before}`,
    );
    expect(await github.git('acme', repo, ['log', '-1', '--format=%s%n%n%b%an', 'main'])).toBe(
      `Promote podinfo in prod to 6.5.0 (#${number})\n\n* Promote podinfo to 6.5.0\nfleet-admin`,
    );
    expect(await github.readBranchFiles('acme', repo, 'main')).toMatchObject({
      'apps/podinfo/prod.yaml': 'version: 6.5.0\n',
    });
    expect(await github.branchHead('acme', repo, 'promote')).toBeUndefined();
    expect(github.standIn.pullRequest('acme', repo, number)).toMatchObject({
      state: 'closed',
      merged: true,
      mergedBy: 'fleet-admin',
      mergeCommitSha: result.sha,
    });
  });

  it('refuses merges as GitHub does: 409, 405, 404, 422 and 403', async () => {
    // Prepare
    const { repo, head, number } = await repositoryWithPullRequest();
    const conflicting = await repositoryWithPullRequest();
    await github.commitOnBranch('acme', conflicting.repo, 'main', {
      'apps/podinfo/prod.yaml': 'version: 7.0.0\n',
    });
    const merge = (path: string, body: unknown, token = github.token) =>
      api(path, {
        method: 'PUT',
        body: JSON.stringify(body),
        headers: { authorization: `token ${token}` },
      });
    const pulls = `/repos/acme/${repo}/pulls`;

    // Act
    const stale = await merge(`${pulls}/${number}/merge`, { sha: '0'.repeat(40) });
    const conflict = await merge(
      `/repos/acme/${conflicting.repo}/pulls/${conflicting.number}/merge`,
      {},
    );
    const missing = await merge(`${pulls}/99/merge`, {});
    const badMethod = await merge(`${pulls}/${number}/merge`, { merge_method: 'octopus' });
    const rebase = await merge(`${pulls}/${number}/merge`, { merge_method: 'rebase' });
    const readOnly = await merge(`${pulls}/${number}/merge`, {}, READ_ONLY_TOKEN);
    const merged = await merge(`${pulls}/${number}/merge`, { sha: head });
    const again = await merge(`${pulls}/${number}/merge`, {});

    // Assess
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({
      message: 'Head branch was modified. Review and try the merge again.',
    });
    expect(conflict.status).toBe(405);
    expect(await conflict.json()).toMatchObject({ message: 'Pull Request is not mergeable' });
    expect(missing.status).toBe(404);
    expect(badMethod.status).toBe(422);
    expect(rebase.status).toBe(405);
    expect(readOnly.status).toBe(403);
    expect(merged.status).toBe(200);
    expect(again.status).toBe(405);
    expect(await github.readBranchFiles('acme', conflicting.repo, 'main')).toMatchObject({
      'apps/podinfo/prod.yaml': 'version: 7.0.0\n',
    });
    const { data: dirty } = await octokit.rest.pulls.get({
      owner: 'acme',
      repo: conflicting.repo,
      pull_number: conflicting.number,
    });
    expect(dirty).toMatchObject({ state: 'open', mergeable: false, mergeable_state: 'dirty' });
  });

  it('closes, edits and reopens a pull request through the API and the helpers', async () => {
    // Prepare
    const { repo, head, number } = await repositoryWithPullRequest();

    // Act
    const { data: closed } = await octokit.rest.pulls.update({
      owner: 'acme',
      repo,
      pull_number: number,
      state: 'closed',
      title: 'Stale promotion',
      body: 'superseded',
    });
    await github.commitOnBranch('acme', repo, 'promote', { 'later.txt': 'pushed after close\n' });
    const { data: reopened } = await octokit.rest.pulls.update({
      owner: 'acme',
      repo,
      pull_number: number,
      state: 'open',
    });
    const byHand = await github.standIn.closePullRequest('acme', repo, number);

    // Assess
    expect(closed).toMatchObject({
      state: 'closed',
      merged: false,
      merged_at: null,
      title: 'Stale promotion',
      body: 'superseded',
      head: { sha: head },
    });
    expect(reopened).toMatchObject({
      state: 'open',
      closed_at: null,
      head: { sha: await github.branchHead('acme', repo, 'promote') },
    });
    expect(byHand).toMatchObject({ state: 'closed', merged: false, mergedBy: null });
    expect(github.standIn.pullRequest('acme', repo, number)?.closedAt).not.toBeNull();
  });

  it('takes comments on a pull request and lists them', async () => {
    // Prepare
    const { repo, number } = await repositoryWithPullRequest();

    // Act
    const created = await octokit.rest.issues.createComment({
      owner: 'acme',
      repo,
      issue_number: number,
      body: 'Closed: main already holds 6.5.0.',
    });
    const listed = await octokit.rest.issues.listComments({
      owner: 'acme',
      repo,
      issue_number: number,
    });
    const empty = await api(`/repos/acme/${repo}/issues/${number}/comments`, {
      method: 'POST',
      body: JSON.stringify({ body: '' }),
    });
    const missing = await api(`/repos/acme/${repo}/issues/99/comments`, {
      method: 'POST',
      body: JSON.stringify({ body: 'hello' }),
    });

    // Assess
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({
      body: 'Closed: main already holds 6.5.0.',
      user: { login: 'promoter-bot' },
      issue_url: `${github.apiBaseUrl}/repos/acme/${repo}/issues/${number}`,
      html_url: `${github.url}/acme/${repo}/pull/${number}#issuecomment-${created.data.id}`,
    });
    expect(listed.data).toEqual([created.data]);
    expect(empty.status).toBe(422);
    expect(missing.status).toBe(404);
    expect(github.standIn.pullRequestComments('acme', repo, number)).toEqual([
      expect.objectContaining({ body: 'Closed: main already holds 6.5.0.', user: 'promoter-bot' }),
    ]);
    const { data: pull } = await octokit.rest.pulls.get({
      owner: 'acme',
      repo,
      pull_number: number,
    });
    expect(pull.comments).toBe(1);
  });

  it('answers an unchanged pull request 304 on its ETag, at no rate-limit cost', async () => {
    // Prepare
    const { repo, number } = await repositoryWithPullRequest();
    const path = `/repos/acme/${repo}/pulls/${number}`;
    const first = await api(path);
    const etag = first.headers.get('etag') ?? '';
    github.standIn.clearRequests();

    // Act
    const unchanged = await api(path, { headers: { 'if-none-match': etag } });
    await github.standIn.closePullRequest('acme', repo, number);
    const changed = await api(path, { headers: { 'if-none-match': etag } });

    // Assess
    expect(first.status).toBe(200);
    expect(etag).toMatch(/^W\/"[0-9a-f]{64}"$/);
    expect(unchanged.status).toBe(304);
    expect(await unchanged.text()).toBe('');
    expect(unchanged.headers.get('etag')).toBe(etag);
    expect(unchanged.headers.get('x-ratelimit-used')).toBe(first.headers.get('x-ratelimit-used'));
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(github.standIn.apiUsage({ route: '/repos/{owner}/{repo}/pulls/{pull_number}' })).toEqual(
      { requests: 2, notModified: 1, counted: 1 },
    );
    expect(github.standIn.requestCount({ status: 304 })).toBe(1);
    expect(github.standIn.requests[0]).toMatchObject({ conditional: true, counted: false });
  });

  it('delivers signed pull_request events: opened, synchronize, edited, closed and merged', async () => {
    // Prepare
    const receiver = await startReceiver();
    const directory = await mkdtemp(join(tmpdir(), 'fake-ghe-webhooks-'));

    try {
      // Act
      await github.standIn.deliverWebhooksTo(receiver.url, WEBHOOK_SECRET);
      const { repo, number } = await repositoryWithPullRequest();
      const remote = `http://x-access-token:${github.token}@127.0.0.1:${github.port}/acme/${repo}.git`;
      await git(['clone', '--quiet', '--branch', 'promote', remote, directory]);
      await writeFile(join(directory, 'apps/podinfo/prod.yaml'), 'version: 6.5.1\n');
      await git(['commit', '--quiet', '-am', 'Promote podinfo to 6.5.1'], directory);
      await git(['push', '--quiet', remote, 'HEAD:refs/heads/promote'], directory);
      await github.standIn.deliveries.settled();
      await octokit.rest.pulls.update({
        owner: 'acme',
        repo,
        pull_number: number,
        title: 'Promote to 6.5.1',
      });
      await github.standIn.mergePullRequest('acme', repo, number);
      await github.standIn.deliveries.settled();

      // Assess
      const events = receiver.received.map((delivery) =>
        `${delivery.headers['x-github-event']} ${(JSON.parse(delivery.body) as { action?: string }).action ?? ''}`.trim(),
      );
      expect(events).toEqual([
        'ping',
        'pull_request opened',
        'pull_request synchronize',
        'pull_request edited',
        'pull_request closed',
      ]);
      for (const delivery of receiver.received) {
        expect(delivery.headers).toMatchObject({
          'content-type': 'application/json',
          'user-agent': expect.stringMatching(/^GitHub-Hookshot\//),
          'x-github-delivery': expect.stringMatching(/^[0-9a-f-]{36}$/),
        });
        const signature = String(delivery.headers['x-hub-signature-256']);
        expect(await verify(WEBHOOK_SECRET, delivery.body, signature)).toBe(true);
        expect(signature).toBe(
          `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(delivery.body).digest('hex')}`,
        );
      }
      const [, opened, synchronize, edited, closed] = receiver.received.map(
        (delivery) => JSON.parse(delivery.body) as PullRequestPayload,
      );
      expect(opened).toMatchObject({
        action: 'opened',
        number,
        pull_request: { state: 'open', head: { ref: 'promote' }, merged: false },
        repository: { full_name: `acme/${repo}` },
        sender: { login: 'promoter-bot' },
      });
      expect(synchronize).toMatchObject({
        action: 'synchronize',
        before: opened?.pull_request.head.sha,
        after: await github.git('acme', repo, ['rev-parse', 'refs/heads/promote']),
      });
      expect(edited).toMatchObject({
        action: 'edited',
        changes: { title: { from: 'Promote podinfo in prod to 6.5.0' } },
      });
      expect(closed).toMatchObject({
        action: 'closed',
        pull_request: {
          state: 'closed',
          merged: true,
          merge_commit_sha: await github.branchHead('acme', repo, 'main'),
          merged_by: { login: 'fleet-admin' },
        },
        sender: { login: 'fleet-admin' },
      });
      expect(github.standIn.deliveries.all.map((delivery) => delivery.status)).toEqual([
        202, 202, 202, 202, 202,
      ]);
    } finally {
      await receiver.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('tells a pull request closed unmerged from one merged', async () => {
    // Prepare
    const receiver = await startReceiver();
    await github.standIn.deliverWebhooksTo(receiver.url, WEBHOOK_SECRET, { ping: false });
    const { repo, number } = await repositoryWithPullRequest();
    await github.standIn.deliveries.settled();
    github.standIn.deliveries.clear();

    try {
      // Act
      await github.standIn.closePullRequest('acme', repo, number);
      await github.standIn.reopenPullRequest('acme', repo, number);
      await github.standIn.deliveries.settled();

      // Assess
      expect(
        github.standIn.deliveries.all.map((delivery) => {
          const payload = delivery.payload as PullRequestPayload;
          return [payload.action, payload.pull_request.merged];
        }),
      ).toEqual([
        ['closed', false],
        ['reopened', false],
      ]);
    } finally {
      await receiver.close();
    }
  });

  it('loses, duplicates and forges deliveries on demand, and records the answers', async () => {
    // Prepare: the receiver refuses the third delivery it sees with a 500.
    const receiver = await startReceiver((index) => (index === 2 ? 500 : 202));
    await github.standIn.deliverWebhooksTo(receiver.url, WEBHOOK_SECRET, { ping: false });
    const deliveries = github.standIn.deliveries;
    deliveries.loseNext(1, { action: 'opened' });
    const { repo, number } = await repositoryWithPullRequest();
    await deliveries.settled();

    try {
      // Act
      deliveries.duplicateNext({ action: 'closed' });
      await github.standIn.mergePullRequest('acme', repo, number);
      await deliveries.settled();
      deliveries.forgeNext();
      await deliveries.send(
        'pull_request',
        { action: 'labeled', number },
        { repository: `acme/${repo}` },
      );
      const [lost] = deliveries.list({ action: 'opened' });
      const redelivered = await deliveries.redeliver(lost?.id ?? '');

      // Assess
      expect(
        deliveries.all.map((delivery) => [delivery.action, delivery.outcome, delivery.status]),
      ).toEqual([
        ['opened', 'lost', undefined],
        ['closed', 'sent', 202],
        ['closed', 'sent', 202],
        ['labeled', 'sent', 500],
        ['opened', 'sent', 202],
      ]);
      const [closedOnce, closedTwice] = receiver.received;
      expect(closedOnce?.headers['x-github-delivery']).toBe(
        closedTwice?.headers['x-github-delivery'],
      );
      expect(closedOnce?.body).toBe(closedTwice?.body);
      const forged = receiver.received[2];
      expect(
        await verify(
          WEBHOOK_SECRET,
          forged?.body ?? '',
          String(forged?.headers['x-hub-signature-256']),
        ),
      ).toBe(false);
      expect(redelivered).toMatchObject({ id: lost?.id, redelivery: true, outcome: 'sent' });
      expect(receiver.received[3]?.headers['x-github-delivery']).toBe(lost?.id);
      expect(receiver.received).toHaveLength(4);
    } finally {
      await receiver.close();
    }
  });

  it('records a delivery nobody answered', async () => {
    // Prepare
    const receiver = await startReceiver();
    await receiver.close();

    // Act
    await github.standIn.deliverWebhooksTo(receiver.url, WEBHOOK_SECRET);

    // Assess
    expect(github.standIn.deliveries.list({ event: 'ping' }).at(-1)).toMatchObject({
      outcome: 'failed',
      status: undefined,
      error: expect.stringMatching(/ECONNREFUSED/),
    });
  });
});
