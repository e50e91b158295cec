import { describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PromotionStateStore } from '../../functions/core/ports.ts';
import {
  type PromotionDependencies,
  recordDeadLetter,
  runPromotion,
} from '../../functions/core/promotion.ts';
import { readFixture } from '../support/fixtures.ts';
import { testJob } from '../support/jobs.ts';
import { memorySecrets } from '../support/webhook-harness.ts';

/**
 * Claim before push (DESIGN.md 7.10), through the real promotion core on each state store
 * (DynamoDB on moto, serve's SQLite): the interleavings that rolled PRs back before (a newer
 * job that pushed and then failed, late older jobs, duplicate deliveries, a crash between the
 * claim and the push, a push that lost a race), against a scripted branch and PR that record
 * every revision they were moved to. Whatever the order, the branch never goes back to an
 * older revision and the PR's title always names the revision its branch holds.
 */
const [podinfo] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines as [
  Pipeline,
];

type Fault = 'none' | 'push-transient' | 'push-race' | 'github-5xx' | 'crash' | 'permanent';

const at = (seconds: number): string =>
  new Date(Date.parse('2026-11-02T10:00:00Z') + seconds * 1000).toISOString();

const job = (revision: string, seconds: number) =>
  testJob('prod', revision, {
    event: { ...testJob('prod', revision).event, timestamp: at(seconds) },
  });

/** A branch and a PR that keep the history of what they were moved to. */
const scripted = (store: PromotionStateStore) => {
  const faults: Fault[] = [];
  const branchHistory: string[] = [];
  const titles: string[] = [];
  let pullRequest: { number: number; title: string } | undefined;
  const revisionOf = (message: string): string => message.split(' to ').at(-1) ?? '';
  const deps: PromotionDependencies = {
    pipelines: { get: async () => podinfo },
    secrets: memorySecrets({
      'flux-system/promotion-credentials': { 'hmac-key': 'hmac-key-for-tests', token: 'ghp_token' },
      'flux-system/prod-promotion-credentials': { token: 'ghp_prod' },
    }),
    state: store,
    repository: {
      preparePromotionBranch: async (request) => {
        const fault = faults.shift() ?? 'none';
        if (fault === 'crash') throw new Error('worker died between the claim and the push');
        if (fault === 'push-transient') {
          throw new PromoterError('GIT_UNAVAILABLE', 'git answered 503', { retryable: true });
        }
        if (fault === 'push-race') {
          throw new PromoterError('GIT_PUSH_REJECTED', 'base moved', { retryable: true });
        }
        if (fault === 'permanent') {
          throw new PromoterError('GIT_AUTH_FAILED', 'git credentials were refused');
        }
        const revision = revisionOf(request.commit.message);
        if (branchHistory.at(-1) !== revision) branchHistory.push(revision);
        if (fault === 'github-5xx') faults.unshift('github-5xx');
        return { status: 'pushed', baseCommit: 'b', commit: revision, changedFiles: ['a.yaml'] };
      },
    },
    pullRequests: {
      get: async () => 'not-modified',
      enableAutoMerge: async () => 'unavailable',
      mergeWhenReady: async () => ({ status: 'pending', reason: 'not under test' }),
      close: async () => {},
      upsert: async (request) => {
        if (faults[0] === 'github-5xx') {
          faults.shift();
          throw new PromoterError('GITHUB_UNAVAILABLE', 'GitHub answered 502', { retryable: true });
        }
        titles.push(request.title);
        const opened = pullRequest === undefined;
        pullRequest = { number: 7, title: request.title };
        return {
          action: opened ? 'opened' : 'updated',
          number: 7,
          url: 'https://github.com/example-org/fleet-prod/pull/7',
        };
      },
    },
    clock: { now: () => new Date(at(600)) },
    metrics: new MemoryMetricsSink(),
    logger: silentLogger,
  };
  /** Runs the job as a queue would: a thrown (transient) failure is retried, up to 5 receives. */
  const deliver = async (promoted: ReturnType<typeof job>, receives = 5) => {
    for (let receive = 1; ; receive += 1) {
      try {
        return await runPromotion(promoted, deps);
      } catch (error) {
        if (receive >= receives) {
          await recordDeadLetter(promoted, error, deps);
          return { status: 'dead-lettered' as const };
        }
      }
    }
  };
  const branchTitleAgree = () =>
    pullRequest === undefined || revisionOf(pullRequest.title) === branchHistory.at(-1);
  return { deps, faults, branchHistory, titles, deliver, branchTitleAgree };
};

