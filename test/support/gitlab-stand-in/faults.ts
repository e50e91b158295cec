import type { FaultRule, GitLabFault } from './types.ts';

/** Queued faults, taken by the requests they match, and GitLab's answers for the plain ones. */

export interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

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

  take(method: string, path: string, route: string | undefined): GitLabFault | undefined {
    const index = this.#faults.findIndex(({ rule }) => {
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) return false;
      if (rule.route === undefined) return true;
      if (rule.route instanceof RegExp) return rule.route.test(path);
      return rule.route === route || rule.route === path;
    });
    if (index < 0) return undefined;
    const entry = this.#faults[index] as { rule: FaultRule; remaining: number };
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.#faults.splice(index, 1);
    return entry.rule.fault;
  }
}

/** GitLab's error bodies: `{"message": "404 Project Not Found"}` and friends. */
export const gitlabError = (status: number, message: unknown): Answer => ({
  status,
  body: { message },
});

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** Rack::Attack's throttled answer on GitLab: plain text, Retry-After and RateLimit-* headers. */
export const rateLimited = (retryAfterSeconds: number): Answer => {
  const reset = Math.ceil(Date.now() / 1000) + retryAfterSeconds;
  return {
    status: 429,
    body: 'Retry later\n',
    headers: {
      'content-type': 'text/plain',
      'retry-after': String(retryAfterSeconds),
      'ratelimit-name': 'throttle_authenticated_api',
      'ratelimit-limit': '2000',
      'ratelimit-observed': '2001',
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(reset),
      'ratelimit-resettime': new Date(reset * 1000).toUTCString(),
    },
  };
};

/** The answer of a plain fault (`status`, `rate-limit`); the others are the stand-in's to act. */
export const plainFaultAnswer = (fault: GitLabFault): Answer | undefined => {
  switch (fault.kind) {
    case 'status':
      return {
        status: fault.status,
        body: fault.body ?? { message: `${fault.status} ${STATUS_TEXT[fault.status] ?? 'Error'}` },
        ...(fault.headers === undefined ? {} : { headers: fault.headers }),
      };
    case 'rate-limit':
      return rateLimited(fault.retryAfterSeconds ?? 30);
    default:
      return undefined;
  }
};
