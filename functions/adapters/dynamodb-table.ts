import type { CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { errorMessage, PromoterError } from '../core/errors.ts';
import type { PipelineRef } from '../core/pipeline.ts';

/*
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
 * - `sk = DEPLOYMENT#{env}#{target}`: the latest `DeploymentRecord` of that target
 *   (`DEPLOYMENT#{env}` for records written before targets were told apart).
 * - `sk = PROMOTION#{env}`: the latest `PromotionRecord` into that environment.
 * - `sk = INCIDENT#{env}`: the environment's open run of failures (`openedAt`), if any.
 *
 * And one partition per GitHub delivery handled: `pk = DELIVERY#{id}`, `sk = DELIVERY`, with
 * `expiresAt`; one partition `pk = FREEZES` with an item `sk = FREEZE#{pipeline|*}|{env|*}` per
 * freeze.
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

export const DELIVERY_KEY_PREFIX = 'DELIVERY#';
export const DELIVERY_SORT_KEY = 'DELIVERY';

export interface TableKey {
  readonly [PARTITION_KEY]: string;
  readonly [SORT_KEY]: string;
}

const tableKey = (partition: string, sort: string): TableKey => ({
  [PARTITION_KEY]: partition,
  [SORT_KEY]: sort,
});

/** `item {pk} {sk}`: how errors name a stored item. */
export const itemName = (item: Record<string, unknown>): string =>
  `item ${String(item[PARTITION_KEY])} ${String(item[SORT_KEY])}`;

export const pipelinePartitionKey = (ref: PipelineRef): string =>
  `${PIPELINE_KEY_PREFIX}${ref.namespace}/${ref.name}`;

export const definitionKey = (ref: PipelineRef): TableKey =>
  tableKey(pipelinePartitionKey(ref), DEFINITION_SORT_KEY);

/** `slot`: the environment and target (core/state-records.ts `deploymentSlot`). */
export const deploymentKey = (ref: PipelineRef, slot: string): TableKey =>
  tableKey(pipelinePartitionKey(ref), `${DEPLOYMENT_SORT_KEY_PREFIX}${slot}`);

export const FREEZES_PARTITION_KEY = 'FREEZES';
export const FREEZE_SORT_KEY_PREFIX = 'FREEZE#';

/** `scope`: core/state-records.ts `freezeScope`. */
export const freezeKey = (scope: string): TableKey =>
  tableKey(FREEZES_PARTITION_KEY, `${FREEZE_SORT_KEY_PREFIX}${scope}`);

export const promotionKey = (ref: PipelineRef, environment: string): TableKey =>
  tableKey(pipelinePartitionKey(ref), `${PROMOTION_SORT_KEY_PREFIX}${environment}`);

export const incidentKey = (ref: PipelineRef, environment: string): TableKey =>
  tableKey(pipelinePartitionKey(ref), `${INCIDENT_SORT_KEY_PREFIX}${environment}`);

export const deliveryKey = (id: string): TableKey =>
  tableKey(`${DELIVERY_KEY_PREFIX}${id}`, DELIVERY_SORT_KEY);

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
