import type { Clock } from '../core/ports.ts';

/*
 * A read-through cache for the adapters that put a slow or costly read behind a short TTL (the
 * pipeline definitions, the secrets): concurrent reads of one key share one load; an outcome,
 * a value or a failure, is kept as long as `ttlMs` says for it (0: not at all); `invalidate`
 * forgets, and a load started before it does not fill the cache; past `maxEntries` the oldest
 * entry leaves first.
 */

export type Outcome<V> = { readonly value: V } | { readonly error: unknown };

interface Entry<V> {
  readonly outcome: Outcome<V>;
  readonly expiresAt: number;
}

export class ReadThroughCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inFlight = new Map<string, Promise<V>>();
  private generation = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries = Number.POSITIVE_INFINITY,
  ) {}

  async get(
    key: string,
    load: () => Promise<V>,
    ttlMs: (outcome: Outcome<V>) => number,
  ): Promise<V> {
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      if (this.clock.now().getTime() < cached.expiresAt) {
        if ('error' in cached.outcome) throw cached.outcome.error;
        return cached.outcome.value;
      }
      this.entries.delete(key);
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const generation = this.generation;
    const keep = (outcome: Outcome<V>) => {
      const ttl = ttlMs(outcome);
      if (ttl <= 0 || generation !== this.generation) return;
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (oldest.done !== true) this.entries.delete(oldest.value);
      }
      this.entries.set(key, { outcome, expiresAt: this.clock.now().getTime() + ttl });
    };
    const read: Promise<V> = load()
      .then(
        (value) => {
          keep({ value });
          return value;
        },
        (error: unknown) => {
          keep({ error });
          throw error;
        },
      )
      .finally(() => {
        if (this.inFlight.get(key) === read) this.inFlight.delete(key);
      });
    this.inFlight.set(key, read);
    return read;
  }

  /** Forgets one key, or every one. */
  invalidate(key?: string): void {
    this.generation += 1;
    if (key === undefined) {
      this.entries.clear();
      this.inFlight.clear();
    } else {
      this.entries.delete(key);
      this.inFlight.delete(key);
    }
  }
}
