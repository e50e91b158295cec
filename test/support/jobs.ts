import { type PromotionJob, promotionJobId } from '../../functions/core/promotion-job.ts';

/** The pipeline of testJob's jobs unless overridden. */
export const TEST_PIPELINE = { namespace: 'flux-system', name: 'podinfo' };

/**
 * A valid promotion job of flux-system/podinfo to `to` at `revision` (from `staging`, or from
 * `dev` when `to` is `staging`), as a Flux HelmRelease upgrade in podinfo-dev reported it.
 * The id comes from the pipeline (`overrides.pipeline` when given), `to`, `revision` and the
 * event's timestamp (`overrides.event` when given); every
 * other override, `id` included, replaces its field as given (e.g. an invalid `revision: ''`).
 */
export const testJob = (
  to: string,
  revision: string,
  overrides: Partial<PromotionJob> = {},
): PromotionJob => {
  const pipeline = overrides.pipeline ?? TEST_PIPELINE;
  const timestamp = overrides.event?.timestamp ?? '2026-11-02T10:00:00Z';
  return {
    version: 1,
    id: promotionJobId(pipeline, to, revision, timestamp),
    pipeline,
    from: to === 'staging' ? 'dev' : 'staging',
    to,
    revision,
    event: {
      timestamp,
      reason: 'UpgradeSucceeded',
      message: 'Helm upgrade succeeded',
      involvedObject: {
        kind: 'HelmRelease',
        namespace: 'podinfo-dev',
        name: 'podinfo',
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
      },
    },
    receivedAt: '2026-11-02T10:00:01Z',
    ...overrides,
  };
};
