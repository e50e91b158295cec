import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOctokitPullRequests } from '../../functions/adapters/octokit-pull-requests.ts';
import type { PullRequestLookup } from '../../functions/core/ports.ts';
import { caught } from '../support/caught.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { signatureOf } from '../support/github-stand-in.ts';

/**
 * Auto-merge with OctokitPullRequests against the GitHub Enterprise stand-in on real bare
 * repositories: GitHub's own auto-merge (GraphQL `enablePullRequestAutoMerge` on `/api/graphql`)
 * where the repository allows it, else `mergeWhenReady`, which merges the expected head once
 * branch protection (required checks, reviews) lets it, and says what it waits for otherwise.
 */
const OWNER = 'acme';
/** Allows auto-merge; `ci/build` is required. */
const AUTO = 'fleet-auto';
/** Does not allow auto-merge; `ci/build` is required. */
const MANUAL = 'fleet-manual';
/** Does not allow auto-merge; one approving review is required. */
const REVIEWED = 'fleet-reviewed';
const REQUIRED = 'ci/build';
const READ_ONLY_TOKEN = 'ghp_readOnlyAutoMergeToken00000000000000';
const WEBHOOK_SECRET = 'auto-merge-webhook-secret';
const MERGE = '/repos/{owner}/{repo}/pulls/{pull_number}/merge';

