import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
} from '@aws-sdk/lib-dynamodb';
import { eventTime } from '../core/event-order.ts';
import type { PipelineRef } from '../core/pipeline.ts';
import type {
  Clock,
  DeliveryLog,
  DeploymentRecord,
  Freeze,
  PromotionExpectation,
  PromotionRecord,
  PromotionStateStore,
} from '../core/ports.ts';
import { SETTLED_STATES, systemClock } from '../core/ports.ts';
import {
  decodeDeploymentRecord,
  decodeFreeze,
  decodePromotionRecord,
  deploymentSlot,
  freezeScope,
} from '../core/state-records.ts';
import {
  DEPLOYMENT_SORT_KEY_PREFIX,
  deliveryKey,
  deploymentKey,
  FREEZE_SORT_KEY_PREFIX,
  FREEZES_PARTITION_KEY,
  freezeKey,
  incidentKey,
  isConditionalCheckFailed,
  itemName,
  PARTITION_KEY,
  PROMOTION_SORT_KEY_PREFIX,
  pipelinePartitionKey,
  promotionKey,
  SORT_KEY,
  storeError,
  TTL_ATTRIBUTE,
} from './dynamodb-table.ts';

/*
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
 * recorded deployment or promotion back. `putPromotion` also keeps a stored record of the same
 * revision in a settled state (merged, closed, deployed). `transitionPromotion`'s condition is
 * the expected revision and states (compare and set); incidents are `INCIDENT#{env}` items,
 * opened with `attribute_not_exists` and closed by a DeleteItem that returns them.
 * EmbeddedPromotionStateStore follows the same rules (the shared contract tests).
 * Items are decoded with the shared zod decoders (core/state-records.ts).
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

/** Written only when there is no item or the stored event is not newer (see above). */
const NOT_NEWER_STORED = {
  ConditionExpression: 'attribute_not_exists(#pk) OR #eventTime <= :eventTime',
  ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#eventTime': 'eventTime' },
} as const;

/** …and, for promotions, not over a settled record of the same revision. */
const NOT_NEWER_NOR_SETTLED = {
  ConditionExpression: `attribute_not_exists(#pk) OR (#eventTime <= :eventTime AND NOT (#revision = :revision AND #state IN (${SETTLED_STATES.map((_, index) => `:settled${index}`).join(', ')})))`,
  ExpressionAttributeNames: {
    '#pk': PARTITION_KEY,
    '#eventTime': 'eventTime',
    '#revision': 'revision',
    '#state': 'state',
  },
  settled: Object.fromEntries(SETTLED_STATES.map((state, index) => [`:settled${index}`, state])),
} as const;

/** Item attributes that are the table's, not the record's. */
const TABLE_ATTRIBUTES = new Set([PARTITION_KEY, SORT_KEY, 'eventTime', TTL_ATTRIBUTE]);

/** A record's item: its fields, the pipeline as `namespace` and `name`, and `eventTime`. */
const recordItem = (
  record: DeploymentRecord | PromotionRecord,
  time: number,
): Record<string, unknown> => {
  const { pipeline, ...fields } = record;
  return { namespace: pipeline.namespace, name: pipeline.name, ...fields, eventTime: time };
};

