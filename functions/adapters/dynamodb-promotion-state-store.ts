import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
} from '@aws-sdk/lib-dynamodb';
import { eventTime } from '../core/event-order.ts';
import type { PipelineRef } from '../core/pipeline.ts';
import type {
  Clock,
  DeploymentRecord,
  PromotionRecord,
  PromotionState,
  PromotionStateStore,
} from '../core/ports.ts';
import { PROMOTION_STATES, systemClock } from '../core/ports.ts';
import {
  DEPLOYMENT_SORT_KEY_PREFIX,
  deploymentKey,
  isConditionalCheckFailed,
  PARTITION_KEY,
  PROMOTION_SORT_KEY_PREFIX,
  pipelinePartitionKey,
  promotionKey,
  SORT_KEY,
  storeError,
  TTL_ATTRIBUTE,
} from './dynamodb-table.ts';

/**
 * Deployment and promotion state in the service table (dynamodb-table.ts): one item per
 * (pipeline, environment) for each, `sk = DEPLOYMENT#{env}` and `sk = PROMOTION#{env}`, holding
 * the record's fields plus `eventTime`, the record's `eventTimestamp` as epoch milliseconds (N).
 * Ordering uses `eventTime`, not the ISO text, because event timestamps may carry different UTC
 * offsets and then do not sort as strings (core/event-order.ts).
 *
 * Each write is one conditional PutItem that replaces the whole item, so a record never mixes
 * fields of two writes. `putPromotion` and `recordDeployment` follow the same rule, with the
 * condition `attribute_not_exists(pk) OR eventTime <= :eventTime`: the record is written only
 * when
 *
 *   1. no record is stored for that (pipeline, environment), or
 *   2. the stored record's event is not newer than the new record's: its `eventTime` is earlier
 *      than or equal to the new one. Equal is allowed: of two writes for the same event (a job
 *      delivered again, a redeploy of the same revision), the last one wins.
 *
 * A record whose event is strictly older than the stored one's is not written and that is not an
 * error (`putPromotion` and `recordDeployment` resolve false): a late event cannot roll the
 * recorded deployment or promotion back. MemoryPromotionStateStore follows the same rule.
 *
 * An `eventTimestamp` that is not an ISO 8601 date-time is a RangeError (nothing is written).
 * `listDeployments` and `listPromotions` return a pipeline's records ordered by environment name
 * (the sort key's order).
 * `expiresAt` is set on these items only when `recordTtlDays` is given (epoch seconds, from the
 * write time); by default state is kept. DynamoDB errors are STORE_UNAVAILABLE (retryable).
 */
export interface DynamoDbPromotionStateStoreOptions {
  /** Let DynamoDB's TTL delete state items this many days after their last write. */
  readonly recordTtlDays?: number;
  readonly clock?: Clock;
}

const isPromotionState = (value: unknown): value is PromotionState =>
  typeof value === 'string' && (PROMOTION_STATES as readonly string[]).includes(value);

/** Written only when there is no item or the stored event is not newer (see above). */
const NOT_NEWER_STORED = {
  ConditionExpression: 'attribute_not_exists(#pk) OR #eventTime <= :eventTime',
  ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#eventTime': 'eventTime' },
} as const;

