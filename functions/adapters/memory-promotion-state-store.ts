import { type PipelineRef, pipelineId } from '../core/pipeline.ts';
import type { DeploymentRecord, PromotionRecord, PromotionStateStore } from '../core/ports.ts';

/** The promotion-state twin for `serve` and tests: latest deployment and promotion per env. */
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

  async recordDeployment(record: DeploymentRecord): Promise<void> {
    const entries = MemoryPromotionStateStore.of(this.deployments, record.pipeline);
    const current = entries.get(record.environment);
    if (current === undefined || current.eventTimestamp <= record.eventTimestamp) {
      entries.set(record.environment, record);
    }
  }

  async listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]> {
    return [...MemoryPromotionStateStore.of(this.deployments, ref).values()];
  }

  async getPromotion(ref: PipelineRef, environment: string): Promise<PromotionRecord | undefined> {
    return MemoryPromotionStateStore.of(this.promotions, ref).get(environment);
  }

  async putPromotion(record: PromotionRecord): Promise<void> {
    MemoryPromotionStateStore.of(this.promotions, record.pipeline).set(record.environment, record);
  }

  async listPromotions(ref: PipelineRef): Promise<PromotionRecord[]> {
    return [...MemoryPromotionStateStore.of(this.promotions, ref).values()];
  }
}
