import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import {
  fleetTree,
  podinfoPipeline,
  promotionHarness,
  promotionJob,
} from '../support/promotion-harness.ts';

/**
 * The pull-request promotion end to end on its real adapters: the git adapter over smart HTTP to
 * `git http-backend`, Octokit to the GitHub stand-in, with the faults of issue 3.
 */
const OWNER = 'example-org';
let server: FakeGitHubEnterprise;
let repoCount = 0;

beforeAll(async () => {
  server = await startFakeGitHubEnterprise();
});
afterAll(async () => {
  await server?.close();
});

/** A fresh pair of repositories per test: the fixture pipeline's `fleet` and `fleet-prod`. */
const freshRepositories = async () => {
  repoCount += 1;
  const before = await fleetTree('before');
  const name = `podinfo${repoCount}`;
  const pipeline = podinfoPipeline(server, name);
  // Markers name the pipeline: rewrite the fixture's for this test's pipeline name.
  const files = Object.fromEntries(
    Object.entries(before).map(([path, text]) => [
      path,
      text.replaceAll('flux-system:podinfo:', `flux-system:${name}:`),
    ]),
  );
  const fleet = `fleet-${repoCount}`;
  const prod = `fleet-prod-${repoCount}`;
  const text = JSON.stringify(pipeline)
    .replaceAll(`/${OWNER}/fleet-prod.git`, `/${OWNER}/${prod}.git`)
    .replaceAll(`/${OWNER}/fleet.git`, `/${OWNER}/${fleet}.git`)
    .replaceAll('"repo":"fleet-prod"', `"repo":"${prod}"`)
    .replaceAll('"repo":"fleet"', `"repo":"${fleet}"`);
  const base = await server.createRepository(OWNER, prod, files);
  await server.createRepository(OWNER, fleet, files);
  return { pipeline: JSON.parse(text) as typeof pipeline, name, prod, fleet, base };
};

const expectedAfter = async (name: string) =>
  Object.fromEntries(
    Object.entries(await fleetTree('after')).map(([path, text]) => [
      path,
      text.replaceAll('flux-system:podinfo:', `flux-system:${name}:`),
    ]),
  );

