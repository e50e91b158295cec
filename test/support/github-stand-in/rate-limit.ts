import { PRIMARY_RATE_LIMIT_DOCS, primaryRateLimitMessage } from './faults.ts';
import type { Answer } from './http.ts';
import type { RateLimitJson } from './shapes.ts';

/** GitHub's primary rate limit per token: an hourly window, and the `x-ratelimit-*` headers. */
export class RateLimits {
  readonly #limit: number;
  readonly #usage = new Map<string, { windowStart: number; used: number }>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  get limit(): number {
    return this.#limit;
  }

  /** Uses one request of `token`'s window, or answers the 403 when it is spent. */
  consume(token: string): Answer | undefined {
    const usage = this.#usageOf(token);
    if (usage.used >= this.#limit) {
      return {
        status: 403,
        body: { message: primaryRateLimitMessage(), documentation_url: PRIMARY_RATE_LIMIT_DOCS },
      };
    }
    usage.used += 1;
    return undefined;
  }

  /** Gives back a request that GitHub does not count after all (a 304). */
  refund(token: string): void {
    const usage = this.#usageOf(token);
    usage.used = Math.max(0, usage.used - 1);
  }

  clear(): void {
    this.#usage.clear();
  }

  /** The headers of every answer; an unauthenticated caller sees the anonymous limit. */
  headers(token: string | undefined): Record<string, string> {
    if (token === undefined) {
      const reset = Math.floor(Date.now() / 1000) + 3_600;
      return {
        'x-ratelimit-limit': '60',
        'x-ratelimit-remaining': '59',
        'x-ratelimit-used': '1',
        'x-ratelimit-reset': String(reset),
        'x-ratelimit-resource': 'core',
      };
    }
    const usage = this.#usageOf(token);
    return {
      'x-ratelimit-limit': String(this.#limit),
      'x-ratelimit-remaining': String(Math.max(0, this.#limit - usage.used)),
      'x-ratelimit-used': String(usage.used),
      'x-ratelimit-reset': String(usage.windowStart + 3_600),
      'x-ratelimit-resource': 'core',
    };
  }

  /** `GET /rate_limit`. */
  answer(token: string): Answer {
    const headers = this.headers(token);
    const core = {
      limit: Number(headers['x-ratelimit-limit']),
      used: Number(headers['x-ratelimit-used']),
      remaining: Number(headers['x-ratelimit-remaining']),
      reset: Number(headers['x-ratelimit-reset']),
    };
    const other = (limit: number) => ({
      limit,
      used: 0,
      remaining: limit,
      reset: Math.floor(Date.now() / 1000) + 3_600,
    });
    const body: RateLimitJson = {
      resources: {
        core,
        search: other(30),
        graphql: other(5_000),
        integration_manifest: other(5_000),
      },
      rate: core,
    };
    return { status: 200, body };
  }

  #usageOf(token: string): { windowStart: number; used: number } {
    const now = Math.floor(Date.now() / 1000);
    let usage = this.#usage.get(token);
    if (usage === undefined || now - usage.windowStart >= 3_600) {
      usage = { windowStart: now, used: 0 };
      this.#usage.set(token, usage);
    }
    return usage;
  }
}
