import { describe, expect, it } from 'vitest';
import type {
  DeploymentRecord,
  PromotionRecord,
  PromotionState,
  PromotionStateStore,
} from '../../functions/core/ports.ts';
import { compareText } from '../../functions/core/text-order.ts';

/*
 * The behaviour every PromotionStateStore shares (DynamoDB on moto, the memory twin): the same
 * records back, and the same write rule for promotions and deployments: a record is written
 * only when none is stored for its (pipeline, environment) or the stored one's event is not
 * newer (equal instants allowed), event times compared as instants, not as text.
 */

export type ContractStore = PromotionStateStore;

const pipeline = { namespace: 'flux-system', name: 'podinfo' };

const deployment = (
  environment: string,
  revision: string,
  eventTimestamp: string,
): DeploymentRecord => ({
  pipeline,
  environment,
  revision,
  eventTimestamp,
  recordedAt: '2026-11-02T10:30:00.000Z',
});

const promotion = (
  state: PromotionState,
  revision: string,
  eventTimestamp: string,
  extra: Partial<Pick<PromotionRecord, 'pullRequest' | 'failure' | 'environment' | 'from'>> = {},
): PromotionRecord => ({
  pipeline,
  environment: 'staging',
  revision,
  state,
  jobId: `job-${revision}`,
  from: 'dev',
  eventTimestamp,
  updatedAt: '2026-11-02T10:30:00.000Z',
  ...extra,
});

