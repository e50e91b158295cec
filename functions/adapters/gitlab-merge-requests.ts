import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { MergeRequestNotes, MergeRequests } from '@gitbeaker/rest';
import { PromoterError } from '../core/errors.ts';
import { type AddressPolicy, refuseInsecureUrl, SELF_HOSTED_ADDRESS_POLICY } from '../core/http.ts';
import { repositoryPath } from '../core/pipeline.ts';
import type {
  MergeAttempt,
  PullRequestLookup,
  PullRequestRequest,
  PullRequestResult,
  PullRequests,
  PullRequestView,
} from '../core/ports.ts';
import type { RetryHint } from '../core/retry-policy.ts';
import { parseRetryAfter } from './git/errors.ts';
import {
  createGuardedAgents,
  type GuardedAgents,
  guardedFetch,
  refusedConnection,
} from './guarded-http.ts';

/*
 * The PullRequests port on GitLab (gitlab.com and self-managed) with @gitbeaker/rest: one open
 * merge request per (source branch, target branch), found by `source_branch`/`target_branch` and
 * updated, else created; a create that races another (409 "Another open merge request already
 * exists") finds it and updates it. Auto-merge is GitLab's "merge when pipeline succeeds", pinned
 * to the expected head with `sha`, asked for only while the head's own pipeline is active: GitLab
 * merges at once when asked without one, and reports `mergeable` while a pipeline runs unless
 * "Pipelines must succeed" is on. So `mergeWhenReady` reads the head pipeline first: an active one
 * gets "merge when pipeline succeeds", a failed one blocks, and only a head with no pipeline at
 * all (a project without CI) or a succeeded one is merged, with `sha`, once GitLab's
 * `detailed_merge_status` says `mergeable`.
 *
 * Gitbeaker's own requester calls the global `fetch` (no agent) and retries 429 and 502 ten times
 * within a quarter of a second whatever Retry-After says; this adapter gives gitbeaker its own
 * requester instead (`requesterFn`): requests go through `guardedFetch` (the address policy is
 * applied at connect time, as for Octokit and git), 5xx and network errors are retried with a
 * back-off of 1, 4, 9 × `retryAfterBaseValue` ms (but a POST only when it is the merge request's
 * create, whose repeat answers 409, which `upsert` handles: a note sent twice would show twice),
 * a 429 waits its Retry-After when that is at most `maxRetryAfterSeconds`, and each port call has
 * one deadline (`timeoutMs`) for all its requests and waits. What remains is a PromoterError: GITLAB_UNAVAILABLE (retryable, with the
 * `RetryHint` of retry-policy.ts in `data`) or GITLAB_AUTH_FAILED / GITLAB_NOT_FOUND /
 * GITLAB_REJECTED (permanent). Messages name the project and the operation, never the token.
 */

export interface GitLabMergeRequestsOptions {
  /** Default `pipeline-promoter`. */
  readonly userAgent?: string;
  /**
   * Milliseconds one second of Retry-After (and one back-off unit) stands for. Default 1000;
   * tests pass a few milliseconds so that they never sleep.
   */
  readonly retryAfterBaseValue?: number;
  /**
   * Retries of one request after a 5xx, a 408 or a network error (default 3); none for a POST
   * other than the merge request's create. A 429 (never carried out) is retried whatever the method.
   */
  readonly retries?: number;
  /** Retries of one request after a 429 (default 2). */
  readonly rateLimitRetries?: number;
  /**
   * The longest Retry-After waited for in process, in seconds (default 20). Longer waits end in
   * GITLAB_UNAVAILABLE with `data.retryAfterSeconds`, for the queue to retry later.
   */
  readonly maxRetryAfterSeconds?: number;
  /** Gives up one call of the port (as GITLAB_UNAVAILABLE) after this many ms (default 60 000). */
  readonly timeoutMs?: number;
  /** How many (API base URL, token) clients are kept (default 32, least recently used go). */
  readonly maxClients?: number;
  /**
   * Which addresses the API client may connect to, checked at connect time (default
   * SELF_HOSTED_ADDRESS_POLICY; the AWS worker passes the strict one).
   */
  readonly addressPolicy?: AddressPolicy;
  /** Told of each connection the policy refused (HOST_REFUSED). */
  readonly onRefusedConnection?: (refusal: PromoterError) => void;
}

type ResourceOptions = ConstructorParameters<typeof MergeRequests>[0];
type RequesterFn = NonNullable<ResourceOptions['requesterFn']>;
type ServiceOptions = Parameters<RequesterFn>[0];
type Requester = ReturnType<RequesterFn>;
type RequestOptions = NonNullable<Parameters<Requester['get']>[1]>;

interface Client {
  readonly mergeRequests: MergeRequests;
  readonly notes: MergeRequestNotes;
}

