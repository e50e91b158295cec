import * as z from 'zod/mini';
import { PromoterError } from '../../core/errors.ts';
import { eventTime } from '../../core/event-order.ts';
import { type PipelineRef, pipelineId } from '../../core/pipeline.ts';
import {
  type DeploymentRecord,
  PROMOTION_STATES,
  type PromotionRecord,
  type PromotionStateStore,
} from '../../core/ports.ts';
import { formatIssues } from '../../core/validation.ts';
import { commitSoon, type EmbeddedDatabase } from './embedded-database.ts';

/**
 * Deployments and promotion records in serve's database, with DynamoDbPromotionStateStore's
 * write rule (the shared contract tests hold both to it): one row per (pipeline, environment),
 * replaced only when none is stored or the stored event is not newer, as one conditional
 * upsert (`ON CONFLICT … DO UPDATE … WHERE event_time <= excluded.event_time`). Event times
 * are compared as instants (epoch milliseconds), never as text. Rows come back through zod: a
 * row that does not decode is STORE_UNAVAILABLE naming it.
 */
const text = z.string();
const pipelineRef = z.object({ namespace: text, name: text });

const deploymentSchema = z.object({
  pipeline: pipelineRef,
  environment: text,
  revision: text,
  eventTimestamp: text,
  recordedAt: text,
});

const promotionSchema = z.object({
  pipeline: pipelineRef,
  environment: text,
  revision: text,
  state: z.enum(PROMOTION_STATES),
  jobId: text,
  from: text,
  eventTimestamp: text,
  updatedAt: text,
  pullRequest: z.optional(z.object({ number: z.number(), url: text })),
  failure: z.optional(z.object({ code: text, message: text })),
});

type Table = 'deployments' | 'promotions';

const decode = <T>(schema: z.ZodMiniType<T>, row: { record: string }, where: string): T => {
  const result = schema.safeParse(JSON.parse(row.record));
  if (!result.success) {
    throw new PromoterError(
      'STORE_UNAVAILABLE',
      `${where}: the stored record is invalid: ${formatIssues(result.error.issues).join('; ')}`,
    );
  }
  return result.data;
};

const upsert = (table: Table): string =>
  `INSERT INTO ${table} (pipeline, environment, event_time, record) VALUES (?, ?, ?, ?)
   ON CONFLICT (pipeline, environment) DO UPDATE
     SET event_time = excluded.event_time, record = excluded.record
     WHERE ${table}.event_time <= excluded.event_time`;

export class EmbeddedPromotionStateStore implements PromotionStateStore {
  private readonly upserts;

  constructor(private readonly db: EmbeddedDatabase) {
    this.upserts = {
      deployments: db.prepare<[string, string, number, string]>(upsert('deployments')),
      promotions: db.prepare<[string, string, number, string]>(upsert('promotions')),
    };
  }

  async recordDeployment(record: DeploymentRecord): Promise<boolean> {
    return this.putIfNotNewerStored(
      'deployments',
      record,
      `deployment of ${pipelineId(record.pipeline)} in ${record.environment}`,
    );
  }

  async listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]> {
    return this.list('deployments', ref).map((row) =>
      decode(deploymentSchema, row, `deployment of ${pipelineId(ref)}`),
    );
  }

  async getPromotion(ref: PipelineRef, environment: string): Promise<PromotionRecord | undefined> {
    const row = this.db
      .prepare<[string, string], { record: string }>(
        'SELECT record FROM promotions WHERE pipeline = ? AND environment = ?',
      )
      .get(pipelineId(ref), environment);
    return row === undefined
      ? undefined
      : (decode(
          promotionSchema,
          row,
          `promotion of ${pipelineId(ref)} into ${environment}`,
        ) as PromotionRecord);
  }

  async putPromotion(record: PromotionRecord): Promise<boolean> {
    return this.putIfNotNewerStored(
      'promotions',
      record,
      `promotion of ${pipelineId(record.pipeline)} into ${record.environment}`,
    );
  }

  async listPromotions(ref: PipelineRef): Promise<PromotionRecord[]> {
    return this.list('promotions', ref).map(
      (row) => decode(promotionSchema, row, `promotion of ${pipelineId(ref)}`) as PromotionRecord,
    );
  }

  /** Group-committed with the other writes of the same moment (embedded-database.ts). */
  private async putIfNotNewerStored(
    table: Table,
    record: DeploymentRecord | PromotionRecord,
    what: string,
  ): Promise<boolean> {
    const time = eventTime(record.eventTimestamp, what);
    const statement = this.upserts[table];
    return commitSoon(
      this.db,
      () =>
        statement.run(pipelineId(record.pipeline), record.environment, time, JSON.stringify(record))
          .changes === 1,
    );
  }

  /** Ordered by environment name, as DynamoDB's sort key orders them. */
  private list(table: Table, ref: PipelineRef): { record: string }[] {
    return this.db
      .prepare<[string], { record: string }>(
        `SELECT record FROM ${table} WHERE pipeline = ? ORDER BY environment COLLATE BINARY`,
      )
      .all(pipelineId(ref));
  }
}
