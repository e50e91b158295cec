import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerSecretStore } from '../adapters/secrets-manager-secret-store.ts';
import { SqsJobQueue } from '../adapters/sqs-job-queue.ts';
import { ENV, readPipelinesApiConfig } from '../config.ts';
import type { PipelinesApiDependencies } from '../core/pipelines-api.ts';
import { systemClock } from '../core/ports.ts';
import { logger, PowertoolsMetricsSink } from '../observability.ts';
import {
  clientConfig,
  createTableStores,
  eventBusNotices,
  gateScheduleTimer,
} from './aws-stores.ts';

/**
 * The pipelines API function's composition root: the DynamoDB pipeline store (read and written
 * directly, with strongly consistent reads and no cache: a sync must see what is stored), the
 * promotion state, for the status, the secrets, only to warn of shared webhook keys in the
 * sync answer, and the job queue for approvals and unfreezes. No git or GitHub code.
 */
export const createPipelinesApiDependencies = (
  config = readPipelinesApiConfig(),
): PipelinesApiDependencies => {
  const { registry, state } = createTableStores(config);
  const secrets = new SecretsManagerSecretStore(new SecretsManagerClient(clientConfig(config)), {
    prefix: config[ENV.secretPrefix],
    ttlMs: config[ENV.secretTtlSeconds] * 1000,
  });
  const gates = {
    pipelines: registry,
    state,
    queue: new SqsJobQueue(new SQSClient(clientConfig(config)), config[ENV.queueUrl]),
    clock: systemClock,
    metrics: new PowertoolsMetricsSink(),
    logger,
    ...eventBusNotices(config),
    ...gateScheduleTimer(config),
  };
  return { pipelines: registry, registry, state, secrets, logger, gates };
};
