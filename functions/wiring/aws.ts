import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDbPipelineStore } from '../adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../adapters/dynamodb-table.ts';
import { SecretsManagerSecretStore } from '../adapters/secrets-manager-secret-store.ts';
import { SqsJobQueue } from '../adapters/sqs-job-queue.ts';
import { decisionSettings } from '../core/decision.ts';
import { systemClock } from '../core/ports.ts';
import type { WebhookDependencies } from '../core/webhook.ts';
import { ENV, readWebhookConfig } from '../config.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';

/**
 * The composition root of the Lambda functions: settings read and AWS clients created once per
 * execution environment, at start-up, then reused by every invocation.
 */
type CommonConfig = {
  readonly [ENV.tableName]: string;
  readonly [ENV.secretPrefix]: string;
  readonly [ENV.secretTtlSeconds]: number;
  readonly [ENV.awsEndpoint]?: string | undefined;
};

const clientConfig = (config: CommonConfig): { endpoint?: string } => {
  const endpoint = config[ENV.awsEndpoint];
  return endpoint === undefined ? {} : { endpoint };
};

export const createStores = (config: CommonConfig) => {
  const documents = createDocumentClient(new DynamoDBClient(clientConfig(config)));
  return {
    pipelines: new DynamoDbPipelineStore(documents, config[ENV.tableName]),
    state: new DynamoDbPromotionStateStore(documents, config[ENV.tableName]),
    secrets: new SecretsManagerSecretStore(new SecretsManagerClient(clientConfig(config)), {
      prefix: config[ENV.secretPrefix],
      ttlMs: config[ENV.secretTtlSeconds] * 1000,
    }),
  };
};

export const createWebhookDependencies = (
  config = readWebhookConfig(),
): WebhookDependencies => ({
  ...createStores(config),
  queue: new SqsJobQueue(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
  clock: systemClock,
  metrics: new PowertoolsMetricsSink(),
  logger,
  settings: decisionSettings({
    maxEventAgeSeconds: config[ENV.maxEventAgeSeconds],
    promotingReasons: config[ENV.promotingReasons],
  }),
});
