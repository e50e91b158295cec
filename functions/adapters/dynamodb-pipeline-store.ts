import { createHash } from 'node:crypto';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateScan,
} from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { PromoterError } from '../core/errors.ts';
import { type Pipeline, type PipelineRef, pipelineId } from '../core/pipeline.ts';
import {
  type Clock,
  type PipelinePutResult,
  type PipelineRegistry,
  systemClock,
} from '../core/ports.ts';
import { decodeStored } from '../core/state-records.ts';
import { storedPipelineSchema } from '../core/stored-pipeline.ts';
import { compareText } from '../core/text-order.ts';
import {
  DEFINITION_SORT_KEY,
  definitionKey,
  isConditionalCheckFailed,
  itemName,
  SORT_KEY,
  storeError,
  type TableKey,
} from './dynamodb-table.ts';

/*
 * Pipeline definitions in the service table (dynamodb-table.ts), item `sk = DEFINITION`:
 * `{pk, sk, namespace, name, pipeline: <the normalised Pipeline as a map>, contentHash,
 * updatedAt, schemaVersion}`.
 *
 * `put` is one conditional PutItem, written only when no definition exists or its
 * `contentHash` differs: an unchanged pipeline is not written (its `updatedAt` stays), and
 * concurrent syncs cannot interleave a read and a write. Reads are strongly consistent, so a
 * job that runs right after a sync sees the synced definition.
 */

export const PIPELINE_SCHEMA_VERSION = 1;

const definitionItemSchema = z.object({
  pipeline: storedPipelineSchema,
  schemaVersion: z.optional(
    z.literal(PIPELINE_SCHEMA_VERSION, `expected schema version ${PIPELINE_SCHEMA_VERSION}`),
  ),
});

export interface DynamoDbPipelineStoreOptions {
  readonly clock?: Clock;
}

interface DefinitionItem extends TableKey {
  readonly namespace: string;
  readonly name: string;
  readonly pipeline: Pipeline;
  readonly contentHash: string;
  readonly updatedAt: string;
  readonly schemaVersion: number;
}

export class DynamoDbPipelineStore implements PipelineRegistry {
  private readonly clock: Clock;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: DynamoDbPipelineStoreOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  async get(ref: PipelineRef): Promise<Pipeline | undefined> {
    let item: Record<string, unknown> | undefined;
    try {
      const response = await this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: definitionKey(ref),
          ConsistentRead: true,
        }),
      );
      item = response.Item;
    } catch (error) {
      throw storeError(error, this.tableName, `get pipeline ${pipelineId(ref)}`);
    }
    return item === undefined ? undefined : this.decode(item);
  }

  /** Every pipeline, ordered by namespace and name. */
  async list(): Promise<Pipeline[]> {
    const pipelines: Pipeline[] = [];
    try {
      const pages = paginateScan(
        { client: this.client },
        {
          TableName: this.tableName,
          FilterExpression: '#sk = :definition',
          ExpressionAttributeNames: { '#sk': SORT_KEY },
          ExpressionAttributeValues: { ':definition': DEFINITION_SORT_KEY },
          ConsistentRead: true,
        },
      );
      for await (const page of pages) {
        for (const item of page.Items ?? []) pipelines.push(this.decode(item));
      }
    } catch (error) {
      if (error instanceof PromoterError) throw error;
      throw storeError(error, this.tableName, 'list pipelines');
    }
    return pipelines.sort((a, b) => compareText(pipelineId(a), pipelineId(b)));
  }

  async put(pipeline: Pipeline): Promise<PipelinePutResult> {
    const contentHash = pipelineContentHash(pipeline);
    const item: DefinitionItem = {
      ...definitionKey(pipeline),
      namespace: pipeline.namespace,
      name: pipeline.name,
      pipeline,
      contentHash,
      updatedAt: this.clock.now().toISOString(),
      schemaVersion: PIPELINE_SCHEMA_VERSION,
    };
    try {
      const response = await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#sk) OR #hash <> :hash',
          ExpressionAttributeNames: { '#sk': SORT_KEY, '#hash': 'contentHash' },
          ExpressionAttributeValues: { ':hash': contentHash },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return response.Attributes === undefined ? 'created' : 'updated';
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'unchanged';
      throw storeError(error, this.tableName, `put pipeline ${pipelineId(pipeline)}`);
    }
  }

  /**
   * Deletes the definition. The pipeline's deployment and promotion records stay (a pipeline
   * synced again finds its history); the worker drops jobs of a deleted pipeline.
   */
  async delete(ref: PipelineRef): Promise<boolean> {
    try {
      const response = await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: definitionKey(ref),
          ReturnValues: 'ALL_OLD',
        }),
      );
      return response.Attributes !== undefined;
    } catch (error) {
      throw storeError(error, this.tableName, `delete pipeline ${pipelineId(ref)}`);
    }
  }

  /** STORE_CORRUPT naming the item and the field when it is not a definition of this version. */
  private decode(item: Record<string, unknown>): Pipeline {
    return decodeStored<{ pipeline: Pipeline }>(
      definitionItemSchema,
      item,
      `DynamoDB table ${this.tableName}: ${itemName(item)} (sync the pipeline again)`,
    ).pipeline;
  }
}

/** JSON with object keys sorted at every level: equal values, equal text. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, current: unknown) => {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return current;
    const record = current as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .sort(compareText)
        .map((key) => [key, record[key]]),
    );
  });

/** sha256 of the pipeline's canonical JSON, `sha256:<hex>`. */
export const pipelineContentHash = (pipeline: Pipeline): string =>
  `sha256:${createHash('sha256').update(canonicalJson(pipeline)).digest('hex')}`;
