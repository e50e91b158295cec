import { describe, expect, it } from 'vitest';
import type { PipelineStatus } from '../../functions/core/pipeline-status.ts';
import { pipelineStatusSchema } from '../../functions/core/pipeline-status-answer.ts';
import { pipelineSyncSchema } from '../../functions/core/pipeline-sync-answer.ts';

const status: PipelineStatus = {
  pipeline: 'flux-system/podinfo',
  namespace: 'flux-system',
  name: 'podinfo',
  app: { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', name: 'podinfo' },
  environments: [
    {
      name: 'staging',
      deployed: {
        revision: '6.5.0',
        eventTimestamp: '2026-11-20T16:00:00Z',
        recordedAt: '2026-11-20T16:00:01.000Z',
      },
      targets: [
        {
          name: 'staging/podinfo-qa',
          cluster: 'staging',
          namespace: 'podinfo-qa',
          revision: '6.5.0',
          at: '2026-11-20T16:00:00Z',
          ok: true,
        },
      ],
      promotion: {
        revision: '6.5.0',
        state: 'waiting',
        waitingFor: {
          freeze: { reason: 'release freeze', by: 'alice', until: '2026-11-21T00:00:00Z' },
        },
        approval: { requestedAt: '2026-11-20T16:01:00Z', approvedAt: null, approvedBy: null },
        from: 'dev',
        pullRequest: {
          number: 42,
          url: 'https://github.com/example-org/fleet/pull/42',
          state: 'merged',
          mergedAt: '2026-11-20T16:03:00Z',
          mergeCommit: 'c0ffee',
        },
        timeline: { sourceDeployedAt: '2026-11-20T16:00:00Z', mergedAt: '2026-11-20T16:03:00Z' },
        leadTimeMs: 180_000,
        failure: { code: 'NO_MARKER', message: 'no marker' },
        eventTimestamp: '2026-11-20T16:00:00Z',
        updatedAt: '2026-11-20T16:03:00.000Z',
      },
    },
  ],
};

describe('pipelineStatusSchema', () => {
  it('reads back every field of a status the API builds', () => {
    // Act
    const read = pipelineStatusSchema.parse(JSON.parse(JSON.stringify(status)));

    // Assess
    expect(read).toEqual(status);
  });

  it("reads an older server's answer, without targets and gates, with their defaults", () => {
    // Prepare
    const [environment] = status.environments;
    const { targets: _targets, ...older } = environment ?? {};
    const {
      waitingFor: _waiting,
      approval: _approval,
      ...promotion
    } = environment?.promotion ?? {};

    // Act
    const read = pipelineStatusSchema.parse({
      ...status,
      environments: [{ ...older, promotion }],
    });

    // Assess
    expect(read.environments[0]).toMatchObject({
      targets: [],
      promotion: { waitingFor: null, approval: null },
    });
  });

  it('refuses an answer of the wrong shape, naming the field', () => {
    // Act
    const result = pipelineStatusSchema.safeParse({ ...status, environments: [{ name: 1 }] });

    // Assess
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['environments', 0, 'name']);
  });
});

describe('pipelineSyncSchema', () => {
  it("defaults the warnings of an older server's answer", () => {
    // Prepare
    const answer = {
      counts: { created: 1, updated: 0, unchanged: 0, deleted: 0, invalid: 0 },
      created: ['flux-system/podinfo'],
      updated: [],
      unchanged: [],
      deleted: [],
      invalid: [],
      prune: { requested: false, performed: false, kept: [] },
    };

    // Act
    const read = pipelineSyncSchema.parse(answer);

    // Assess
    expect(read).toEqual({ ...answer, warnings: [] });
  });
});
