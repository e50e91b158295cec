import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsJobQueue } from '../adapters/sqs-job-queue.ts';
import { ENV, readWebhookConfig } from '../config.ts';
import { decisionSettings } from '../core/decision.ts';
import { systemClock } from '../core/ports.ts';
import type { WebhookDependencies } from '../core/webhook.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';
import { clientConfig, createStores } from './aws-stores.ts';

/**
 * The webhook function's composition root (no git or GitHub code: it keeps the bundle small).
 */
export const createWebhookDependencies = (config = readWebhookConfig()): WebhookDependencies => {
  return {
    ...createStores(config),
    queue: new SqsJobQueue(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
    clock: systemClock,
    metrics: new PowertoolsMetricsSink(),
    logger,
    settings: decisionSettings({
      maxEventAgeSeconds: config[ENV.maxEventAgeSeconds],
      promotingReasons: config[ENV.promotingReasons],
    }),
  };
};
