import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDbPipelineStore } from '../adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../adapters/dynamodb-table.ts';
import { SecretsManagerSecretStore } from '../adapters/secrets-manager-secret-store.ts';
import { ENV } from '../config.ts';

/**
 * What every Lambda function's composition root shares: the AWS clients and the stores over
 * them, created once per execution environment at start-up and reused by every invocation.
 */
export type CommonConfig = {
  readonly [ENV.tableName]: string;
  readonly [ENV.secretPrefix]: string;
  readonly [ENV.secretTtlSeconds]: number;
  readonly [ENV.awsEndpoint]?: string | undefined;
};

export const clientConfig = (config: CommonConfig): { endpoint?: string } => {
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
