import { type Pipeline, type PipelineRef, pipelineId } from '../core/pipeline.ts';
import { type Clock, type PipelineStore, systemClock } from '../core/ports.ts';
import { ReadThroughCache } from './read-through-cache.ts';

/*
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

export class CachedPipelineStore implements PipelineStore {
  private readonly ttlMs: number;
  private readonly notFoundTtlMs: number;
  private readonly cache: ReadThroughCache<Pipeline | undefined>;

  constructor(
    private readonly inner: PipelineStore,
    options: CachedPipelineStoreOptions = {},
  ) {
    this.ttlMs = Math.max(0, options.ttlMs ?? DEFAULT_PIPELINE_CACHE_TTL_MS);
    this.notFoundTtlMs = Math.min(
      this.ttlMs,
      Math.max(0, options.notFoundTtlMs ?? DEFAULT_NOT_FOUND_TTL_MS),
    );
    this.cache = new ReadThroughCache(
      options.clock ?? systemClock,
      Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES),
    );
  }

  get(ref: PipelineRef): Promise<Pipeline | undefined> {
    return this.cache.get(
      pipelineId(ref),
      () => this.inner.get(ref),
      (outcome) =>
        'error' in outcome ? 0 : outcome.value === undefined ? this.notFoundTtlMs : this.ttlMs,
    );
  }

  /** Forgets one pipeline, or every one. */
  invalidate(ref?: PipelineRef): void {
    this.cache.invalidate(ref === undefined ? undefined : pipelineId(ref));
  }
}
