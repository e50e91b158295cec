import { createHash } from 'node:crypto';
import { Octokit } from '@octokit/core';
import {
  type RestEndpointMethodTypes,
  restEndpointMethods,
} from '@octokit/plugin-rest-endpoint-methods';
import { retry } from '@octokit/plugin-retry';
import { type ThrottlingOptions, throttling } from '@octokit/plugin-throttling';
import { PromoterError } from '../core/errors.ts';
import { type AddressPolicy, refuseInsecureUrl, SELF_HOSTED_ADDRESS_POLICY } from '../core/http.ts';
import type {
  PullRequestLookup,
  PullRequestRequest,
  PullRequestResult,
  PullRequests,
  PullRequestView,
} from '../core/ports.ts';
import { type RetryHint, SECONDARY_RATE_LIMIT_SECONDS } from '../core/retry-policy.ts';
import {
  createGuardedAgents,
  type GuardedAgents,
  guardedFetch,
  refusedConnection,
} from './guarded-http.ts';

/**
 * The PullRequests port on GitHub (github.com and GitHub Enterprise Server) with Octokit:
 * exactly one open PR per head branch, found by `head={owner}:{branch}` and updated, else opened;
 * a create that races another ("A pull request already exists") finds it and updates it.
 *
 * Transient failures are retried in process within bounds: 5xx and network errors by the retry
 * plugin (back-off 1, 4, 9 × `retryAfterBaseValue` ms), primary and secondary rate limits by the
 * throttling plugin (waiting Retry-After or the reset time, up to `maxRetryAfterSeconds`; a
 * secondary limit without Retry-After waits 60 s, so by default it goes to the queue). What
 * remains is a PromoterError: GITHUB_UNAVAILABLE (retryable, through the queue, with the hints of
 * `RetryHint` in `data`: `rateLimit` and `retryAfterSeconds`) or GITHUB_AUTH_FAILED /
 * GITHUB_NOT_FOUND / GITHUB_REJECTED (permanent). Messages name the repository and the
 * operation, never the token.
 */

export type OctokitLog = {
  readonly debug: (message: string, ...details: unknown[]) => unknown;
  readonly info: (message: string, ...details: unknown[]) => unknown;
  readonly warn: (message: string, ...details: unknown[]) => unknown;
  readonly error: (message: string, ...details: unknown[]) => unknown;
};

export interface OctokitPullRequestsOptions {
  /** Default `pipeline-promoter`. */
  readonly userAgent?: string;
  /**
   * Milliseconds one second of Retry-After (and one back-off unit) stands for. Default 1000;
   * tests pass a few milliseconds so that they never sleep.
   */
  readonly retryAfterBaseValue?: number;
  /** Retries of one request after a 5xx or a network error (default 3). */
  readonly retries?: number;
  /** Retries of one request after a primary or secondary rate limit (default 2). */
  readonly rateLimitRetries?: number;
  /**
   * The longest Retry-After waited for in process, in seconds (default 20). Longer waits end in
   * GITHUB_UNAVAILABLE with `data.retryAfterSeconds`, for the queue to retry later.
   */
  readonly maxRetryAfterSeconds?: number;
  /**
   * Space write requests per token as GitHub asks (1 s between writes, 3 s between
   * content-creating ones such as opening a PR). Default true; tests turn it off.
   */
  readonly spaceWrites?: boolean;
  /** Gives up one `upsert` (as GITHUB_UNAVAILABLE) after this many milliseconds (default 60 000). */
  readonly timeoutMs?: number;
  /** How many (API base URL, token) clients are kept (default 32, least recently used go). */
  readonly maxClients?: number;
  /** Octokit's log (default: debug and info silent, warn and error to the console). */
  readonly log?: OctokitLog;
  /**
   * Which addresses the API client may connect to, checked at connect time (default
   * SELF_HOSTED_ADDRESS_POLICY; the AWS worker passes the strict one).
   */
  readonly addressPolicy?: AddressPolicy;
  /** Told of each connection the policy refused (HOST_REFUSED). */
  readonly onRefusedConnection?: (refusal: PromoterError) => void;
}