export const describePromotionStateStoreContract = (
  name: string,
  makeStore: () => Promise<ContractStore>,
): void => {
  describe(`${name}: the PromotionStateStore contract`, () => {
    it('round-trips promotion records with their pull request and failure', async () => {
      // Prepare
      const store = await makeStore();
      const opened = promotion('opened', '6.5.4', '2026-11-02T10:00:00Z', {
        pullRequest: { number: 42, url: 'https://github.com/example-org/fleet/pull/42' },
      });
      const failed = promotion('failed', '6.5.4', '2026-11-02T10:00:00Z', {
        environment: 'prod',
        from: 'staging',
        failure: {
          code: 'NO_MARKER',
          message: 'no $promotion marker for flux-system:podinfo:prod',
        },
      });

      // Act
      const written = [await store.putPromotion(opened), await store.putPromotion(failed)];

      // Assess
      expect(written).toEqual([true, true]);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(opened);
      expect(await store.getPromotion(pipeline, 'prod')).toEqual(failed);
      expect(await store.getPromotion(pipeline, 'qa')).toBeUndefined();
      expect(await store.getPromotion({ ...pipeline, name: 'other' }, 'staging')).toBeUndefined();
    });

    it('keeps the stored promotion when a late event (older timestamp) arrives', async () => {
      // Prepare
      const store = await makeStore();
      const current = promotion('updated', '6.5.4', '2026-11-02T10:05:00Z');
      await store.putPromotion(current);

      // Act: the late event's job ends superseded, or opened: neither may win.
      const superseded = await store.putPromotion(
        promotion('superseded', '6.5.3', '2026-11-02T10:00:00Z'),
      );
      await store.putPromotion(promotion('opened', '6.5.2', '2026-11-02T09:00:00Z'));

      // Assess
      expect(superseded).toBe(false);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(current);
    });

    it('orders by instant, not by text, when timestamps carry different offsets', async () => {
      // Prepare: 10:30+02:00 is 08:30Z, older than 09:00Z although it sorts after it as text;
      // 08:30-02:00 is 10:30Z, newer although it sorts before it.
      const store = await makeStore();
      const current = promotion('opened', '6.5.4', '2026-11-02T09:00:00Z');
      await store.putPromotion(current);

      // Act
      const older = await store.putPromotion(
        promotion('opened', '6.5.3', '2026-11-02T10:30:00+02:00'),
      );
      const newer = promotion('opened', '6.5.5', '2026-11-02T08:30:00-02:00');
      const later = await store.putPromotion(newer);

      // Assess
      expect([older, later]).toEqual([false, true]);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(newer);
    });

    it('replaces the whole promotion record on an equal event time, the same instant in another offset too', async () => {
      // Prepare
      const store = await makeStore();
      await store.putPromotion(
        promotion('failed', '6.5.4', '2026-11-02T10:00:00Z', {
          failure: { code: 'GITHUB_UNAVAILABLE', message: '502' },
        }),
      );
      const retried = promotion('opened', '6.5.4', '2026-11-02T10:00:00Z', {
        pullRequest: { number: 7, url: 'https://github.com/example-org/fleet/pull/7' },
      });
      const sameInstant = promotion('updated', '6.5.4', '2026-11-02T11:00:00+01:00', {
        pullRequest: { number: 7, url: 'https://github.com/example-org/fleet/pull/7' },
      });

      // Act
      const first = await store.putPromotion(retried);
      const afterFirst = await store.getPromotion(pipeline, 'staging');
      const second = await store.putPromotion(sameInstant);

      // Assess: fields of the earlier record (its failure) do not linger.
      expect([first, second]).toEqual([true, true]);
      expect(afterFirst).toEqual(retried);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(sameInstant);
    });

    it('lets a newer event replace a promotion record', async () => {
      // Prepare
      const store = await makeStore();
      await store.putPromotion(promotion('failed', '6.5.3', '2026-11-02T10:00:00Z'));
      const newer = promotion('opened', '6.5.4', '2026-11-02T10:05:00Z');

      // Act
      const written = await store.putPromotion(newer);

      // Assess
      expect(written).toBe(true);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(newer);
    });

    it('keeps the latest deployment per environment: a late one is not written, an equal one is', async () => {
      // Prepare
      const store = await makeStore();
      await store.recordDeployment(deployment('dev', '6.5.3', '2026-11-02T10:00:00Z'));
      await store.recordDeployment(deployment('dev', '6.5.4', '2026-11-02T10:05:00Z'));

      // Act
      const late = await store.recordDeployment(deployment('dev', '6.5.2', '2026-11-02T09:00:00Z'));
      const lateByOffset = await store.recordDeployment(
        deployment('dev', '6.5.1', '2026-11-02T11:00:00+02:00'),
      );
      const afterLate = await store.listDeployments(pipeline);
      const redeploy = deployment('dev', '6.5.4', '2026-11-02T12:05:00+02:00');
      const equal = await store.recordDeployment({
        ...redeploy,
        recordedAt: '2026-11-02T10:31:00.000Z',
      });

      // Assess
      expect([late, lateByOffset, equal]).toEqual([false, false, true]);
      expect(afterLate).toEqual([deployment('dev', '6.5.4', '2026-11-02T10:05:00Z')]);
      expect(await store.listDeployments(pipeline)).toEqual([
        { ...redeploy, recordedAt: '2026-11-02T10:31:00.000Z' },
      ]);
    });

    it("lists a pipeline's deployments and promotions by environment, and only that pipeline's", async () => {
      // Prepare
      const store = await makeStore();
      const other = { namespace: 'flux-system', name: 'other' };
      const prod = deployment('prod', '6.5.1', '2026-11-01T08:00:00Z');
      const dev = deployment('dev', '6.5.4', '2026-11-02T10:05:00Z');
      const intoStaging = promotion('opened', '6.5.4', '2026-11-02T10:05:00Z');
      const intoProd = promotion('up-to-date', '6.5.1', '2026-11-01T08:00:00Z', {
        environment: 'prod',
        from: 'staging',
      });
      await store.recordDeployment(prod);
      await store.recordDeployment(dev);
      await store.recordDeployment({ ...dev, pipeline: other });
      await store.putPromotion(intoStaging);
      await store.putPromotion(intoProd);

      // Act
      const deployments = await store.listDeployments(pipeline);
      const promotions = await store.listPromotions(pipeline);
      const otherPromotions = await store.listPromotions(other);
      const unknown = { namespace: 'flux-system', name: 'unknown' };

      // Assess
      expect(deployments).toEqual([dev, prod]);
      expect(promotions).toEqual([intoProd, intoStaging]);
      expect(await store.listDeployments(other)).toEqual([{ ...dev, pipeline: other }]);
      expect(otherPromotions).toEqual([]);
      expect(await store.listDeployments(unknown)).toEqual([]);
      expect(await store.listPromotions(unknown)).toEqual([]);
    });

    it('refuses an event timestamp that is not a date-time, naming it, and writes nothing', async () => {
      // Prepare
      const store = await makeStore();

      // Act
      const promotionError = await store
        .putPromotion(promotion('opened', '6.5.4', 'yesterday'))
        .catch((caught: unknown) => caught);
      const deploymentError = await store
        .recordDeployment(deployment('dev', '6.5.4', 'not-a-time'))
        .catch((caught: unknown) => caught);

      // Assess
      expect(promotionError).toBeInstanceOf(RangeError);
      expect((promotionError as Error).message).toContain('"yesterday"');
      expect(deploymentError).toBeInstanceOf(RangeError);
      expect(await store.listPromotions(pipeline)).toEqual([]);
      expect(await store.listDeployments(pipeline)).toEqual([]);
    });
    it('keeps a settled promotion of the same revision, even from a later event; another revision replaces it', async () => {
      // Prepare
      const store = await makeStore();
      const merged = promotion('merged', '6.5.4', '2026-11-02T10:00:00Z');
      await store.putPromotion(promotion('opened', '6.5.4', '2026-11-02T10:00:00Z'));
      await store.transitionPromotion(merged, { revision: '6.5.4', states: ['opened'] });

      // Act
      const sameRevisionLater = await store.putPromotion(
        promotion('pushing', '6.5.4', '2026-11-02T11:00:00Z'),
      );
      const afterSame = await store.getPromotion(pipeline, 'staging');
      const newer = promotion('pushing', '6.5.5', '2026-11-02T11:00:00Z');
      const otherRevision = await store.putPromotion(newer);

      // Assess
      expect([sameRevisionLater, otherRevision]).toEqual([false, true]);
      expect(afterSame).toEqual(merged);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(newer);
    });

    it('moves a promotion on only from the expected revision and states (compare and set)', async () => {
      // Prepare
      const store = await makeStore();
      const opened = promotion('opened', '6.5.4', '2026-11-02T10:00:00Z', {
        pullRequest: { number: 7, url: 'https://github.com/example-org/fleet/pull/7' },
      });
      await store.putPromotion(opened);
      const merged = {
        ...promotion('merged', '6.5.4', '2026-11-02T10:00:00Z'),
        pullRequest: {
          number: 7,
          url: opened.pullRequest?.url ?? '',
          state: 'merged' as const,
          mergeCommit: 'abc',
        },
        timeline: {
          sourceDeployedAt: '2026-11-02T10:00:00.000Z',
          mergedAt: '2026-11-02T10:20:00.000Z',
        },
      };

      // Act
      const wrongRevision = await store.transitionPromotion(merged, {
        revision: '6.5.3',
        states: ['opened'],
      });
      const wrongState = await store.transitionPromotion(merged, {
        revision: '6.5.4',
        states: ['pushing'],
      });
      const moved = await store.transitionPromotion(merged, {
        revision: '6.5.4',
        states: ['opened', 'updated'],
      });
      const missing = await store.transitionPromotion(
        { ...merged, environment: 'prod' },
        { revision: '6.5.4', states: ['opened'] },
      );

      // Assess
      expect([wrongRevision, wrongState, moved, missing]).toEqual([false, false, true, false]);
      expect(await store.getPromotion(pipeline, 'staging')).toEqual(merged);
      expect(await store.getPromotion(pipeline, 'prod')).toBeUndefined();
    });

    it('keeps the first failure of an incident and answers it once when the incident closes', async () => {
      // Prepare
      const store = await makeStore();

      // Act
      const first = await store.openIncident(pipeline, 'prod', '2026-11-02T10:00:00.000Z');
      const again = await store.openIncident(pipeline, 'prod', '2026-11-02T10:05:00.000Z');
      const closed = await store.closeIncident(pipeline, 'prod');
      const closedAgain = await store.closeIncident(pipeline, 'prod');
      const otherEnv = await store.closeIncident(pipeline, 'staging');

      // Assess
      expect([first, again]).toEqual([true, false]);
      expect(closed).toBe('2026-11-02T10:00:00.000Z');
      expect([closedAgain, otherEnv]).toEqual([undefined, undefined]);
    });

    it('keeps one deployment per target of an environment, each with the late-event rule', async () => {
      // Prepare
      const store = await makeStore();
      const report = (target: string, revision: string, at: string, ok?: boolean) => ({
        ...deployment('staging', revision, at),
        target,
        ...(ok === undefined ? {} : { ok }),
      });

      // Act
      await store.recordDeployment(report('staging-eu/podinfo', '6.5.0', '2026-11-02T10:00:00Z'));
      await store.recordDeployment(report('staging-us/podinfo', '6.5.0', '2026-11-02T10:01:00Z'));
      await store.recordDeployment(
        report('staging-us/podinfo', '6.5.1', '2026-11-02T10:05:00Z', false),
      );
      const late = await store.recordDeployment(
        report('staging-eu/podinfo', '6.4.9', '2026-11-02T09:00:00Z'),
      );

      // Assess
      expect(late).toBe(false);
      const stored = await store.listDeployments(pipeline);
      expect(
        stored
          .map((record) => [record.target, record.revision, record.ok])
          .sort((a, b) => compareText(String(a[0]), String(b[0]))),
      ).toEqual([
        ['staging-eu/podinfo', '6.5.0', undefined],
        ['staging-us/podinfo', '6.5.1', false],
      ]);
    });

    it('keeps one freeze per scope, lists them all, and removes exactly the scope asked for', async () => {
      // Prepare
      const store = await makeStore();
      const everything = { reason: 'change freeze', by: 'ops', at: '2026-12-20T00:00:00.000Z' };
      const prod = {
        environment: 'prod',
        reason: 'incident INC-7',
        by: 'arn:aws:iam::1:user/ana',
        at: '2026-12-01T10:00:00.000Z',
        until: '2026-12-01T12:00:00.000Z',
      };

      // Act
      await store.putFreeze(everything);
      await store.putFreeze({ ...prod, reason: 'first reason' });
      await store.putFreeze(prod);
      await store.putFreeze({ ...prod, pipeline: 'flux-system/podinfo' });
      const removedOther = await store.removeFreeze({ pipeline: 'flux-system/search' });
      const removed = await store.removeFreeze({
        pipeline: 'flux-system/podinfo',
        environment: 'prod',
      });

      // Assess
      expect([removedOther, removed]).toEqual([false, true]);
      const freezes = await store.listFreezes();
      expect(freezes).toHaveLength(2);
      expect(freezes).toEqual(expect.arrayContaining([everything, prod]));
    });

    it('round-trips what a held promotion keeps: its gate, its due time, its job, its approval', async () => {
      // Prepare
      const store = await makeStore();
      const waiting: PromotionRecord = {
        ...promotion('awaiting-approval', '6.5.4', '2026-11-02T10:00:00Z', { environment: 'prod' }),
        approvedBy: 'arn:aws:iam::1:user/ana',
        dueAt: '2026-11-02T10:30:00.000Z',
        waitingFor: { soak: { until: '2026-11-02T10:30:00.000Z' } },
        timeline: { approvalRequestedAt: '2026-11-02T10:00:00.000Z' },
        job: {
          version: 1,
          id: 'job-6.5.4',
          pipeline,
          from: 'staging',
          to: 'prod',
          revision: '6.5.4',
          event: {
            timestamp: '2026-11-02T10:00:00Z',
            reason: 'UpgradeSucceeded',
            message: 'Helm upgrade succeeded',
            involvedObject: {
              kind: 'HelmRelease',
              namespace: 'podinfo-qa',
              name: 'podinfo',
              apiVersion: 'helm.toolkit.fluxcd.io/v2',
            },
          },
          receivedAt: '2026-11-02T10:00:01.000Z',
        },
      };

      // Act
      await store.putPromotion(waiting);

      // Assess
      expect(await store.getPromotion(pipeline, 'prod')).toEqual(waiting);
    });
  });
};
