import { SQSClient } from '@aws-sdk/client-sqs';
import { CachedPipelineStore } from '../adapters/cached-pipeline-store.ts';
import { IsomorphicGitConfigRepository } from '../adapters/isomorphic-git-config-repository.ts';
import { createOctokitPullRequests } from '../adapters/octokit-pull-requests.ts';
import { SqsRedelivery } from '../adapters/sqs-redelivery.ts';
import { ENV, readWorkerConfig } from '../config.ts';
import { systemClock } from '../core/ports.ts';
import type { PromotionDependencies } from '../core/promotion.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';
import { clientConfig, createStores } from './aws-stores.ts';

/**
 * The worker function's composition root. Pipeline definitions are read through a short-TTL
 * cache (PROMOTER_PIPELINE_CACHE_SECONDS).
 */
export const createWorkerDependencies = (
  config = readWorkerConfig(),
): { promotion: PromotionDependencies; redelivery: SqsRedelivery } => {
  const cacheDir = config[ENV.gitCacheDir];
  const stores = createStores(config);
  const promotion: PromotionDependencies = {
    ...stores,
    pipelines: new CachedPipelineStore(stores.pipelines, {
      ttlMs: config[ENV.pipelineCacheSeconds] * 1000,
    }),
    repository: new IsomorphicGitConfigRepository(cacheDir === undefined ? {} : { cacheDir }),
    pullRequests: createOctokitPullRequests({
      log: {
        debug: () => {},
        info: () => {},
        warn: (message: string) => logger.warn(message),
        error: (message: string) => logger.error(message),
      },
    }),
    clock: systemClock,
    metrics: new PowertoolsMetricsSink(),
    logger,
  };
  return {
    promotion,
    redelivery: new SqsRedelivery(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
  };
};
