import { eventTime } from '../../core/event-order.ts';
import { type PipelineRef, pipelineId } from '../../core/pipeline.ts';
import {
  type DeliveryLog,
  type DeploymentRecord,
  type Freeze,
  type PromotionExpectation,
  type PromotionRecord,
  type PromotionStateStore,
  SETTLED_STATES,
} from '../../core/ports.ts';
import {
  decodeDeploymentRecord,
  decodeFreeze,
  decodePromotionRecord,
  deploymentSlot,
  freezeScope,
} from '../../core/state-records.ts';
import { commitSoon, type EmbeddedDatabase } from './embedded-database.ts';

/**
 * Deployments, promotion records, incidents and GitHub deliveries in serve's database, with
 * DynamoDbPromotionStateStore's write rules (the shared contract tests hold both to them): one
 * row per (pipeline, environment), each write one conditional statement:
 *
 * - `recordDeployment`, `putPromotion`: an upsert whose `DO UPDATE … WHERE` keeps a stored row
 *   with a newer event (instants in epoch milliseconds, never text) and, for promotions, one of
 *   the same revision in a settled state;
 * - `transitionPromotion`: an UPDATE whose WHERE is the expected revision and states;
 * - incidents: INSERT OR IGNORE opens, DELETE … RETURNING closes.
 *
 * Writes are group-committed (embedded-database.ts); rows come back through the shared zod
 * decoders (core/state-records.ts).
 */
type Table = 'deployments' | 'promotions';

const upsert = (table: Table, guard: string): string =>
  `INSERT INTO ${table} (pipeline, environment, event_time, record) VALUES (?, ?, ?, ?)
   ON CONFLICT (pipeline, environment) DO UPDATE
     SET event_time = excluded.event_time, record = excluded.record
     WHERE ${table}.event_time <= excluded.event_time${guard}`;

/** Ordered by environment name, as DynamoDB's sort key orders them. */
const listQuery = (table: Table): string =>
  `SELECT record FROM ${table} WHERE pipeline = ? ORDER BY environment COLLATE BINARY`;

const SETTLED = SETTLED_STATES.map((state) => `'${state}'`).join(', ');

export class EmbeddedPromotionStateStore implements PromotionStateStore, DeliveryLog {
  private readonly statements;

  constructor(private readonly db: EmbeddedDatabase) {
    this.statements = {
      deployment: db.prepare<[string, string, number, string]>(upsert('deployments', '')),
      promotion: db.prepare<[string, string, number, string]>(
        upsert(
          'promotions',
          ` AND NOT (json_extract(promotions.record, '$.revision') = json_extract(excluded.record, '$.revision')
                 AND json_extract(promotions.record, '$.state') IN (${SETTLED}))`,
        ),
      ),
      transition: db.prepare<[number, string, string, string, string, string]>(
        `UPDATE promotions SET event_time = ?, record = ?
         WHERE pipeline = ? AND environment = ?
           AND json_extract(record, '$.revision') = ?
           AND json_extract(record, '$.state') IN (SELECT value FROM json_each(?))`,
      ),
      getPromotion: db.prepare<[string, string], { record: string }>(
        'SELECT record FROM promotions WHERE pipeline = ? AND environment = ?',
      ),
      openIncident: db.prepare<[string, string, string]>(
        'INSERT OR IGNORE INTO incidents (pipeline, environment, opened_at) VALUES (?, ?, ?)',
      ),
      closeIncident: db.prepare<[string, string], { opened_at: string }>(
        'DELETE FROM incidents WHERE pipeline = ? AND environment = ? RETURNING opened_at',
      ),
      forgetDeliveries: db.prepare<[number]>('DELETE FROM deliveries WHERE expires_at < ?'),
      seeDelivery: db.prepare<[string, number]>(
        'INSERT OR IGNORE INTO deliveries (id, expires_at) VALUES (?, ?)',
      ),
      putFreeze: db.prepare<[string, string]>(
        'INSERT OR REPLACE INTO freezes (scope, record) VALUES (?, ?)',
      ),
      removeFreeze: db.prepare<[string]>('DELETE FROM freezes WHERE scope = ?'),
      // Prepared once: preparing is most of a small query's cost.
      list: {
        deployments: db.prepare<[string], { record: string }>(listQuery('deployments')),
        promotions: db.prepare<[string], { record: string }>(listQuery('promotions')),
      },
      listFreezes: db.prepare<[], { scope: string; record: string }>(
        'SELECT scope, record FROM freezes ORDER BY scope',
      ),
    };
  }

