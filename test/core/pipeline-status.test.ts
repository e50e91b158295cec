import { describe, expect, it } from 'vitest';
import { type Pipeline, pipelineId } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import { pipelineStatus } from '../../functions/core/pipeline-status.ts';
import type { PromotionRecord } from '../../functions/core/ports.ts';
import { readFixture } from '../support/fixtures.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';

const [podinfo] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines as [
  Pipeline,
];
const REF = { namespace: 'flux-system', name: 'podinfo' };
const PR = { number: 7, url: 'https://github.com/example-org/fleet-prod/pull/7' };
/** PR as the status shows it: open, not merged. */
const PR_STATUS = { ...PR, state: 'open', mergedAt: null, mergeCommit: null };

const setup = () => {
  const state = inMemoryStateStore();
  const deps = {
    pipelines: {
      get: async (ref: { namespace: string; name: string }) =>
        pipelineId(ref) === pipelineId(podinfo) ? podinfo : undefined,
    },
    state,
  };
  const deploy = (environment: string, revision: string, at: string) =>
    state.recordDeployment({
      pipeline: REF,
      environment,
      revision,
      eventTimestamp: at,
      recordedAt: at,
    });
  const promote = (
    record: Partial<PromotionRecord> &
      Pick<PromotionRecord, 'environment' | 'revision' | 'state' | 'eventTimestamp'>,
  ) =>
    state.putPromotion({
      pipeline: REF,
      jobId: 'job',
      from: 'staging',
      updatedAt: record.eventTimestamp,
      ...record,
    });
  return { deps, deploy, promote };
};

describe('pipelineStatus', () => {
  it('lists the environments in order with their deployment and the promotion into each', async () => {
    // Prepare
    const { deps, deploy, promote } = setup();
    await deploy('dev', '6.5.0', '2026-11-20T16:00:00Z');
    await deploy('staging', '6.5.0', '2026-11-20T16:05:00Z');
    await promote({
      environment: 'staging',
      from: 'dev',
      revision: '6.5.0',
      state: 'opened',
      eventTimestamp: '2026-11-20T16:00:00.000Z',
      pullRequest: { number: 3, url: 'https://github.com/example-org/fleet/pull/3' },
    });
    await promote({
      environment: 'prod',
      revision: '6.5.0',
      state: 'opened',
      eventTimestamp: '2026-11-20T16:05:00.000Z',
      updatedAt: '2026-11-20T16:05:04.000Z',
      pullRequest: PR,
    });

    // Act
    const status = await pipelineStatus(REF, deps);

    // Assess
    expect(status).toMatchObject({
      pipeline: 'flux-system/podinfo',
      app: { kind: 'HelmRelease', name: 'podinfo' },
    });
    expect(status?.environments).toEqual([
      {
        name: 'dev',
        deployed: {
          revision: '6.5.0',
          eventTimestamp: '2026-11-20T16:00:00Z',
          recordedAt: '2026-11-20T16:00:00Z',
        },
        // A record written without a target stands for the only target of dev.
        targets: [
          {
            name: 'dev/podinfo-dev',
            cluster: 'dev',
            namespace: 'podinfo-dev',
            revision: '6.5.0',
            at: '2026-11-20T16:00:00Z',
            ok: true,
          },
        ],
        promotion: null,
      },
      {
        name: 'staging',
        deployed: expect.objectContaining({ revision: '6.5.0' }),
        targets: [
          expect.objectContaining({ name: 'staging/podinfo-qa', revision: null }),
          expect.objectContaining({ name: 'staging/podinfo-perf', revision: null }),
        ],
        promotion: expect.objectContaining({
          revision: '6.5.0',
          state: 'opened',
          from: 'dev',
          failure: null,
        }),
      },
      {
        name: 'prod',
        deployed: null,
        targets: [expect.objectContaining({ name: 'prod/podinfo-prod', revision: null })],
        promotion: {
          revision: '6.5.0',
          state: 'opened',
          waitingFor: null,
          approval: null,
          from: 'staging',
          pullRequest: PR_STATUS,
          failure: null,
          timeline: {},
          leadTimeMs: null,
          eventTimestamp: '2026-11-20T16:05:00.000Z',
          updatedAt: '2026-11-20T16:05:04.000Z',
        },
      },
    ]);
  });

  it('a failed promotion carries its reason', async () => {
    // Prepare
    const { deps, promote } = setup();
    const failure = {
      code: 'NO_MARKER',
      message: 'no marker # {"$promotion": "flux-system:podinfo:prod"} in ...',
    };
    await promote({
      environment: 'prod',
      revision: '6.5.0',
      state: 'failed',
      eventTimestamp: '2026-11-20T16:05:00Z',
      failure,
    });

    // Act
    const status = await pipelineStatus(REF, deps);

    // Assess
    expect(status?.environments[2]?.promotion).toMatchObject({
      state: 'failed',
      failure,
      pullRequest: null,
    });
  });

  it('a newer deployment of another revision upstream than the recorded promotion: queued, on the rolling PR', async () => {
    // Prepare
    const { deps, deploy, promote } = setup();
    await promote({
      environment: 'prod',
      revision: '6.5.0',
      state: 'opened',
      eventTimestamp: '2026-11-20T16:05:00Z',
      pullRequest: PR,
    });
    await deploy('staging', '6.6.0', '2026-11-21T09:00:00Z');

    // Act
    const status = await pipelineStatus(REF, deps);

    // Assess
    expect(status?.environments[2]?.promotion).toEqual({
      revision: '6.6.0',
      state: 'queued',
      waitingFor: null,
      approval: null,
      from: 'staging',
      pullRequest: PR_STATUS,
      failure: null,
      timeline: { sourceDeployedAt: '2026-11-21T09:00:00Z' },
      leadTimeMs: null,
      eventTimestamp: '2026-11-21T09:00:00Z',
      updatedAt: '2026-11-21T09:00:00Z',
    });
  });

  it('a deployment with no promotion recorded yet is queued; a redeploy of the promoted revision is not', async () => {
    // Prepare
    const { deps, deploy, promote } = setup();
    await deploy('dev', '6.5.0', '2026-11-20T16:00:00Z');
    await deploy('staging', '6.5.0', '2026-11-21T09:00:00Z');
    await promote({
      environment: 'prod',
      revision: '6.5.0',
      state: 'up-to-date',
      eventTimestamp: '2026-11-20T16:05:00Z',
    });

    // Act
    const status = await pipelineStatus(REF, deps);

    // Assess
    expect(status?.environments[1]?.promotion).toMatchObject({
      state: 'queued',
      revision: '6.5.0',
      from: 'dev',
      pullRequest: null,
    });
    expect(status?.environments[2]?.promotion).toMatchObject({
      state: 'up-to-date',
      revision: '6.5.0',
    });
  });

  it('an unknown pipeline has no status', async () => {
    // Prepare
    const { deps } = setup();

    // Act
    const status = await pipelineStatus({ namespace: 'flux-system', name: 'unknown' }, deps);

    // Assess
    expect(status).toBeUndefined();
  });
});
