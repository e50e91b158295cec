import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsJobQueue } from '../adapters/sqs-job-queue.ts';
import { ENV, readWebhookConfig } from '../config.ts';
import { decisionSettings } from '../core/decision.ts';
import type { GitHubWebhookDependencies } from '../core/github-webhook.ts';
import type { GitLabWebhookDependencies } from '../core/gitlab-webhook.ts';
import { systemClock } from '../core/ports.ts';
import type { WebhookDependencies } from '../core/webhook.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';
import { clientConfig, createStores, eventBusNotices, gateScheduleTimer } from './aws-stores.ts';

/**
 * The webhook function's composition root: Flux's webhook, GitHub's and GitLab's (no git,
 * GitHub or GitLab API code: it keeps the bundle small).
 */
export const createWebhookDependencies = (
  config = readWebhookConfig(),
): {
  webhook: WebhookDependencies;
  github: GitHubWebhookDependencies;
  gitlab: GitLabWebhookDependencies;
} => {
  const { pipelines, state, secrets, deliveries } = createStores(config);
  const common = {
    pipelines,
    state,
    clock: systemClock,
    metrics: new PowertoolsMetricsSink(),
    logger,
    ...eventBusNotices(config),
  };
  return {
    webhook: {
      ...common,
      secrets,
      queue: new SqsJobQueue(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
      ...gateScheduleTimer(config),
      settings: decisionSettings({
        maxEventAgeSeconds: config[ENV.maxEventAgeSeconds],
        promotingReasons: config[ENV.promotingReasons],
      }),
    },
    github: { ...common, webhookSecrets: secrets, deliveries },
    gitlab: { ...common, webhookSecrets: secrets, deliveries },
  };
};