  async recordDeployment(record: DeploymentRecord): Promise<boolean> {
    const what = `deployment of ${pipelineId(record.pipeline)} in ${record.environment}`;
    return this.write(this.statements.deployment, record, deploymentSlot(record), what);
  }

  async listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]> {
    return this.list('deployments', ref).map((row) =>
      decodeDeploymentRecord(JSON.parse(row.record), `deployment of ${pipelineId(ref)}`),
    );
  }

  async getPromotion(ref: PipelineRef, environment: string): Promise<PromotionRecord | undefined> {
    const row = this.statements.getPromotion.get(pipelineId(ref), environment);
    return row === undefined
      ? undefined
      : decodePromotionRecord(
          JSON.parse(row.record),
          `promotion of ${pipelineId(ref)} into ${environment}`,
        );
  }

  async putPromotion(record: PromotionRecord): Promise<boolean> {
    const what = `promotion of ${pipelineId(record.pipeline)} into ${record.environment}`;
    return this.write(this.statements.promotion, record, record.environment, what);
  }

  async transitionPromotion(
    record: PromotionRecord,
    expected: PromotionExpectation,
  ): Promise<boolean> {
    const what = `promotion of ${pipelineId(record.pipeline)} into ${record.environment}`;
    const time = eventTime(record.eventTimestamp, what);
    return commitSoon(
      this.db,
      () =>
        this.statements.transition.run(
          time,
          JSON.stringify(record),
          pipelineId(record.pipeline),
          record.environment,
          expected.revision,
          JSON.stringify(expected.states),
        ).changes === 1,
    );
  }

  async listPromotions(ref: PipelineRef): Promise<PromotionRecord[]> {
    return this.list('promotions', ref).map((row) =>
      decodePromotionRecord(JSON.parse(row.record), `promotion of ${pipelineId(ref)}`),
    );
  }

  async openIncident(ref: PipelineRef, environment: string, at: string): Promise<boolean> {
    return commitSoon(
      this.db,
      () => this.statements.openIncident.run(pipelineId(ref), environment, at).changes === 1,
    );
  }

  async closeIncident(ref: PipelineRef, environment: string): Promise<string | undefined> {
    return commitSoon(
      this.db,
      () => this.statements.closeIncident.get(pipelineId(ref), environment)?.opened_at,
    );
  }

  async firstSeen(id: string, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    return commitSoon(this.db, () => {
      this.statements.forgetDeliveries.run(now);
      return this.statements.seeDelivery.run(id, now + ttlSeconds * 1000).changes === 1;
    });
  }

  async putFreeze(freeze: Freeze): Promise<void> {
    await commitSoon(this.db, () =>
      this.statements.putFreeze.run(freezeScope(freeze), JSON.stringify(freeze)),
    );
  }

  async removeFreeze(scope: Pick<Freeze, 'pipeline' | 'environment'>): Promise<boolean> {
    return commitSoon(
      this.db,
      () => this.statements.removeFreeze.run(freezeScope(scope)).changes === 1,
    );
  }

  async listFreezes(): Promise<Freeze[]> {
    return this.statements.listFreezes
      .all()
      .map((row) => decodeFreeze(JSON.parse(row.record), `freeze ${row.scope}`));
  }

  /** `slot`: the row's key within the pipeline (the environment, and a deployment's target). */
  private write(
    statement: (typeof this.statements)['deployment'],
    record: DeploymentRecord | PromotionRecord,
    slot: string,
    what: string,
  ): Promise<boolean> {
    const time = eventTime(record.eventTimestamp, what);
    return commitSoon(
      this.db,
      () =>
        statement.run(pipelineId(record.pipeline), slot, time, JSON.stringify(record)).changes ===
        1,
    );
  }

  /** Ordered by environment name, as DynamoDB's sort key orders them. */
  private list(table: Table, ref: PipelineRef): { record: string }[] {
    return this.statements.list[table].all(pipelineId(ref));
  }
}
