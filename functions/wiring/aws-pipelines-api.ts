import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbPipelineStore } from '../adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../adapters/dynamodb-table.ts';
import { ENV, readPipelinesApiConfig } from '../config.ts';
import type { PipelinesApiDependencies } from '../core/pipelines-api.ts';
import { logger } from '../observability.ts';
import { clientConfig } from './aws-stores.ts';

/**
 * The pipelines API function's composition root: the DynamoDB pipeline store (read and written
 * directly, with strongly consistent reads and no cache: a sync must see what is stored) and the
 * promotion state, for the status. No Secrets Manager, SQS, git or GitHub code.
 */
export const createPipelinesApiDependencies = (
  config = readPipelinesApiConfig(),
): PipelinesApiDependencies => {
  const documents = createDocumentClient(new DynamoDBClient(clientConfig(config)));
  const registry = new DynamoDbPipelineStore(documents, config[ENV.tableName]);
  return {
    pipelines: registry,
    registry,
    state: new DynamoDbPromotionStateStore(documents, config[ENV.tableName]),
    logger,
  };
};