export class DynamoDbPromotionStateStore implements PromotionStateStore {
  private readonly clock: Clock;
  private readonly recordTtlDays: number | undefined;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: DynamoDbPromotionStateStoreOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.recordTtlDays = options.recordTtlDays;
  }

  async recordDeployment(record: DeploymentRecord): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `deployment of ${pipeline.namespace}/${pipeline.name} in ${environment}`;
    const time = eventTime(record.eventTimestamp, what);
    const item = {
      ...deploymentKey(pipeline, environment),
      namespace: pipeline.namespace,
      name: pipeline.name,
      environment,
      revision: record.revision,
      eventTimestamp: record.eventTimestamp,
      eventTime: time,
      recordedAt: record.recordedAt,
      ...this.expiry(),
    };
    return this.conditionalPut(item, time, `record ${what}`);
  }

  async listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]> {
    const items = await this.query(ref, DEPLOYMENT_SORT_KEY_PREFIX, 'list deployments');
    return items.map(
      (item): DeploymentRecord => ({
        pipeline: { namespace: String(item.namespace), name: String(item.name) },
        environment: String(item.environment),
        revision: String(item.revision),
        eventTimestamp: String(item.eventTimestamp),
        recordedAt: String(item.recordedAt),
      }),
    );
  }

  async getPromotion(ref: PipelineRef, environment: string): Promise<PromotionRecord | undefined> {
    let item: Record<string, unknown> | undefined;
    try {
      const response = await this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: promotionKey(ref, environment),
          ConsistentRead: true,
        }),
      );
      item = response.Item;
    } catch (error) {
      throw storeError(
        error,
        this.tableName,
        `get promotion of ${ref.namespace}/${ref.name} into ${environment}`,
      );
    }
    return item === undefined ? undefined : decodePromotion(item);
  }

  async putPromotion(record: PromotionRecord): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `promotion of ${pipeline.namespace}/${pipeline.name} into ${environment}`;
    const time = eventTime(record.eventTimestamp, what);
    const item = {
      ...promotionKey(pipeline, environment),
      namespace: pipeline.namespace,
      name: pipeline.name,
      environment,
      revision: record.revision,
      state: record.state,
      jobId: record.jobId,
      from: record.from,
      eventTimestamp: record.eventTimestamp,
      eventTime: time,
      updatedAt: record.updatedAt,
      ...(record.pullRequest === undefined
        ? {}
        : { pullRequest: { number: record.pullRequest.number, url: record.pullRequest.url } }),
      ...(record.failure === undefined
        ? {}
        : { failure: { code: record.failure.code, message: record.failure.message } }),
      ...this.expiry(),
    };
    return this.conditionalPut(item, time, `put ${what}`);
  }

  async listPromotions(ref: PipelineRef): Promise<PromotionRecord[]> {
    const items = await this.query(ref, PROMOTION_SORT_KEY_PREFIX, 'list promotions');
    return items.map(decodePromotion);
  }

  private expiry(): { expiresAt?: number } {
    if (this.recordTtlDays === undefined) return {};
    const seconds = Math.floor(this.clock.now().getTime() / 1000) + this.recordTtlDays * 86_400;
    return { [TTL_ATTRIBUTE]: seconds };
  }

  private async conditionalPut(
    item: Record<string, unknown>,
    time: number,
    what: string,
  ): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ...NOT_NEWER_STORED,
          ExpressionAttributeValues: { ':eventTime': time },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw storeError(error, this.tableName, what);
    }
  }

  private async query(
    ref: PipelineRef,
    prefix: string,
    operation: string,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    try {
      const pages = paginateQuery(
        { client: this.client },
        {
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#sk': SORT_KEY },
          ExpressionAttributeValues: { ':pk': pipelinePartitionKey(ref), ':prefix': prefix },
          ConsistentRead: true,
        },
      );
      for await (const page of pages) items.push(...(page.Items ?? []));
    } catch (error) {
      throw storeError(error, this.tableName, `${operation} of ${ref.namespace}/${ref.name}`);
    }
    return items;
  }
}

const decodePromotion = (item: Record<string, unknown>): PromotionRecord => {
  const state = item.state;
  if (!isPromotionState(state)) {
    throw new Error(
      `item ${String(item.pk)} ${String(item.sk)} has an unknown promotion state ${JSON.stringify(state)}`,
    );
  }
  const pullRequest = item.pullRequest as { number?: unknown; url?: unknown } | undefined;
  const failure = item.failure as { code?: unknown; message?: unknown } | undefined;
  return {
    pipeline: { namespace: String(item.namespace), name: String(item.name) },
    environment: String(item.environment),
    revision: String(item.revision),
    state,
    jobId: String(item.jobId),
    from: String(item.from),
    eventTimestamp: String(item.eventTimestamp),
    updatedAt: String(item.updatedAt),
    ...(pullRequest === undefined
      ? {}
      : { pullRequest: { number: Number(pullRequest.number), url: String(pullRequest.url) } }),
    ...(failure === undefined
      ? {}
      : { failure: { code: String(failure.code), message: String(failure.message) } }),
  };
};
