import type { EmbeddedPromotionStateStore } from '../../functions/adapters/embedded/embedded-promotion-state-store.ts';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { decisionSettings } from '../../functions/core/decision.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { type Pipeline, pipelineId } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import { decodePipelineSecret, secretId } from '../../functions/core/pipeline-secret.ts';
import type { Clock, SecretStore } from '../../functions/core/ports.ts';
import type { PromotionJob } from '../../functions/core/promotion-job.ts';
import type { WebhookDependencies } from '../../functions/core/webhook.ts';
import { FIXTURE_HMAC_KEY, readFixture } from './fixtures.ts';
import { inMemoryStateStore } from './state-stores.ts';

/** Webhook dependencies on in-memory twins, loaded with the fixture pipelines. */
export const fixturePipelines = (): Pipeline[] =>
  ['podinfo.yaml', 'search-rfc-draft.yaml', 'list-from-kubectl.yaml'].flatMap(
    (file) => parsePipelineManifests(readFixture(`pipelines/${file}`)).pipelines,
  );

export const memorySecrets = (values: Record<string, unknown>): SecretStore => ({
  get: async (ref) => {
    const value = values[secretId(ref)];
    if (value === undefined)
      throw new PromoterError('SECRET_NOT_FOUND', `secret ${secretId(ref)} not found`);
    return decodePipelineSecret(ref, value);
  },
});

export const FIXTURE_SECRETS = {
  'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: 'gh-token' },
  'flux-system/fleet-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: 'gh-token' },
  'shopping/my-hmac-shared-secret': {
    'hmac-key': 'new-hmac-key-for-tests',
    'hmac-key-previous': FIXTURE_HMAC_KEY,
  },
};

export interface WebhookHarness {
  readonly deps: WebhookDependencies;
  readonly jobs: PromotionJob[];
  readonly metrics: MemoryMetricsSink;
  readonly state: EmbeddedPromotionStateStore;
  now: Date;
}

export const webhookHarness = (
  options: { secrets?: SecretStore; pipelines?: Pipeline[] } = {},
): WebhookHarness => {
  const pipelines = new Map(
    (options.pipelines ?? fixturePipelines()).map((pipeline) => [pipelineId(pipeline), pipeline]),
  );
  const jobs: PromotionJob[] = [];
  const metrics = new MemoryMetricsSink();
  const state = inMemoryStateStore();
  const harness: WebhookHarness = {
    jobs,
    metrics,
    state,
    now: new Date(),
    deps: undefined as unknown as WebhookDependencies,
  };
  const clock: Clock = { now: () => harness.now };
  return Object.assign(harness, {
    deps: {
      pipelines: { get: async (ref) => pipelines.get(pipelineId(ref)) },
      secrets: options.secrets ?? memorySecrets(FIXTURE_SECRETS),
      queue: {
        enqueue: async (job: PromotionJob) => {
          if (!jobs.some((queued) => queued.id === job.id)) jobs.push(job);
        },
      },
      state,
      clock,
      metrics,
      logger: silentLogger,
      settings: decisionSettings(),
    } satisfies WebhookDependencies,
  });
};