/** The fields of GitLab's MergeRequest entity this adapter reads. */
interface MergeRequestJson {
  readonly iid: number;
  readonly state: string;
  readonly title: string;
  readonly description: string | null;
  readonly source_branch: string;
  readonly target_branch: string;
  readonly source_project_id?: number;
  readonly target_project_id?: number;
  readonly sha: string | null;
  readonly merge_commit_sha: string | null;
  readonly squash_commit_sha?: string | null;
  readonly merged_at: string | null;
  readonly web_url: string;
  readonly merge_when_pipeline_succeeds?: boolean;
  readonly detailed_merge_status?: string;
  readonly merge_status?: string;
  readonly merge_error?: string | null;
  /** Only in the single merge request's GET (and absent on GitLab before 11.4). */
  readonly head_pipeline?: PipelineJson | null;
}

/** The fields of GitLab's PipelineBasic entity this adapter reads. */
interface PipelineJson {
  readonly id: number;
  readonly sha: string;
  readonly status: string;
}

/** An HTTP answer that was not 2xx, with GitLab's message. */
export class GitLabHttpError extends Error {
  override readonly name = 'GitLabHttpError';
  constructor(
    readonly status: number,
    readonly headers: Readonly<Record<string, string>>,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

/** GitLab's words in an error body: `message` (a string, a list, or errors by field), else `error`. */
const gitlabReason = (body: unknown, fallback: string): string => {
  const flatten = (value: unknown): string | undefined => {
    if (typeof value === 'string') return value;
    if (Array.isArray(value)) return value.map(flatten).filter(Boolean).join('; ');
    if (typeof value === 'object' && value !== null) {
      return (
        Object.entries(value)
          // `base` holds errors of the whole record (`{"base": ["Source branch ... does not exist"]}`).
          .map(([field, text]) => `${field === 'base' ? '' : field} ${flatten(text) ?? ''}`.trim())
          .join('; ')
      );
    }
    return undefined;
  };
  if (typeof body === 'string') return body.trim() || fallback;
  if (typeof body !== 'object' || body === null) return fallback;
  const { message, error, error_description: description } = body as Record<string, unknown>;
  const text = flatten(message) ?? flatten(error);
  if (text === undefined || text === '') return fallback;
  return typeof description === 'string' ? `${text}: ${description}` : text;
};

const decamelize = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Gitbeaker hands over camelCase options; GitLab takes snake_case (flat bodies and queries). */
const snakeKeys = (fields: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [decamelize(key), value]),
  );

const queryOf = (fields: Readonly<Record<string, unknown>> | undefined): string => {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(snakeKeys(fields ?? {}))) {
    if (Array.isArray(value)) for (const item of value) query.append(`${key}[]`, String(item));
    else query.append(key, String(value));
  }
  return query.toString();
};

const RETRIED_STATUSES = new Set([408, 500, 502, 503, 504]);

/** Retry-After in seconds, or the time to `RateLimit-Reset` (epoch seconds), when GitLab sent one. */
const retryAfterSeconds = (headers: Readonly<Record<string, string>>): number | undefined => {
  const retryAfter = parseRetryAfter(headers['retry-after']);
  if (retryAfter !== undefined) return retryAfter;
  const reset = Number(headers['ratelimit-reset']);
  if (Number.isFinite(reset) && reset > 0) {
    return Math.max(0, Math.ceil(reset - Date.now() / 1000));
  }
  return undefined;
};

/**
 * Whether a request may be sent again after a 5xx or a network error, when it may have been
 * carried out: reads and replacing writes, and the merge request's create (a second one answers
 * 409 "Another open merge request already exists"). Not a note: it would show twice.
 */
const retriedAfterFailure = (method: string, url: URL): boolean =>
  method === 'GET' ||
  method === 'PUT' ||
  method === 'DELETE' ||
  (method === 'POST' && /\/merge_requests$/.test(url.pathname));

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

interface RequesterSettings {
  readonly fetch: (input: string, init: RequestInit) => Promise<Response>;
  readonly userAgent: string;
  readonly retries: number;
  readonly rateLimitRetries: number;
  readonly maxRetryAfterSeconds: number;
  readonly retryAfterBaseValue: number;
  /** The deadline of the port call the request belongs to. */
  readonly deadline: () => AbortSignal | undefined;
}

