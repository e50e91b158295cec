import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { components } from '@octokit/openapi-types';
import { ENTERPRISE_VERSION, timestamp } from './http.ts';
import type { PullRequestJson, RepositoryJson, SimpleUserJson } from './shapes.ts';

/**
 * Webhook deliveries as GitHub Enterprise Server makes them: a POST per (event, hook) with
 * `X-GitHub-Event`, `X-GitHub-Delivery` (a GUID), `X-Hub-Signature-256` (HMAC-SHA256 of the
 * exact body bytes with the hook's secret) and `X-Hub-Signature` (SHA-1), from
 * `GitHub-Hookshot/...`, one at a time in the order of the events, after the API answer that
 * caused them. Tests can lose, duplicate (the same GUID twice) or forge (a wrong signature) the
 * next deliveries, redeliver one, and wait for all of them: `await deliveries.settled()`.
 */

type Schemas = components['schemas'];

export type PullRequestWebhookAction =
  | 'opened'
  | 'edited'
  | 'closed'
  | 'reopened'
  | 'synchronize'
  | 'auto_merge_enabled';

export type PullRequestOpenedPayload = Schemas['webhook-pull-request-opened'];
export type PullRequestEditedPayload = Schemas['webhook-pull-request-edited'];
export type PullRequestClosedPayload = Schemas['webhook-pull-request-closed'];
export type PullRequestReopenedPayload = Schemas['webhook-pull-request-reopened'];
export type PullRequestSynchronizePayload = Schemas['webhook-pull-request-synchronize'];
export type PullRequestAutoMergeEnabledPayload = Schemas['webhook-pull-request-auto-merge-enabled'];
export type PullRequestPayload =
  | PullRequestOpenedPayload
  | PullRequestEditedPayload
  | PullRequestClosedPayload
  | PullRequestReopenedPayload
  | PullRequestSynchronizePayload
  | PullRequestAutoMergeEnabledPayload;
export type PingPayload = Schemas['webhook-ping'];

/** GitHub's timeout for a webhook answer. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** What GitHub keeps of an answer's body in the delivery log. */
const MAX_RESPONSE_CHARS = 4_096;
const HOOKSHOT = `GitHub-Hookshot/${randomBytes(4).toString('hex').slice(0, 7)}`;

export interface WebhookOptions {
  /** The events the hook subscribes to (GitHub's names, `*` for all). @default ['pull_request'] */
  readonly events?: readonly string[];
  /** Only this repository's events (`owner/repo`); every repository's when absent. */
  readonly repository?: string;
  /** Send `ping` when the hook is registered, as GitHub does. @default true */
  readonly ping?: boolean;
}

export interface WebhookHook {
  readonly id: number;
  readonly url: string;
  readonly events: readonly string[];
  /** `owner/repo`, or undefined for a hook on every repository (an organization's). */
  readonly repository: string | undefined;
}

/** Which deliveries a control applies to (any when a field is absent). */
export interface DeliveryMatch {
  readonly event?: string;
  readonly action?: string;
  readonly hookId?: number;
}

export interface WebhookDelivery {
  /** `X-GitHub-Delivery`: the same on every copy of one delivery. */
  readonly id: string;
  readonly hookId: number;
  readonly url: string;
  readonly event: string;
  readonly action: string | undefined;
  readonly payload: unknown;
  /** The exact body sent: what the signatures cover. */
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  /** `sent`: answered, whatever the status; `lost`: never sent; `failed`: no answer. */
  readonly outcome: 'sent' | 'lost' | 'failed';
  readonly status: number | undefined;
  /** The answer's body (its first 4 KiB). */
  readonly response: string | undefined;
  /** Why there was no answer (connection refused, timeout). */
  readonly error: string | undefined;
  /** A further copy of a delivery (a duplicate or a redelivery). */
  readonly redelivery: boolean;
  /** Signed with another secret than the hook's. */
  readonly forged: boolean;
  readonly at: string;
}

interface Hook extends WebhookHook {
  readonly secret: string;
  readonly target: { readonly type: 'repository' | 'organization'; readonly id: number };
}

interface Rule {
  readonly kind: 'lose' | 'duplicate' | 'forge';
  readonly match: DeliveryMatch;
  remaining: number;
  readonly concurrently: boolean;
}

