import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
} from '@aws-sdk/lib-dynamodb';
import type { PipelineRef } from '../core/pipeline.ts';
import type {
  Clock,
  DeploymentRecord,
  PromotionRecord,
  PromotionState,
  PromotionStateStore,
} from '../core/ports.ts';
import { systemClock } from '../core/ports.ts';
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
 * offsets and then do not sort as strings.
 *
 * Each put is one conditional PutItem that replaces the whole item, so a record never mixes
 * fields of two writes. The conditions:
 *
 * - `recordDeployment` writes when there is no item, or the stored `eventTime` is older than or
 *   equal to the new one: the item is the latest deployment by event time. An older event is
 *   ignored: nothing is written (`tryRecordDeployment` resolves false).
 *
 * - `putPromotion` writes when any of these holds:
 *     1. there is no item;
 *     2. the stored `eventTime` is older than or equal to the new one (newer or same event wins,
 *        so the same job can move its record from queued to opened/failed and so on);
 *     3. the stored state is `queued` and the new state is not: a job's outcome replaces the
 *        `queued` record of a newer job that has not run yet (that job writes its own outcome
 *        when it runs, and until then the record says what the pull request holds).
 *   So a record with an older event time never replaces a completed one (any state but
 *   `queued`), and an older `queued` record never replaces a newer `queued` one: a late event
 *   cannot roll the recorded state back. A refused write is not an error (`tryPutPromotion`
 *   resolves false).
 *
 * `expiresAt` is set on these items only when `recordTtlDays` is given (epoch seconds, from the
 * write time); by default state is kept. DynamoDB errors are STORE_UNAVAILABLE (retryable).
 */
export interface DynamoDbPromotionStateStoreOptions {
  /** Let DynamoDB's TTL delete state items this many days after their last write. */
  readonly recordTtlDays?: number;
  readonly clock?: Clock;
}

/** Every state, checked complete by the compiler. */
const PROMOTION_STATES: Readonly<Record<PromotionState, true>> = {
  queued: true,
  opened: true,
  updated: true,
  'up-to-date': true,
  superseded: true,
  failed: true,
};

const isPromotionState = (value: unknown): value is PromotionState =>
  typeof value === 'string' && Object.hasOwn(PROMOTION_STATES, value);

const eventTimeOf = (record: { readonly eventTimestamp: string }, what: string): number => {
  const time = Date.parse(record.eventTimestamp);
  if (Number.isNaN(time)) {
    throw new RangeError(
      `${what}: eventTimestamp ${JSON.stringify(record.eventTimestamp)} is not an ISO 8601 date-time`,
    );
  }
  return time;
};

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

  async recordDeployment(record: DeploymentRecord): Promise<void> {
    await this.tryRecordDeployment(record);
  }

  /** `recordDeployment` that says whether it wrote: false when a newer deployment is stored. */
  async tryRecordDeployment(record: DeploymentRecord): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `deployment of ${pipeline.namespace}/${pipeline.name} in ${environment}`;
    const eventTime = eventTimeOf(record, what);
    const item = {
      ...deploymentKey(pipeline, environment),
      namespace: pipeline.namespace,
      name: pipeline.name,
      environment,
      revision: record.revision,
      eventTimestamp: record.eventTimestamp,
      eventTime,
      recordedAt: record.recordedAt,
      ...this.expiry(),
    };
    return this.conditionalPut(item, {
      ConditionExpression: 'attribute_not_exists(#pk) OR #eventTime <= :eventTime',
      ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#eventTime': 'eventTime' },
      ExpressionAttributeValues: { ':eventTime': eventTime },
      what: `record ${what}`,
    });
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

  async putPromotion(record: PromotionRecord): Promise<void> {
    await this.tryPutPromotion(record);
  }

  /** `putPromotion` that says whether it wrote: false when the condition kept the stored one. */
  async tryPutPromotion(record: PromotionRecord): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `promotion of ${pipeline.namespace}/${pipeline.name} into ${environment}`;
    const eventTime = eventTimeOf(record, what);
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
      eventTime,
      updatedAt: record.updatedAt,
      ...(record.pullRequest === undefined
        ? {}
        : { pullRequest: { number: record.pullRequest.number, url: record.pullRequest.url } }),
      ...(record.failure === undefined
        ? {}
        : { failure: { code: record.failure.code, message: record.failure.message } }),
      ...this.expiry(),
    };
    const completes = record.state !== 'queued';
    return this.conditionalPut(item, {
      ConditionExpression: `attribute_not_exists(#pk) OR #eventTime <= :eventTime${completes ? ' OR #state = :queued' : ''}`,
      ExpressionAttributeNames: {
        '#pk': PARTITION_KEY,
        '#eventTime': 'eventTime',
        ...(completes ? { '#state': 'state' } : {}),
      },
      ExpressionAttributeValues: {
        ':eventTime': eventTime,
        ...(completes ? { ':queued': 'queued' } : {}),
      },
      what: `put ${what}`,
    });
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
    condition: {
      ConditionExpression: string;
      ExpressionAttributeNames: Record<string, string>;
      ExpressionAttributeValues: Record<string, unknown>;
      what: string;
    },
  ): Promise<boolean> {
    const { what, ...expression } = condition;
    try {
      await this.client.send(
        new PutCommand({ TableName: this.tableName, Item: item, ...expression }),
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