/** Gitbeaker's `requesterFn`: requests through `settings.fetch`, retried within bounds. */
const promoterRequester =
  (settings: RequesterSettings): RequesterFn =>
  (service: ServiceOptions) => {
    const base = service.url.endsWith('/') ? service.url : `${service.url}/`;
    const request = async (method: string, endpoint: string, options: RequestOptions = {}) => {
      const url = new URL(endpoint, base);
      url.search = queryOf(options.searchParams);
      const headers: Record<string, string> = {
        ...service.headers,
        accept: 'application/json',
        'user-agent': settings.userAgent,
      };
      for (const [name, value] of Object.entries(service.authHeaders)) {
        headers[name] = await value();
      }
      let body: string | undefined;
      if (options.body !== undefined && !(options.body instanceof FormData)) {
        body = JSON.stringify(snakeKeys(options.body));
        headers['content-type'] = 'application/json';
      }
      const signals = [options.signal, settings.deadline()].filter(
        (signal): signal is AbortSignal => signal !== undefined,
      );
      const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
      const retries = retriedAfterFailure(method, url) ? settings.retries : 0;
      let failures = 0;
      let rateLimits = 0;
      for (;;) {
        let response: Response;
        try {
          response = await settings.fetch(url.href, {
            method,
            headers,
            ...(body === undefined ? {} : { body }),
            ...(signal === undefined ? {} : { signal }),
          });
        } catch (error) {
          if (signal?.aborted === true || refusedConnection(error) !== undefined) throw error;
          if (failures >= retries) throw error;
          failures += 1;
          await sleep(
            failures ** 2 * settings.retryAfterBaseValue,
            signal ?? new AbortController().signal,
          );
          continue;
        }
        const responseHeaders = Object.fromEntries(response.headers.entries());
        if (response.ok) {
          const type = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
          const text = response.status === 204 ? '' : await response.text();
          const parsed: unknown =
            text === '' ? null : type === 'application/json' ? JSON.parse(text) : text;
          return { body: parsed, headers: responseHeaders, status: response.status };
        }
        const text = await response.text();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // GitLab answers some errors (a throttle, a proxy's 502) in plain text.
        }
        const error = new GitLabHttpError(
          response.status,
          responseHeaders,
          parsed,
          gitlabReason(parsed, `${response.status} ${response.statusText}`.trim()),
        );
        const wait =
          response.status === 429
            ? retryAfterSeconds(responseHeaders)
            : RETRIED_STATUSES.has(response.status)
              ? (failures + 1) ** 2
              : undefined;
        const again =
          response.status === 429
            ? rateLimits < settings.rateLimitRetries &&
              wait !== undefined &&
              wait <= settings.maxRetryAfterSeconds
            : wait !== undefined && failures < retries;
        if (!again || wait === undefined) throw error;
        if (response.status === 429) rateLimits += 1;
        else failures += 1;
        await sleep(wait * settings.retryAfterBaseValue, signal ?? new AbortController().signal);
      }
    };
    const method = (name: string) => (endpoint: string, options?: RequestOptions) =>
      request(name, endpoint, options);
    return {
      get: method('GET'),
      post: method('POST'),
      put: method('PUT'),
      patch: method('PATCH'),
      delete: method('DELETE'),
    } as unknown as Requester;
  };

interface Operation {
  /** `group/subgroup/project` */
  readonly project: string;
  readonly apiBaseUrl: string;
  /** What was being done: `open a merge request from x into main`. */
  readonly operation: string;
  readonly token: string;
  readonly timeoutMs: number;
}

const isTimeout = (error: unknown): boolean =>
  error instanceof Error &&
  (error.name === 'TimeoutError' ||
    error.name === 'AbortError' ||
    error.name === 'GitbeakerTimeoutError');

