import { describe, expect, it } from 'vitest';
import { isPromoterError } from '../../functions/core/errors.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import {
  approvePromotion,
  evaluateGates,
  releaseDuePromotions,
} from '../../functions/core/promotion-gates.ts';
import { signBody } from '../../functions/core/signature.ts';
import { handleWebhookRequest } from '../../functions/core/webhook.ts';
import { FIXTURE_HMAC_KEY, freshEvent } from '../support/fixtures.ts';
import { webhookHarness } from '../support/webhook-harness.ts';

/**
 * The gates of DESIGN.md section 11 through the real webhook request function and the core's
 * gate functions, on serve's state store with a controlled clock: a 30-minute soak into
 * staging, staging's two targets (two clusters, one namespace), a manual prod with a weekday
 * window, and freezes.
 */
const MANIFEST = `
apiVersion: pipelines.weave.works/v1alpha1
kind: Pipeline
metadata:
  name: podinfo
  namespace: flux-system
  annotations:
    pipeline-promoter/soak.staging: 30m
    pipeline-promoter/window.prod: Mon-Fri 09:00-17:00 UTC
spec:
  appRef: { apiVersion: helm.toolkit.fluxcd.io/v2, kind: HelmRelease, name: podinfo }
  environments:
    - name: dev
      targets: [{ namespace: podinfo-dev }]
    - name: staging
      targets:
        - { namespace: podinfo, clusterRef: { kind: GitopsCluster, name: staging-eu } }
        - { namespace: podinfo, clusterRef: { kind: GitopsCluster, name: staging-us } }
    - name: prod
      targets: [{ namespace: podinfo-prod }]
      promotion:
        manual: true
        strategy:
          pull-request: { type: github, url: https://github.com/example-org/fleet, baseBranch: main, secretRef: { name: promotion-credentials } }
          secretRef: { name: promotion-credentials }
  promotion:
    strategy:
      pull-request: { type: github, url: https://github.com/example-org/fleet, baseBranch: main, secretRef: { name: promotion-credentials } }
      secretRef: { name: promotion-credentials }
`;

const REF = { namespace: 'flux-system', name: 'podinfo' };
// A Monday, inside prod's window.
const MONDAY_10 = Date.parse('2026-11-23T10:00:00Z');
const minutes = (n: number, from = MONDAY_10): Date => new Date(from + n * 60_000);

