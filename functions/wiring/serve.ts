import { FilePipelineStore } from '../adapters/file-pipeline-store.ts';
import { FileSecretStore } from '../adapters/file-secret-store.ts';
import { IsomorphicGitConfigRepository } from '../adapters/isomorphic-git-config-repository.ts';
import { MemoryJobQueue } from '../adapters/memory-job-queue.ts';
import { MemoryMetricsSink } from '../adapters/memory-metrics-sink.ts';
import { MemoryPromotionStateStore } from '../adapters/memory-promotion-state-store.ts';
import { createOctokitPullRequests } from '../adapters/octokit-pull-requests.ts';
import { decisionSettings } from '../core/decision.ts';
import type { LogPort } from '../core/logger.ts';
import type { PipelinesApiDependencies } from '../core/pipelines-api.ts';
import { systemClock } from '../core/ports.ts';
import { type PromotionDependencies, runPromotion } from '../core/promotion.ts';
import type { WebhookDependencies } from '../core/webhook.ts';

/**
 * The composition root of `promoter serve`: pipelines and secrets from files, an in-memory
 * queue whose in-process worker runs the same promotion core as the Lambda worker.
 */
export interface ServeSettings {
  readonly pipelinesPath: string;
  readonly secretsPath: string;
  readonly gitCacheDir?: string;
  readonly maxEventAgeSeconds?: number;
  /** Delay before retry N of a transient failure (tests shorten it). */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Options for the GitHub client (tests shorten its retry waits). */
  readonly github?: Parameters<typeof createOctokitPullRequests>[0];
  /** False: jobs stay queued (the webhook benchmark measures the webhook alone). */
  readonly runWorker?: boolean;
}

export interface ServeApp {
  readonly webhook: WebhookDependencies;
  readonly promotion: PromotionDependencies;
  readonly queue: MemoryJobQueue;
  readonly pipelines: FilePipelineStore;
  readonly state: MemoryPromotionStateStore;
  readonly metrics: MemoryMetricsSink;
  /** The status API (`GET /pipelines/{ns}/{name}`); no registry: serve reads files. */
  readonly pipelinesApi: PipelinesApiDependencies;
  close(): void;
}

export const createServeApp = async (
  settings: ServeSettings,
  logger: LogPort,
): Promise<ServeApp> => {
  const pipelines = await FilePipelineStore.load(settings.pipelinesPath, logger);
  pipelines.watch();
  const secrets = await FileSecretStore.load(settings.secretsPath);
  const state = new MemoryPromotionStateStore();
  const metrics = new MemoryMetricsSink();
  const queue = new MemoryJobQueue({
    logger,
    ...(settings.retryDelayMs === undefined ? {} : { retryDelayMs: settings.retryDelayMs }),
  });
  const common = { pipelines, secrets, state, clock: systemClock, metrics, logger };
  const promotion: PromotionDependencies = {
    ...common,
    repository: new IsomorphicGitConfigRepository(
      settings.gitCacheDir === undefined ? {} : { cacheDir: settings.gitCacheDir },
    ),
    pullRequests: createOctokitPullRequests(settings.github),
  };
  if (settings.runWorker !== false) {
    queue.process(async (job) => {
      await runPromotion(job, promotion);
    });
  }
  return {
    webhook: {
      ...common,
      queue,
      settings: decisionSettings(
        settings.maxEventAgeSeconds === undefined
          ? {}
          : { maxEventAgeSeconds: settings.maxEventAgeSeconds },
      ),
    },
    promotion,
    queue,
    pipelines,
    state,
    metrics,
    pipelinesApi: { pipelines, state, logger },
    close: () => pipelines.close(),
  };
};