/**
 * Octokit wraps whatever its fetch throws in a RequestError with status 500, which the retry
 * plugin would retry: a refused connection is handed on as itself, before the plugins see it.
 */
const refusedConnections = (octokit: Octokit): void => {
  octokit.hook.error('request', (error) => {
    throw refusedConnection(error) ?? error;
  });
};

const PromoterOctokit = Octokit.plugin(refusedConnections, restEndpointMethods, retry, throttling);
type Client = InstanceType<typeof PromoterOctokit>;
type PullRequest = RestEndpointMethodTypes['pulls']['list']['response']['data'][number];
type ThrottleGroup = NonNullable<ThrottlingOptions['write']>;

const API_VERSION = '2022-11-28';
/** ETags kept for conditional reads: one per open promotion PR is plenty. */
const MAX_ETAGS = 10_000;
const HEADERS = { 'x-github-api-version': API_VERSION } as const;

/** Statuses the retry plugin leaves alone: client errors, and 429 (the throttling plugin's). */
const DO_NOT_RETRY = [400, 401, 403, 404, 409, 410, 422, 429, 451];

/** A throttling group that runs every job at once (no spacing between writes). */
const unspacedGroup = (() => {
  const limiter = {
    schedule: (_options: unknown, task: (...args: unknown[]) => unknown, ...args: unknown[]) =>
      Promise.resolve().then(() => task(...args)),
  };
  return { key: () => limiter } as unknown as ThrottleGroup;
})();

const silentLog: OctokitLog = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message, ...details) => console.warn(message, ...details),
  error: (message, ...details) => console.error(message, ...details),
};

interface HttpErrorLike {
  readonly status: number;
  readonly message: string;
  readonly response?: {
    readonly headers?: Readonly<Record<string, string | number | undefined>>;
    readonly data?: unknown;
  };
}

const asHttpError = (error: unknown): HttpErrorLike | undefined =>
  typeof error === 'object' &&
  error !== null &&
  typeof (error as { status?: unknown }).status === 'number'
    ? (error as HttpErrorLike)
    : undefined;

const header = (error: HttpErrorLike, name: string): string | undefined => {
  const value = error.response?.headers?.[name];
  return value === undefined ? undefined : String(value);
};

interface GitHubErrorBody {
  readonly message?: unknown;
  readonly errors?: unknown;
}

/** GitHub's message with its validation errors: `Validation Failed: A pull request already exists...`. */
const githubMessage = (error: HttpErrorLike): string => {
  const data = error.response?.data;
  if (typeof data !== 'object' || data === null) return error.message;
  const body = data as GitHubErrorBody;
  const message = typeof body.message === 'string' ? body.message : error.message;
  const details = (Array.isArray(body.errors) ? body.errors : [])
    .map((entry: unknown) => {
      if (typeof entry === 'string') return entry;
      if (typeof entry !== 'object' || entry === null) return undefined;
      const { message: text, field, code } = entry as Record<string, unknown>;
      if (typeof text === 'string') return text;
      return [field, code].filter((part) => typeof part === 'string').join(' ') || undefined;
    })
    .filter((detail): detail is string => detail !== undefined);
  return details.length === 0 ? message : `${message}: ${details.join('; ')}`;
};

const isAlreadyExists = (error: unknown): boolean => {
  const http = asHttpError(error);
  return (
    http !== undefined &&
    http.status === 422 &&
    /pull request already exists/i.test(githubMessage(http))
  );
};

/** GitHub's words for a secondary limit (older servers say "abuse detection"). */
const SECONDARY = /secondary rate limit|abuse detection/i;