const gated = () => {
  const [pipeline] = parsePipelineManifests(MANIFEST).pipelines as Pipeline[];
  if (pipeline === undefined) throw new Error('the test pipeline does not parse');
  const harness = webhookHarness({ pipelines: [pipeline] });
  const gateDeps = {
    ...harness.deps,
    pipelines: { get: harness.deps.pipelines.get, list: () => [pipeline] },
  };
  const flux = (
    environment: string,
    at: Date,
    options: {
      revision?: string;
      namespace?: string;
      cluster?: string;
      fixture?: string;
    } = {},
  ) => {
    harness.now = at;
    let body = freshEvent(options.fixture ?? 'helmrelease-upgrade-succeeded.json', at)
      .replace('"namespace":"podinfo-dev"', `"namespace":"${options.namespace ?? 'podinfo-dev'}"`)
      .replace(/"revision":"[^"]*"/, `"revision":"${options.revision ?? '6.5.0'}"`);
    if (options.cluster !== undefined) {
      body = body.replace('"metadata":{', `"metadata":{"cluster":"${options.cluster}",`);
    }
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
  const sweep = (at: Date) => {
    harness.now = at;
    return releaseDuePromotions(gateDeps);
  };
  const promotionInto = (environment: string) => harness.state.getPromotion(REF, environment);
  return { pipeline, harness, gateDeps, flux, sweep, promotionInto };
};

describe('the gates of a promotion', () => {
  it('a soak holds the promotion into staging until its time, and fires with no further event', async () => {
    // Prepare
    const { harness, flux, sweep, promotionInto } = gated();

    // Act
    const dev = await flux('dev', minutes(0));
    const early = await sweep(minutes(29));
    const due = await sweep(minutes(30));

    // Assess
    expect(dev.status).toBe(202);
    expect(dev.body).toEqual({
      promoted: false,
      waiting: { soak: { until: minutes(30).toISOString() } },
    });
    expect(early).toMatchObject({ released: 0, nextDueAt: minutes(30).toISOString() });
    expect(due).toMatchObject({ reviewed: 1, released: 1 });
    expect(harness.jobs.map((job) => [job.to, job.revision])).toEqual([['staging', '6.5.0']]);
    expect(await promotionInto('staging')).toMatchObject({
      state: 'queued',
      timeline: { sourceDeployedAt: minutes(0).toISOString(), queuedAt: minutes(30).toISOString() },
    });
    expect(harness.metrics.sum('PromotionsWaiting')).toBe(1);
  });

  it('asks the timer to look again when the soak ends; a timer that fails holds nothing up', async () => {
    // Prepare
    const { harness } = gated();
    const asked: string[] = [];
    const working = { wakeAt: async (at: Date) => void asked.push(at.toISOString()) };
    const failing = {
      wakeAt: async () => {
        throw new Error('the scheduler is down');
      },
    };
    const event = (at: Date) => {
      harness.now = at;
      const body = freshEvent('helmrelease-upgrade-succeeded.json', at).replace(
        /"revision":"[^"]*"/,
        '"revision":"6.5.0"',
      );
      return {
        method: 'POST',
        path: '/promotion/flux-system/podinfo/dev',
        headers: { 'x-signature': signBody(body, FIXTURE_HMAC_KEY) },
        body: Buffer.from(body),
      };
    };

    // Act
    const timed = await handleWebhookRequest(event(minutes(0)), {
      ...harness.deps,
      timer: working,
    });
    const untimed = await handleWebhookRequest(event(minutes(1)), {
      ...harness.deps,
      timer: failing,
    });

    // Assess
    expect(asked).toEqual([minutes(30).toISOString()]);
    expect(timed.status).toBe(202);
    expect(untimed.status).toBe(202);
    expect(untimed.body).toEqual({
      promoted: false,
      waiting: { soak: { until: minutes(30).toISOString() } },
    });
  });

  it('a failure from dev at the revision during the soak cancels it; a new success starts it again', async () => {
    // Prepare
    const { harness, flux, sweep, promotionInto } = gated();
    await flux('dev', minutes(0));

    // Act
    const failed = await flux('dev', minutes(5), { fixture: 'helmrelease-upgrade-failed.json' });
    const cancelled = await promotionInto('staging');
    const afterCancel = await sweep(minutes(31));
    const again = await flux('dev', minutes(40));

    // Assess
    expect(failed.status).toBe(200);
    expect(cancelled).toMatchObject({
      state: 'cancelled',
      failure: {
        code: 'SOURCE_FAILED',
        message: 'dev reported UpgradeFailed at 6.5.0 before the promotion into staging went ahead',
      },
    });
    expect(afterCancel.released).toBe(0);
    expect(harness.jobs).toEqual([]);
    expect(again.body).toEqual({
      promoted: false,
      waiting: { soak: { until: minutes(70).toISOString() } },
    });
    expect((await promotionInto('staging'))?.state).toBe('waiting');
  });

  it('promotes prod only once both staging targets report, then waits for a person', async () => {
    // Prepare
    const { harness, flux, promotionInto } = gated();

    // Act
    const eu = await flux('staging', minutes(0), { namespace: 'podinfo', cluster: 'staging-eu' });
    const euAgain = await flux('staging', minutes(1), {
      namespace: 'podinfo',
      cluster: 'staging-eu',
    });
    const us = await flux('staging', minutes(2), { namespace: 'podinfo', cluster: 'staging-us' });

    // Assess
    expect(eu.body).toEqual({ promoted: false, waiting: { targets: { ready: 1, needed: 2 } } });
    expect(euAgain.body).toEqual(eu.body);
    expect(us.status).toBe(202);
    expect(us.body).toEqual({
      promoted: false,
      waiting: { approval: { requestedAt: minutes(2).toISOString() } },
    });
    expect(harness.jobs).toEqual([]);
    expect(await promotionInto('prod')).toMatchObject({
      state: 'awaiting-approval',
      revision: '6.5.0',
      timeline: { sourceDeployedAt: minutes(2).toISOString() },
    });
  });

  it('targets that report out of event order still open the gate, with the latest event as the job', async () => {
    // Prepare
    const { harness, flux, promotionInto } = gated();

    // Act: us reports first with the later timestamp; eu's earlier event is delivered after.
    const us = await flux('staging', minutes(2), { namespace: 'podinfo', cluster: 'staging-us' });
    const eu = await flux('staging', minutes(1), { namespace: 'podinfo', cluster: 'staging-eu' });

    // Assess: the gate opened (prod then waits for its approval), holding us's later event.
    expect(us.body).toEqual({ promoted: false, waiting: { targets: { ready: 1, needed: 2 } } });
    expect(eu.body).toMatchObject({ promoted: false, waiting: { approval: {} } });
    expect(await promotionInto('prod')).toMatchObject({
      state: 'awaiting-approval',
      eventTimestamp: minutes(2).toISOString(),
      job: { event: { timestamp: minutes(2).toISOString().replace('.000Z', 'Z') } },
    });
    expect(harness.jobs).toEqual([]);
  });

  it('a late event of a target (an older one than it reported) holds nothing and skips no gate', async () => {
    // Prepare: eu reported 6.5.1; its 6.5.0 event, older, is delivered after.
    const { harness, flux, promotionInto } = gated();
    await flux('staging', minutes(5), {
      namespace: 'podinfo',
      cluster: 'staging-eu',
      revision: '6.5.1',
    });

    // Act
    const late = await flux('staging', minutes(4), {
      namespace: 'podinfo',
      cluster: 'staging-eu',
      revision: '6.5.0',
    });

    // Assess: the gates answer for it as reported (us has not), nothing is written or queued.
    expect(late.body).toEqual({ promoted: false, waiting: { targets: { ready: 1, needed: 2 } } });
    expect(harness.jobs).toEqual([]);
    expect(await promotionInto('prod')).toMatchObject({ revision: '6.5.1', state: 'waiting' });
  });

  it('a late success after its target reported a failure since promotes nothing, whatever the gates', async () => {
    // Prepare: dev's 6.5.0 failed (a later event) before its success is delivered.
    const { harness, flux, promotionInto } = gated();
    await flux('dev', minutes(5), { fixture: 'helmrelease-upgrade-failed.json' });

    // Act
    const late = await flux('dev', minutes(4));

    // Assess
    expect(late.body).toEqual({ promoted: false, waiting: { targets: { ready: 0, needed: 1 } } });
    expect(harness.jobs).toEqual([]);
    expect(await promotionInto('staging')).toBeUndefined();
  });

  it('two targets reporting at once, in either event order, never leave the gate closed', async () => {
    for (const [euAt, usAt] of [
      [1, 2],
      [2, 1],
      [1, 1],
    ] as const) {
      // Prepare
      const { harness, flux, promotionInto } = gated();
      harness.now = minutes(3);

      // Act: both requests in flight together, their store reads and writes interleaved.
      await Promise.all([
        flux('staging', minutes(euAt), { namespace: 'podinfo', cluster: 'staging-eu' }),
        flux('staging', minutes(usAt), { namespace: 'podinfo', cluster: 'staging-us' }),
      ]);

      // Assess: the gate opened (prod then waits for its approval), whichever way they ran.
      expect((await promotionInto('prod'))?.state, `eu at ${euAt}, us at ${usAt}`).toBe(
        'awaiting-approval',
      );
    }
  });

  it('an event from a target the environment does not list, or without the cluster it needs, is a 422 naming the targets', async () => {
    // Prepare
    const { flux } = gated();

    // Act
    const unknown = await flux('staging', minutes(0), { namespace: 'podinfo', cluster: 'ap' });
    const noCluster = await flux('staging', minutes(0), { namespace: 'podinfo' });

    // Assess
    expect(unknown.status).toBe(422);
    expect(unknown.body.error).toBe(
      'metadata.cluster "ap" with involvedObject.namespace "podinfo" is not a target of environment staging (targets: cluster staging-eu namespace podinfo, cluster staging-us namespace podinfo)',
    );
    expect(noCluster.status).toBe(422);
    expect(noCluster.body.error).toMatch(
      /^metadata\.cluster: environment staging has several targets in namespace podinfo .*eventMetadata: \{cluster: NAME\}/,
    );
  });

  it('an approval of the waiting revision enqueues the job; a stale or absent one is refused', async () => {
    // Prepare
    const { pipeline, harness, gateDeps, flux } = gated();
    const stagingDeployed = async (revision: string, at: Date) => {
      await flux('staging', at, { namespace: 'podinfo', cluster: 'staging-eu', revision });
      await flux('staging', at, { namespace: 'podinfo', cluster: 'staging-us', revision });
    };
    const refusal = (promise: Promise<unknown>) =>
      promise.then(
        () => 'approved',
        (error: unknown) => (isPromoterError(error) ? error.code : String(error)),
      );

    // Act
    const beforeAnything = await refusal(
      approvePromotion({ pipeline, environment: 'prod', by: 'arn:aws:iam::1:user/ana' }, gateDeps),
    );
    await stagingDeployed('6.5.0', minutes(0));
    await stagingDeployed('6.5.1', minutes(3));
    const stale = await refusal(
      approvePromotion(
        { pipeline, environment: 'prod', revision: '6.5.0', by: 'arn:aws:iam::1:user/ana' },
        gateDeps,
      ),
    );
    harness.now = minutes(10);
    const approved = await approvePromotion(
      { pipeline, environment: 'prod', revision: '6.5.1', by: 'arn:aws:iam::1:user/ana' },
      gateDeps,
    );

    // Assess
    expect([beforeAnything, stale]).toEqual(['NOTHING_TO_APPROVE', 'NOTHING_TO_APPROVE']);
    expect(approved.admission.status).toBe('enqueued');
    expect(harness.jobs.map((job) => [job.to, job.revision])).toEqual([['prod', '6.5.1']]);
    expect(await harness.state.getPromotion(REF, 'prod')).toMatchObject({
      state: 'queued',
      approvedBy: 'arn:aws:iam::1:user/ana',
      timeline: {
        approvalRequestedAt: minutes(3).toISOString(),
        approvedAt: minutes(10).toISOString(),
      },
    });
    expect(
      harness.metrics.snapshot()[
        'ApprovalWaitTime{Application=podinfo,Environment=prod,Pipeline=flux-system/podinfo}'
      ],
    ).toMatchObject({ sum: 7 * 60_000, count: 1 });
  });

  it('outside the window the promotion waits for its opening, then asks for approval', async () => {
    // Prepare
    const { flux, sweep, promotionInto } = gated();
    const saturday = Date.parse('2026-11-28T12:00:00Z');

    // Act
    await flux('staging', minutes(0, saturday), { namespace: 'podinfo', cluster: 'staging-eu' });
    const held = await flux('staging', minutes(1, saturday), {
      namespace: 'podinfo',
      cluster: 'staging-us',
    });
    const opened = await sweep(new Date('2026-11-30T09:00:00Z'));

    // Assess
    expect(held.body).toEqual({
      promoted: false,
      waiting: { window: { opensAt: '2026-11-30T09:00:00.000Z' } },
    });
    expect(opened.reviewed).toBe(1);
    expect(await promotionInto('prod')).toMatchObject({ state: 'awaiting-approval' });
  });

  it('a freeze holds promotions with its reason and author; it ends by itself at its end', async () => {
    // Prepare
    const { harness, flux, sweep } = gated();
    await harness.state.putFreeze({
      environment: 'staging',
      reason: 'incident INC-42',
      by: 'arn:aws:iam::1:user/ops',
      at: minutes(0).toISOString(),
      until: minutes(60).toISOString(),
    });

    // Act
    const held = await flux('dev', minutes(1));
    const stillFrozen = await sweep(minutes(59));
    const thawed = await sweep(minutes(61));

    // Assess
    expect(held.body).toEqual({
      promoted: false,
      waiting: {
        freeze: {
          reason: 'incident INC-42',
          by: 'arn:aws:iam::1:user/ops',
          until: minutes(60).toISOString(),
        },
      },
    });
    expect(stillFrozen.released).toBe(0);
    // Past the freeze, the soak counts from dev's deployment (minute 1): it ended at minute 31.
    expect(thawed.released).toBe(1);
    expect(harness.jobs.map((job) => job.to)).toEqual(['staging']);
  });

  it('evaluates the gates in order: targets, freeze, soak, window, approval', () => {
    // Prepare
    const { pipeline } = gated();
    const job = {
      version: 1 as const,
      id: 'j',
      pipeline: REF,
      from: 'dev',
      to: 'staging',
      revision: '6.5.0',
      event: {
        timestamp: minutes(0).toISOString(),
        reason: 'UpgradeSucceeded',
        message: '',
        involvedObject: {
          kind: 'HelmRelease',
          namespace: 'podinfo-dev',
          name: 'podinfo',
          apiVersion: 'helm.toolkit.fluxcd.io/v2',
        },
      },
      receivedAt: minutes(0).toISOString(),
    };
    const deployed = [
      {
        pipeline: REF,
        environment: 'dev',
        target: 'podinfo-dev',
        revision: '6.5.0',
        eventTimestamp: minutes(0).toISOString(),
        recordedAt: minutes(0).toISOString(),
      },
    ];
    const freeze = { reason: 'r', by: 'b', at: minutes(0).toISOString() };

    // Act and Assess
    expect(
      evaluateGates(pipeline, job, undefined, {
        deployments: [],
        freezes: [freeze],
        now: minutes(0),
      }),
    ).toEqual({ kind: 'waiting', waitingFor: { targets: { ready: 0, needed: 1 } } });
    expect(
      evaluateGates(pipeline, job, undefined, {
        deployments: deployed,
        freezes: [freeze],
        now: minutes(0),
      }),
    ).toEqual({ kind: 'waiting', waitingFor: { freeze: { reason: 'r', by: 'b' } } });
    expect(
      evaluateGates(pipeline, job, undefined, {
        deployments: deployed,
        freezes: [],
        now: minutes(0),
      }),
    ).toMatchObject({ kind: 'waiting', waitingFor: { soak: {} } });
    expect(
      evaluateGates(pipeline, job, undefined, {
        deployments: deployed,
        freezes: [],
        now: minutes(30),
      }),
    ).toEqual({ kind: 'open' });
  });
});