/** Maps whatever the requester or gitbeaker threw to a PromoterError with GitLab's reason and no secret. */
export const toPromoterError = (error: unknown, context: Operation): PromoterError => {
  if (error instanceof PromoterError) return error;
  const refused = refusedConnection(error);
  if (refused !== undefined) return refused;
  const redact = (text: string): string =>
    context.token.length >= 4 ? text.replaceAll(context.token, '[REDACTED]') : text;
  const where = `${context.operation} in ${context.project}`;
  const data: Record<string, unknown> = {
    repository: context.project,
    apiBaseUrl: context.apiBaseUrl,
    operation: context.operation,
  };
  if (!(error instanceof GitLabHttpError)) {
    if (isTimeout(error)) {
      return new PromoterError(
        'GITLAB_UNAVAILABLE',
        `GitLab (${context.apiBaseUrl}) did not answer within ${context.timeoutMs} ms while trying to ${where}`,
        { retryable: true, data, cause: error },
      );
    }
    const reason = error instanceof Error ? error.message : String(error);
    const cause =
      error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return new PromoterError(
      'GITLAB_UNAVAILABLE',
      redact(`GitLab (${context.apiBaseUrl}) could not be reached to ${where}: ${reason}${cause}`),
      { retryable: true, data, cause: error },
    );
  }
  const status = error.status;
  // GitLab's messages often start with the status (`404 Project Not Found`): say it once.
  const reason = redact(error.message).replace(new RegExp(`^${status}\\s+`), '');
  data.status = status;
  const requestId = error.headers['x-request-id'];
  if (requestId !== undefined) data.gitlabRequestId = requestId;
  if (status === 429) {
    const seconds = retryAfterSeconds(error.headers);
    const hint: RetryHint = {
      rateLimit: 'primary',
      ...(seconds === undefined ? {} : { retryAfterSeconds: seconds }),
    };
    Object.assign(data, hint);
    return new PromoterError(
      'GITLAB_UNAVAILABLE',
      `GitLab rate-limited the request to ${where} (429 ${reason})` +
        (seconds === undefined ? '' : `; retry after ${seconds} s`),
      { retryable: true, data, cause: error },
    );
  }
  if (status === 401) {
    return new PromoterError(
      'GITLAB_AUTH_FAILED',
      `GitLab refused the token while trying to ${where} (401 ${reason}); check the token in the pipeline's credentials secret: a GitLab access token with the api scope`,
      { retryable: false, data, cause: error },
    );
  }
  if (status === 403) {
    return new PromoterError(
      'GITLAB_AUTH_FAILED',
      `GitLab denied the token permission to ${where} (403 ${reason}); it needs the api scope and at least the Developer role on the project`,
      { retryable: false, data, cause: error },
    );
  }
  if (status === 404) {
    return new PromoterError(
      'GITLAB_NOT_FOUND',
      `GitLab found no such project or merge request while trying to ${where} at ${context.apiBaseUrl} (404 ${reason}), or the token cannot see it`,
      { retryable: false, data, cause: error },
    );
  }
  if (status === 408 || status >= 500) {
    const seconds = retryAfterSeconds(error.headers);
    if (seconds !== undefined) data.retryAfterSeconds = seconds;
    return new PromoterError(
      'GITLAB_UNAVAILABLE',
      `GitLab failed to ${where} (${status} ${reason})`,
      {
        retryable: true,
        data,
        cause: error,
      },
    );
  }
  return new PromoterError(
    'GITLAB_REJECTED',
    `GitLab rejected the request to ${where} (${status} ${reason})`,
    { retryable: false, data, cause: error },
  );
};

/**
 * The host gitbeaker takes (it appends `/api/v4` itself) from a repository's API base URL,
 * `{scheme}://{host}[:{port}][/{relative root}]/api/v4`.
 *
 * @example
 * gitlabHost('https://gitlab.example.com:8443/api/v4'); // 'https://gitlab.example.com:8443'
 * gitlabHost('https://example.com/gitlab/api/v4/'); // 'https://example.com/gitlab'
 */