interface Attempt {
  readonly hook: Hook;
  readonly id: string;
  readonly event: string;
  readonly action: string | undefined;
  readonly payload: unknown;
  readonly body: string;
  readonly redelivery: boolean;
  readonly forged: boolean;
}

const subscribes = (hook: WebhookHook, event: string): boolean =>
  event === 'ping' || hook.events.includes('*') || hook.events.includes(event);

const matches = (match: DeliveryMatch, hookId: number, event: string, action?: string) =>
  (match.event === undefined || match.event === event) &&
  (match.action === undefined || match.action === action) &&
  (match.hookId === undefined || match.hookId === hookId);

const actionOf = (payload: unknown): string | undefined =>
  typeof payload === 'object' &&
  payload !== null &&
  'action' in payload &&
  typeof payload.action === 'string'
    ? payload.action
    : undefined;

export const signatureOf = (secret: string, body: string, algorithm: 'sha1' | 'sha256') =>
  `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;

export class WebhookDeliveries {
  readonly #hooks: Hook[] = [];
  readonly #records: WebhookDelivery[] = [];
  readonly #rules: Rule[] = [];
  readonly #enterpriseHost: () => string;
  #tail: Promise<unknown> = Promise.resolve();
  #nextHookId = 1;

  constructor(enterpriseHost: () => string) {
    this.#enterpriseHost = enterpriseHost;
  }

  // ---- hooks --------------------------------------------------------------------------------

  get hooks(): readonly WebhookHook[] {
    return this.#hooks.map(({ id, url, events, repository }) => ({ id, url, events, repository }));
  }

  /** Registers a hook (the stand-in's `deliverWebhooksTo` does, and sends the ping). */
  addHook(
    url: string,
    secret: string,
    target: Hook['target'],
    options: Omit<WebhookOptions, 'ping'> = {},
  ): WebhookHook {
    const hook: Hook = {
      id: this.#nextHookId++,
      url,
      secret,
      events: [...(options.events ?? ['pull_request'])],
      repository: options.repository,
      target,
    };
    this.#hooks.push(hook);
    return hook;
  }

  /** Removes one hook, or all of them. */
  removeHooks(id?: number): void {
    for (let index = this.#hooks.length - 1; index >= 0; index -= 1) {
      if (id === undefined || this.#hooks[index]?.id === id) this.#hooks.splice(index, 1);
    }
  }

  // ---- sending ------------------------------------------------------------------------------

  /**
   * Delivers `event` to every hook that subscribes to it (and covers `repository`, or only to
   * `hookId`), after the deliveries already queued. The payload may still be in the making: it
   * is awaited in turn, so that deliveries keep the order of their events.
   */
  send(
    event: string,
    payload: unknown,
    scope: { readonly repository?: string; readonly hookId?: number } = {},
  ): Promise<WebhookDelivery[]> {
    const hooks = this.#hooks.filter(
      (hook) =>
        subscribes(hook, event) &&
        (scope.hookId === undefined || hook.id === scope.hookId) &&
        (hook.repository === undefined ||
          scope.repository === undefined ||
          hook.repository.toLowerCase() === scope.repository.toLowerCase()),
    );
    if (hooks.length === 0) return Promise.resolve([]);
    return this.#enqueue(async () => {
      const resolved = await payload;
      const body = JSON.stringify(resolved);
      const action = actionOf(resolved);
      const delivered: WebhookDelivery[] = [];
      for (const hook of hooks) {
        const attempt: Attempt = {
          hook,
          id: randomUUID(),
          event,
          action,
          payload: resolved,
          body,
          redelivery: false,
          forged: false,
        };
        const rule = this.#takeRule(hook.id, event, action);
        if (rule?.kind === 'lose') {
          delivered.push(this.#record(attempt, { outcome: 'lost' }));
        } else if (rule?.kind === 'duplicate') {
          const again = { ...attempt, redelivery: true };
          if (rule.concurrently) {
            delivered.push(...(await Promise.all([this.#post(attempt), this.#post(again)])));
          } else {
            delivered.push(await this.#post(attempt), await this.#post(again));
          }
        } else {
          delivered.push(await this.#post({ ...attempt, forged: rule?.kind === 'forge' }));
        }
      }
      return delivered;
    });
  }

  /** Sends a recorded delivery again: the same GUID and body, correctly signed. */
  redeliver(id: string): Promise<WebhookDelivery> {
    const original = this.#records.find((record) => record.id === id);
    const hook = this.#hooks.find((candidate) => candidate.id === original?.hookId);
    if (original === undefined || hook === undefined) {
      return Promise.reject(new Error(`No delivery ${id} to a registered hook`));
    }
    return this.#enqueue(() =>
      this.#post({
        hook,
        id,
        event: original.event,
        action: original.action,
        payload: original.payload,
        body: original.body,
        redelivery: true,
        forged: false,
      }),
    );
  }

  // ---- controls -----------------------------------------------------------------------------

  /** The next `count` matching deliveries are lost: recorded, never sent. */
  loseNext(count = 1, match: DeliveryMatch = {}): void {
    this.#rules.push({ kind: 'lose', match, remaining: count, concurrently: false });
  }

  /**
   * The next matching delivery is sent twice with the same `X-GitHub-Delivery`: one after the
   * other's answer, or both at once with `concurrently`.
   */
  duplicateNext(match: DeliveryMatch & { readonly concurrently?: boolean } = {}): void {
    const { concurrently = false, ...rest } = match;
    this.#rules.push({ kind: 'duplicate', match: rest, remaining: 1, concurrently });
  }

  /** The next `count` matching deliveries are signed with another secret than the hook's. */
  forgeNext(count = 1, match: DeliveryMatch = {}): void {
    this.#rules.push({ kind: 'forge', match, remaining: count, concurrently: false });
  }

  // ---- inspection ---------------------------------------------------------------------------

  /** Every delivery so far, lost ones included, in order. */
  get all(): readonly WebhookDelivery[] {
    return [...this.#records];
  }

  list(match: DeliveryMatch = {}): WebhookDelivery[] {
    return this.#records.filter((record) =>
      matches(match, record.hookId, record.event, record.action),
    );
  }

  /** Resolves once every delivery queued so far, and any they led to, has its answer. */
  async settled(): Promise<void> {
    for (;;) {
      const tail = this.#tail;
      await tail;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (tail === this.#tail) return;
    }
  }

  /** Forgets the deliveries and the pending controls (hooks stay). */
  clear(): void {
    this.#records.length = 0;
    this.#rules.length = 0;
  }

  // ---- internals ----------------------------------------------------------------------------

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    // After the answer of the request that caused the event has gone out, as GitHub does.
    const run = this.#tail.then(
      () => new Promise<void>((resolve) => setImmediate(resolve)).then(task),
      () => undefined,
    ) as Promise<T>;
    this.#tail = run.catch((error: unknown) => {
      console.error('GitHub stand-in: a webhook delivery failed to start', error);
    });
    return run;
  }

  #takeRule(hookId: number, event: string, action: string | undefined): Rule | undefined {
    const index = this.#rules.findIndex((rule) => matches(rule.match, hookId, event, action));
    if (index < 0) return undefined;
    const rule = this.#rules[index] as Rule;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.#rules.splice(index, 1);
    return rule;
  }

  #headers(attempt: Attempt): Record<string, string> {
    const secret = attempt.forged ? randomBytes(16).toString('hex') : attempt.hook.secret;
    return {
      'content-type': 'application/json',
      'user-agent': HOOKSHOT,
      'x-github-event': attempt.event,
      'x-github-delivery': attempt.id,
      'x-github-hook-id': String(attempt.hook.id),
      'x-github-hook-installation-target-type': attempt.hook.target.type,
      'x-github-hook-installation-target-id': String(attempt.hook.target.id),
      'x-github-enterprise-version': ENTERPRISE_VERSION,
      'x-github-enterprise-host': this.#enterpriseHost(),
      'x-hub-signature': signatureOf(secret, attempt.body, 'sha1'),
      'x-hub-signature-256': signatureOf(secret, attempt.body, 'sha256'),
    };
  }

  async #post(attempt: Attempt): Promise<WebhookDelivery> {
    const headers = this.#headers(attempt);
    try {
      const response = await fetch(attempt.hook.url, {
        method: 'POST',
        headers,
        body: attempt.body,
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      const text = await response.text();
      return this.#record(attempt, {
        outcome: 'sent',
        headers,
        status: response.status,
        response: text.slice(0, MAX_RESPONSE_CHARS),
      });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      return this.#record(attempt, {
        outcome: 'failed',
        headers,
        error: cause instanceof Error ? cause.message : String(cause),
      });
    }
  }

  #record(
    attempt: Attempt,
    result: {
      readonly outcome: WebhookDelivery['outcome'];
      readonly headers?: Readonly<Record<string, string>>;
      readonly status?: number;
      readonly response?: string;
      readonly error?: string;
    },
  ): WebhookDelivery {
    const delivery: WebhookDelivery = {
      id: attempt.id,
      hookId: attempt.hook.id,
      url: attempt.hook.url,
      event: attempt.event,
      action: attempt.action,
      payload: attempt.payload,
      body: attempt.body,
      headers: result.headers ?? this.#headers(attempt),
      outcome: result.outcome,
      status: result.status,
      response: result.response,
      error: result.error,
      redelivery: attempt.redelivery,
      forged: attempt.forged,
      at: timestamp(),
    };
    this.#records.push(delivery);
    return delivery;
  }
}

// ---- payloads -------------------------------------------------------------------------------

export interface PullRequestEventFacts {
  readonly pull: PullRequestJson;
  readonly repository: RepositoryJson;
  readonly sender: SimpleUserJson;
  readonly deleteBranchOnMerge: boolean;
  readonly allowAutoMerge: boolean;
}

export type PullRequestChanges = PullRequestEditedPayload['changes'];

const webhookPull = (facts: PullRequestEventFacts) => ({
  ...facts.pull,
  assignees: facts.pull.assignees ?? [],
  requested_reviewers: facts.pull.requested_reviewers ?? [],
  requested_teams: [],
  active_lock_reason: null,
  allow_auto_merge: facts.allowAutoMerge,
  allow_update_branch: false,
  delete_branch_on_merge: facts.deleteBranchOnMerge,
  merge_commit_message: 'PR_TITLE' as const,
  merge_commit_title: 'MERGE_MESSAGE' as const,
  squash_merge_commit_message: 'COMMIT_MESSAGES' as const,
  squash_merge_commit_title: 'COMMIT_OR_PR_TITLE' as const,
  use_squash_pr_title_as_default: false,
});

export const pullRequestPayload = (
  action: PullRequestWebhookAction,
  facts: PullRequestEventFacts,
  extra: {
    readonly changes?: PullRequestChanges;
    readonly before?: string;
    readonly after?: string;
  } = {},
): PullRequestPayload => {
  const common = {
    number: facts.pull.number,
    pull_request: webhookPull(facts),
    repository: facts.repository,
    sender: facts.sender,
  };
  switch (action) {
    case 'opened':
      return { action, ...common } satisfies PullRequestOpenedPayload;
    case 'reopened':
      return { action, ...common } satisfies PullRequestReopenedPayload;
    case 'closed':
      return { action, ...common } satisfies PullRequestClosedPayload;
    case 'edited':
      return { action, changes: extra.changes ?? {}, ...common } satisfies PullRequestEditedPayload;
    case 'synchronize':
      // Its schema is an older inline copy of the pull request that only differs by nullability
      // (gravatar_id), so the same object is asserted rather than checked.
      return {
        action,
        before: extra.before ?? facts.pull.head.sha,
        after: extra.after ?? facts.pull.head.sha,
        ...common,
      } as PullRequestSynchronizePayload;
    case 'auto_merge_enabled':
      // Also an older inline copy of the pull request (see synchronize).
      return { action, ...common } as PullRequestAutoMergeEnabledPayload;
  }
};

const ZEN = [
  'Design for failure.',
  'Keep it logically awesome.',
  'Speak like a human.',
  'Anything added dilutes everything else.',
  'Non-blocking is better than blocking.',
];

export const pingPayload = (
  hook: WebhookHook,
  hooksUrl: string,
  sender: SimpleUserJson,
  repository: RepositoryJson | undefined,
): PingPayload => {
  const url = `${hooksUrl}/${hook.id}`;
  const now = timestamp();
  return {
    zen: ZEN[hook.id % ZEN.length] as string,
    hook_id: hook.id,
    hook: {
      type: repository === undefined ? 'Organization' : 'Repository',
      id: hook.id,
      name: 'web',
      active: true,
      events: [...hook.events],
      config: { content_type: 'json', insecure_ssl: '0', url: hook.url },
      updated_at: now,
      created_at: now,
      url,
      test_url: `${url}/test`,
      ping_url: `${url}/pings`,
      deliveries_url: `${url}/deliveries`,
      last_response: { code: null, status: 'unused', message: null },
    },
    ...(repository === undefined ? {} : { repository }),
    sender,
  };
};
