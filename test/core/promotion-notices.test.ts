import { describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PromotionNotice, PromotionNotices } from '../../functions/core/ports.ts';
import { type PromotionDependencies, runPromotion } from '../../functions/core/promotion.ts';
import { recordTargetDeployment } from '../../functions/core/promotion-lifecycle.ts';
import { announce, stateChangeNotice } from '../../functions/core/promotion-notices.ts';
import { caught } from '../support/caught.ts';
import { readFixture } from '../support/fixtures.ts';
import { promotionJob } from '../support/promotion-harness.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';
import { FIXTURE_SECRETS, memorySecrets } from '../support/webhook-harness.ts';

/** The podinfo fixture with Weave's `strategy.notification: {}` for every promotion. */
const notificationPipeline = (): Pipeline => {
  const text = readFixture('pipelines/podinfo.yaml')
    .replace(
      /\n {10}pull-request:\n(?: {12}.*\n)+? {14}name: prod-promotion-credentials\n/,
      '\n          notification: {}\n',
    )
    .replace(
      /\n {6}pull-request:\n(?: {8}.*\n)+? {10}name: promotion-credentials\n/,
      '\n      notification: {}\n',
    );
  const [pipeline] = parsePipelineManifests(text).pipelines;
  if (pipeline === undefined) throw new Error('the notification pipeline did not parse');
  return pipeline;
};

/** The port's twin for one unit: keeps what it was given, fails as told. */
const recordingNotices = (): PromotionNotices & {
  sent: PromotionNotice[];
  failWith: PromoterError | undefined;
} => {
  const notices = {
    sent: [] as PromotionNotice[],
    failWith: undefined as PromoterError | undefined,
    publish: async (notice: PromotionNotice) => {
      if (notices.failWith !== undefined && notice.type === 'Promotion') throw notices.failWith;
      notices.sent.push(notice);
    },
  };
  return notices;
};

const NO_GIT = {
  preparePromotionBranch: async () => {
    throw new Error('the notification strategy does no git');
  },
};
const unused = async (): Promise<never> => {
  throw new Error('the notification strategy opens no pull request');
};

const setUp = (notices: PromotionNotices | null = recordingNotices()) => {
  const pipeline = notificationPipeline();
  const state = inMemoryStateStore();
  const metrics = new MemoryMetricsSink();
  const deps: PromotionDependencies = {
    pipelines: { get: async () => pipeline },
    secrets: memorySecrets(FIXTURE_SECRETS),
    state,
    repository: NO_GIT,
    pullRequests: {
      upsert: unused,
      get: unused,
      close: unused,
      enableAutoMerge: unused,
      mergeWhenReady: unused,
    },
    clock: { now: () => new Date() },
    metrics,
    logger: silentLogger,
    ...(notices === null ? {} : { notices }),
  };
  return { pipeline, state, metrics, deps };
};