const isRateLimited = (error: HttpErrorLike): boolean =>
  error.status === 429 ||
  (error.status === 403 &&
    (header(error, 'retry-after') !== undefined ||
      header(error, 'x-ratelimit-remaining') === '0' ||
      /rate limit/i.test(githubMessage(error)) ||
      SECONDARY.test(githubMessage(error))));

/**
 * Which of GitHub's limits a rate-limited answer is: its message says secondary, else
 * `x-ratelimit-remaining: 0` is the primary one, else a Retry-After (or a bare 429) is a
 * secondary one. "API rate limit exceeded" without headers is primary.
 */
const rateLimitKind = (error: HttpErrorLike): NonNullable<RetryHint['rateLimit']> => {
  const message = githubMessage(error);
  if (SECONDARY.test(message)) return 'secondary';
  if (header(error, 'x-ratelimit-remaining') === '0') return 'primary';
  if (header(error, 'retry-after') !== undefined) return 'secondary';
  return /API rate limit exceeded/i.test(message) ? 'primary' : 'secondary';
};

const retryAfterSeconds = (error: HttpErrorLike): number | undefined => {
  const retryAfter = Number(header(error, 'retry-after'));
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return retryAfter;
  const reset = Number(header(error, 'x-ratelimit-reset'));
  if (header(error, 'x-ratelimit-remaining') === '0' && Number.isFinite(reset) && reset > 0) {
    return Math.max(0, Math.ceil(reset - Date.now() / 1000));
  }
  return undefined;
};

interface Operation {
  /** `acme/fleet` */
  readonly repository: string;
  readonly apiBaseUrl: string;
  /** What was being done: `open a pull request from x into main`. */
  readonly operation: string;
  readonly token: string;
}

/** Maps whatever Octokit threw to a PromoterError with GitHub's reason and no secret. */
export const toPromoterError = (error: unknown, context: Operation): PromoterError => {
  if (error instanceof PromoterError) return error;
  const refused = refusedConnection(error);
  if (refused !== undefined) return refused;
  const redact = (text: string): string =>
    context.token.length >= 4 ? text.replaceAll(context.token, '[REDACTED]') : text;
  const http = asHttpError(error);
  const where = `${context.operation} in ${context.repository}`;
  const data: Record<string, unknown> = {
    repository: context.repository,
    apiBaseUrl: context.apiBaseUrl,
    operation: context.operation,
  };
  if (http === undefined || http.response === undefined) {
    const reason = error instanceof Error ? error.message : String(error);
    return new PromoterError(
      'GITHUB_UNAVAILABLE',
      redact(`GitHub (${context.apiBaseUrl}) could not be reached to ${where}: ${reason}`),
      { retryable: true, data, cause: error },
    );
  }
  const status = http.status;
  const reason = redact(githubMessage(http));
  data.status = status;
  const requestId = header(http, 'x-github-request-id');
  if (requestId !== undefined) data.githubRequestId = requestId;

  if (isRateLimited(http)) {
    const rateLimit = rateLimitKind(http);
    const seconds = retryAfterSeconds(http);
    data.rateLimit = rateLimit;
    if (seconds !== undefined) data.retryAfterSeconds = seconds;
    return new PromoterError(
      'GITHUB_UNAVAILABLE',
      `GitHub rate-limited the request to ${where} (${rateLimit} limit, ${status} ${reason})` +
        (seconds === undefined ? '' : `; retry after ${seconds} s`),
      { retryable: true, data, cause: error },
    );
  }
  if (status === 401) {
    return new PromoterError(
      'GITHUB_AUTH_FAILED',
      `GitHub refused the token while trying to ${where} (401 ${reason}); check the token in the pipeline's credentials secret`,
      { retryable: false, data, cause: error },
    );
  }
  if (status === 403) {
    return new PromoterError(
      'GITHUB_AUTH_FAILED',
      `GitHub denied the token permission to ${where} (403 ${reason}); it needs read and write access to pull requests`,
      { retryable: false, data, cause: error },
    );
  }
  if (status === 404) {
    return new PromoterError(
      'GITHUB_NOT_FOUND',
      `GitHub found no repository ${context.repository} at ${context.apiBaseUrl}, or the token cannot see it (404 while trying to ${context.operation})`,
      { retryable: false, data, cause: error },
    );
  }
  if (status === 408 || status >= 500) {
    const seconds = retryAfterSeconds(http);
    if (seconds !== undefined) data.retryAfterSeconds = seconds;
    return new PromoterError(
      'GITHUB_UNAVAILABLE',
      `GitHub failed to ${where} (${status} ${reason})`,
      { retryable: true, data, cause: error },
    );
  }
  return new PromoterError(
    'GITHUB_REJECTED',
    `GitHub rejected the request to ${where} (${status} ${reason})`,
    {
      retryable: false,
      data,
      cause: error,
    },
  );
};

