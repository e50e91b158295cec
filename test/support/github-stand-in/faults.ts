import { type Answer, alreadyExists, DOCS, type Route, requestId } from './http.ts';
import type { FaultRule, GitHubFault } from './types.ts';

/** Queued faults, taken by the requests they match, and the answers GitHub gives for them. */

const SECONDARY_RATE_LIMIT_MESSAGE =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. ' +
  'If you reach out to GitHub Support for help, please include the request ID';

export const primaryRateLimitMessage = (): string =>
  `API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID ${requestId()}.`;

export const PRIMARY_RATE_LIMIT_DOCS =
  'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit';

export class FaultQueue {
  readonly #faults: { rule: FaultRule; remaining: number }[] = [];

  inject(rule: FaultRule): void {
    this.#faults.push({ rule, remaining: rule.times ?? 1 });
  }

  pending(): number {
    return this.#faults.reduce((sum, entry) => sum + entry.remaining, 0);
  }

  clear(): void {
    this.#faults.length = 0;
  }

  take(method: string, path: string, template: string | undefined): GitHubFault | undefined {
    const index = this.#faults.findIndex(({ rule }) => {
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) return false;
      if (rule.route === undefined) return true;
      if (rule.route instanceof RegExp) return rule.route.test(path);
      return rule.route === template || rule.route === path;
    });
    if (index < 0) return undefined;
    const entry = this.#faults[index] as { rule: FaultRule; remaining: number };
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.#faults.splice(index, 1);
    return entry.rule.fault;
  }
}

export const faultStatus = (fault: GitHubFault): number => {
  switch (fault.kind) {
    case 'status':
      return fault.status;
    case 'secondary-rate-limit':
    case 'primary-rate-limit':
      return fault.status ?? 403;
    case 'already-exists':
      return 422;
    case 'connection-reset':
      return 0;
  }
};

/** The answer of a fault, or `reset` for a dropped connection. */
export const faultAnswer = (
  fault: GitHubFault,
  context: {
    readonly rateLimit: number;
    readonly body: unknown;
    readonly route: Route | undefined;
  },
): Answer | 'reset' => {
  switch (fault.kind) {
    case 'connection-reset':
      return 'reset';
    case 'status':
      return {
        status: fault.status,
        body: fault.body ?? {
          message: fault.status >= 500 ? 'Server Error' : 'Error',
          documentation_url: DOCS,
        },
        ...(fault.headers === undefined ? {} : { headers: fault.headers }),
      };
    case 'secondary-rate-limit':
      return {
        status: fault.status ?? 403,
        headers: { 'retry-after': String(fault.retryAfterSeconds ?? 60) },
        body: {
          message: `${SECONDARY_RATE_LIMIT_MESSAGE} ${requestId()}.`,
          documentation_url:
            'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        },
      };
    case 'primary-rate-limit': {
      const reset = Math.ceil(Date.now() / 1000) + (fault.resetInSeconds ?? 60);
      return {
        status: fault.status ?? 403,
        headers: {
          'x-ratelimit-limit': String(context.rateLimit),
          'x-ratelimit-remaining': '0',
          'x-ratelimit-used': String(context.rateLimit),
          'x-ratelimit-reset': String(reset),
          'x-ratelimit-resource': 'core',
        },
        body: { message: primaryRateLimitMessage(), documentation_url: PRIMARY_RATE_LIMIT_DOCS },
      };
    }
    case 'already-exists': {
      const { body } = context;
      const head =
        typeof body === 'object' && body !== null && 'head' in body && typeof body.head === 'string'
          ? body.head
          : 'branch';
      const owner = context.route?.owner ?? 'owner';
      return alreadyExists(head.includes(':') ? head : `${owner}:${head}`);
    }
  }
};
