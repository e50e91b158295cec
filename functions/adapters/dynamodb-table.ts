import type { CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { errorMessage, PromoterError } from '../core/errors.ts';
import type { PipelineRef } from '../core/pipeline.ts';

/**
 * The one DynamoDB table of the service, shared by the adapters and the CDK stack (which must
 * create it with exactly these names):
 *
 * | attribute   | type | role                                                         |
 * |-------------|------|--------------------------------------------------------------|
 * | `pk`        | S    | partition key: `PIPELINE#{namespace}/{name}`                 |
 * | `sk`        | S    | sort key: what the item is, below                            |
 * | `expiresAt` | N    | TTL attribute, epoch seconds; items without it never expire  |
 *
 * Items of one pipeline's partition:
 * - `sk = DEFINITION`: the normalised `Pipeline` as the map `pipeline`, with `contentHash`
 *   (sha256 of its canonical JSON: sync writes only when it changed) and `updatedAt`.
 * - `sk = DEPLOYMENT#{env}`: the latest `DeploymentRecord` of that environment.
 * - `sk = PROMOTION#{env}`: the latest `PromotionRecord` into that environment.
 * - `sk = INCIDENT#{env}`: the environment's open run of failures (`openedAt`), if any.
 *
 * And one partition per GitHub delivery handled: `pk = DELIVERY#{id}`, `sk = DELIVERY`, with
 * `expiresAt`.
 *
 * Everything about one pipeline is one Query away. There is no GSI: listing pipelines is a Scan
 * filtered on `sk = DEFINITION`, which reads every item (a few per pipeline) and is cheap and
 * fast for the hundreds of pipelines a management cluster has; a GSI on `sk` would be the move
 * for tens of thousands. Billing mode is PAY_PER_REQUEST.
 */
export const PARTITION_KEY = 'pk';
export const SORT_KEY = 'sk';
export const TTL_ATTRIBUTE = 'expiresAt';

export const PIPELINE_KEY_PREFIX = 'PIPELINE#';
export const DEFINITION_SORT_KEY = 'DEFINITION';
export const DEPLOYMENT_SORT_KEY_PREFIX = 'DEPLOYMENT#';
export const PROMOTION_SORT_KEY_PREFIX = 'PROMOTION#';
export const INCIDENT_SORT_KEY_PREFIX = 'INCIDENT#';

export interface TableKey {
  readonly pk: string;
  readonly sk: string;
}

export const pipelinePartitionKey = (ref: PipelineRef): string =>
  `${PIPELINE_KEY_PREFIX}${ref.namespace}/${ref.name}`;

export const definitionKey = (ref: PipelineRef): TableKey => ({
  pk: pipelinePartitionKey(ref),
  sk: DEFINITION_SORT_KEY,
});

export const deploymentKey = (ref: PipelineRef, environment: string): TableKey => ({
  pk: pipelinePartitionKey(ref),
  sk: `${DEPLOYMENT_SORT_KEY_PREFIX}${environment}`,
});

export const promotionKey = (ref: PipelineRef, environment: string): TableKey => ({
  pk: pipelinePartitionKey(ref),
  sk: `${PROMOTION_SORT_KEY_PREFIX}${environment}`,
});

export const incidentKey = (ref: PipelineRef, environment: string): TableKey => ({
  pk: pipelinePartitionKey(ref),
  sk: `${INCIDENT_SORT_KEY_PREFIX}${environment}`,
});

export const deliveryKey = (id: string): TableKey => ({ pk: `DELIVERY#${id}`, sk: 'DELIVERY' });

/** The table as the CDK stack creates it, for tests and self-hosted set-ups. */
export const tableDefinition = (tableName: string): CreateTableCommandInput => ({
  TableName: tableName,
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [
    { AttributeName: PARTITION_KEY, AttributeType: 'S' },
    { AttributeName: SORT_KEY, AttributeType: 'S' },
  ],
  KeySchema: [
    { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
    { AttributeName: SORT_KEY, KeyType: 'RANGE' },
  ],
});

/** The document client the adapters take; create it once, at start-up. */
export const createDocumentClient = (client: DynamoDBClient): DynamoDBDocumentClient =>
  DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
  });

export const isConditionalCheckFailed = (error: unknown): boolean =>
  error instanceof Error && error.name === 'ConditionalCheckFailedException';

/** Any DynamoDB failure as STORE_UNAVAILABLE (retryable), naming the table and the operation. */
export const storeError = (error: unknown, tableName: string, operation: string): PromoterError =>
  new PromoterError(
    'STORE_UNAVAILABLE',
    `DynamoDB table ${tableName}: ${operation} failed: ${error instanceof Error ? error.name : 'Error'}: ${errorMessage(error)}`,
    { retryable: true, cause: error, data: { table: tableName, operation } },
  );
