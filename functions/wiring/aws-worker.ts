import { SQSClient } from '@aws-sdk/client-sqs';
import { IsomorphicGitConfigRepository } from '../adapters/isomorphic-git-config-repository.ts';
import { createOctokitPullRequests } from '../adapters/octokit-pull-requests.ts';
import { SqsRedelivery } from '../adapters/sqs-redelivery.ts';
import { ENV, readWorkerConfig } from '../config.ts';
import { systemClock } from '../core/ports.ts';
import type { PromotionDependencies } from '../core/promotion.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';
import { clientConfig, createStores } from './aws-stores.ts';

/** The worker function's composition root. */
export const createWorkerDependencies = (
  config = readWorkerConfig(),
): { promotion: PromotionDependencies; redelivery: SqsRedelivery; maxReceiveCount: number } => {
  const cacheDir = config[ENV.gitCacheDir];
  const promotion: PromotionDependencies = {
    ...createStores(config),
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
    maxReceiveCount: config[ENV.maxReceiveCount],
  };
};
