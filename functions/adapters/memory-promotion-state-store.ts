import { eventTime, isLaterEvent } from '../core/event-order.ts';
import { type PipelineRef, pipelineId } from '../core/pipeline.ts';
import type { DeploymentRecord, PromotionRecord, PromotionStateStore } from '../core/ports.ts';

/**
 * The promotion-state twin for `serve` and tests: latest deployment and promotion per env, with
 * exactly DynamoDbPromotionStateStore's write rule, for deployments and promotions alike: a
 * record is written only when none is stored for that (pipeline, environment) or the stored one's
 * event is not newer than the new one's (equal instants allowed, the last write wins). Event
 * timestamps are compared as instants (core/event-order.ts), never as text; one that is not an
 * ISO 8601 date-time is a RangeError. Lists are ordered by environment name, as DynamoDB's are.
 */
export class MemoryPromotionStateStore implements PromotionStateStore {
  private readonly deployments = new Map<string, Map<string, DeploymentRecord>>();
  private readonly promotions = new Map<string, Map<string, PromotionRecord>>();

  private static of<T>(map: Map<string, Map<string, T>>, ref: PipelineRef): Map<string, T> {
    const id = pipelineId(ref);
    let entries = map.get(id);
    if (entries === undefined) {
      entries = new Map();
      map.set(id, entries);
    }
    return entries;
  }

  /** Stores `record` unless the stored record of its environment has a newer event. */
  private static putIfNotNewerStored<T extends DeploymentRecord | PromotionRecord>(
    map: Map<string, Map<string, T>>,
    record: T,
    what: string,
  ): boolean {
    eventTime(record.eventTimestamp, what);
    const entries = MemoryPromotionStateStore.of(map, record.pipeline);
    const stored = entries.get(record.environment);
    if (stored !== undefined && isLaterEvent(stored.eventTimestamp, record.eventTimestamp)) {
      return false;
    }
    entries.set(record.environment, record);
    return true;
  }

  private static sorted<T extends { readonly environment: string }>(entries: Map<string, T>): T[] {
    return [...entries.values()].sort((a, b) =>
      a.environment < b.environment ? -1 : a.environment > b.environment ? 1 : 0,
    );
  }

  async recordDeployment(record: DeploymentRecord): Promise<boolean> {
    return MemoryPromotionStateStore.putIfNotNewerStored(
      this.deployments,
      record,
      `deployment of ${pipelineId(record.pipeline)} in ${record.environment}`,
    );
  }

  async listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]> {
    return MemoryPromotionStateStore.sorted(MemoryPromotionStateStore.of(this.deployments, ref));
  }

  async getPromotion(ref: PipelineRef, environment: string): Promise<PromotionRecord | undefined> {
    return MemoryPromotionStateStore.of(this.promotions, ref).get(environment);
  }

  async putPromotion(record: PromotionRecord): Promise<boolean> {
    return MemoryPromotionStateStore.putIfNotNewerStored(
      this.promotions,
      record,
      `promotion of ${pipelineId(record.pipeline)} into ${record.environment}`,
    );
  }

  async listPromotions(ref: PipelineRef): Promise<PromotionRecord[]> {
    return MemoryPromotionStateStore.sorted(MemoryPromotionStateStore.of(this.promotions, ref));
  }
}