describe('the notification strategy', () => {
  it('hands the promotion over as a Promotion notice with Weave’s fields, and records it notified', async () => {
    // Prepare
    const notices = recordingNotices();
    const { pipeline, state, metrics, deps } = setUp(notices);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');

    // Act
    const outcome = await runPromotion(job, deps);

    // Assess
    expect(outcome).toEqual({ status: 'notified' });
    expect(notices.sent.map((notice) => notice.type)).toEqual([
      'Promotion',
      'Promotion State Change',
    ]);
    const [handOver, change] = notices.sent;
    expect(handOver?.signingSecret).toEqual({
      namespace: 'flux-system',
      name: 'promotion-credentials',
    });
    expect(handOver?.body).toMatchObject({
      involvedObject: {
        kind: 'Pipeline',
        apiVersion: 'pipelines.weave.works/v1alpha1',
        namespace: 'flux-system',
        name: 'podinfo',
      },
      severity: 'info',
      reason: 'Promote',
      message: 'Promote pipeline flux-system/podinfo to prod with version 6.5.0',
      metadata: {
        pipelineNamespace: 'flux-system',
        pipelineName: 'podinfo',
        environment: 'prod',
        version: '6.5.0',
      },
      reportingController: 'pipeline-promoter',
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      from: 'staging',
      to: 'prod',
      revision: '6.5.0',
      promotionId: job.id,
      sourceEvent: job.event,
    });
    expect(change?.body).toMatchObject({ state: 'notified', reason: 'PromotionNotified' });
    expect((await state.getPromotion(job.pipeline, 'prod'))?.state).toBe('notified');
    expect(metrics.sum('PromotionsNotified')).toBe(1);
    expect(
      Object.keys(metrics.snapshot()).filter((key) => key.startsWith('PromotionLatency{')),
    ).toHaveLength(1);
  });

  it('does not hand the same revision over twice', async () => {
    // Prepare
    const notices = recordingNotices();
    const { pipeline, deps } = setUp(notices);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');
    await runPromotion(job, deps);

    // Act
    const again = await runPromotion(job, deps);

    // Assess
    expect(again).toEqual({ status: 'settled', state: 'notified' });
    expect(notices.sent.filter((notice) => notice.type === 'Promotion')).toHaveLength(1);
  });

  it('leaves a receiver that is down to the queue’s retries, and hands over on the retry', async () => {
    // Prepare
    const notices = recordingNotices();
    notices.failWith = new PromoterError('NOTICE_UNAVAILABLE', 'receiver answered 503', {
      retryable: true,
    });
    const { pipeline, state, deps } = setUp(notices);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');

    // Act
    const error = await caught(runPromotion(job, deps));
    const claimed = await state.getPromotion(job.pipeline, 'prod');
    notices.failWith = undefined;
    const retried = await runPromotion(job, deps);

    // Assess
    expect(error).toMatchObject({ code: 'NOTICE_UNAVAILABLE', retryable: true });
    expect(claimed?.state).toBe('pushing');
    expect(retried).toEqual({ status: 'notified' });
  });

  it('records a refused hand-off as failed, and announces the failure', async () => {
    // Prepare
    const notices = recordingNotices();
    notices.failWith = new PromoterError('NOTICE_REJECTED', 'receiver answered 400');
    const { pipeline, state, deps } = setUp(notices);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');

    // Act
    const outcome = await runPromotion(job, deps);

    // Assess
    expect(outcome).toEqual({
      status: 'failed',
      code: 'NOTICE_REJECTED',
      message: 'receiver answered 400',
    });
    expect((await state.getPromotion(job.pipeline, 'prod'))?.state).toBe('failed');
    expect(notices.sent.map((notice) => notice.body.state)).toEqual(['failed']);
    expect(notices.sent[0]?.body).toMatchObject({ severity: 'error', reason: 'PromotionFailed' });
  });

  it('fails for good, in words, where the deployment has nowhere to send notices', async () => {
    // Prepare
    const { pipeline, deps } = setUp(null);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0');

    // Act
    const outcome = await runPromotion(job, deps);

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', code: 'NOTICES_UNCONFIGURED' });
    expect(outcome.status === 'failed' && outcome.message).toMatch(/--notify-url/);
  });

  it('completes when the target environment reports the revision, and announces it deployed', async () => {
    // Prepare
    const notices = recordingNotices();
    const { pipeline, state, deps } = setUp(notices);
    const job = promotionJob(pipeline, 'staging', 'prod', '6.5.0', new Date(Date.now() - 60_000));
    await runPromotion(job, deps);

    // Act
    const deployed = await recordTargetDeployment(
      pipeline,
      'prod',
      '6.5.0',
      new Date().toISOString(),
      deps,
    );

    // Assess
    expect(deployed?.state).toBe('deployed');
    expect(deployed?.leadTimeMs).toBeGreaterThanOrEqual(60_000);
    expect((await state.getPromotion(job.pipeline, 'prod'))?.state).toBe('deployed');
    expect(notices.sent.at(-1)?.body).toMatchObject({
      state: 'deployed',
      reason: 'PromotionDeployed',
      message: 'Promotion of flux-system/podinfo into prod at 6.5.0 deployed',
    });
  });
});

describe('announce', () => {
  it('never fails the transition it echoes: a lost notice is logged and counted', async () => {
    // Prepare
    const { pipeline } = setUp();
    const metrics = new MemoryMetricsSink();
    const notices: PromotionNotices = {
      publish: async () => {
        throw new PromoterError('NOTICE_UNAVAILABLE', 'bus down', { retryable: true });
      },
    };
    const record = {
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      environment: 'prod',
      revision: '6.5.0',
      state: 'merged' as const,
      jobId: 'job',
      from: 'staging',
      eventTimestamp: '2026-12-01T10:00:00.000Z',
      updatedAt: '2026-12-01T10:05:00.000Z',
    };

    // Act
    await announce(
      { notices, clock: { now: () => new Date() }, metrics, logger: silentLogger },
      pipeline,
      record,
    );

    // Assess
    expect(metrics.sum('NoticesFailed')).toBe(1);
  });

  it('says what a held promotion waits for, in Flux’s reason style', () => {
    // Prepare
    const { pipeline } = setUp();
    const base = {
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      environment: 'prod',
      revision: '6.5.0',
      jobId: 'job',
      from: 'staging',
      eventTimestamp: '2026-12-01T10:00:00.000Z',
      updatedAt: '2026-12-01T10:05:00.000Z',
    };
    const at = new Date('2026-12-01T10:05:00Z');

    // Act
    const soak = stateChangeNotice(
      pipeline,
      { ...base, state: 'waiting', waitingFor: { soak: { until: '2026-12-01T11:00:00.000Z' } } },
      at,
    );
    const approval = stateChangeNotice(pipeline, { ...base, state: 'awaiting-approval' }, at);

    // Assess
    expect(soak.type).toBe('Promotion State Change');
    expect(soak.body).toMatchObject({
      reason: 'PromotionWaiting',
      severity: 'info',
      message: 'Promotion of flux-system/podinfo into prod at 6.5.0 waits for soak',
      waitingFor: { soak: { until: '2026-12-01T11:00:00.000Z' } },
      timestamp: '2026-12-01T10:05:00.000Z',
    });
    expect(approval.body).toMatchObject({
      reason: 'PromotionAwaitingApproval',
      message: 'Promotion of flux-system/podinfo into prod at 6.5.0 awaits approval',
    });
  });
});