describe('pull-request promotion against git http-backend and the GitHub stand-in', () => {
  beforeEach(() => {
    server.standIn.clearFaults();
  });

  it('opens one PR whose branch holds exactly the fixture after/ tree, one commit on base', async () => {
    // Prepare
    const { pipeline, name, prod, base } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    const branch = `promotion-flux-system-${name}-prod`;

    // Act
    const outcome = await harness.run(promotionJob(pipeline, 'staging', 'prod', '6.5.0'));

    // Assess
    expect(outcome).toMatchObject({
      status: 'opened',
      changedFiles: ['clusters/prod/podinfo/release.yaml', 'clusters/prod/podinfo/vars.yml'],
    });
    expect(await server.readBranchFiles(OWNER, prod, branch)).toEqual(await expectedAfter(name));
    expect(await server.git(OWNER, prod, ['rev-parse', `${branch}^`])).toBe(base);
    const pulls = server.standIn.pullRequests(OWNER, prod);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({
      state: 'open',
      title: `Promote flux-system/${name} in prod to 6.5.0`,
    });
    expect(pulls[0]?.body).toContain(`pipeline-promoter: flux-system/${name}/prod`);
    expect(pulls[0]?.body).toContain('clusters/prod/podinfo/vars.yml');
    const record = await harness.state.getPromotion(pipeline, 'prod');
    expect(record).toMatchObject({
      state: 'opened',
      revision: '6.5.0',
      pullRequest: { number: pulls[0]?.number },
    });
    expect(
      harness.metrics.sum('PromotionsOpened', { Environment: 'prod', Application: 'podinfo' }),
    ).toBe(1);
    expect(
      harness.metrics.snapshot()[
        `PromotionLatency{Application=podinfo,Environment=prod,Pipeline=flux-system/${name}}`
      ]?.count,
    ).toBe(1);
  });

  it('the same job twice gives one PR: the second run updates it, never opens a second', async () => {
    const { pipeline, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');
    await harness.run(job);
    const second = await harness.run(job);
    expect(second.status).toBe('updated');
    expect(server.standIn.pullRequests(OWNER, prod)).toHaveLength(1);
  });

  it('a newer revision then an older, late one: the PR keeps the newer', async () => {
    const { pipeline, name, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    const now = Date.now();
    await harness.run(promotionJob(pipeline, 'staging', 'prod', '6.6.0', new Date(now)));
    const late = await harness.run(
      promotionJob(pipeline, 'staging', 'prod', '6.5.0', new Date(now - 60_000)),
    );
    expect(late).toEqual({ status: 'superseded', by: '6.6.0' });
    const pulls = server.standIn.pullRequests(OWNER, prod);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]?.title).toBe(`Promote flux-system/${name} in prod to 6.6.0`);
    const files = await server.readBranchFiles(OWNER, prod, `promotion-flux-system-${name}-prod`);
    expect(files['clusters/prod/podinfo/vars.yml']).toContain('podinfoVersion: "6.6.0"');
  });

  it('a 500 and then a 429 with Retry-After on PR creation are retried: one PR', async () => {
    const { pipeline, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    server.standIn.injectFault({
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls',
      fault: { kind: 'status', status: 500 },
    });
    server.standIn.injectFault({
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls',
      fault: { kind: 'secondary-rate-limit', status: 429, retryAfterSeconds: 1 },
    });
    const outcome = await harness.run(promotionJob(pipeline, 'staging', 'prod', '6.5.0'));
    expect(outcome.status).toBe('opened');
    expect(server.standIn.pullRequests(OWNER, prod)).toHaveLength(1);
    expect(server.standIn.pendingFaults()).toBe(0);
  });

  it('422 "A pull request already exists": found and updated', async () => {
    const { pipeline, name, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    server.standIn.seedPullRequest(OWNER, prod, {
      head: `promotion-flux-system-${name}-prod`,
      base: 'main',
      title: 'old title',
      body: 'old',
    });
    server.standIn.injectFault({
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls',
      fault: { kind: 'status', status: 200, body: [] },
    });
    const outcome = await harness.run(promotionJob(pipeline, 'staging', 'prod', '6.5.0'));
    expect(outcome.status).toBe('updated');
    const pulls = server.standIn.pullRequests(OWNER, prod);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]?.title).toBe(`Promote flux-system/${name} in prod to 6.5.0`);
  });

  it('the base branch moving between fetch and push: retried on the new head', async () => {
    const { pipeline, name, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    let moved = '';
    server.beforeReceivePack = async (path) => {
      if (moved !== '' || !path.includes(prod)) return;
      moved = await server.commitOnBranch(OWNER, prod, 'main', {
        'README.md': 'moved under the push\n',
      });
    };
    try {
      const outcome = await harness.run(promotionJob(pipeline, 'staging', 'prod', '6.5.0'));
      expect(outcome.status).toBe('opened');
    } finally {
      server.beforeReceivePack = undefined;
    }
    const branch = `promotion-flux-system-${name}-prod`;
    expect(moved).not.toBe('');
    expect(await server.git(OWNER, prod, ['rev-parse', `${branch}^`])).toBe(moved);
    expect(await server.readBranchFiles(OWNER, prod, branch)).toEqual({
      ...(await expectedAfter(name)),
      'README.md': 'moved under the push\n',
    });
  });

  it('a bad token: failed permanently, recorded, not retried', async () => {
    const { pipeline, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline], 'ghp_not-a-valid-token');
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');
    await harness.queue.enqueue(job);
    await harness.queue.drain();
    expect(harness.outcomes).toEqual([
      { status: 'failed', code: 'GIT_AUTH_FAILED', message: expect.stringContaining(prod) },
    ]);
    expect(await harness.queue.list()).toEqual([]);
    expect(await harness.state.getPromotion(pipeline, 'prod')).toMatchObject({
      state: 'failed',
      failure: { code: 'GIT_AUTH_FAILED' },
    });
    expect(harness.metrics.sum('PromotionsFailed')).toBe(1);
    expect(JSON.stringify(harness.outcomes)).not.toContain('ghp_not-a-valid-token');
  });

  it('an environment the pipeline no longer has: the job is dropped', async () => {
    const { pipeline } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    const outcome = await harness.run(promotionJob(pipeline, 'dev', 'qa', '6.5.0'));
    expect(outcome).toEqual({ status: 'dropped', reason: 'environment-removed' });
  });

  it('no marker for the environment: a permanent failure naming the marker, repository and branch', async () => {
    const { pipeline, fleet } = await freshRepositories();
    const unmarked = { ...pipeline, name: 'unmarked' };
    const harness = await promotionHarness(server, [unmarked]);
    const outcome = await harness.run(promotionJob(unmarked, 'dev', 'staging', '6.5.0'));
    expect(outcome).toMatchObject({ status: 'failed', code: 'NO_MARKER' });
    expect(outcome.status === 'failed' && outcome.message).toBe(
      `no marker # {"$promotion": "flux-system:unmarked:staging"} in the *.yaml/*.yml files of ${server.url}/${OWNER}/${fleet}.git branch main`,
    );
  });

  it('markers already at the revision (the PR was merged): up-to-date, no new PR', async () => {
    const { pipeline, name, prod } = await freshRepositories();
    const harness = await promotionHarness(server, [pipeline]);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');
    await harness.run(job);
    const merged = await server.branchHead(OWNER, prod, `promotion-flux-system-${name}-prod`);
    await server.git(OWNER, prod, ['update-ref', 'refs/heads/main', merged as string]);
    server.standIn.setPullRequestState(OWNER, prod, 1, 'closed');
    const outcome = await harness.run(job);
    expect(outcome).toEqual({ status: 'up-to-date' });
    expect(
      server.standIn.pullRequests(OWNER, prod).filter((pull) => pull.state === 'open'),
    ).toHaveLength(0);
    expect(await harness.state.getPromotion(pipeline, 'prod')).toMatchObject({
      state: 'up-to-date',
      revision: '6.5.0',
    });
  });

  it('a deleted pipeline: the job is dropped and counted', async () => {
    const { pipeline } = await freshRepositories();
    const harness = await promotionHarness(server, []);
    expect(await harness.run(promotionJob(pipeline, 'staging', 'prod', '6.5.0'))).toEqual({
      status: 'dropped',
      reason: 'pipeline-deleted',
    });
    expect(harness.metrics.sum('PromotionsDropped')).toBe(1);
  });

  it('jobs for two environments and two pipelines at once: independent PRs', async () => {
    const first = await freshRepositories();
    const second = await freshRepositories();
    for (const { fleet, name } of [first, second]) {
      await server.commitOnBranch(OWNER, fleet, 'main', {
        'clusters/staging/podinfo/release.yaml': `version: 6.4.0 # {"$promotion": "flux-system:${name}:staging"}\n`,
      });
    }
    const harness = await promotionHarness(server, [first.pipeline, second.pipeline]);
    const jobs = [first, second].flatMap(({ pipeline }) => [
      promotionJob(pipeline, 'dev', 'staging', '6.5.0'),
      promotionJob(pipeline, 'staging', 'prod', '6.5.0'),
    ]);
    await Promise.all(jobs.map((job) => harness.queue.enqueue(job)));
    await harness.queue.drain();
    expect(harness.outcomes.map((outcome) => outcome.status)).toEqual([
      'opened',
      'opened',
      'opened',
      'opened',
    ]);
    for (const { fleet, prod, name } of [first, second]) {
      expect(server.standIn.pullRequests(OWNER, fleet).map((pull) => pull.title)).toEqual([
        `Promote flux-system/${name} in staging to 6.5.0`,
      ]);
      expect(server.standIn.pullRequests(OWNER, prod).map((pull) => pull.title)).toEqual([
        `Promote flux-system/${name} in prod to 6.5.0`,
      ]);
    }
  });
});