/** The record an item holds (what recordItem wrote), for the shared decoders. */
const itemRecord = (item: Record<string, unknown>): Record<string, unknown> => {
  const { namespace, name, ...rest } = item;
  const fields = Object.fromEntries(
    Object.entries(rest).filter(([key]) => !TABLE_ATTRIBUTES.has(key)),
  );
  return { pipeline: { namespace, name }, ...fields };
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

  async recordDeployment(record: DeploymentRecord): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `deployment of ${pipeline.namespace}/${pipeline.name} in ${environment}`;
    const time = eventTime(record.eventTimestamp, what);
    const item = {
      ...deploymentKey(pipeline, deploymentSlot(record)),
      ...recordItem(record, time),
      ...this.expiry(),
    };
    return this.conditionalPut(item, `record ${what}`, {
      ...NOT_NEWER_STORED,
      ExpressionAttributeValues: { ':eventTime': time },
    });
  }

  async listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]> {
    const items = await this.query(ref, DEPLOYMENT_SORT_KEY_PREFIX, 'list deployments');
    return items.map((item) => decodeDeploymentRecord(itemRecord(item), itemName(item)));
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
    return item === undefined ? undefined : decodePromotionRecord(itemRecord(item), itemName(item));
  }

  async putPromotion(record: PromotionRecord): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `promotion of ${pipeline.namespace}/${pipeline.name} into ${environment}`;
    const time = eventTime(record.eventTimestamp, what);
    const item = {
      ...promotionKey(pipeline, environment),
      ...recordItem(record, time),
      ...this.expiry(),
    };
    return this.conditionalPut(item, `put ${what}`, {
      ConditionExpression: NOT_NEWER_NOR_SETTLED.ConditionExpression,
      ExpressionAttributeNames: NOT_NEWER_NOR_SETTLED.ExpressionAttributeNames,
      ExpressionAttributeValues: {
        ':eventTime': time,
        ':revision': record.revision,
        ...NOT_NEWER_NOR_SETTLED.settled,
      },
    });
  }

  async transitionPromotion(
    record: PromotionRecord,
    expected: PromotionExpectation,
  ): Promise<boolean> {
    const { pipeline, environment } = record;
    const what = `promotion of ${pipeline.namespace}/${pipeline.name} into ${environment}`;
    const time = eventTime(record.eventTimestamp, what);
    const states = Object.fromEntries(
      expected.states.map((state, index) => [`:state${index}`, state]),
    );
    const item = {
      ...promotionKey(pipeline, environment),
      ...recordItem(record, time),
      ...this.expiry(),
    };
    return this.conditionalPut(item, `move ${what} on from ${expected.states.join('/')}`, {
      ConditionExpression: `#revision = :revision AND #state IN (${Object.keys(states).join(', ')})`,
      ExpressionAttributeNames: { '#revision': 'revision', '#state': 'state' },
      ExpressionAttributeValues: { ':revision': expected.revision, ...states },
    });
  }

  async openIncident(ref: PipelineRef, environment: string, at: string): Promise<boolean> {
    return this.conditionalPut(
      { ...incidentKey(ref, environment), openedAt: at },
      `open the incident of ${ref.namespace}/${ref.name} in ${environment}`,
      {
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': PARTITION_KEY },
      },
    );
  }

  async closeIncident(ref: PipelineRef, environment: string): Promise<string | undefined> {
    try {
      const answer = await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: incidentKey(ref, environment),
          ReturnValues: 'ALL_OLD',
        }),
      );
      const openedAt = answer.Attributes?.openedAt;
      return typeof openedAt === 'string' ? openedAt : undefined;
    } catch (error) {
      throw storeError(
        error,
        this.tableName,
        `close the incident of ${ref.namespace}/${ref.name} in ${environment}`,
      );
    }
  }

  async listPromotions(ref: PipelineRef): Promise<PromotionRecord[]> {
    const items = await this.query(ref, PROMOTION_SORT_KEY_PREFIX, 'list promotions');
    return items.map((item) => decodePromotionRecord(itemRecord(item), itemName(item)));
  }

  async putFreeze(freeze: Freeze): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...freezeKey(freezeScope(freeze)), freeze },
        }),
      );
    } catch (error) {
      throw storeError(error, this.tableName, `put the freeze ${freezeScope(freeze)}`);
    }
  }

  async removeFreeze(scope: Pick<Freeze, 'pipeline' | 'environment'>): Promise<boolean> {
    try {
      const answer = await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: freezeKey(freezeScope(scope)),
          ReturnValues: 'ALL_OLD',
        }),
      );
      return answer.Attributes !== undefined;
    } catch (error) {
      throw storeError(error, this.tableName, `remove the freeze ${freezeScope(scope)}`);
    }
  }

  async listFreezes(): Promise<Freeze[]> {
    const items = await this.queryPartition(
      FREEZES_PARTITION_KEY,
      FREEZE_SORT_KEY_PREFIX,
      'list freezes',
    );
    return items.map((item) => decodeFreeze(item.freeze, itemName(item)));
  }

  private expiry(): { expiresAt?: number } {
    if (this.recordTtlDays === undefined) return {};
    const seconds = Math.floor(this.clock.now().getTime() / 1000) + this.recordTtlDays * 86_400;
    return { [TTL_ATTRIBUTE]: seconds };
  }

  private async conditionalPut(
    item: Record<string, unknown>,
    what: string,
    condition: {
      readonly ConditionExpression: string;
      readonly ExpressionAttributeNames: Readonly<Record<string, string>>;
      readonly ExpressionAttributeValues?: Readonly<Record<string, unknown>>;
    },
  ): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: condition.ConditionExpression,
          ExpressionAttributeNames: { ...condition.ExpressionAttributeNames },
          ...(condition.ExpressionAttributeValues === undefined
            ? {}
            : { ExpressionAttributeValues: { ...condition.ExpressionAttributeValues } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw storeError(error, this.tableName, what);
    }
  }

  private query(
    ref: PipelineRef,
    prefix: string,
    operation: string,
  ): Promise<Record<string, unknown>[]> {
    return this.queryPartition(
      pipelinePartitionKey(ref),
      prefix,
      `${operation} of ${ref.namespace}/${ref.name}`,
    );
  }

  private async queryPartition(
    partition: string,
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
          ExpressionAttributeValues: { ':pk': partition, ':prefix': prefix },
          ConsistentRead: true,
        },
      );
      for await (const page of pages) items.push(...(page.Items ?? []));
    } catch (error) {
      throw storeError(error, this.tableName, operation);
    }
    return items;
  }
}

/**
 * GitHub deliveries already handled (`X-GitHub-Delivery`), as items `DELIVERY#{id}` that
 * DynamoDB's TTL removes; an expired item not yet removed counts as gone.
 */
export class DynamoDbDeliveryLog implements DeliveryLog {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: Clock = systemClock,
  ) {}

  async firstSeen(id: string, ttlSeconds: number): Promise<boolean> {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...deliveryKey(id), [TTL_ATTRIBUTE]: now + ttlSeconds },
          ConditionExpression: 'attribute_not_exists(#pk) OR #ttl < :now',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw storeError(error, this.tableName, `record GitHub delivery ${id}`);
    }
  }
}
