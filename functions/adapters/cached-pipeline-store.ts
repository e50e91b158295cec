import { type Pipeline, type PipelineRef, pipelineId } from '../core/pipeline.ts';
import { type Clock, type PipelineStore, systemClock } from '../core/ports.ts';

/**
 * A read-through cache in front of a PipelineStore, for the webhook and the worker (a burst of
 * deliveries or jobs for one pipeline costs one store read per TTL and execution environment):
 *
 * - a found pipeline is served from memory for `ttlMs` (30 s unless told): a definition changed
 *   by `promoter sync` is picked up within that time;
 * - a pipeline not found is remembered for `notFoundTtlMs` (5 s unless told, never longer than
 *   `ttlMs`): a flood of requests for an unknown pipeline does not reach the store, and a newly
 *   synced pipeline is found within seconds (Flux retries a 404ed delivery);
 * - store failures are not cached (the next get asks again), and concurrent gets of the same
 *   pipeline share one read;
 * - at most `maxEntries` pipelines (1,000 unless told) are kept, the oldest entry leaving first.
 *
 * `ttlMs: 0` turns the cache off.
 */
export const DEFAULT_PIPELINE_CACHE_TTL_MS = 30_000;
export const DEFAULT_NOT_FOUND_TTL_MS = 5_000;
export const DEFAULT_MAX_ENTRIES = 1_000;

export interface CachedPipelineStoreOptions {
  readonly ttlMs?: number;
  readonly notFoundTtlMs?: number;
  readonly maxEntries?: number;
  readonly clock?: Clock;
}

interface Entry {
  readonly pipeline: Pipeline | undefined;
  readonly expiresAt: number;
}

export class CachedPipelineStore implements PipelineStore {
  private readonly ttlMs: number;
  private readonly notFoundTtlMs: number;
  private readonly maxEntries: number;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Pipeline | undefined>>();
  /** Bumped by `invalidate`, so that a read started before it does not fill the cache. */
  private generation = 0;

  constructor(
    private readonly inner: PipelineStore,
    options: CachedPipelineStoreOptions = {},
  ) {
    this.ttlMs = Math.max(0, options.ttlMs ?? DEFAULT_PIPELINE_CACHE_TTL_MS);
    this.notFoundTtlMs = Math.min(
      this.ttlMs,
      Math.max(0, options.notFoundTtlMs ?? DEFAULT_NOT_FOUND_TTL_MS),
    );
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.clock = options.clock ?? systemClock;
  }

  async get(ref: PipelineRef): Promise<Pipeline | undefined> {
    const id = pipelineId(ref);
    const cached = this.entries.get(id);
    if (cached !== undefined) {
      if (this.clock.now().getTime() < cached.expiresAt) return cached.pipeline;
      this.entries.delete(id);
    }
    const pending = this.inFlight.get(id);
    if (pending !== undefined) return pending;
    const read: Promise<Pipeline | undefined> = this.read(id, ref).finally(() => {
      if (this.inFlight.get(id) === read) this.inFlight.delete(id);
    });
    this.inFlight.set(id, read);
    return read;
  }

  /** Forgets one pipeline, or every one. */
  invalidate(ref?: PipelineRef): void {
    this.generation += 1;
    if (ref === undefined) {
      this.entries.clear();
      this.inFlight.clear();
    } else {
      this.entries.delete(pipelineId(ref));
      this.inFlight.delete(pipelineId(ref));
    }
  }

  private async read(id: string, ref: PipelineRef): Promise<Pipeline | undefined> {
    const generation = this.generation;
    const pipeline = await this.inner.get(ref);
    const ttl = pipeline === undefined ? this.notFoundTtlMs : this.ttlMs;
    if (ttl > 0 && generation === this.generation) {
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (oldest.done !== true) this.entries.delete(oldest.value);
      }
      this.entries.set(id, { pipeline, expiresAt: this.clock.now().getTime() + ttl });
    }
    return pipeline;
  }
}
