import { describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type {
  ConfigRepository,
  PromotionBranchRequest,
  PromotionBranchResult,
  PullRequestRequest,
  PullRequests,
} from '../../functions/core/ports.ts';
import {
  promotionBody,
  promotionTitle,
  recordDeadLetter,
  runPromotion,
} from '../../functions/core/promotion.ts';
import { type PromotionJob, promotionJobId } from '../../functions/core/promotion-job.ts';
import { readFixture } from '../support/fixtures.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';
import { memorySecrets } from '../support/webhook-harness.ts';

/** The promotion core alone, on twins of its ports: what it decides and records. */
const [podinfo] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines as [
  Pipeline,
];

const job = (
  revision: string,
  timestamp: string,
  message = 'Helm upgrade succeeded',
): PromotionJob => ({
  version: 1,
  id: promotionJobId(podinfo, 'prod', revision, timestamp),
  pipeline: { namespace: 'flux-system', name: 'podinfo' },
  from: 'staging',
  to: 'prod',
  revision,
  event: {
    timestamp,
    reason: 'UpgradeSucceeded',
    message,
    involvedObject: {
      kind: 'HelmRelease',
      namespace: 'podinfo-qa',
      name: 'podinfo',
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
    },
  },
  receivedAt: timestamp,
});

const setUp = (
  repositoryResult: (
    request: PromotionBranchRequest,
  ) => Promise<PromotionBranchResult> = async () => ({
    status: 'pushed',
    baseCommit: 'b',
    commit: 'c',
    changedFiles: ['a.yaml'],
  }),
) => {
  const state = inMemoryStateStore();
  const metrics = new MemoryMetricsSink();
  const branches: PromotionBranchRequest[] = [];
  const pulls: PullRequestRequest[] = [];
  const closed: { number: number; comment: string }[] = [];
  const repository: ConfigRepository = {
    preparePromotionBranch: async (request) => {
      branches.push(request);
      return repositoryResult(request);
    },
  };
  const pullRequests: PullRequests = {
    get: async () => 'not-modified',
    enableAutoMerge: async () => 'unavailable',
    mergeWhenReady: async () => ({ status: 'pending', reason: 'not under test' }),
    close: async ({ number }, comment) => {
      closed.push({ number, comment });
    },
    upsert: async (request) => {
      pulls.push(request);
      return {
        action: pulls.length === 1 ? 'opened' : 'updated',
        number: 7,
        url: 'https://github.com/example-org/fleet-prod/pull/7',
      };
    },
  };
  const pipelines = new Map([['flux-system/podinfo', podinfo]]);
  const deps = {
    pipelines: {
      get: async (ref: { namespace: string; name: string }) =>
        pipelines.get(`${ref.namespace}/${ref.name}`),
    },
    secrets: memorySecrets({
      'flux-system/promotion-credentials': { 'hmac-key': 'hmac-key-for-tests', token: 'ghp_token' },
      'flux-system/prod-promotion-credentials': { token: 'ghp_prod' },
    }),
    state,
    repository,
    pullRequests,
    clock: { now: () => new Date('2026-11-20T16:02:01Z') },
    metrics,
    logger: silentLogger,
  };
  return { deps, state, metrics, branches, pulls, closed, pipelines };
};

describe('promotionTitle and promotionBody (DESIGN.md section 7)', () => {
  it('title and body carry the revision, source env, event, changed files and correlation line', () => {
    const promoted = job('6.5.0', '2026-11-20T16:01:01Z', 'line one\nline | two with `code`');
    expect(promotionTitle(promoted)).toBe('Promote flux-system/podinfo in prod to 6.5.0');
    expect(promotionBody(promoted, ['clusters/prod/podinfo/release.yaml'])).toBe(
      [
        'Promotes `flux-system/podinfo` into **prod** at revision `6.5.0`, deployed in **staging**.',
        '',
        '| | |',
        '|---|---|',
        '| Revision | `6.5.0` |',
        '| Source environment | staging |',
        '| Event | HelmRelease `podinfo-qa/podinfo`: UpgradeSucceeded at 2026-11-20T16:01:01Z |',
        "| Message | `line one line \\| two with 'code'` |",
        '',
        'Changed files:',
        '- `clusters/prod/podinfo/release.yaml`',
        '',
        'pipeline-promoter: flux-system/podinfo/prod',
      ].join('\n'),
    );
  });
});

describe('runPromotion', () => {
  it('opens the PR with the env override credentials, on the right branch, and records it', async () => {
    // Prepare
    const { deps, state, metrics, branches, pulls } = setUp();

    // Act
    const outcome = await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), deps);

    // Assess
    expect(outcome).toMatchObject({ status: 'opened', pullRequest: { number: 7 } });
    expect(branches[0]).toMatchObject({
      branch: 'promotion-flux-system-podinfo-prod',
      baseBranch: 'main',
      credentials: { password: 'ghp_prod' },
      repository: { repo: 'fleet-prod' },
    });
    expect(pulls[0]).toMatchObject({
      head: 'promotion-flux-system-podinfo-prod',
      base: 'main',
      token: 'ghp_prod',
      title: 'Promote flux-system/podinfo in prod to 6.5.0',
    });
    expect(await state.getPromotion(podinfo, 'prod')).toMatchObject({
      state: 'opened',
      revision: '6.5.0',
      from: 'staging',
      eventTimestamp: '2026-11-20T16:01:01.000Z',
    });
    expect(
      metrics.snapshot()[
        'PromotionLatency{Application=podinfo,Environment=prod,Pipeline=flux-system/podinfo}'
      ],
    ).toEqual({ sum: 60_000, count: 1, unit: 'Milliseconds' });
  });

  it('records latency once per revision: a redelivered job adds no sample, a new revision does', async () => {
    const { deps, metrics } = setUp();
    await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), deps);
    await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), deps);
    expect(metrics.sum('PromotionsUpdated')).toBe(1);
    expect(
      metrics.snapshot()[
        'PromotionLatency{Application=podinfo,Environment=prod,Pipeline=flux-system/podinfo}'
      ]?.count,
    ).toBe(1);
    await runPromotion(job('6.6.0', '2026-11-20T16:01:30Z'), deps);
    expect(
      metrics.snapshot()[
        'PromotionLatency{Application=podinfo,Environment=prod,Pipeline=flux-system/podinfo}'
      ]?.count,
    ).toBe(2);
  });

  it('a late event loses to a later one, even one that then failed: no git, no GitHub', async () => {
    // Prepare: B opened, then C (later) failed permanently.
    const { deps, state, branches } = setUp();
    await runPromotion(job('6.5.0', '2026-11-20T16:01:00Z'), deps);
    await state.putPromotion({
      pipeline: podinfo,
      environment: 'prod',
      revision: '6.7.0',
      state: 'failed',
      jobId: 'c',
      from: 'staging',
      eventTimestamp: '2026-11-20T16:01:40.000Z',
      updatedAt: '2026-11-20T16:01:41.000Z',
      failure: { code: 'NO_MARKER', message: 'no marker' },
    });

    // Act: A, older than both, arrives late.
    const outcome = await runPromotion(job('6.4.0', '2026-11-20T16:00:00Z'), deps);

    // Assess
    expect(outcome).toEqual({ status: 'superseded', by: '6.7.0' });
    expect(branches).toHaveLength(1);
  });

  it('no marker at all: failed permanently, recorded and counted; markers at the revision: up-to-date', async () => {
    const noMarker = setUp(async () => ({ status: 'unchanged', baseCommit: 'b', markedFiles: 0 }));
    const failed = await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), noMarker.deps);
    expect(failed).toEqual({
      status: 'failed',
      code: 'NO_MARKER',
      message:
        'no marker # {"$promotion": "flux-system:podinfo:prod"} in the *.yaml/*.yml files of https://github.com/example-org/fleet-prod.git branch main',
    });
    expect(await noMarker.state.getPromotion(podinfo, 'prod')).toMatchObject({
      state: 'failed',
      failure: { code: 'NO_MARKER' },
    });
    expect(noMarker.metrics.sum('PromotionsFailed')).toBe(1);

    const current = setUp(async () => ({ status: 'unchanged', baseCommit: 'b', markedFiles: 2 }));
    expect(await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), current.deps)).toEqual({
      status: 'up-to-date',
    });
    expect(current.pulls).toEqual([]);
    expect(current.metrics.sum('PromotionLatency')).toBe(0);
  });

  it('a transient failure is thrown for the queue to retry; the claim stays, as pushing', async () => {
    const { deps, state } = setUp(async () => {
      throw new PromoterError('GIT_UNAVAILABLE', 'git server unreachable', { retryable: true });
    });
    await expect(runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), deps)).rejects.toMatchObject({
      code: 'GIT_UNAVAILABLE',
    });
    expect(await state.getPromotion(podinfo, 'prod')).toMatchObject({
      revision: '6.5.0',
      state: 'pushing',
    });
  });

  it('claim before push: a newer job that pushed and then failed on GitHub blocks a late older one', async () => {
    // Prepare: 6.5.3 (newer) pushes its branch, then GitHub answers 502.
    const { deps, state, branches, pulls } = setUp();
    let githubDown = true;
    const upsert = deps.pullRequests.upsert;
    deps.pullRequests = {
      ...deps.pullRequests,
      upsert: async (request) => {
        if (githubDown) {
          throw new PromoterError('GITHUB_UNAVAILABLE', 'GitHub answered 502', { retryable: true });
        }
        return upsert(request);
      },
    };
    const newer = job('6.5.3', '2026-11-20T16:01:30Z');
    await expect(runPromotion(newer, deps)).rejects.toMatchObject({ code: 'GITHUB_UNAVAILABLE' });

    // Act: 6.5.2 (older event) arrives late, then GitHub is back and 6.5.3 is retried.
    const older = await runPromotion(job('6.5.2', '2026-11-20T16:01:00Z'), deps);
    githubDown = false;
    const retried = await runPromotion(newer, deps);

    // Assess: the older job pushed nothing and touched no PR; the PR describes 6.5.3.
    expect(older).toEqual({ status: 'superseded', by: '6.5.3' });
    expect(branches.map((branch) => branch.commit.message)).toEqual([
      'Promote flux-system/podinfo in prod to 6.5.3',
      'Promote flux-system/podinfo in prod to 6.5.3',
    ]);
    expect(pulls.map((pull) => pull.title)).toEqual([
      'Promote flux-system/podinfo in prod to 6.5.3',
    ]);
    expect(retried).toMatchObject({ status: 'opened' });
    expect(await state.getPromotion(podinfo, 'prod')).toMatchObject({
      revision: '6.5.3',
      state: 'opened',
      pullRequest: { number: 7 },
    });
  });

  it('the claim keeps the PR of the environment while the branch is pushed', async () => {
    // Prepare
    const { deps, state } = setUp();
    await runPromotion(job('6.5.0', '2026-11-20T16:01:00Z'), deps);
    let seen: unknown;
    deps.repository = {
      preparePromotionBranch: async () => {
        seen = await state.getPromotion(podinfo, 'prod');
        return { status: 'pushed', baseCommit: 'b', commit: 'd', changedFiles: ['a.yaml'] };
      },
    };

    // Act
    await runPromotion(job('6.6.0', '2026-11-20T16:01:30Z'), deps);

    // Assess
    expect(seen).toMatchObject({
      revision: '6.6.0',
      state: 'pushing',
      pullRequest: { number: 7, url: 'https://github.com/example-org/fleet-prod/pull/7' },
    });
  });

  it('a dead letter is recorded with its last error, counted, and loses to a later event', async () => {
    // Prepare
    const { deps, state, metrics } = setUp();
    const failure = new PromoterError('GITHUB_UNAVAILABLE', 'GitHub answered 502 five times', {
      retryable: true,
    });

    // Act
    await recordDeadLetter(job('6.5.0', '2026-11-20T16:01:00Z'), failure, deps);
    const first = await state.getPromotion(podinfo, 'prod');
    await runPromotion(job('6.6.0', '2026-11-20T16:01:30Z'), deps);
    await recordDeadLetter(job('6.5.0', '2026-11-20T16:01:00Z'), failure, deps);

    // Assess
    expect(first).toMatchObject({
      revision: '6.5.0',
      state: 'dead-lettered',
      failure: { code: 'GITHUB_UNAVAILABLE', message: 'GitHub answered 502 five times' },
    });
    expect(await state.getPromotion(podinfo, 'prod')).toMatchObject({
      revision: '6.6.0',
      state: 'opened',
    });
    expect(metrics.sum('PromotionsDeadLettered')).toBe(2);
  });

  it('a stored definition that no longer validates fails permanently instead of looping', async () => {
    const { deps, state } = setUp();
    const broken = {
      ...deps,
      pipelines: {
        get: async () => {
          throw new PromoterError(
            'INVALID_PIPELINE',
            'stored pipeline flux-system/podinfo is invalid',
          );
        },
      },
    };
    expect(await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), broken)).toMatchObject({
      status: 'failed',
      code: 'INVALID_PIPELINE',
    });
    expect(await state.getPromotion(podinfo, 'prod')).toMatchObject({ state: 'failed' });
  });

  it('a secret without a token fails permanently, naming the secret and the key', async () => {
    const { deps } = setUp();
    const noToken = {
      ...deps,
      secrets: memorySecrets({
        'flux-system/prod-promotion-credentials': { 'hmac-key': 'hmac-key-for-tests' },
      }),
    };
    expect(await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), noToken)).toEqual({
      status: 'failed',
      code: 'INVALID_SECRET',
      message:
        'secret flux-system/prod-promotion-credentials has no token: add the GitHub token under the key "token"',
    });
  });

  it('a deleted pipeline or environment drops the job', async () => {
    const { deps, pipelines, metrics } = setUp();
    pipelines.set('flux-system/podinfo', {
      ...podinfo,
      environments: podinfo.environments.slice(0, 2),
    });
    expect(await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), deps)).toEqual({
      status: 'dropped',
      reason: 'environment-removed',
    });
    pipelines.clear();
    expect(await runPromotion(job('6.5.0', '2026-11-20T16:01:01Z'), deps)).toEqual({
      status: 'dropped',
      reason: 'pipeline-deleted',
    });
    expect(metrics.sum('PromotionsDropped')).toBe(2);
  });

  it("closes the env's stale PR with a comment when the base already holds a newer revision", async () => {
    // Prepare: 6.5.0's PR is open; 6.6.0 reached the base another way.
    let unchanged = false;
    const { deps, state, closed, metrics } = setUp(async () =>
      unchanged
        ? { status: 'unchanged', baseCommit: 'b', markedFiles: 1 }
        : { status: 'pushed', baseCommit: 'b', commit: 'c', changedFiles: ['a.yaml'] },
    );
    await runPromotion(job('6.5.0', '2026-11-20T16:01:00Z'), deps);
    unchanged = true;

    // Act
    const outcome = await runPromotion(job('6.6.0', '2026-11-20T16:01:30Z'), deps);

    // Assess
    expect(outcome).toEqual({
      status: 'up-to-date',
      closedPullRequest: { number: 7, url: 'https://github.com/example-org/fleet-prod/pull/7' },
    });
    expect(closed).toEqual([
      {
        number: 7,
        comment: expect.stringContaining(
          '`main` already holds flux-system/podinfo in prod at `6.6.0`, so merging this pull request would roll prod back',
        ),
      },
    ]);
    expect(await state.getPromotion(podinfo, 'prod')).toMatchObject({
      revision: '6.6.0',
      state: 'up-to-date',
      pullRequest: { number: 7, state: 'closed' },
    });
    expect(metrics.sum('StalePullRequestsClosed')).toBe(1);
  });

  it('a job of a revision already merged, deployed or closed by a person is settled, not redone', async () => {
    // Prepare
    const { deps, state, branches } = setUp();
    await runPromotion(job('6.5.0', '2026-11-20T16:01:00Z'), deps);
    const record = await state.getPromotion(podinfo, 'prod');
    if (record === undefined) throw new Error('no record');
    await state.transitionPromotion(
      {
        ...record,
        state: 'closed',
        pullRequest: { ...(record.pullRequest ?? { number: 7, url: '' }), state: 'closed' },
      },
      { revision: '6.5.0', states: ['opened'] },
    );

    // Act: the same revision deployed again upstream, a later event.
    const outcome = await runPromotion(job('6.5.0', '2026-11-20T16:05:00Z'), deps);

    // Assess
    expect(outcome).toEqual({ status: 'settled', state: 'closed' });
    expect(branches).toHaveLength(1);
  });
});
