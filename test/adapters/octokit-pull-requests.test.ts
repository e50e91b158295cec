import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOctokitPullRequests } from '../../functions/adapters/octokit-pull-requests.ts';
import type { PullRequestRequest } from '../../functions/core/ports.ts';
import { retryDelaySeconds } from '../../functions/core/retry-policy.ts';
import { caught } from '../support/caught.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';

const OWNER = 'acme';
const REPO = 'fleet';
const BRANCH = 'promotion-apps-podinfo-staging';
const READ_ONLY_TOKEN = 'ghp_readOnlyToken000000000000000000000000';
const PULLS = '/repos/{owner}/{repo}/pulls';
const PULL = '/repos/{owner}/{repo}/pulls/{pull_number}';
const SECONDARY_MESSAGE =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';

describe('OctokitPullRequests against a GitHub Enterprise stand-in', () => {
  let github: FakeGitHubEnterprise;
  const warnings: string[] = [];
  const log = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message: string) => warnings.push(message),
    error: (message: string) => warnings.push(message),
  };
  // Retry-After and back-off seconds are 5 ms here, and writes are not spaced: nothing sleeps.
  const pullRequests = createOctokitPullRequests({
    retryAfterBaseValue: 5,
    spaceWrites: false,
    log,
  });

  const promotion = (overrides: Partial<PullRequestRequest> = {}): PullRequestRequest => ({
    repository: github.repository(OWNER, REPO),
    token: github.token,
    head: BRANCH,
    base: 'main',
    title: 'Promote apps/podinfo in staging to 6.5.0',
    body: 'Revision: 6.5.0\nFrom: dev\n\napps/podinfo/staging',
    ...overrides,
  });

  beforeAll(async () => {
    github = await startFakeGitHubEnterprise({ readOnlyTokens: [READ_ONLY_TOKEN] });
    await github.createRepository(OWNER, REPO, {
      'apps/podinfo/staging.yaml': 'version: 6.4.0 # {"$promotion": "apps:podinfo:staging"}\n',
    });
    await github.commitOnBranch(OWNER, REPO, BRANCH, {
      'apps/podinfo/staging.yaml': 'version: 6.5.0 # {"$promotion": "apps:podinfo:staging"}\n',
    });
  });

  afterAll(async () => {
    await github?.close();
  });

  beforeEach(() => {
    github.standIn.reset();
    warnings.length = 0;
  });

  it('opens a pull request with GitHub shapes when none is open', async () => {
    // Prepare
    const request = promotion();

    // Act
    const result = await pullRequests.upsert(request);

    // Assess
    expect(result).toEqual({
      action: 'opened',
      number: 1,
      url: `${github.url}/${OWNER}/${REPO}/pull/1`,
    });
    const [pull, ...others] = github.standIn.pullRequests(OWNER, REPO);
    expect(others).toHaveLength(0);
    expect(pull).toMatchObject({
      state: 'open',
      head: BRANCH,
      base: 'main',
      title: request.title,
      body: request.body,
      headSha: await github.branchHead(OWNER, REPO, BRANCH),
    });
    expect(github.standIn.requestCounts()).toEqual({
      [`GET ${PULLS}`]: 1,
      [`POST ${PULLS}`]: 1,
    });
    const [list] = github.standIn.requests;
    expect(list?.query).toMatchObject({ state: 'open', head: `${OWNER}:${BRANCH}` });
    expect(list?.userAgent).toMatch(/^pipeline-promoter /);

    const response = await fetch(`${github.apiBaseUrl}/repos/${OWNER}/${REPO}/pulls/1`, {
      headers: { authorization: `Bearer ${github.token}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-ratelimit-remaining')).toMatch(/^\d+$/);
    expect(await response.json()).toMatchObject({
      number: 1,
      node_id: expect.any(String),
      state: 'open',
      title: request.title,
      body: request.body,
      html_url: result.url,
      url: `${github.apiBaseUrl}/repos/${OWNER}/${REPO}/pulls/1`,
      head: {
        ref: BRANCH,
        label: `${OWNER}:${BRANCH}`,
        sha: expect.stringMatching(/^[0-9a-f]{40}$/),
        repo: { full_name: `${OWNER}/${REPO}` },
      },
      base: { ref: 'main', label: `${OWNER}:main`, repo: { default_branch: 'main' } },
      user: { login: 'promoter-bot' },
      draft: false,
      merged: false,
    });
  });

  it('updates the same pull request on the next promotion', async () => {
    // Prepare
    const first = await pullRequests.upsert(promotion());

    // Act
    const second = await pullRequests.upsert(
      promotion({ title: 'Promote apps/podinfo in staging to 6.6.0', body: 'Revision: 6.6.0' }),
    );

    // Assess
    expect(second).toEqual({ action: 'updated', number: first.number, url: first.url });
    expect(github.standIn.pullRequests(OWNER, REPO)).toEqual([
      expect.objectContaining({
        number: first.number,
        title: 'Promote apps/podinfo in staging to 6.6.0',
        body: 'Revision: 6.6.0',
      }),
    ]);
    expect(github.standIn.requestCount({ method: 'POST', route: PULLS })).toBe(1);
    expect(github.standIn.requestCount({ method: 'PATCH', route: PULL })).toBe(1);
  });

  it('does not write when the open pull request already says the same', async () => {
    // Prepare
    await pullRequests.upsert(promotion());

    // Act
    const again = await pullRequests.upsert(promotion());

    // Assess
    expect(again.action).toBe('updated');
    expect(github.standIn.requestCount({ method: 'PATCH' })).toBe(0);
    expect(github.standIn.pullRequests(OWNER, REPO)).toHaveLength(1);
  });

  it('retries a 500 on create and opens one pull request', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'POST',
      route: PULLS,
      fault: { kind: 'status', status: 500 },
    });

    // Act
    const result = await pullRequests.upsert(promotion());

    // Assess
    expect(result.action).toBe('opened');
    expect(github.standIn.pullRequests(OWNER, REPO)).toHaveLength(1);
    expect(github.standIn.requestCount({ method: 'POST', route: PULLS })).toBe(2);
    expect(github.standIn.pendingFaults()).toBe(0);
  });

  it('retries a reset connection and a 502 on the lookup', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'connection-reset' },
    });
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'status', status: 502 },
    });

    // Act
    const result = await pullRequests.upsert(promotion());

    // Assess
    expect(result.action).toBe('opened');
    expect(github.standIn.requestCount({ method: 'GET', route: PULLS })).toBe(3);
    expect(github.standIn.pullRequests(OWNER, REPO)).toHaveLength(1);
  });

  it('keeps one pull request when a create landed but its answer was a 502', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'POST',
      route: PULLS,
      fault: { kind: 'status', status: 502, after: true },
    });

    // Act
    const result = await pullRequests.upsert(promotion());

    // Assess
    expect(result).toMatchObject({ action: 'updated', number: 1 });
    expect(github.standIn.pullRequests(OWNER, REPO)).toHaveLength(1);
    expect(github.standIn.requestCount({ method: 'POST', route: PULLS })).toBe(2);
  });

  it('waits out a 429 with Retry-After on create and opens one pull request', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'POST',
      route: PULLS,
      fault: { kind: 'secondary-rate-limit', status: 429, retryAfterSeconds: 1 },
    });
    const started = Date.now();

    // Act
    const result = await pullRequests.upsert(promotion());

    // Assess
    expect(result.action).toBe('opened');
    expect(github.standIn.pullRequests(OWNER, REPO)).toHaveLength(1);
    expect(github.standIn.requestCount({ method: 'POST', route: PULLS })).toBe(2);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(warnings).toEqual([expect.stringMatching(/secondary rate limit .* retrying after 1 s/)]);
  });

  it('waits out a primary rate limit (403, remaining 0) on the lookup', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'primary-rate-limit', resetInSeconds: 1 },
    });

    // Act
    const result = await pullRequests.upsert(promotion());

    // Assess
    expect(result.action).toBe('opened');
    expect(github.standIn.requestCount({ method: 'GET', route: PULLS })).toBe(2);
  });

  it('gives a rate limit longer than it waits back to the queue, retryable', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'secondary-rate-limit', retryAfterSeconds: 600 },
    });

    // Act
    const error = await caught(pullRequests.upsert(promotion()));

    // Assess
    expect(error).toMatchObject({
      code: 'GITHUB_UNAVAILABLE',
      retryable: true,
      data: {
        status: 403,
        rateLimit: 'secondary',
        retryAfterSeconds: 600,
        repository: `${OWNER}/${REPO}`,
      },
    });
    expect(github.standIn.requestCount()).toBe(1);
    expect(warnings).toEqual([expect.stringContaining('giving up (retry after 600 s)')]);
  });

  it('hands a secondary limit without Retry-After to the queue, which waits a minute', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'status', status: 403, body: { message: SECONDARY_MESSAGE } },
    });

    // Act
    const error = await caught(pullRequests.upsert(promotion()));

    // Assess
    expect(error).toMatchObject({
      code: 'GITHUB_UNAVAILABLE',
      retryable: true,
      data: { status: 403, rateLimit: 'secondary' },
    });
    expect(error.data.retryAfterSeconds).toBeUndefined();
    // Not waited out in process: GitHub's minute is longer than maxRetryAfterSeconds (20).
    expect(github.standIn.requestCount()).toBe(1);
    expect(warnings).toEqual([expect.stringContaining('giving up (retry after 60 s)')]);
    expect(retryDelaySeconds(1, error)).toBe(60);
  });

  it('waits the minute of a secondary limit without Retry-After in process when allowed to', async () => {
    // Prepare
    const patient = createOctokitPullRequests({
      retryAfterBaseValue: 1,
      maxRetryAfterSeconds: 60,
      spaceWrites: false,
      log,
    });
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'status', status: 403, body: { message: SECONDARY_MESSAGE } },
    });
    const started = Date.now();

    // Act
    const result = await patient.upsert(promotion());

    // Assess
    expect(result.action).toBe('opened');
    expect(github.standIn.requestCount({ method: 'GET', route: PULLS })).toBe(2);
    expect(warnings).toEqual([
      expect.stringMatching(/secondary rate limit .* retrying after 60 s/),
    ]);
    // 60 "seconds" of 1 ms each.
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
  });

  it('calls a 429 with Retry-After and no exhausted quota a secondary limit', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'POST',
      route: PULLS,
      fault: { kind: 'status', status: 429, headers: { 'retry-after': '45' } },
    });

    // Act
    const error = await caught(pullRequests.upsert(promotion()));

    // Assess
    expect(error).toMatchObject({
      code: 'GITHUB_UNAVAILABLE',
      retryable: true,
      data: { status: 429, rateLimit: 'secondary', retryAfterSeconds: 45 },
    });
    expect(github.standIn.requestCount({ method: 'POST', route: PULLS })).toBe(1);
    expect(retryDelaySeconds(1, error)).toBe(45);
  });

  it('gives a primary rate limit with a far reset to the queue, with the time to the reset', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'primary-rate-limit', resetInSeconds: 600 },
    });

    // Act
    const error = await caught(pullRequests.upsert(promotion()));

    // Assess
    expect(error).toMatchObject({
      code: 'GITHUB_UNAVAILABLE',
      retryable: true,
      data: { status: 403, rateLimit: 'primary' },
    });
    expect(error.data.retryAfterSeconds).toBeGreaterThanOrEqual(598);
    expect(error.data.retryAfterSeconds).toBeLessThanOrEqual(601);
    expect(github.standIn.requestCount()).toBe(1);
    expect(warnings).toEqual([expect.stringMatching(/primary rate limit .* giving up/)]);
  });

  it('keeps the Retry-After of a 503 for the queue, without calling it a rate limit', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      times: 10,
      fault: { kind: 'status', status: 503, headers: { 'retry-after': '120' } },
    });

    // Act
    const error = await caught(pullRequests.upsert(promotion()));

    // Assess
    expect(error).toMatchObject({
      code: 'GITHUB_UNAVAILABLE',
      retryable: true,
      data: { status: 503, retryAfterSeconds: 120 },
    });
    expect(error.data.rateLimit).toBeUndefined();
  });

  it('finds and updates the pull request when create answers 422 already exists', async () => {
    // Prepare: another worker opened it after this one's lookup (which sees an empty list).
    const other = github.standIn.seedPullRequest(OWNER, REPO, {
      head: BRANCH,
      base: 'main',
      title: 'Promote apps/podinfo in staging to 6.4.1',
    });
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      fault: { kind: 'status', status: 200, body: [] },
    });

    // Act
    const result = await pullRequests.upsert(promotion());

    // Assess
    expect(result).toEqual({
      action: 'updated',
      number: other.number,
      url: `${github.url}/${OWNER}/${REPO}/pull/${other.number}`,
    });
    expect(github.standIn.requests.map((request) => `${request.method} ${request.status}`)).toEqual(
      ['GET 200', 'POST 422', 'GET 200', 'PATCH 200'],
    );
    expect(github.standIn.pullRequests(OWNER, REPO)).toEqual([
      expect.objectContaining({ number: other.number, title: promotion().title }),
    ]);
  });

  it('fails permanently on a bad token, without retrying or leaking it', async () => {
    // Prepare
    const token = 'ghp_notAValidToken0000000000000000000000';

    // Act
    const error = await caught(pullRequests.upsert(promotion({ token })));

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_AUTH_FAILED', retryable: false });
    expect(error.message).toContain(`${OWNER}/${REPO}`);
    expect(error.message).toContain('Bad credentials');
    expect(inspect(error, { depth: 10 })).not.toContain(token);
    expect(JSON.stringify(error.data)).not.toContain(token);
    expect(github.standIn.requestCount()).toBe(1);
  });

  it('fails permanently when a read-only token tries to open a pull request', async () => {
    // Act
    const error = await caught(pullRequests.upsert(promotion({ token: READ_ONLY_TOKEN })));

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_AUTH_FAILED', retryable: false });
    expect(github.standIn.requestCount({ method: 'POST' })).toBe(1);
  });

  it('fails permanently when the repository does not exist', async () => {
    // Act
    const error = await caught(
      pullRequests.upsert(promotion({ repository: github.repository(OWNER, 'missing') })),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_NOT_FOUND', retryable: false });
    expect(error.message).toContain(`${OWNER}/missing`);
    expect(github.standIn.requestCount()).toBe(1);
  });

  it('fails permanently when GitHub rejects the pull request (head branch missing)', async () => {
    // Act
    const error = await caught(pullRequests.upsert(promotion({ head: 'no-such-branch' })));

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_REJECTED', retryable: false });
    expect(error.message).toContain('Validation Failed');
  });

  it('gives up on persistent 5xx after bounded retries, retryable', async () => {
    // Prepare
    github.standIn.injectFault({
      method: 'GET',
      route: PULLS,
      times: 10,
      fault: { kind: 'status', status: 503 },
    });

    // Act
    const error = await caught(pullRequests.upsert(promotion()));

    // Assess
    expect(error).toMatchObject({
      code: 'GITHUB_UNAVAILABLE',
      retryable: true,
      data: { status: 503 },
    });
    expect(github.standIn.requestCount()).toBe(4);
  });

  it('refuses plain http to a host that is not loopback', async () => {
    // Prepare
    const repository = {
      ...github.repository(OWNER, REPO),
      apiBaseUrl: 'http://github.example.com/api/v3',
    };

    // Act
    const error = await caught(pullRequests.upsert(promotion({ repository })));

    // Assess
    expect(error).toMatchObject({ code: 'INVALID_CONFIG', retryable: false });
    expect(github.standIn.requestCount()).toBe(0);
  });
});
