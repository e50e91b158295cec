import { SQSClient } from '@aws-sdk/client-sqs';
import { SmartHttpConfigRepository } from '../adapters/git/smart-http-config-repository.ts';
import { GitHubAppInstallationTokens } from '../adapters/github-app-tokens.ts';
import { createGitLabMergeRequests } from '../adapters/gitlab-merge-requests.ts';
import { createOctokitPullRequests } from '../adapters/octokit-pull-requests.ts';
import { routePullRequests } from '../adapters/pull-requests-by-provider.ts';
import { SqsJobQueue } from '../adapters/sqs-job-queue.ts';
import { SqsRedelivery } from '../adapters/sqs-redelivery.ts';
import { ENV, readWorkerConfig } from '../config.ts';
import { strictAddressPolicy } from '../core/http.ts';
import { systemClock } from '../core/ports.ts';
import type { PromotionDependencies } from '../core/promotion.ts';
import type { GateSweepDependencies } from '../core/promotion-gates.ts';
import type { ReconcileDependencies } from '../core/promotion-lifecycle.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';
import { clientConfig, createStores, eventBusNotices } from './aws-stores.ts';

/** The worker function's composition root. */
export const createWorkerDependencies = (
  config = readWorkerConfig(),
): {
  promotion: PromotionDependencies;
  registry: ReturnType<typeof createStores>['registry'];
  redelivery: SqsRedelivery;
  maxReceiveCount: number;
} => {
  const stores = createStores(config);
  const cacheDir = config[ENV.gitCacheDir];
  // Loopback, link-local and private addresses only for the hosts the stack lists (DESIGN 14).
  const addressPolicy = strictAddressPolicy(config[ENV.allowedGitHosts]);
  const mib = 1024 * 1024;
  const packMb = config[ENV.gitMaxPackMb];
  const objectMb = config[ENV.gitMaxObjectMb];
  const depth = config[ENV.gitMaxDeltaDepth];
  const timeout = config[ENV.promotionTimeoutSeconds];
  const promotion: PromotionDependencies = {
    pipelines: stores.pipelines,
    secrets: stores.secrets,
    state: stores.state,
    repository: new SmartHttpConfigRepository({
      ...(cacheDir === undefined ? {} : { cacheDir }),
      ...(packMb === undefined ? {} : { maxPackBytes: packMb * mib }),
      ...(objectMb === undefined ? {} : { maxObjectBytes: objectMb * mib }),
      ...(depth === undefined ? {} : { maxDeltaDepth: depth }),
      ...(timeout === undefined ? {} : { promotionTimeoutMs: timeout * 1000 }),
      // One job at a time per invocation: nothing else waits on this event loop.
      packParsing: 'inline',
      addressPolicy,
    }),
    pullRequests: routePullRequests({
      github: createOctokitPullRequests({
        addressPolicy,
        log: {
          debug: () => {},
          info: () => {},
          warn: (message: string) => logger.warn(message),
          error: (message: string) => logger.error(message),
        },
      }),
      gitlab: createGitLabMergeRequests({ addressPolicy }),
    }),
    githubApps: new GitHubAppInstallationTokens({ addressPolicy }),
    clock: systemClock,
    metrics: new PowertoolsMetricsSink(),
    logger,
    ...eventBusNotices(config),
  };
  return {
    promotion,
    redelivery: new SqsRedelivery(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
    registry: stores.registry,
    maxReceiveCount: config[ENV.maxReceiveCount],
  };
};

/**
 * The reconcile function's composition root: the worker's stores and GitHub client, the
 * pipeline registry read whole (the sweep visits every pipeline), and the job queue for the
 * promotions whose gates opened.
 */
export const createReconcileDependencies = (
  config = readWorkerConfig(),
): ReconcileDependencies & GateSweepDependencies => {
  const { promotion, registry } = createWorkerDependencies(config);
  return {
    ...promotion,
    pipelines: { get: (ref) => promotion.pipelines.get(ref), list: () => registry.list() },
    queue: new SqsJobQueue(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
  };
};