/** A webhook receiver on loopback that keeps what it was sent. */
const startReceiver = async () => {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(202, { 'content-type': 'application/json' }).end('{"ok":true}');
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

describe('OctokitPullRequests auto-merge against the GitHub Enterprise stand-in', () => {
  let github: FakeGitHubEnterprise;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  // Back-off seconds are 5 ms and writes are not spaced: nothing sleeps.
  const pullRequests = createOctokitPullRequests({ retryAfterBaseValue: 5, spaceWrites: false });
  let branches = 0;

  const lookup = (repo: string, number: number, token = github.token): PullRequestLookup => ({
    repository: github.repository(OWNER, repo),
    token,
    number,
  });

  /** A promotion branch with its own file (so that merges never conflict) and its open PR. */
  const openPullRequest = async (repo: string, files: Record<string, string> = {}) => {
    branches += 1;
    const environment = `env${branches}`;
    const head = `promotion-apps-podinfo-${environment}`;
    const path = `apps/podinfo/${environment}.yaml`;
    const sha = await github.commitOnBranch(OWNER, repo, head, {
      [path]: `version: 6.5.${branches} # {"$promotion": "apps:podinfo:${environment}"}\n`,
      ...files,
    });
    const result = await pullRequests.upsert({
      repository: github.repository(OWNER, repo),
      token: github.token,
      head,
      base: 'main',
      title: `Promote apps/podinfo in ${environment} to 6.5.${branches}`,
      body: `pipeline-promoter: apps/podinfo/${environment}`,
    });
    return { number: result.number, head, sha, path };
  };

  const mainHead = (repo: string) => github.branchHead(OWNER, repo, 'main');
  const parentsOf = async (repo: string, commit: string) =>
    (await github.git(OWNER, repo, ['rev-list', '--parents', '-n', '1', commit]))
      .split(' ')
      .slice(1);

  beforeAll(async () => {
    github = await startFakeGitHubEnterprise({ readOnlyTokens: [READ_ONLY_TOKEN] });
    const files = { 'README.md': 'the fleet\n' };
    await github.createRepository(OWNER, AUTO, files, 'main', {
      allowAutoMerge: true,
      requiredChecks: [REQUIRED],
    });
    await github.createRepository(OWNER, MANUAL, files, 'main', { requiredChecks: [REQUIRED] });
    await github.createRepository(OWNER, REVIEWED, files, 'main', {
      requiredApprovingReviews: 1,
    });
    receiver = await startReceiver();
    await github.standIn.deliverWebhooksTo(receiver.url, WEBHOOK_SECRET, {
      repository: `${OWNER}/${AUTO}`,
      ping: false,
    });
  });

  afterAll(async () => {
    await github?.close();
    await receiver?.close();
  });

  it('enables GitHub auto-merge; GitHub merges once the required check passes and sends the merged webhook', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);
    await github.standIn.setCommitCheck(OWNER, AUTO, pull.sha, {
      context: REQUIRED,
      state: 'pending',
    });
    const mainBefore = await mainHead(AUTO);
    github.standIn.clearRequests();

    // Act
    const result = await pullRequests.enableAutoMerge({
      ...lookup(AUTO, pull.number),
      expectedHead: pull.sha,
    });
    const whileRunning = github.standIn.pullRequest(OWNER, AUTO, pull.number);
    await github.standIn.setCommitCheck(OWNER, AUTO, pull.sha, {
      context: REQUIRED,
      state: 'success',
    });
    await github.standIn.deliveries.settled();

    // Assess
    expect(result).toBe('enabled');
    expect(whileRunning).toMatchObject({
      state: 'open',
      merged: false,
      autoMerge: { enabledBy: 'promoter-bot', mergeMethod: 'merge' },
    });
    const graphql = github.standIn.requests.filter((request) => request.route === '/graphql');
    expect(graphql).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/graphql',
        status: 200,
        body: expect.objectContaining({
          query: expect.stringContaining('enablePullRequestAutoMerge'),
          variables: { pullRequestId: expect.stringMatching(/^PR_/), expectedHeadOid: pull.sha },
        }),
      }),
    ]);
    const merged = github.standIn.pullRequest(OWNER, AUTO, pull.number);
    expect(merged).toMatchObject({ state: 'closed', merged: true, mergedBy: 'promoter-bot' });
    const main = await mainHead(AUTO);
    expect(main).toBe(merged?.mergeCommitSha);
    expect(await parentsOf(AUTO, main ?? 'main')).toEqual([mainBefore, pull.sha]);
    expect(await github.readBranchFiles(OWNER, AUTO, 'main')).toHaveProperty(pull.path);
    const closed = receiver.received
      .map(({ headers, body }) => ({ headers, body, payload: JSON.parse(body) }))
      .filter(({ payload }) => payload.number === pull.number && payload.action === 'closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]?.payload.pull_request).toMatchObject({
      merged: true,
      merge_commit_sha: main,
      auto_merge: { merge_method: 'merge', enabled_by: { login: 'promoter-bot' } },
    });
    expect(closed[0]?.headers['x-hub-signature-256']).toBe(
      signatureOf(WEBHOOK_SECRET, closed[0]?.body ?? '', 'sha256'),
    );
  });

  it('CI reporting the required status through the REST API completes a waiting auto-merge', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);
    await pullRequests.enableAutoMerge({ ...lookup(AUTO, pull.number), expectedHead: pull.sha });
    const api = `${github.apiBaseUrl}/repos/${OWNER}/${AUTO}`;
    const headers = { authorization: `token ${github.token}`, 'content-type': 'application/json' };

    // Act
    const created = await fetch(`${api}/statuses/${pull.sha}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ state: 'success', context: REQUIRED, description: 'built' }),
    });
    const combined = await fetch(`${api}/commits/${pull.sha}/status`, { headers });

    // Assess
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      state: 'success',
      context: REQUIRED,
      creator: { login: 'promoter-bot' },
    });
    expect(await combined.json()).toMatchObject({
      state: 'success',
      sha: pull.sha,
      total_count: 1,
      statuses: [{ context: REQUIRED, state: 'success', required: true }],
      repository: { full_name: `${OWNER}/${AUTO}` },
    });
    expect(github.standIn.pullRequest(OWNER, AUTO, pull.number)).toMatchObject({
      merged: true,
      mergeCommitSha: await mainHead(AUTO),
    });
  });

  it('a repository that allows auto-merge later takes it, and merges once protection no longer blocks', async () => {
    // Prepare
    const repo = 'fleet-settings';
    await github.createRepository(OWNER, repo, { 'README.md': 'the fleet\n' }, 'main', {
      requiredChecks: [REQUIRED],
    });
    const pull = await openPullRequest(repo);

    // Act
    const before = await pullRequests.enableAutoMerge({
      ...lookup(repo, pull.number),
      expectedHead: pull.sha,
    });
    await github.standIn.updateRepository(OWNER, repo, { allowAutoMerge: true });
    const after = await pullRequests.enableAutoMerge({
      ...lookup(repo, pull.number),
      expectedHead: pull.sha,
    });
    const waiting = github.standIn.pullRequest(OWNER, repo, pull.number)?.state;
    await github.standIn.updateRepository(OWNER, repo, { requiredChecks: [] });

    // Assess
    expect([before, after, waiting]).toEqual(['unavailable', 'enabled', 'open']);
    expect(github.standIn.pullRequest(OWNER, repo, pull.number)).toMatchObject({
      merged: true,
      mergeCommitSha: await mainHead(repo),
    });
  });

  it('enabling auto-merge again on a PR that has it asks GitHub nothing more', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);
    await pullRequests.enableAutoMerge({ ...lookup(AUTO, pull.number), expectedHead: pull.sha });
    github.standIn.clearRequests();

    // Act
    const again = await pullRequests.enableAutoMerge({
      ...lookup(AUTO, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(again).toBe('enabled');
    expect(github.standIn.requestCount({ route: '/graphql' })).toBe(0);
    expect(github.standIn.pullRequest(OWNER, AUTO, pull.number)?.state).toBe('open');
  });

  it('does not turn auto-merge on for a head other than the one the promotion pushed', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);
    github.standIn.clearRequests();

    // Act
    const result = await pullRequests.enableAutoMerge({
      ...lookup(AUTO, pull.number),
      expectedHead: 'f'.repeat(40),
    });

    // Assess
    expect(result).toBe('unavailable');
    expect(github.standIn.requestCount({ route: '/graphql' })).toBe(0);
    expect(github.standIn.pullRequest(OWNER, AUTO, pull.number)?.autoMerge).toBeNull();
  });

  it('auto-merge is unavailable where the repository does not allow it, and nothing changes', async () => {
    // Prepare
    const pull = await openPullRequest(MANUAL);
    const mainBefore = await mainHead(MANUAL);
    github.standIn.clearRequests();

    // Act
    const result = await pullRequests.enableAutoMerge({
      ...lookup(MANUAL, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(result).toBe('unavailable');
    expect(github.standIn.requests.find((request) => request.route === '/graphql')).toMatchObject({
      method: 'POST',
      status: 200,
    });
    expect(github.standIn.pullRequest(OWNER, MANUAL, pull.number)).toMatchObject({
      state: 'open',
      autoMerge: null,
    });
    expect(await mainHead(MANUAL)).toBe(mainBefore);
  });

  it('auto-merge is unavailable when the PR could merge at once (GitHub: "clean status")', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);
    await github.standIn.setCommitCheck(OWNER, AUTO, pull.sha, {
      context: REQUIRED,
      state: 'success',
    });

    // Act
    const result = await pullRequests.enableAutoMerge({
      ...lookup(AUTO, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(result).toBe('unavailable');
    expect(github.standIn.pullRequest(OWNER, AUTO, pull.number)).toMatchObject({
      state: 'open',
      autoMerge: null,
    });
  });

  it('enabling auto-merge with a read-only token fails permanently without the token in the message', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);

    // Act
    const error = await caught(
      pullRequests.enableAutoMerge({
        ...lookup(AUTO, pull.number, READ_ONLY_TOKEN),
        expectedHead: pull.sha,
      }),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_AUTH_FAILED', retryable: false });
    expect(error.message).toContain(`enable auto-merge on pull request #${pull.number}`);
    expect(error.message).not.toContain(READ_ONLY_TOKEN);
    expect(github.standIn.pullRequest(OWNER, AUTO, pull.number)?.autoMerge).toBeNull();
  });

  it('a GraphQL endpoint that keeps failing is a retryable GITHUB_UNAVAILABLE', async () => {
    // Prepare
    const pull = await openPullRequest(AUTO);
    github.standIn.injectFault({
      route: '/graphql',
      times: 10,
      fault: { kind: 'status', status: 502 },
    });

    // Act
    const error = await caught(
      pullRequests.enableAutoMerge({ ...lookup(AUTO, pull.number), expectedHead: pull.sha }),
    );
    github.standIn.clearFaults();

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_UNAVAILABLE', retryable: true });
    expect(github.standIn.pullRequest(OWNER, AUTO, pull.number)?.autoMerge).toBeNull();
  });

  it('mergeWhenReady waits while the required check runs, then merges the expected head into the base', async () => {
    // Prepare
    const pull = await openPullRequest(MANUAL);
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      kind: 'check-run',
      name: REQUIRED,
      status: 'in_progress',
    });
    const mainBefore = await mainHead(MANUAL);
    const request = { ...lookup(MANUAL, pull.number), expectedHead: pull.sha };

    // Act
    const whileRunning = await pullRequests.mergeWhenReady(request);
    const mainWhileRunning = await mainHead(MANUAL);
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      kind: 'check-run',
      name: REQUIRED,
      status: 'completed',
      conclusion: 'success',
    });
    github.standIn.clearRequests();
    const once = await pullRequests.mergeWhenReady(request);

    // Assess
    expect(whileRunning).toEqual({ status: 'pending', reason: `checks pending: ${REQUIRED}` });
    expect(mainWhileRunning).toBe(mainBefore);
    const main = await mainHead(MANUAL);
    expect(once).toEqual({ status: 'merged', mergeCommit: main });
    expect(await parentsOf(MANUAL, main ?? 'main')).toEqual([mainBefore, pull.sha]);
    expect(await github.readBranchFiles(OWNER, MANUAL, 'main')).toHaveProperty(pull.path);
    expect(github.standIn.pullRequest(OWNER, MANUAL, pull.number)).toMatchObject({
      merged: true,
      mergeCommitSha: main,
    });
    expect(github.standIn.requests.find((entry) => entry.route === MERGE)).toMatchObject({
      method: 'PUT',
      status: 200,
      body: { sha: pull.sha, merge_method: 'merge' },
    });
  });

  it('mergeWhenReady on a merged PR answers merged with its merge commit', async () => {
    // Prepare
    const pull = await openPullRequest(REVIEWED);
    await github.standIn.approvePullRequest(OWNER, REVIEWED, pull.number);
    const merge = await github.standIn.mergePullRequest(OWNER, REVIEWED, pull.number);

    // Act
    const attempt = await pullRequests.mergeWhenReady({
      ...lookup(REVIEWED, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(attempt).toEqual({ status: 'merged', mergeCommit: merge.sha });
  });

  it('mergeWhenReady does not merge a head that moved since the promotion', async () => {
    // Prepare
    const pull = await openPullRequest(MANUAL);
    const moved = await github.commitOnBranch(OWNER, MANUAL, pull.head, {
      'apps/podinfo/other.yaml': 'pushed by a person\n',
    });
    await github.standIn.setCommitCheck(OWNER, MANUAL, moved, {
      context: REQUIRED,
      state: 'success',
    });
    const mainBefore = await mainHead(MANUAL);
    github.standIn.clearRequests();

    // Act
    const attempt = await pullRequests.mergeWhenReady({
      ...lookup(MANUAL, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(attempt.status).toBe('blocked');
    expect(attempt).toMatchObject({ reason: expect.stringContaining('head moved') });
    expect(attempt).toMatchObject({ reason: expect.stringContaining(moved) });
    expect(github.standIn.requestCount({ route: MERGE })).toBe(0);
    expect(await mainHead(MANUAL)).toBe(mainBefore);
    expect(github.standIn.pullRequest(OWNER, MANUAL, pull.number)?.state).toBe('open');
  });

  it('mergeWhenReady answers blocked when the head moves between its read and the merge (409)', async () => {
    // Prepare
    const pull = await openPullRequest(MANUAL);
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      context: REQUIRED,
      state: 'success',
    });
    github.standIn.injectFault({
      method: 'PUT',
      route: MERGE,
      fault: {
        kind: 'status',
        status: 409,
        body: { message: 'Head branch was modified. Review and try the merge again.' },
      },
    });
    const mainBefore = await mainHead(MANUAL);

    // Act
    const attempt = await pullRequests.mergeWhenReady({
      ...lookup(MANUAL, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(attempt).toEqual({
      status: 'blocked',
      reason:
        'head moved before the merge: Head branch was modified. Review and try the merge again.',
    });
    expect(await mainHead(MANUAL)).toBe(mainBefore);
  });

  it('mergeWhenReady answers blocked for a PR that conflicts with its base', async () => {
    // Prepare: the branch and main both change README.md.
    const pull = await openPullRequest(MANUAL, { 'README.md': 'the fleet, promoted\n' });
    await github.commitOnBranch(OWNER, MANUAL, 'main', { 'README.md': 'the fleet, edited\n' });
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      context: REQUIRED,
      state: 'success',
    });
    const mainBefore = await mainHead(MANUAL);

    // Act
    const attempt = await pullRequests.mergeWhenReady({
      ...lookup(MANUAL, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(attempt).toEqual({ status: 'blocked', reason: 'it conflicts with main' });
    expect(await mainHead(MANUAL)).toBe(mainBefore);
    expect(await github.standIn.mergeableState(OWNER, MANUAL, pull.number)).toBe('dirty');
  });

  it('mergeWhenReady answers blocked naming the failed checks, and merges nothing', async () => {
    // Prepare: the required status fails, a check run fails, another one passes.
    const pull = await openPullRequest(MANUAL);
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      context: REQUIRED,
      state: 'failure',
    });
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      kind: 'check-run',
      name: 'lint',
      status: 'completed',
      conclusion: 'failure',
    });
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      kind: 'check-run',
      name: 'unit',
      status: 'completed',
      conclusion: 'success',
    });
    const mainBefore = await mainHead(MANUAL);
    github.standIn.clearRequests();

    // Act
    const attempt = await pullRequests.mergeWhenReady({
      ...lookup(MANUAL, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(attempt).toEqual({ status: 'blocked', reason: `failed checks: ${REQUIRED}, lint` });
    expect(github.standIn.requestCount({ route: MERGE })).toBe(0);
    expect(await mainHead(MANUAL)).toBe(mainBefore);
  });

  it('mergeWhenReady is pending while GitHub computes mergeability, then merges', async () => {
    // Prepare
    const pull = await openPullRequest(MANUAL);
    await github.standIn.setCommitCheck(OWNER, MANUAL, pull.sha, {
      context: REQUIRED,
      state: 'success',
    });
    github.standIn.deferMergeability(OWNER, MANUAL, pull.number);
    const request = { ...lookup(MANUAL, pull.number), expectedHead: pull.sha };

    // Act
    const first = await pullRequests.mergeWhenReady(request);
    const second = await pullRequests.mergeWhenReady(request);

    // Assess
    expect(first).toEqual({
      status: 'pending',
      reason: 'GitHub has not computed whether it can merge yet',
    });
    expect(second).toEqual({ status: 'merged', mergeCommit: await mainHead(MANUAL) });
  });

  it('mergeWhenReady answers blocked while a required review is missing, and merges once approved', async () => {
    // Prepare
    const pull = await openPullRequest(REVIEWED);
    const request = { ...lookup(REVIEWED, pull.number), expectedHead: pull.sha };

    // Act
    const unreviewed = await pullRequests.mergeWhenReady(request);
    await github.standIn.approvePullRequest(OWNER, REVIEWED, pull.number);
    const approved = await pullRequests.mergeWhenReady(request);

    // Assess
    expect(unreviewed).toMatchObject({
      status: 'blocked',
      reason: expect.stringContaining('required reviews'),
    });
    expect(approved).toEqual({ status: 'merged', mergeCommit: await mainHead(REVIEWED) });
  });

  it('mergeWhenReady answers blocked for a PR closed unmerged', async () => {
    // Prepare
    const pull = await openPullRequest(MANUAL);
    await github.standIn.closePullRequest(OWNER, MANUAL, pull.number);

    // Act
    const attempt = await pullRequests.mergeWhenReady({
      ...lookup(MANUAL, pull.number),
      expectedHead: pull.sha,
    });

    // Assess
    expect(attempt).toEqual({
      status: 'blocked',
      reason: 'the pull request was closed without being merged',
    });
  });
});