/** True when the revisions (6.5.N) never decrease along the list. */
const neverBack = (revisions: readonly string[]): boolean =>
  revisions.every((revision, index) => index === 0 || revision >= (revisions[index - 1] ?? ''));

export const describeClaimBeforePushContract = (
  name: string,
  makeStore: () => Promise<PromotionStateStore>,
): void => {
  describe(`${name}: claim before push`, () => {
    it('a newer job that pushed and then failed on GitHub blocks a late older job', async () => {
      // Prepare
      const store = await makeStore();
      const { faults, deliver, branchHistory, titles, branchTitleAgree } = scripted(store);
      faults.push('github-5xx');

      // Act: 6.5.3 pushes, GitHub fails it (one receive); 6.5.2 (older event) comes late.
      const newer = await deliver(job('6.5.3', 30), 1);
      const older = await deliver(job('6.5.2', 10));
      const retried = await deliver(job('6.5.3', 30));

      // Assess
      expect(newer).toEqual({ status: 'dead-lettered' });
      expect(older).toEqual({ status: 'superseded', by: '6.5.3' });
      expect(retried).toMatchObject({ status: 'opened' });
      expect(branchHistory).toEqual(['6.5.3']);
      expect(titles).toEqual(['Promote flux-system/podinfo in prod to 6.5.3']);
      expect(branchTitleAgree()).toBe(true);
      expect(await store.getPromotion(podinfo, 'prod')).toMatchObject({
        revision: '6.5.3',
        state: 'opened',
      });
    });

    it('a newer job that failed for good, or was dead-lettered, still blocks older ones', async () => {
      // Prepare
      const store = await makeStore();
      const { faults, deliver, branchHistory } = scripted(store);

      // Act
      faults.push('permanent');
      const failed = await deliver(job('6.5.3', 30));
      const olderAfterFailed = await deliver(job('6.5.2', 20));
      faults.push(...Array<Fault>(5).fill('push-transient'));
      const dead = await deliver(job('6.5.5', 50));
      const olderAfterDead = await deliver(job('6.5.4', 40));

      // Assess
      expect(failed).toMatchObject({ status: 'failed', code: 'GIT_AUTH_FAILED' });
      expect(olderAfterFailed).toEqual({ status: 'superseded', by: '6.5.3' });
      expect(dead).toEqual({ status: 'dead-lettered' });
      expect(olderAfterDead).toEqual({ status: 'superseded', by: '6.5.5' });
      expect(branchHistory).toEqual([]);
      expect(await store.getPromotion(podinfo, 'prod')).toMatchObject({
        revision: '6.5.5',
        state: 'dead-lettered',
        failure: { code: 'GIT_UNAVAILABLE', message: 'git answered 503' },
      });
    });

    it('a crash between the claim and the push, and a push that lost a race: the redelivery completes', async () => {
      // Prepare
      const store = await makeStore();
      const { faults, deliver, branchHistory, branchTitleAgree } = scripted(store);
      faults.push('crash', 'push-race');

      // Act
      const outcome = await deliver(job('6.5.3', 30));

      // Assess
      expect(outcome).toMatchObject({ status: 'opened' });
      expect(branchHistory).toEqual(['6.5.3']);
      expect(branchTitleAgree()).toBe(true);
    });

    it('duplicate deliveries move nothing back; any order of late and early jobs ends at the newest', async () => {
      // Prepare: six revisions in a shuffled order of arrival, some delivered twice, with
      // transient faults in between.
      const store = await makeStore();
      const { faults, deliver, branchHistory, titles, branchTitleAgree } = scripted(store);
      const arrivals = [2, 1, 4, 4, 3, 6, 5, 6, 1];
      faults.push('github-5xx', 'none', 'push-transient', 'none', 'push-race');

      // Act
      for (const minor of arrivals) await deliver(job(`6.5.${minor}`, minor * 10));

      // Assess
      expect(neverBack(branchHistory)).toBe(true);
      expect(branchHistory.at(-1)).toBe('6.5.6');
      expect(neverBack(titles.map((title) => title.split(' to ').at(-1) ?? ''))).toBe(true);
      // A duplicate delivery rewrites the PR with the same title at most: no other revision.
      expect([...new Set(titles)].map((title) => title.split(' to ').at(-1))).toEqual([
        '6.5.2',
        '6.5.4',
        '6.5.6',
      ]);
      expect(branchTitleAgree()).toBe(true);
      expect(await store.getPromotion(podinfo, 'prod')).toMatchObject({
        revision: '6.5.6',
        state: 'updated',
      });
    });
  });
};