export const gitlabHost = (apiBaseUrl: string): string => {
  let url: URL;
  try {
    url = new URL(apiBaseUrl);
  } catch {
    throw new PromoterError('INVALID_CONFIG', `GitLab API base URL ${apiBaseUrl} is not a URL`);
  }
  const refused = refuseInsecureUrl(url);
  if (refused !== undefined) {
    throw new PromoterError('INVALID_CONFIG', `GitLab API base URL ${url.origin}: ${refused}`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  if (!path.endsWith('/api/v4') || url.search !== '' || url.hash !== '') {
    throw new PromoterError(
      'INVALID_CONFIG',
      `GitLab API base URL ${url.origin}${url.pathname} does not end in /api/v4`,
    );
  }
  return `${url.origin}${path.slice(0, -'/api/v4'.length)}`;
};

/** GitLab's `detailed_merge_status` values that pass by waiting (GitLab is still working). */
const WAITING_STATUSES: Readonly<Record<string, string>> = {
  unchecked: 'GitLab has not checked yet whether it can merge',
  checking: 'GitLab is checking whether it can merge',
  preparing: 'GitLab is still preparing the merge request diff',
  approvals_syncing: "GitLab is syncing the merge request's approvals",
  ci_still_running: 'a pipeline is still running',
  merge_time: 'it may not merge before its merge-after time',
};

/** The others: a person (or a failed pipeline's re-run) has to act. */
const BLOCKING_STATUSES: Readonly<Record<string, string>> = {
  conflict: 'it conflicts with the target branch',
  need_rebase: 'it must be rebased onto the target branch',
  ci_must_pass: 'a pipeline must succeed first (it failed, or none ran)',
  not_approved: 'it needs approval',
  requested_changes: 'a reviewer requested changes',
  discussions_not_resolved: 'its discussions must be resolved',
  draft_status: 'it is a draft',
  not_open: 'it is not open',
  commits_status: 'its source branch must exist and hold commits',
  broken_status: 'its source branch is broken',
  blocked_status: 'another merge request blocks it',
  merge_request_blocked: 'another merge request blocks it',
  external_status_checks: 'external status checks must pass',
  status_checks_must_pass: 'external status checks must pass',
  jira_association_missing: 'its title or description must name a Jira issue',
  security_policy_violations: 'security policies must be satisfied',
  policies_denied: 'policies deny it',
  locked_paths: 'paths it changes are locked',
  locked_lfs_files: 'LFS files it changes are locked',
  title_regex: "its title does not match the project's required pattern",
};

/** `merge_status` of GitLab before `detailed_merge_status` (15.6). */
const legacyStatus = (status: string | undefined): string => {
  switch (status) {
    case 'can_be_merged':
      return 'mergeable';
    case 'cannot_be_merged':
      return 'conflict';
    case 'checking':
    case 'cannot_be_merged_rechecking':
      return 'checking';
    default:
      return 'unchecked';
  }
};

/** The merge commit of a merged merge request (a fast-forward merge has none: its head is it). */
const mergeCommitOf = (mr: MergeRequestJson): string | undefined =>
  mr.merge_commit_sha ?? mr.squash_commit_sha ?? mr.sha ?? undefined;

/**
 * Pipeline statuses in which GitLab offers "merge when pipeline succeeds" (its `active?`).
 * `created` is left out: GitLab may not count it, and asked then it would merge at once.
 */
const ACTIVE_PIPELINE_STATUSES = new Set([
  'waiting_for_resource',
  'preparing',
  'waiting_for_callback',
  'pending',
  'running',
]);

/** Not finished, but GitLab offers no "merge when pipeline succeeds" on them: wait. */
const WAITING_PIPELINE_STATUSES: Readonly<Record<string, string>> = {
  created: 'has just been created',
  scheduled: 'waits for a delayed job',
};

/** The head pipeline as far as merging the expected head goes. */
type HeadPipeline =
  | { readonly kind: 'none' }
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'active'; readonly pipeline: PipelineJson }
  | { readonly kind: 'waiting' | 'failed'; readonly reason: string };

/**
 * What GitLab's head pipeline says about merging `expectedHead` now. `none` only when GitLab
 * reports no head pipeline at all; one of another commit means the expected head's is not there
 * yet (GitLab creates pipelines after the push), so it waits.
 */
const headPipelineOf = (mr: MergeRequestJson, expectedHead: string): HeadPipeline => {
  const pipeline = mr.head_pipeline;
  if (pipeline === undefined || pipeline === null) return { kind: 'none' };
  const name = `pipeline ${pipeline.id}`;
  if (pipeline.sha !== expectedHead) {
    return {
      kind: 'waiting',
      reason: `GitLab has no pipeline of the head ${expectedHead} yet (its head ${name} is of ${pipeline.sha})`,
    };
  }
  if (pipeline.status === 'success') return { kind: 'succeeded' };
  if (ACTIVE_PIPELINE_STATUSES.has(pipeline.status)) return { kind: 'active', pipeline };
  const waiting = WAITING_PIPELINE_STATUSES[pipeline.status];
  if (waiting !== undefined) {
    return { kind: 'waiting', reason: `its ${name} ${waiting} (status ${pipeline.status})` };
  }
  if (pipeline.status === 'manual') {
    return { kind: 'failed', reason: `its ${name} waits for a person to start a manual job` };
  }
  return {
    kind: 'failed',
    reason: `its ${name} did not succeed (status ${pipeline.status}): it must pass before the merge`,
  };
};

/** GitLab's refusals of a merge as a MergeAttempt; undefined for other failures. */
const mergeRefusal = (error: unknown): MergeAttempt | undefined => {
  if (!(error instanceof GitLabHttpError)) return undefined;
  if (error.status === 405) {
    // Mergeable a moment ago: a pipeline started, or GitLab is checking again.
    return { status: 'pending', reason: `GitLab will not merge yet: ${error.message}` };
  }
  if (error.status === 406 || error.status === 422) {
    return { status: 'blocked', reason: `GitLab refused the merge: ${error.message}` };
  }
  if (error.status === 409) {
    return { status: 'blocked', reason: `head moved before the merge: ${error.message}` };
  }
  return undefined;
};

type AutoMergeAnswer =
  | { readonly kind: 'set' }
  | { readonly kind: 'merged'; readonly mergeCommit: string }
  | { readonly kind: 'refused'; readonly attempt: MergeAttempt };

/**
 * `PUT .../merge` with "merge when pipeline succeeds" at `expectedHead`. Called only while the
 * head's pipeline is active; should it have finished in between, GitLab merges at once (`merged`).
 */
const setMergeWhenPipelineSucceeds = async (
  call: CallContext,
  lookup: PullRequestLookup & { readonly expectedHead: string },
  operation: string,
): Promise<AutoMergeAnswer> => {
  try {
    const answer = (await call.client.mergeRequests.merge(call.project, lookup.number, {
      mergeWhenPipelineSucceeds: true,
      // GitLab 17.11 renamed it; older versions ignore the new name, newer ones take both.
      autoMerge: true,
      sha: lookup.expectedHead,
    })) as unknown as MergeRequestJson;
    const commit = answer.state === 'merged' ? mergeCommitOf(answer) : undefined;
    if (commit !== undefined) return { kind: 'merged', mergeCommit: commit };
    if (answer.merge_when_pipeline_succeeds === true) return { kind: 'set' };
    return {
      kind: 'refused',
      attempt: {
        status: 'pending',
        reason: `GitLab did not set merge when pipeline succeeds (state ${answer.state})`,
      },
    };
  } catch (error) {
    const refused = mergeRefusal(error);
    if (refused !== undefined) return { kind: 'refused', attempt: refused };
    throw call.failure(operation, error);
  }
};

export class GitLabMergeRequests implements PullRequests {
  readonly #options: Required<
    Omit<GitLabMergeRequestsOptions, 'addressPolicy' | 'onRefusedConnection'>
  >;
  readonly #clients = new Map<string, Client>();
  readonly #agents: GuardedAgents;
  readonly #deadline = new AsyncLocalStorage<AbortSignal>();

  constructor(options: GitLabMergeRequestsOptions = {}) {
    this.#options = {
      userAgent: options.userAgent ?? 'pipeline-promoter',
      retryAfterBaseValue: options.retryAfterBaseValue ?? 1_000,
      retries: options.retries ?? 3,
      rateLimitRetries: options.rateLimitRetries ?? 2,
      maxRetryAfterSeconds: options.maxRetryAfterSeconds ?? 20,
      timeoutMs: options.timeoutMs ?? 60_000,
      maxClients: options.maxClients ?? 32,
    };
    this.#agents = createGuardedAgents(
      options.addressPolicy ?? SELF_HOSTED_ADDRESS_POLICY,
      options.onRefusedConnection === undefined ? {} : { onRefused: options.onRefusedConnection },
    );
  }

  async upsert(request: PullRequestRequest): Promise<PullRequestResult> {
    const head = request.head.includes(':')
      ? request.head.slice(request.head.indexOf(':') + 1)
      : request.head;
    return this.#call(request, `open or update the merge request from ${head}`, async (call) => {
      const findOpen = async (): Promise<MergeRequestJson | undefined> => {
        const listed = (await call.step(
          `find the open merge request from ${head} into ${request.base}`,
          () =>
            call.client.mergeRequests.all({
              projectId: call.project,
              state: 'opened',
              sourceBranch: head,
              targetBranch: request.base,
              perPage: 100,
              page: 1,
            }),
        )) as unknown as MergeRequestJson[];
        // Filter again: merge requests from forks have the same branch names.
        return listed
          .filter(
            (mr) =>
              mr.state === 'opened' &&
              mr.source_branch === head &&
              mr.target_branch === request.base &&
              (mr.source_project_id === undefined || mr.source_project_id === mr.target_project_id),
          )
          .sort((a, b) => a.iid - b.iid)[0];
      };

      const update = async (mr: MergeRequestJson): Promise<PullRequestResult> => {
        const changes = {
          ...(mr.title === request.title ? {} : { title: request.title }),
          ...((mr.description ?? '') === request.body ? {} : { description: request.body }),
        };
        if (Object.keys(changes).length > 0) {
          await call.step(`update merge request !${mr.iid}`, () =>
            call.client.mergeRequests.edit(call.project, mr.iid, changes),
          );
        }
        return { action: 'updated', number: mr.iid, url: mr.web_url };
      };

      const existing = await findOpen();
      if (existing !== undefined) return update(existing);
      const operation = `open a merge request from ${head} into ${request.base}`;
      try {
        const created = (await call.client.mergeRequests.create(
          call.project,
          head,
          request.base,
          request.title,
          { description: request.body, removeSourceBranch: false },
        )) as unknown as MergeRequestJson;
        return { action: 'opened', number: created.iid, url: created.web_url };
      } catch (error) {
        const raced =
          error instanceof GitLabHttpError &&
          error.status === 409 &&
          /another open merge request already exists/i.test(error.message);
        if (!raced) throw call.failure(operation, error);
        // Another worker (or an earlier attempt whose answer was lost) created it: update that one.
        const other = await findOpen();
        if (other === undefined) {
          throw new PromoterError(
            'GITLAB_UNAVAILABLE',
            `GitLab says a merge request from ${head} into ${request.base} already exists in ${call.project}, but none is listed as open yet`,
            { retryable: true, data: call.data(operation), cause: error },
          );
        }
        return update(other);
      }
    });
  }

  /** Reads the merge request; GitLab has no conditional read that saves anything, so never `not-modified`. */
  async get(lookup: PullRequestLookup): Promise<PullRequestView> {
    return this.#call(lookup, `read merge request !${lookup.number}`, async (call) => {
      const mr = await call.read(lookup.number);
      const state = mr.state === 'opened' ? 'open' : mr.state === 'merged' ? 'merged' : 'closed';
      const mergeCommit = state === 'merged' ? mergeCommitOf(mr) : undefined;
      return {
        number: mr.iid,
        state,
        title: mr.title,
        headRef: mr.source_branch,
        ...(mr.sha === null ? {} : { headSha: mr.sha }),
        ...(mr.merged_at === null ? {} : { mergedAt: new Date(mr.merged_at).toISOString() }),
        ...(mergeCommit === undefined ? {} : { mergeCommit }),
      };
    });
  }

  async close(lookup: PullRequestLookup, comment: string): Promise<void> {
    await this.#call(lookup, `close merge request !${lookup.number}`, async (call) => {
      await call.step(`comment on merge request !${lookup.number}`, () =>
        call.client.notes.create(call.project, lookup.number, comment),
      );
      await call.step(`close merge request !${lookup.number}`, () =>
        call.client.mergeRequests.edit(call.project, lookup.number, { stateEvent: 'close' }),
      );
    });
  }

  /**
   * "Merge when pipeline succeeds" at `expectedHead` (`PUT .../merge` with `sha`, so that GitLab
   * merges no other head), asked for only while GitLab's head pipeline is the expected head's and
   * active: asked without one, GitLab merges at once, and right after the push GitLab has often
   * not created the pipeline yet. Anything else is `unavailable`, for the sweep's `mergeWhenReady`,
   * which asks for it once the pipeline runs or says why it cannot merge. GitLab refuses too
   * (405 while something else blocks it, 406/422 on conflicts, 409 when the head moved):
   * `unavailable`. A merge request already merged is `enabled`.
   */
  async enableAutoMerge(
    lookup: PullRequestLookup & { readonly expectedHead: string },
  ): Promise<'enabled' | 'unavailable'> {
    const operation = `set merge request !${lookup.number} to merge when its pipeline succeeds`;
    return this.#call(lookup, operation, async (call) => {
      const mr = await call.read(lookup.number);
      if (mr.state === 'merged') return 'enabled';
      if (mr.state !== 'opened' || mr.sha !== lookup.expectedHead) return 'unavailable';
      if (mr.merge_when_pipeline_succeeds === true) return 'enabled';
      const pipeline = headPipelineOf(mr, lookup.expectedHead);
      if (pipeline.kind !== 'active') return 'unavailable';
      const answer = await setMergeWhenPipelineSucceeds(call, lookup, operation);
      return answer.kind === 'set' || answer.kind === 'merged' ? 'enabled' : 'unavailable';
    });
  }

  /**
   * Reads the merge request and says what it waits for or what blocks it, or merges it with
   * `sha: expectedHead`. GitLab says `mergeable` while a pipeline runs unless "Pipelines must
   * succeed" is on, so the head pipeline decides first: an active one of the expected head gets
   * "merge when pipeline succeeds" (`pending`: GitLab merges it when it succeeds), a failed or
   * canceled one is `blocked`, one of another commit (GitLab has not attached the head's yet) is
   * `pending`. Only a head with no pipeline at all (a project without CI) or a succeeded one is
   * merged, once `detailed_merge_status` is `mergeable`.
   */
  async mergeWhenReady(
    lookup: PullRequestLookup & { readonly expectedHead: string },
  ): Promise<MergeAttempt> {
    const operation = `merge merge request !${lookup.number} at ${lookup.expectedHead}`;
    return this.#call(lookup, operation, async (call): Promise<MergeAttempt> => {
      const mr = await call.read(lookup.number);
      if (mr.state === 'merged') {
        const commit = mergeCommitOf(mr);
        return commit === undefined
          ? { status: 'pending', reason: 'merged; GitLab has not reported the merge commit yet' }
          : { status: 'merged', mergeCommit: commit };
      }
      if (mr.state !== 'opened') {
        return { status: 'blocked', reason: `the merge request is ${mr.state}, not open` };
      }
      if (mr.sha !== lookup.expectedHead) {
        return {
          status: 'blocked',
          reason: `head moved: ${mr.source_branch} is at ${mr.sha ?? 'no commit'}, not the promoted ${lookup.expectedHead}`,
        };
      }
      const pipeline = headPipelineOf(mr, lookup.expectedHead);
      switch (pipeline.kind) {
        case 'active': {
          const id = pipeline.pipeline.id;
          if (mr.merge_when_pipeline_succeeds === true) {
            return {
              status: 'pending',
              reason: `GitLab merges it when its pipeline succeeds (pipeline ${id} is ${pipeline.pipeline.status})`,
            };
          }
          const answer = await setMergeWhenPipelineSucceeds(call, lookup, operation);
          switch (answer.kind) {
            case 'set':
              return {
                status: 'pending',
                reason: `GitLab merges it when its pipeline succeeds (pipeline ${id} is ${pipeline.pipeline.status}; merge when pipeline succeeds set now)`,
              };
            case 'merged':
              return { status: 'merged', mergeCommit: answer.mergeCommit };
            case 'refused':
              return answer.attempt;
          }
          break;
        }
        case 'waiting':
          return { status: 'pending', reason: pipeline.reason };
        case 'failed':
          return { status: 'blocked', reason: pipeline.reason };
        case 'none':
        case 'succeeded':
          break;
      }
      const status = mr.detailed_merge_status ?? legacyStatus(mr.merge_status);
      if (status !== 'mergeable') {
        const waiting = WAITING_STATUSES[status];
        if (waiting !== undefined) {
          return { status: 'pending', reason: `${waiting} (detailed_merge_status ${status})` };
        }
        const blocking = BLOCKING_STATUSES[status] ?? 'GitLab will not merge it';
        return { status: 'blocked', reason: `${blocking} (detailed_merge_status ${status})` };
      }
      try {
        const merged = (await call.client.mergeRequests.merge(call.project, lookup.number, {
          sha: lookup.expectedHead,
        })) as unknown as MergeRequestJson;
        const commit = merged.state === 'merged' ? mergeCommitOf(merged) : undefined;
        if (commit !== undefined) return { status: 'merged', mergeCommit: commit };
        return {
          status: 'pending',
          reason: `GitLab accepted the merge but reports state ${merged.state}${merged.merge_error ? `: ${merged.merge_error}` : ''}`,
        };
      } catch (error) {
        const refused = mergeRefusal(error);
        if (refused !== undefined) return refused;
        throw call.failure(operation, error);
      }
    });
  }

  /**
   * Runs one port call: its client, project id, failure mapping, and one deadline for every
   * request and wait it makes.
   */
  async #call<T>(
    target: { readonly repository: PullRequestLookup['repository']; readonly token: string },
    operation: string,
    work: (call: CallContext) => Promise<T>,
  ): Promise<T> {
    const project = repositoryPath(target.repository);
    const apiBaseUrl = target.repository.apiBaseUrl.replace(/\/+$/, '');
    const host = gitlabHost(target.repository.apiBaseUrl);
    if (target.token === '') {
      throw new PromoterError(
        'GITLAB_AUTH_FAILED',
        `No GitLab token to ${operation} in ${project}`,
        { data: { repository: project, apiBaseUrl } },
      );
    }
    const timeoutMs = this.#options.timeoutMs;
    const context = (what: string): Operation => ({
      project,
      apiBaseUrl,
      operation: what,
      token: target.token,
      timeoutMs,
    });
    const client = this.#client(host, target.token);
    const call: CallContext = {
      client,
      project,
      failure: (what, error) => toPromoterError(error, context(what)),
      data: (what) => ({ repository: project, apiBaseUrl, operation: what }),
      step: async (what, task) => {
        try {
          return await task();
        } catch (error) {
          throw toPromoterError(error, context(what));
        }
      },
      read: async (iid) =>
        (await call.step(`read merge request !${iid}`, () =>
          client.mergeRequests.show(project, iid),
        )) as unknown as MergeRequestJson,
    };
    try {
      return await this.#deadline.run(AbortSignal.timeout(timeoutMs), () => work(call));
    } catch (error) {
      throw toPromoterError(error, context(operation));
    }
  }

  #client(host: string, token: string): Client {
    const key = createHash('sha256').update(host).update('\0').update(token).digest('hex');
    const cached = this.#clients.get(key);
    if (cached !== undefined) {
      this.#clients.delete(key);
      this.#clients.set(key, cached);
      return cached;
    }
    const agents = this.#agents;
    const fetchThroughAgents = guardedFetch(agents);
    const requesterFn = promoterRequester({
      fetch: (input, init) => fetchThroughAgents(input, init),
      userAgent: this.#options.userAgent,
      retries: this.#options.retries,
      rateLimitRetries: this.#options.rateLimitRetries,
      maxRetryAfterSeconds: this.#options.maxRetryAfterSeconds,
      retryAfterBaseValue: this.#options.retryAfterBaseValue,
      deadline: () => this.#deadline.getStore(),
    });
    // The deadline of the port call bounds each request; gitbeaker's own timeout is off.
    const resourceOptions = { host, token, requesterFn, queryTimeout: null } as const;
    const client: Client = {
      mergeRequests: new MergeRequests(resourceOptions),
      notes: new MergeRequestNotes(resourceOptions),
    };
    this.#clients.set(key, client);
    while (this.#clients.size > this.#options.maxClients) {
      const oldest = this.#clients.keys().next();
      if (oldest.done === true) break;
      this.#clients.delete(oldest.value);
    }
    return client;
  }
}

interface CallContext {
  readonly client: Client;
  /** `group/subgroup/project`: GitLab's project id once URL-encoded (gitbeaker encodes it). */
  readonly project: string;
  failure(operation: string, error: unknown): PromoterError;
  data(operation: string): Record<string, unknown>;
  /** Runs one request, mapping its failure with `operation`. */
  step<T>(operation: string, task: () => Promise<T>): Promise<T>;
  read(iid: number): Promise<MergeRequestJson>;
}

export const createGitLabMergeRequests = (
  options: GitLabMergeRequestsOptions = {},
): GitLabMergeRequests => new GitLabMergeRequests(options);
