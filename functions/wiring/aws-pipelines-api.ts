import { readPipelinesApiConfig } from '../config.ts';
import type { PipelinesApiDependencies } from '../core/pipelines-api.ts';
import { logger } from '../observability.ts';
import { createTableStores } from './aws-stores.ts';

/**
 * The pipelines API function's composition root: the DynamoDB pipeline store (read and written
 * directly, with strongly consistent reads and no cache: a sync must see what is stored) and the
 * promotion state, for the status. No Secrets Manager, SQS, git or GitHub code.
 */
export const createPipelinesApiDependencies = (
  config = readPipelinesApiConfig(),
): PipelinesApiDependencies => {
  const { registry, state } = createTableStores(config);
  return { pipelines: registry, registry, state, logger };
};
