import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PROMOTING_REASONS,
  decide,
  decisionSettings,
  MAX_JOB_MESSAGE_CHARS,
} from '../../functions/core/decision.ts';
import { type FluxEvent, fluxEventSchema } from '../../functions/core/flux-event.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import { freshEvent, readFixture } from '../support/fixtures.ts';

const [podinfo] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines as [
  Pipeline,
];
const now = new Date();
const event = (patch: Partial<FluxEvent> = {}): FluxEvent => ({
  ...fluxEventSchema.parse(JSON.parse(freshEvent('helmrelease-upgrade-succeeded.json', now))),
  ...patch,
});

describe('decide', () => {
  it.each([
    ['severity error with a promoting reason', { severity: 'error' }],
    ['UninstallSucceeded', { reason: 'UninstallSucceeded' }],
    ['RollbackSucceeded', { reason: 'RollbackSucceeded' }],
    ['an unknown reason', { reason: 'Progressing' }],
  ])('ignores %s', (_name, patch) => {
    expect(decide(podinfo, 'dev', event(patch), now, decisionSettings())).toEqual({
      kind: 'ignore',
      reason: 'not-a-promoting-event',
      // What the event reports still counts for the lifecycle (a failed deployment).
      deployment: expect.objectContaining({ environment: 'dev', target: 'dev/podinfo-dev' }),
    });
  });

  it('never promotes RollbackSucceeded or UninstallSucceeded, even when configured', () => {
    const settings = decisionSettings({
      promotingReasons: ['RollbackSucceeded', 'UninstallSucceeded', 'UpgradeSucceeded'],
    });
    expect([...settings.promotingReasons]).toEqual(['UpgradeSucceeded']);
    expect(decide(podinfo, 'dev', event({ reason: 'RollbackSucceeded' }), now, settings).kind).toBe(
      'ignore',
    );
  });

  it('uses the defaults when no reasons are configured', () => {
    expect([...decisionSettings({ promotingReasons: undefined }).promotingReasons]).toEqual([
      ...DEFAULT_PROMOTING_REASONS,
    ]);
  });

  it('promotes into the next environment with a normalised event time and a bounded message', () => {
    const decision = decide(
      podinfo,
      'dev',
      event({ message: 'x'.repeat(10_000) }),
      now,
      decisionSettings(),
    );
    if (decision.kind !== 'promote') throw new Error(`expected promote, got ${decision.kind}`);
    expect(decision.job).toMatchObject({ from: 'dev', to: 'staging', revision: '6.5.0' });
    expect(decision.job.event.message).toHaveLength(MAX_JOB_MESSAGE_CHARS);
    expect(decision.deployment.eventTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
  });

  it('accepts an event 14 minutes old and refuses one 16 minutes old, and honours a shorter window', () => {
    const at = (minutes: number) =>
      event({ timestamp: new Date(now.getTime() - minutes * 60_000).toISOString() });
    expect(decide(podinfo, 'dev', at(14), now, decisionSettings()).kind).toBe('promote');
    expect(decide(podinfo, 'dev', at(16), now, decisionSettings())).toMatchObject({
      kind: 'invalid',
      replay: true,
    });
    expect(
      decide(podinfo, 'dev', at(2), now, decisionSettings({ maxEventAgeSeconds: 60 })),
    ).toMatchObject({ kind: 'invalid', replay: true });
  });
});
