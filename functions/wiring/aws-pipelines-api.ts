import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsManagerSecretStore } from '../adapters/secrets-manager-secret-store.ts';
import { ENV, readPipelinesApiConfig } from '../config.ts';
import type { PipelinesApiDependencies } from '../core/pipelines-api.ts';
import { logger } from '../observability.ts';
import { clientConfig, createTableStores } from './aws-stores.ts';

/**
 * The pipelines API function's composition root: the DynamoDB pipeline store (read and written
 * directly, with strongly consistent reads and no cache: a sync must see what is stored), the
 * promotion state, for the status, and the secrets, only to warn of shared webhook keys in the
 * sync answer. No SQS, git or GitHub code.
 */
export const createPipelinesApiDependencies = (
  config = readPipelinesApiConfig(),
): PipelinesApiDependencies => {
  const { registry, state } = createTableStores(config);
  const secrets = new SecretsManagerSecretStore(new SecretsManagerClient(clientConfig(config)), {
    prefix: config[ENV.secretPrefix],
    ttlMs: config[ENV.secretTtlSeconds] * 1000,
  });
  return { pipelines: registry, registry, state, secrets, logger };
};
