import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOctokitPullRequests } from '../../functions/adapters/octokit-pull-requests.ts';
import type { PullRequestLookup } from '../../functions/core/ports.ts';
import { caught } from '../support/caught.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';

/**
 * The lifecycle half of OctokitPullRequests against the GitHub Enterprise stand-in on a real git
 * repository: `get` (what the reconcile sweep reads, conditionally with the PR's ETag) and
 * `close` (a stale promotion PR: a comment that says why, then closed unmerged).
 */
const OWNER = 'acme';
const REPO = 'fleet';
const READ_ONLY_TOKEN = 'ghp_readOnlyLifecycleToken00000000000000';
const PULL = '/repos/{owner}/{repo}/pulls/{pull_number}';
const COMMENTS = '/repos/{owner}/{repo}/issues/{issue_number}/comments';

describe('OctokitPullRequests.get and .close against the GitHub Enterprise stand-in', () => {
  let github: FakeGitHubEnterprise;
  // Back-off seconds are 5 ms and writes are not spaced: nothing sleeps.
  const pullRequests = createOctokitPullRequests({ retryAfterBaseValue: 5, spaceWrites: false });
  let branches = 0;

  const lookup = (number: number, token = github.token): PullRequestLookup => ({
    repository: github.repository(OWNER, REPO),
    token,
    number,
  });

  /** A promotion branch with its own file (so that merges never conflict) and its open PR. */
  const openPullRequest = async (revision: string) => {
    branches += 1;
    const environment = `env${branches}`;
    const head = `promotion-apps-podinfo-${environment}`;
    await github.commitOnBranch(OWNER, REPO, head, {
      [`apps/podinfo/${environment}.yaml`]: `version: ${revision} # {"$promotion": "apps:podinfo:${environment}"}\n`,
    });
    const title = `Promote apps/podinfo in ${environment} to ${revision}`;
    const result = await pullRequests.upsert({
      repository: github.repository(OWNER, REPO),
      token: github.token,
      head,
      base: 'main',
      title,
      body: `Revision: ${revision}\n\npipeline-promoter: apps/podinfo/${environment}`,
    });
    return { number: result.number, head, title };
  };

  beforeAll(async () => {
    github = await startFakeGitHubEnterprise({ readOnlyTokens: [READ_ONLY_TOKEN] });
    await github.createRepository(OWNER, REPO, { 'README.md': 'the fleet\n' });
  });

  afterAll(async () => {
    await github?.close();
  });

  it('reads an open, a merged and a closed pull request, with the merge commit and time of the merged one', async () => {
    // Prepare
    const open = await openPullRequest('6.5.0');
    const merged = await openPullRequest('6.5.1');
    const closed = await openPullRequest('6.5.2');
    const merge = await github.standIn.mergePullRequest(OWNER, REPO, merged.number);
    await github.standIn.closePullRequest(OWNER, REPO, closed.number);

    // Act
    const views = await Promise.all(
      [open, merged, closed].map((pull) => pullRequests.get(lookup(pull.number))),
    );

    // Assess
    const mergedAt = github.standIn.pullRequest(OWNER, REPO, merged.number)?.mergedAt;
    const headOf = async (pull: { head: string }) => github.branchHead(OWNER, REPO, pull.head);
    expect(views).toEqual([
      {
        number: open.number,
        state: 'open',
        title: open.title,
        headRef: open.head,
        headSha: await headOf(open),
      },
      {
        number: merged.number,
        state: 'merged',
        title: merged.title,
        headRef: merged.head,
        headSha: await headOf(merged),
        mergedAt: new Date(mergedAt ?? 'no merge time').toISOString(),
        mergeCommit: merge.sha,
      },
      {
        number: closed.number,
        state: 'closed',
        title: closed.title,
        headRef: closed.head,
        headSha: await headOf(closed),
      },
    ]);
    // The merge commit is what the base branch of the real repository now points at.
    expect(merge.sha).toBe(await github.branchHead(OWNER, REPO, 'main'));
  });

  it('answers not-modified for an unchanged pull request: a 304 that costs no rate limit', async () => {
    // Prepare
    const first = await openPullRequest('6.6.0');
    const second = await openPullRequest('6.6.1');
    await pullRequests.get(lookup(first.number));
    await pullRequests.get(lookup(second.number));
    github.standIn.clearRequests();

    // Act: each PR has its own ETag.
    const again = await pullRequests.get(lookup(first.number));
    const secondAgain = await pullRequests.get(lookup(second.number));

    // Assess
    expect([again, secondAgain]).toEqual(['not-modified', 'not-modified']);
    expect(github.standIn.apiUsage({ route: PULL })).toEqual({
      requests: 2,
      notModified: 2,
      counted: 0,
    });
    expect(
      github.standIn.requests.map(({ method, status, conditional }) => ({
        method,
        status,
        conditional,
      })),
    ).toEqual([
      { method: 'GET', status: 304, conditional: true },
      { method: 'GET', status: 304, conditional: true },
    ]);
  });

  it('reads a pull request again once it changed, then answers not-modified on its new ETag', async () => {
    // Prepare
    const pull = await openPullRequest('6.7.0');
    await pullRequests.get(lookup(pull.number));
    const retitled = pull.title.replace('6.7.0', '6.7.1');
    await pullRequests.upsert({
      repository: github.repository(OWNER, REPO),
      token: github.token,
      head: pull.head,
      base: 'main',
      title: retitled,
      body: 'Revision: 6.7.1',
    });
    github.standIn.clearRequests();

    // Act
    const changed = await pullRequests.get(lookup(pull.number));
    const unchanged = await pullRequests.get(lookup(pull.number));
    const merge = await github.standIn.mergePullRequest(OWNER, REPO, pull.number);
    const merged = await pullRequests.get(lookup(pull.number));

    // Assess
    expect(changed).toEqual({
      number: pull.number,
      state: 'open',
      title: retitled,
      headRef: pull.head,
      headSha: await github.branchHead(OWNER, REPO, pull.head),
    });
    expect(unchanged).toBe('not-modified');
    expect(merged).toMatchObject({ state: 'merged', mergeCommit: merge.sha });
    expect(github.standIn.apiUsage({ route: PULL })).toEqual({
      requests: 3,
      notModified: 1,
      counted: 2,
    });
    // Every read after the first one was conditional.
    expect(github.standIn.requests.every((request) => request.conditional)).toBe(true);
  });

  it('close comments on the pull request first, then closes it unmerged', async () => {
    // Prepare
    const pull = await openPullRequest('6.8.0');
    const comment = 'Closed by Pipeline Promoter: `main` already holds apps/podinfo at `6.9.0`.';
    const mainBefore = await github.branchHead(OWNER, REPO, 'main');
    github.standIn.clearRequests();

    // Act
    await pullRequests.close(lookup(pull.number), comment);
    const view = await pullRequests.get(lookup(pull.number));

    // Assess
    expect(github.standIn.pullRequestComments(OWNER, REPO, pull.number)).toEqual([
      expect.objectContaining({ body: comment, user: 'promoter-bot', issueNumber: pull.number }),
    ]);
    expect(github.standIn.pullRequest(OWNER, REPO, pull.number)).toMatchObject({
      state: 'closed',
      merged: false,
      mergeCommitSha: null,
    });
    expect(
      github.standIn.requests.map(({ method, route, body, status }) => ({
        method,
        route,
        body,
        status,
      })),
    ).toEqual([
      { method: 'POST', route: COMMENTS, body: { body: comment }, status: 201 },
      { method: 'PATCH', route: PULL, body: { state: 'closed' }, status: 200 },
      { method: 'GET', route: PULL, body: undefined, status: 200 },
    ]);
    expect(view).toEqual({
      number: pull.number,
      state: 'closed',
      title: pull.title,
      headRef: pull.head,
      headSha: await github.branchHead(OWNER, REPO, pull.head),
    });
    expect(await github.branchHead(OWNER, REPO, 'main')).toBe(mainBefore);
  });

  it('close with a read-only token fails permanently before anything is written', async () => {
    // Prepare
    const pull = await openPullRequest('6.9.0');

    // Act
    const error = await caught(pullRequests.close(lookup(pull.number, READ_ONLY_TOKEN), 'stale'));

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_AUTH_FAILED', retryable: false });
    expect(error.message).toContain(`comment on pull request #${pull.number} in ${OWNER}/${REPO}`);
    expect(error.message).not.toContain(READ_ONLY_TOKEN);
    expect(github.standIn.pullRequestComments(OWNER, REPO, pull.number)).toEqual([]);
    expect(github.standIn.pullRequest(OWNER, REPO, pull.number)?.state).toBe('open');
  });

  it('get of a pull request that does not exist fails permanently, naming it', async () => {
    // Prepare: nothing

    // Act
    const error = await caught(pullRequests.get(lookup(9_999)));

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_NOT_FOUND', retryable: false });
    expect(error.message).toContain('read pull request #9999');
  });
});
