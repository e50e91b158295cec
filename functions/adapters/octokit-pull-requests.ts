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
  MergeAttempt,
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

/*
 * The PullRequests port on GitHub (github.com and GitHub Enterprise Server) with Octokit:
 * exactly one open PR per head branch, found by `head={owner}:{branch}` and updated, else opened;
 * a create that races another ("A pull request already exists") finds it and updates it.
 * Auto-merge: GitHub's own through GraphQL (`/api/graphql` on GitHub Enterprise Server, which
 * Octokit derives from the `/api/v3` base URL), else `mergeWhenReady`, a merge pinned to the
 * expected head SHA once GitHub reports the PR mergeable.
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
type FullPullRequest = RestEndpointMethodTypes['pulls']['get']['response']['data'];
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

const ENABLE_AUTO_MERGE = `mutation EnablePullRequestAutoMerge($pullRequestId: ID!, $expectedHeadOid: GitObjectID!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId, expectedHeadOid: $expectedHeadOid, mergeMethod: MERGE}) {
    pullRequest { id autoMergeRequest { enabledAt } }
  }
}`;

/**
 * GitHub's refusals that mean "merge it yourself": the repository does not allow auto-merge,
 * the base branch has no protection to wait for, or the PR can merge now (clean, unstable).
 */
const AUTO_MERGE_UNAVAILABLE =
  /auto.?merge is not (allowed|enabled)|protected branch rules not configured|is in (clean|unstable|has_hooks) status|can't enable auto-merge|head sha didn't match/i;

/** A 405 of the merge that goes away by waiting (a required check not reported or running). */
const MERGE_WAITS = /\bexpected\b|in progress|pending/i;
const MERGE_FAILS = /failing|failed/i;

const FAILED_CONCLUSIONS: ReadonlySet<string> = new Set([
  'failure',
  'timed_out',
  'cancelled',
  'action_required',
  'startup_failure',
  'stale',
]);

const unique = (names: readonly string[]): string[] => [...new Set(names)];

interface GraphQLErrorEntry {
  readonly type?: string;
  readonly message: string;
}

/** The `errors` of a 200 GraphQL answer (Octokit's GraphqlResponseError), else undefined. */
const graphQLErrorsOf = (error: unknown): readonly GraphQLErrorEntry[] | undefined => {
  if (typeof error !== 'object' || error === null) return undefined;
  const { name, errors } = error as { name?: unknown; errors?: unknown };
  if (name !== 'GraphqlResponseError' || !Array.isArray(errors)) return undefined;
  return errors.map((entry: unknown) => {
    const fields = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<
      string,
      unknown
    >;
    return {
      ...(typeof fields.type === 'string' ? { type: fields.type } : {}),
      message: typeof fields.message === 'string' ? fields.message : String(entry),
    };
  });
};

