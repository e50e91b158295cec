import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../functions/core/logger.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import type { PullRequests } from '../../functions/core/ports.ts';
import { type PromotionDependencies, runPromotion } from '../../functions/core/promotion.ts';
import { recordPullRequestOutcome } from '../../functions/core/promotion-lifecycle.ts';
import { signBody } from '../../functions/core/signature.ts';
import { handleWebhookRequest } from '../../functions/core/webhook.ts';
import { FIXTURE_HMAC_KEY, freshEvent } from '../support/fixtures.ts';
import { FIXTURE_SECRETS, memorySecrets, webhookHarness } from '../support/webhook-harness.ts';

/**
 * A scripted history through the real core (the webhook request function, the promotion, the
 * lifecycle) on serve's state store: dev deploys 6.5.0, its PR into staging is merged and
 * staging deploys it, prod's PR is merged, prod fails once and then deploys it. Every figure
 * below is worked out by hand from the script's times.
 */
const T0 = Date.parse('2026-11-20T16:00:00Z');
const at = (minutes: number): Date => new Date(T0 + minutes * 60_000);
const MINUTE = 60_000;

const NAMESPACE = { dev: 'podinfo-dev', staging: 'podinfo-qa', prod: 'podinfo-prod' } as const;
const PODINFO = { namespace: 'flux-system', name: 'podinfo' };

const scripted = () => {
  const harness = webhookHarness();
  let now = at(0);
  let pullNumber = 6;
  const pullRequests: PullRequests = {
    enableAutoMerge: async () => 'unavailable',
    mergeWhenReady: async () => ({ status: 'pending', reason: 'not under test' }),
    upsert: async () => {
      pullNumber += 1;
      return {
        action: 'opened',
        number: pullNumber,
        url: `https://github.com/example-org/fleet/pull/${pullNumber}`,
      };
    },
    get: async () => 'not-modified',
    close: async () => {},
  };
  const clock = { now: () => now };
  const promotion: PromotionDependencies = {
    pipelines: harness.deps.pipelines,
    secrets: memorySecrets({
      ...FIXTURE_SECRETS,
      'flux-system/prod-promotion-credentials': { token: 'gh-token' },
    }),
    state: harness.state,
    repository: {
      preparePromotionBranch: async () => ({
        status: 'pushed',
        baseCommit: 'b',
        commit: 'c',
        changedFiles: ['clusters/staging/podinfo/release.yaml'],
      }),
    },
    pullRequests,
    clock,
    metrics: harness.metrics,
    logger: silentLogger,
  };
  const lifecycle = { state: harness.state, clock, metrics: harness.metrics, logger: silentLogger };
  const setNow = (minutes: number) => {
    now = at(minutes);
    harness.now = now;
  };
  /** A Flux event from `environment` at minute `minutes`, through the webhook request function. */
  const flux = async (
    environment: keyof typeof NAMESPACE,
    minutes: number,
    fixture = 'helmrelease-upgrade-succeeded.json',
    namespace: string = NAMESPACE[environment],
  ) => {
    setNow(minutes);
    const body = freshEvent(fixture, at(minutes))
      .replace('"namespace":"podinfo-dev"', `"namespace":"${namespace}"`)
      .replace('"revision":"6.5.1"', '"revision":"6.5.0"');
    return handleWebhookRequest(
      {
        method: 'POST',
        path: `/promotion/flux-system/podinfo/${environment}`,
        headers: { 'x-signature': signBody(body, FIXTURE_HMAC_KEY) },
        body: Buffer.from(body),
      },
      harness.deps,
    );
  };
  const promoteQueued = async (minutes: number) => {
    setNow(minutes);
    const job = harness.jobs.shift();
    if (job === undefined) throw new Error('no job queued');
    return runPromotion(job, promotion);
  };
  const merge = async (environment: string, number: number, minutes: number) => {
    setNow(minutes);
    const pipeline = (await harness.deps.pipelines.get({
      namespace: 'flux-system',
      name: 'podinfo',
    })) as Pipeline;
    return recordPullRequestOutcome(
      pipeline,
      environment,
      {
        number,
        state: 'merged',
        title: `Promote flux-system/podinfo in ${environment} to 6.5.0`,
        headRef: `promotion-flux-system-podinfo-${environment}`,
        mergedAt: at(minutes).toISOString(),
        mergeCommit: `merge-${number}`,
      },
      lifecycle,
    );
  };
  const figure = (name: string, environment: string) =>
    harness.metrics.snapshot()[
      `${name}{Application=podinfo,Environment=${environment},Pipeline=flux-system/podinfo}`
    ];
  return { harness, flux, promoteQueued, merge, figure };
};

