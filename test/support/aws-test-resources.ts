import { randomUUID } from 'node:crypto';
import {
  CreateTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, inject } from 'vitest';
import {
  createDocumentClient,
  PARTITION_KEY,
  SORT_KEY,
  type TableKey,
  TTL_ATTRIBUTE,
  tableDefinition,
} from '../../functions/adapters/dynamodb-table.ts';
import { awsClientConfig } from './moto-server.ts';

/**
 * The AWS resources tests create on moto (moto-server.ts), each with a unique name so that tests
 * share the server and nothing else.
 */

export interface MotoDynamoDb {
  readonly client: DynamoDBClient;
  /** The document client the adapters take, over `client`. */
  readonly documents: DynamoDBDocumentClient;
}

/**
 * DynamoDB clients on the run's moto server for the enclosing `describe` (or file): created in
 * a `beforeAll` hook, destroyed in an `afterAll` one. Read the fields in hooks and tests, not
 * while collecting them.
 */
export const useMotoDynamoDb = (): MotoDynamoDb => {
  let clients: MotoDynamoDb | undefined;
  const opened = (): MotoDynamoDb => {
    if (clients === undefined) throw new Error('useMotoDynamoDb: read before its beforeAll ran');
    return clients;
  };
  beforeAll(() => {
    const client = new DynamoDBClient(awsClientConfig(inject('motoEndpoint')));
    clients = { client, documents: createDocumentClient(client) };
  });
  afterAll(() => clients?.client.destroy());
  return {
    get client() {
      return opened().client;
    },
    get documents() {
      return opened().documents;
    },
  };
};

/** A fresh service table as the stack creates it (pk/sk, on-demand, TTL on `expiresAt`). */
export const createTestTable = async (
  client: DynamoDBClient,
  namePrefix = 'pipeline-promoter',
): Promise<string> => {
  const tableName = `${namePrefix}-${randomUUID()}`;
  await client.send(new CreateTableCommand(tableDefinition(tableName)));
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
    }),
  );
  return tableName;
};

/** A table key as the low-level client's GetItem takes it, to read an item as it is stored. */
export const attributeKey = (key: TableKey) => ({
  [PARTITION_KEY]: { S: key[PARTITION_KEY] },
  [SORT_KEY]: { S: key[SORT_KEY] },
});

export interface FifoQueueOptions {
  /** @default 'promotions' */
  readonly namePrefix?: string;
  /** Seconds a received message stays hidden. @default the queue's default (30 s) */
  readonly visibilityTimeoutSeconds?: number;
}

/** A fresh FIFO queue with explicit deduplication ids (as the job queue); resolves to its URL. */
export const createFifoQueue = async (
  client: SQSClient,
  options: FifoQueueOptions = {},
): Promise<string> => {
  const response = await client.send(
    new CreateQueueCommand({
      QueueName: `${options.namePrefix ?? 'promotions'}-${randomUUID()}.fifo`,
      Attributes: {
        FifoQueue: 'true',
        ContentBasedDeduplication: 'false',
        ...(options.visibilityTimeoutSeconds === undefined
          ? {}
          : { VisibilityTimeout: String(options.visibilityTimeoutSeconds) }),
      },
    }),
  );
  if (response.QueueUrl === undefined) throw new Error('moto returned no queue URL');
  return response.QueueUrl;
};

/** A secret with a string value; an object is stored as its JSON. */
export const createTestSecret = async (
  client: SecretsManagerClient,
  name: string,
  value: string | object,
): Promise<void> => {
  await client.send(
    new CreateSecretCommand({
      Name: name,
      SecretString: typeof value === 'string' ? value : JSON.stringify(value),
    }),
  );
};