/** GraphQL's error types as the adapter's codes: rate limits and timeouts come back later. */
const graphQLPromoterError = (
  errors: readonly GraphQLErrorEntry[],
  context: Operation,
  cause: unknown,
): PromoterError => {
  const redact = (text: string): string =>
    context.token.length >= 4 ? text.replaceAll(context.token, '[REDACTED]') : text;
  const reason = redact(errors.map((entry) => entry.message).join('; '));
  const types = new Set(errors.map((entry) => entry.type));
  const where = `${context.operation} in ${context.repository}`;
  const data: Record<string, unknown> = {
    repository: context.repository,
    apiBaseUrl: context.apiBaseUrl,
    operation: context.operation,
    graphQLErrorTypes: [...types].filter((type) => type !== undefined),
  };
  if (types.has('RATE_LIMITED')) {
    data.rateLimit = 'primary';
    return new PromoterError(
      'GITHUB_UNAVAILABLE',
      `GitHub rate-limited the GraphQL request to ${where} (${reason})`,
      { retryable: true, data, cause },
    );
  }
  if (types.has('FORBIDDEN')) {
    return new PromoterError(
      'GITHUB_AUTH_FAILED',
      `GitHub denied the token permission to ${where} (${reason}); it needs read and write access to pull requests`,
      { retryable: false, data, cause },
    );
  }
  if (types.has('NOT_FOUND')) {
    return new PromoterError(
      'GITHUB_NOT_FOUND',
      `GitHub found no such pull request while trying to ${where} (${reason})`,
      { retryable: false, data, cause },
    );
  }
  if (
    types.has('INTERNAL') ||
    types.has('SERVICE_UNAVAILABLE') ||
    /timeout|something went wrong/i.test(reason)
  ) {
    return new PromoterError('GITHUB_UNAVAILABLE', `GitHub failed to ${where} (${reason})`, {
      retryable: true,
      data,
      cause,
    });
  }
  return new PromoterError(
    'GITHUB_REJECTED',
    `GitHub rejected the request to ${where} (${reason})`,
    {
      retryable: false,
      data,
      cause,
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
        headSha: data.head.sha,
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

  /**
   * Turns on GitHub's auto-merge (merge commit) with GraphQL, on the PR's node id read by REST.
   * GitHub answers 200 with `errors` when it will not: a repository without "Allow auto-merge",
   * or a PR with nothing left to wait for ("Pull request is in clean status"), is `unavailable`,
   * for the sweep to merge with `mergeWhenReady`. Pinned to `expectedHead` (`expectedHeadOid`):
   * a head that moved is `unavailable`, and the sweep's merge then says it is blocked.
   */
  async enableAutoMerge(
    lookup: PullRequestLookup & { readonly expectedHead: string },
  ): Promise<'enabled' | 'unavailable'> {
    const { client, repository, apiBaseUrl, signal } = this.#prepare(lookup);
    const operation = `enable auto-merge on pull request #${lookup.number}`;
    const context = { repository, apiBaseUrl, operation, token: lookup.token };
    const pull = await this.#readFresh(client, lookup, signal);
    if (pull.head.sha !== lookup.expectedHead) return 'unavailable';
    if (pull.auto_merge !== null && pull.auto_merge !== undefined) return 'enabled';
    try {
      await client.graphql(ENABLE_AUTO_MERGE, {
        pullRequestId: pull.node_id,
        expectedHeadOid: lookup.expectedHead,
        headers: HEADERS,
        request: { signal },
      });
      return 'enabled';
    } catch (error) {
      const errors = graphQLErrorsOf(error);
      if (errors === undefined) throw toPromoterError(error, context);
      if (errors.some((entry) => AUTO_MERGE_UNAVAILABLE.test(entry.message))) return 'unavailable';
      throw graphQLPromoterError(errors, context, error);
    }
  }

  /**
   * Reads the PR afresh (mergeability is computed on read, so never from the ETag cache) and
   * merges it with `sha: expectedHead` when GitHub says it can merge; else says why not, reading
   * the head's commit statuses and check runs when branch protection blocks it.
   */
  async mergeWhenReady(
    lookup: PullRequestLookup & { readonly expectedHead: string },
  ): Promise<MergeAttempt> {
    const { client, repository, apiBaseUrl, signal } = this.#prepare(lookup);
    const { owner, repo } = lookup.repository;
    const pull = await this.#readFresh(client, lookup, signal);
    if (pull.merged) {
      return pull.merge_commit_sha === null
        ? { status: 'pending', reason: 'merged; GitHub has not reported the merge commit yet' }
        : { status: 'merged', mergeCommit: pull.merge_commit_sha };
    }
    if (pull.state !== 'open') {
      return { status: 'blocked', reason: 'the pull request was closed without being merged' };
    }
    if (pull.head.sha !== lookup.expectedHead) {
      return {
        status: 'blocked',
        reason: `head moved: ${pull.head.ref} is at ${pull.head.sha}, not the promoted ${lookup.expectedHead}`,
      };
    }
    if (pull.draft === true) return { status: 'blocked', reason: 'the pull request is a draft' };
    const state = pull.mergeable === null ? 'unknown' : pull.mergeable_state;
    switch (state) {
      case 'unknown':
        return { status: 'pending', reason: 'GitHub has not computed whether it can merge yet' };
      case 'dirty':
        return { status: 'blocked', reason: `it conflicts with ${pull.base.ref}` };
      case 'behind':
        return {
          status: 'blocked',
          reason: `branch protection requires it to be up to date with ${pull.base.ref}`,
        };
      case 'draft':
        return { status: 'blocked', reason: 'the pull request is a draft' };
      case 'blocked':
        return this.#whyBlocked(client, lookup, signal, { repository, apiBaseUrl });
      case 'clean':
      case 'unstable':
      case 'has_hooks':
        break;
      default:
        return { status: 'pending', reason: `GitHub reports mergeable_state ${state}` };
    }
    try {
      const { data } = await client.rest.pulls.merge({
        owner,
        repo,
        pull_number: lookup.number,
        sha: lookup.expectedHead,
        merge_method: 'merge',
        headers: HEADERS,
        request: { signal },
      });
      return { status: 'merged', mergeCommit: data.sha };
    } catch (error) {
      const http = asHttpError(error);
      const message = http === undefined ? '' : githubMessage(http);
      if (http?.status === 405) {
        // GitHub's words for a required check that has not passed yet: "... is expected."
        return MERGE_WAITS.test(message) && !MERGE_FAILS.test(message)
          ? { status: 'pending', reason: `GitHub will not merge yet: ${message}` }
          : { status: 'blocked', reason: `GitHub refused the merge: ${message}` };
      }
      if (http?.status === 409) {
        // The head moved between the read and the merge; a moved base is tried again.
        return /head branch was modified/i.test(message)
          ? { status: 'blocked', reason: `head moved before the merge: ${message}` }
          : { status: 'pending', reason: `GitHub will not merge yet: ${message}` };
      }
      throw toPromoterError(error, {
        repository,
        apiBaseUrl,
        operation: `merge pull request #${lookup.number} at ${lookup.expectedHead}`,
        token: lookup.token,
      });
    }
  }

  /** Branch protection blocks the merge: a check failed, one is still running, or reviews. */
  async #whyBlocked(
    client: Client,
    lookup: PullRequestLookup & { readonly expectedHead: string },
    signal: AbortSignal,
    where: { readonly repository: string; readonly apiBaseUrl: string },
  ): Promise<MergeAttempt> {
    const { owner, repo } = lookup.repository;
    const sha = lookup.expectedHead;
    const failure =
      (operation: string) =>
      (error: unknown): never => {
        throw toPromoterError(error, { ...where, operation, token: lookup.token });
      };
    const [{ data: combined }, { data: checks }] = await Promise.all([
      client.rest.repos
        .getCombinedStatusForRef({
          owner,
          repo,
          ref: sha,
          per_page: 100,
          headers: HEADERS,
          request: { signal },
        })
        .catch(failure(`read the commit statuses of ${sha}`)),
      client.rest.checks
        .listForRef({
          owner,
          repo,
          ref: sha,
          filter: 'latest',
          per_page: 100,
          headers: HEADERS,
          request: { signal },
        })
        .catch(failure(`read the check runs of ${sha}`)),
    ]);
    const failed = [
      ...combined.statuses
        .filter((status) => status.state === 'failure' || status.state === 'error')
        .map((status) => status.context),
      ...checks.check_runs
        .filter(
          (run) =>
            run.status === 'completed' &&
            run.conclusion !== null &&
            FAILED_CONCLUSIONS.has(run.conclusion),
        )
        .map((run) => run.name),
    ];
    const pending = [
      ...combined.statuses
        .filter((status) => status.state === 'pending')
        .map((status) => status.context),
      ...checks.check_runs.filter((run) => run.status !== 'completed').map((run) => run.name),
    ];
    // A failed check does not pass by waiting (a re-run makes it pending again).
    if (failed.length > 0) {
      return { status: 'blocked', reason: `failed checks: ${unique(failed).join(', ')}` };
    }
    if (pending.length > 0) {
      return { status: 'pending', reason: `checks pending: ${unique(pending).join(', ')}` };
    }
    return {
      status: 'blocked',
      reason:
        'branch protection blocks the merge with no check pending or failed: required reviews, ' +
        'or a required check that has not reported yet',
    };
  }

  /** The PR as it is now: no `If-None-Match`, and the ETag cache of `get` is left alone. */
  async #readFresh(
    client: Client,
    lookup: PullRequestLookup,
    signal: AbortSignal,
  ): Promise<FullPullRequest> {
    try {
      const { data } = await client.rest.pulls.get({
        owner: lookup.repository.owner,
        repo: lookup.repository.repo,
        pull_number: lookup.number,
        headers: HEADERS,
        request: { signal },
      });
      return data;
    } catch (error) {
      throw toPromoterError(error, {
        repository: `${lookup.repository.owner}/${lookup.repository.repo}`,
        apiBaseUrl: checkApiBaseUrl(lookup.repository.apiBaseUrl),
        operation: `read pull request #${lookup.number}`,
        token: lookup.token,
      });
    }
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