describe('the promotion lifecycle and DORA figures of a scripted history', () => {
  it('follows 6.5.0 from dev to prod with every time in between', async () => {
    // Prepare
    const { harness, flux, promoteQueued, merge, figure } = scripted();

    // Act
    const dev = await flux('dev', 0);
    const intoStaging = await promoteQueued(1);
    const stagingMerged = await merge('staging', 7, 10);
    // staging has two targets: deployed, and promoted on, once both run 6.5.0.
    const stagingQa = await flux('staging', 14);
    const stagingAfterQa = await harness.state.getPromotion(PODINFO, 'staging');
    const staging = await flux('staging', 15, undefined, 'podinfo-perf');
    const intoProd = await promoteQueued(16);
    const prodMerged = await merge('prod', 8, 20);
    const prodFailed = await flux('prod', 22, 'helmrelease-upgrade-failed.json');
    const prod = await flux('prod', 52);

    // Assess: the answers and the outcomes along the way.
    expect([dev.status, staging.status, prodFailed.status, prod.status]).toEqual([
      202, 202, 200, 200,
    ]);
    expect(stagingQa.body).toEqual({
      promoted: false,
      waiting: { targets: { ready: 1, needed: 2 } },
    });
    expect(stagingAfterQa?.state).toBe('merged');
    expect(staging.body).toMatchObject({ promoted: true });
    expect([intoStaging.status, intoProd.status]).toEqual(['opened', 'opened']);
    expect([stagingMerged.status, prodMerged.status]).toEqual(['merged', 'merged']);

    // Assess: staging's promotion, from dev's deployment (0) to staging's (15).
    const pipeline = { namespace: 'flux-system', name: 'podinfo' };
    expect(await harness.state.getPromotion(pipeline, 'staging')).toMatchObject({
      state: 'deployed',
      revision: '6.5.0',
      leadTimeMs: 15 * MINUTE,
      pullRequest: { number: 7, state: 'merged', mergeCommit: 'merge-7' },
      timeline: {
        sourceDeployedAt: at(0).toISOString(),
        releaseStartedAt: at(0).toISOString(),
        pullRequestAt: at(1).toISOString(),
        mergedAt: at(10).toISOString(),
        deployedAt: at(15).toISOString(),
      },
    });
    expect(figure('PromotionLeadTime', 'staging')).toMatchObject({ sum: 15 * MINUTE, count: 1 });
    expect(figure('PullRequestMergeTime', 'staging')).toMatchObject({ sum: 9 * MINUTE, count: 1 });
    expect(figure('MergeToDeployTime', 'staging')).toMatchObject({ sum: 5 * MINUTE, count: 1 });

    // Assess: prod's, from staging's deployment (15) to prod's (52), its release from 0.
    expect(await harness.state.getPromotion(pipeline, 'prod')).toMatchObject({
      state: 'deployed',
      leadTimeMs: 37 * MINUTE,
      timeline: { releaseStartedAt: at(0).toISOString(), deployedAt: at(52).toISOString() },
    });
    expect(figure('PromotionLeadTime', 'prod')).toMatchObject({ sum: 37 * MINUTE, count: 1 });
    expect(figure('PullRequestMergeTime', 'prod')).toMatchObject({ sum: 4 * MINUTE, count: 1 });
    expect(figure('MergeToDeployTime', 'prod')).toMatchObject({ sum: 32 * MINUTE, count: 1 });
    expect(figure('ReleaseLeadTime', 'prod')).toMatchObject({ sum: 52 * MINUTE, count: 1 });
    expect(figure('ReleaseLeadTime', 'staging')).toBeUndefined();

    // Assess: DORA: a deployment per target and revision, one failure, restored in 30.
    expect(harness.metrics.sum('Deployments')).toBe(4);
    expect(harness.metrics.sum('DeploymentFailures')).toBe(1);
    expect(figure('TimeToRestore', 'prod')).toMatchObject({ sum: 30 * MINUTE, count: 1 });
  });

  it('a redeployment of the deployed revision and a merge report that comes late change nothing', async () => {
    // Prepare
    const { harness, flux, promoteQueued, merge } = scripted();
    await flux('dev', 0);
    await promoteQueued(1);
    await flux('staging', 12);
    await flux('staging', 12, undefined, 'podinfo-perf');
    const pipeline = { namespace: 'flux-system', name: 'podinfo' };
    const deployed = await harness.state.getPromotion(pipeline, 'staging');

    // Act: the lost merge webhook arrives after the deployment; staging deploys 6.5.0 again.
    const late = await merge('staging', 7, 13);
    await flux('staging', 14);

    // Assess: still deployed at minute 12, the PR now known merged; one lead time sample.
    expect(late.status).toBe('merged');
    expect(await harness.state.getPromotion(pipeline, 'staging')).toMatchObject({
      state: 'deployed',
      leadTimeMs: deployed?.leadTimeMs,
      pullRequest: { state: 'merged' },
      timeline: { deployedAt: at(12).toISOString(), mergedAt: at(13).toISOString() },
    });
    expect(
      harness.metrics.snapshot()[
        'PromotionLeadTime{Application=podinfo,Environment=staging,Pipeline=flux-system/podinfo}'
      ]?.count,
    ).toBe(1);
  });
});