const checkApiBaseUrl = (apiBaseUrl: string): string => {
  let url: URL;
  try {
    url = new URL(apiBaseUrl);
  } catch {
    throw new PromoterError('INVALID_CONFIG', `GitHub API base URL ${apiBaseUrl} is not a URL`);
  }
  const refused = refuseInsecureUrl(url);
  if (refused !== undefined) {
    throw new PromoterError('INVALID_CONFIG', `GitHub API base URL ${url.origin}: ${refused}`);
  }
  return apiBaseUrl.replace(/\/+$/, '');
};

export class OctokitPullRequests implements PullRequests {
  readonly #options: Required<
    Omit<OctokitPullRequestsOptions, 'log' | 'addressPolicy' | 'onRefusedConnection'>
  > & {
    log: OctokitLog;
  };
  readonly #clients = new Map<string, Client>();
  readonly #agents: GuardedAgents;
  /** The last ETag of each PR read, for conditional reads (least recently read go first). */
  readonly #etags = new Map<string, string>();

  constructor(options: OctokitPullRequestsOptions = {}) {
    this.#options = {
      userAgent: options.userAgent ?? 'pipeline-promoter',
      retryAfterBaseValue: options.retryAfterBaseValue ?? 1_000,
      retries: options.retries ?? 3,
      rateLimitRetries: options.rateLimitRetries ?? 2,
      maxRetryAfterSeconds: options.maxRetryAfterSeconds ?? 20,
      spaceWrites: options.spaceWrites ?? true,
      timeoutMs: options.timeoutMs ?? 60_000,
      maxClients: options.maxClients ?? 32,
      log: options.log ?? silentLog,
    };
    this.#agents = createGuardedAgents(
      options.addressPolicy ?? SELF_HOSTED_ADDRESS_POLICY,
      options.onRefusedConnection === undefined ? {} : { onRefused: options.onRefusedConnection },
    );
  }

  async upsert(request: PullRequestRequest): Promise<PullRequestResult> {
    const { owner, repo } = request.repository;
    const repository = `${owner}/${repo}`;
    const apiBaseUrl = checkApiBaseUrl(request.repository.apiBaseUrl);
    if (request.token === '') {
      throw new PromoterError(
        'GITHUB_AUTH_FAILED',
        `No GitHub token to open or update the pull request in ${repository}`,
        { data: { repository, apiBaseUrl } },
      );
    }
    const client = this.#client(apiBaseUrl, request.token);
    const signal = AbortSignal.timeout(this.#options.timeoutMs);
    const branch = request.head.includes(':')
      ? request.head.slice(request.head.indexOf(':') + 1)
      : request.head;
    const label = `${owner}:${branch}`;
    const failure =
      (operation: string) =>
      (error: unknown): never => {
        throw toPromoterError(error, { repository, apiBaseUrl, operation, token: request.token });
      };

    const findOpen = async (): Promise<PullRequest | undefined> => {
      const { data } = await client.rest.pulls
        .list({
          owner,
          repo,
          state: 'open',
          head: label,
          per_page: 100,
          headers: HEADERS,
          request: { signal },
        })
        .catch(failure(`find the open pull request for ${label}`));
      // Filter again: GitHub ignores a `head` filter it cannot parse and lists every PR.
      const mine = data.filter(
        (pull) =>
          pull.head.ref === branch && pull.head.repo?.full_name === pull.base.repo.full_name,
      );
      return mine.find((pull) => pull.base.ref === request.base) ?? mine[0];
    };

    const update = async (pull: PullRequest): Promise<PullRequestResult> => {
      const changes = {
        ...(pull.title === request.title ? {} : { title: request.title }),
        ...((pull.body ?? '') === request.body ? {} : { body: request.body }),
        ...(pull.base.ref === request.base ? {} : { base: request.base }),
      };
      if (Object.keys(changes).length > 0) {
        await client.rest.pulls
          .update({
            owner,
            repo,
            pull_number: pull.number,
            ...changes,
            headers: HEADERS,
            request: { signal },
          })
          .catch(failure(`update pull request #${pull.number}`));
      }
      return { action: 'updated', number: pull.number, url: pull.html_url };
    };

    const existing = await findOpen();
    if (existing !== undefined) return update(existing);

    const operation = `open a pull request from ${branch} into ${request.base}`;
    try {
      const { data } = await client.rest.pulls.create({
        owner,
        repo,
        head: branch,
        base: request.base,
        title: request.title,
        body: request.body,
        headers: HEADERS,
        request: { signal },
      });
      return { action: 'opened', number: data.number, url: data.html_url };
    } catch (error) {
      if (!isAlreadyExists(error)) failure(operation)(error);
      // Another worker (or an earlier attempt whose answer was lost) opened it: update that one.
      const raced = await findOpen();
      if (raced === undefined) {
        throw new PromoterError(
          'GITHUB_UNAVAILABLE',
          `GitHub says a pull request for ${label} already exists in ${repository}, but none is listed as open yet`,
          { retryable: true, data: { repository, apiBaseUrl, operation }, cause: error },
        );
      }
      return update(raced);
    }
  }

  /**
   * Reads the PR with `If-None-Match` when this adapter read it before: GitHub answers 304,
   * which costs no rate limit, while it has not changed (the reconcile sweep reads every open
   * promotion PR every few minutes).
   */
  async get(lookup: PullRequestLookup): Promise<PullRequestView | 'not-modified'> {
    const { client, repository, apiBaseUrl, signal } = this.#prepare(lookup);
    const key = `${apiBaseUrl}/repos/${repository}/pulls/${lookup.number}`;
    const known = this.#etags.get(key);
    try {
      const { data, headers } = await client.rest.pulls.get({
        owner: lookup.repository.owner,
        repo: lookup.repository.repo,
        pull_number: lookup.number,
        headers: { ...HEADERS, ...(known === undefined ? {} : { 'if-none-match': known }) },
        request: { signal },
      });
      this.#etags.delete(key);
      if (typeof headers.etag === 'string') this.#etags.set(key, headers.etag);
      while (this.#etags.size > MAX_ETAGS) {
        const oldest = this.#etags.keys().next();
        if (oldest.done === true) break;
        this.#etags.delete(oldest.value);
      }
      return {
        number: data.number,
        state: data.merged ? 'merged' : data.state === 'open' ? 'open' : 'closed',
        title: data.title,
        headRef: data.head.ref,
        ...(data.merged_at === null ? {} : { mergedAt: new Date(data.merged_at).toISOString() }),
        ...(data.merged && data.merge_commit_sha !== null
          ? { mergeCommit: data.merge_commit_sha }
          : {}),
      };
    } catch (error) {
      if (asHttpError(error)?.status === 304) return 'not-modified';
      throw toPromoterError(error, {
        repository,
        apiBaseUrl,
        operation: `read pull request #${lookup.number}`,
        token: lookup.token,
      });
    }
  }

  async close(lookup: PullRequestLookup, comment: string): Promise<void> {
    const { client, repository, apiBaseUrl, signal } = this.#prepare(lookup);
    const { owner, repo } = lookup.repository;
    const failure =
      (operation: string) =>
      (error: unknown): never => {
        throw toPromoterError(error, { repository, apiBaseUrl, operation, token: lookup.token });
      };
    await client.rest.issues
      .createComment({
        owner,
        repo,
        issue_number: lookup.number,
        body: comment,
        headers: HEADERS,
        request: { signal },
      })
      .catch(failure(`comment on pull request #${lookup.number}`));
    await client.rest.pulls
      .update({
        owner,
        repo,
        pull_number: lookup.number,
        state: 'closed',
        headers: HEADERS,
        request: { signal },
      })
      .catch(failure(`close pull request #${lookup.number}`));
  }

  #prepare(lookup: PullRequestLookup) {
    const repository = `${lookup.repository.owner}/${lookup.repository.repo}`;
    const apiBaseUrl = checkApiBaseUrl(lookup.repository.apiBaseUrl);
    if (lookup.token === '') {
      throw new PromoterError(
        'GITHUB_AUTH_FAILED',
        `No GitHub token to read pull request #${lookup.number} in ${repository}`,
        { data: { repository, apiBaseUrl } },
      );
    }
    return {
      client: this.#client(apiBaseUrl, lookup.token),
      repository,
      apiBaseUrl,
      signal: AbortSignal.timeout(this.#options.timeoutMs),
    };
  }

  #client(apiBaseUrl: string, token: string): Client {
    const key = createHash('sha256').update(apiBaseUrl).update('\0').update(token).digest('hex');
    const cached = this.#clients.get(key);
    if (cached !== undefined) {
      this.#clients.delete(key);
      this.#clients.set(key, cached);
      return cached;
    }
    const options = this.#options;
    const wantRetry =
      (kind: string) =>
      (
        retryAfter: number,
        request: { method: string; url: string },
        _octokit: unknown,
        retryCount: number,
      ) => {
        const again =
          retryCount < options.rateLimitRetries && retryAfter <= options.maxRetryAfterSeconds;
        options.log.warn(
          `GitHub ${kind} rate limit on ${request.method} ${request.url}: ` +
            (again ? `retrying after ${retryAfter} s` : `giving up (retry after ${retryAfter} s)`),
        );
        return again;
      };
    const client = new PromoterOctokit({
      auth: token,
      baseUrl: apiBaseUrl,
      userAgent: options.userAgent,
      log: options.log,
      request: { fetch: guardedFetch(this.#agents) },
      retry: {
        retries: options.retries,
        retryAfterBaseValue: options.retryAfterBaseValue,
        doNotRetry: DO_NOT_RETRY,
      },
      throttle: {
        id: `pipeline-promoter-${key.slice(0, 16)}`,
        retryAfterBaseValue: options.retryAfterBaseValue,
        // A secondary limit without Retry-After is waited for at least GitHub's minute, in
        // process only when maxRetryAfterSeconds allows that long, else by the queue.
        fallbackSecondaryRateRetryAfter: SECONDARY_RATE_LIMIT_SECONDS,
        onRateLimit: wantRetry('primary'),
        onSecondaryRateLimit: wantRetry('secondary'),
        ...(options.spaceWrites ? {} : { write: unspacedGroup, notifications: unspacedGroup }),
      },
    });
    this.#clients.set(key, client);
    while (this.#clients.size > options.maxClients) {
      const oldest = this.#clients.keys().next();
      if (oldest.done === true) break;
      this.#clients.delete(oldest.value);
    }
    return client;
  }
}

export const createOctokitPullRequests = (
  options: OctokitPullRequestsOptions = {},
): OctokitPullRequests => new OctokitPullRequests(options);
