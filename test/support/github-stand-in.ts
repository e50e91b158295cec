import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A GitHub REST API stand-in for tests: the routes the worker uses, as GitHub Enterprise Server
 * serves them under `/api/v3` (the caller strips that prefix and hands the rest to `handle`).
 * Shapes follow GitHub's OpenAPI types (a subset of `repository` and `pull-request`), errors use
 * GitHub's bodies, every answer carries the `x-ratelimit-*` headers, and tests can queue faults
 * (5xx, primary and secondary rate limits with Retry-After, 422 already exists, connection reset)
 * and inspect what clients did.
 *
 * Routes: `GET /repos/{owner}/{repo}`, `GET|POST /repos/{owner}/{repo}/pulls`,
 * `GET|PATCH /repos/{owner}/{repo}/pulls/{pull_number}`, `GET /rate_limit`.
 */

export type TokenAccess = 'write' | 'read';

/** What the stand-in may ask of the git repositories behind it (all optional, all cheap). */
export interface StandInGit {
  /** Every branch of the repository and the commit it points at (asked once per request). */
  branches(owner: string, repo: string): Promise<ReadonlyMap<string, string>>;
  /** How many commits `head` has that `base` does not (GitHub refuses a PR with none). */
  commitsBetween?(owner: string, repo: string, base: string, head: string): Promise<number>;
}

export interface GitHubStandInOptions {
  /** Tokens allowed to read and write. */
  readonly tokens?: Iterable<string>;
  /** Tokens allowed to read only: writes answer 403. */
  readonly readOnlyTokens?: Iterable<string>;
  /** The login the tokens act as (default `promoter-bot`). */
  readonly login?: string;
  /** Requests per token per hour before the primary rate limit answers 403 (default 5000). */
  readonly rateLimit?: number;
  /** Resolves head SHAs and checks branches; without it, SHAs are made up and never checked. */
  readonly git?: StandInGit;
  /** `http://host:port` used in `html_url`s; defaults to the request's Host. */
  readonly webBaseUrl?: string;
}

/** A fault answered instead of (or, with `after`, in place of the answer to) a request. */
export type GitHubFault =
  | {
      readonly kind: 'status';
      /** 500, 502, 503, ... */
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Readonly<Record<string, string>>;
      /** Handle the request first (its effects happen), then answer the fault. */
      readonly after?: boolean;
    }
  | {
      /** GitHub's secondary rate limit: 403 (or 429) with Retry-After. */
      readonly kind: 'secondary-rate-limit';
      readonly status?: 403 | 429;
      readonly retryAfterSeconds?: number;
    }
  | {
      /** GitHub's primary rate limit: 403 (or 429), x-ratelimit-remaining 0, reset soon. */
      readonly kind: 'primary-rate-limit';
      readonly status?: 403 | 429;
      readonly resetInSeconds?: number;
    }
  | {
      /** 422 "A pull request already exists for owner:branch." (without creating anything). */
      readonly kind: 'already-exists';
    }
  | {
      /** The TCP connection is reset without an answer. */
      readonly kind: 'connection-reset';
      readonly after?: boolean;
    };

export interface FaultRule {
  /** HTTP method to match (any when absent). */
  readonly method?: string;
  /**
   * The route to match: a template (`/repos/{owner}/{repo}/pulls`), a concrete path
   * (`/repos/acme/fleet/pulls`, without `/api/v3`), or a RegExp tested on the concrete path.
   * Any route when absent.
   */
  readonly route?: string | RegExp;
  /** How many matching requests the fault answers (default 1). */
  readonly times?: number;
  readonly fault: GitHubFault;
}

export interface RecordedRequest {
  readonly method: string;
  /** The path after `/api/v3`, without the query. */
  readonly path: string;
  /** The route template, or undefined for an unknown route. */
  readonly route: string | undefined;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** The login of an accepted token, else undefined. */
  readonly login: string | undefined;
  readonly userAgent: string | undefined;
  /** The status answered (0 for a connection reset). */
  readonly status: number;
  /** The fault that answered, if any. */
  readonly fault: GitHubFault['kind'] | undefined;
}

export interface StandInRepository {
  readonly id: number;
  readonly owner: string;
  readonly name: string;
  readonly defaultBranch: string;
  readonly private: boolean;
}

export interface StandInPullRequest {
  readonly id: number;
  readonly number: number;
  readonly owner: string;
  readonly repo: string;
  readonly state: 'open' | 'closed';
  readonly title: string;
  readonly body: string | null;
  /** Branch name (same repository). */
  readonly head: string;
  readonly base: string;
  /** The head SHA when the PR was last created or updated. */
  readonly headSha: string;
  readonly user: string;
  readonly draft: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly closedAt: string | null;
}

interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

interface Caller {
  readonly token: string;
  readonly login: string;
  readonly access: TokenAccess;
}

/** The commit a branch points at, undefined when it does not exist or there is no git. */
type BranchLookup = (branch: string) => Promise<string | undefined>;

interface Route {
  readonly template: string;
  readonly owner?: string;
  readonly repo?: string;
  readonly number?: number;
}

const DOCS = 'https://docs.github.com/enterprise-server@3.14/rest';
const API_VERSION = '2022-11-28';
const ENTERPRISE_VERSION = '3.14.0';
const MAX_BODY_BYTES = 1 << 20;

const SECONDARY_RATE_LIMIT_MESSAGE =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. ' +
  'If you reach out to GitHub Support for help, please include the request ID';

const timestamp = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`;

const fakeSha = (): string => randomBytes(20).toString('hex');

const nodeId = (prefix: string, id: number): string =>
  `${prefix}_${Buffer.from(`0:${id}`).toString('base64url')}`;

const parseRoute = (path: string): Route | undefined => {
  const parts = path.split('/').slice(1).map(decodeURIComponent);
  if (parts.length === 1 && parts[0] === 'rate_limit') return { template: '/rate_limit' };
  if (parts[0] !== 'repos' || parts.length < 3) return undefined;
  const [, owner = '', repo = '', resource, number, ...rest] = parts;
  if (owner === '' || repo === '' || rest.length > 0) return undefined;
  if (resource === undefined) return { template: '/repos/{owner}/{repo}', owner, repo };
  if (resource !== 'pulls') return undefined;
  if (number === undefined) return { template: '/repos/{owner}/{repo}/pulls', owner, repo };
  if (!/^[1-9][0-9]*$/.test(number)) return undefined;
  return {
    template: '/repos/{owner}/{repo}/pulls/{pull_number}',
    owner,
    repo,
    number: Number(number),
  };
};

const readBody = async (request: IncomingMessage): Promise<Buffer | 'too-large'> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return 'too-large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
};

const validationFailed = (
  documentation: string,
  ...errors: Readonly<Record<string, string>>[]
): Answer => ({
  status: 422,
  body: {
    message: 'Validation Failed',
    errors,
    documentation_url: `${DOCS}/${documentation}`,
    status: '422',
  },
});

const notFound = (documentation = ''): Answer => ({
  status: 404,
  body: { message: 'Not Found', documentation_url: `${DOCS}${documentation}`, status: '404' },
});

const alreadyExists = (label: string): Answer =>
  validationFailed('pulls/pulls#create-a-pull-request', {
    resource: 'PullRequest',
    code: 'custom',
    message: `A pull request already exists for ${label}.`,
  });

export class GitHubStandIn {
  readonly #tokens = new Map<string, TokenAccess>();
  readonly #login: string;
  readonly #rateLimit: number;
  readonly #git: StandInGit | undefined;
  readonly #webBaseUrl: string | undefined;
  readonly #repositories = new Map<string, StandInRepository>();
  readonly #pulls: StandInPullRequest[] = [];
  readonly #faults: { rule: FaultRule; remaining: number }[] = [];
  readonly #requests: RecordedRequest[] = [];
  readonly #usage = new Map<string, { windowStart: number; used: number }>();
  #nextId = 1_000;

  constructor(options: GitHubStandInOptions = {}) {
    for (const token of options.readOnlyTokens ?? []) this.#tokens.set(token, 'read');
    for (const token of options.tokens ?? []) this.#tokens.set(token, 'write');
    this.#login = options.login ?? 'promoter-bot';
    this.#rateLimit = options.rateLimit ?? 5_000;
    this.#git = options.git;
    this.#webBaseUrl = options.webBaseUrl;
  }

  // ---- set-up -------------------------------------------------------------------------------

  allowToken(token: string, access: TokenAccess = 'write'): void {
    this.#tokens.set(token, access);
  }

  /** What `token` may do, or undefined when it is not accepted (the git side asks too). */
  tokenAccess(token: string): TokenAccess | undefined {
    return this.#tokens.get(token);
  }

  revokeToken(token: string): void {
    this.#tokens.delete(token);
  }

  addRepository(
    owner: string,
    name: string,
    options: { readonly defaultBranch?: string; readonly private?: boolean } = {},
  ): StandInRepository {
    const repository: StandInRepository = {
      id: this.#nextId++,
      owner,
      name,
      defaultBranch: options.defaultBranch ?? 'main',
      private: options.private ?? true,
    };
    this.#repositories.set(`${owner}/${name}`.toLowerCase(), repository);
    return repository;
  }

  /** Adds a pull request directly (for example a stale one left open by hand). */
  seedPullRequest(
    owner: string,
    repo: string,
    pull: {
      readonly head: string;
      readonly base: string;
      readonly title: string;
      readonly body?: string | null;
      readonly state?: 'open' | 'closed';
      readonly headSha?: string;
    },
  ): StandInPullRequest {
    const repository = this.#repository(owner, repo);
    if (repository === undefined) throw new Error(`No repository ${owner}/${repo} in the stand-in`);
    return this.#createPull(repository, {
      head: pull.head,
      base: pull.base,
      title: pull.title,
      body: pull.body ?? null,
      state: pull.state ?? 'open',
      headSha: pull.headSha ?? fakeSha(),
      user: this.#login,
    });
  }

  /** Closes (or reopens) a pull request as a person would on the web. */
  setPullRequestState(owner: string, repo: string, number: number, state: 'open' | 'closed'): void {
    const index = this.#pullIndex(owner, repo, number);
    if (index < 0) throw new Error(`No pull request ${owner}/${repo}#${number}`);
    const pull = this.#pulls[index] as StandInPullRequest;
    const now = timestamp(new Date());
    this.#pulls[index] = {
      ...pull,
      state,
      updatedAt: now,
      closedAt: state === 'closed' ? now : null,
    };
  }

  // ---- faults -------------------------------------------------------------------------------

  injectFault(rule: FaultRule): void {
    this.#faults.push({ rule, remaining: rule.times ?? 1 });
  }

  /** How many fault answers are still queued. */
  pendingFaults(): number {
    return this.#faults.reduce((sum, entry) => sum + entry.remaining, 0);
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  // ---- inspection ---------------------------------------------------------------------------

  pullRequests(owner?: string, repo?: string): StandInPullRequest[] {
    return this.#pulls.filter(
      (pull) =>
        (owner === undefined || pull.owner.toLowerCase() === owner.toLowerCase()) &&
        (repo === undefined || pull.repo.toLowerCase() === repo.toLowerCase()),
    );
  }

  pullRequest(owner: string, repo: string, number: number): StandInPullRequest | undefined {
    return this.#pulls[this.#pullIndex(owner, repo, number)];
  }

  get requests(): readonly RecordedRequest[] {
    return [...this.#requests];
  }

  /** Requests matching `method` and `route` (template or concrete path), all when absent. */
  requestCount(filter: { readonly method?: string; readonly route?: string } = {}): number {
    return this.#requests.filter(
      (request) =>
        (filter.method === undefined || request.method === filter.method.toUpperCase()) &&
        (filter.route === undefined ||
          request.route === filter.route ||
          request.path === filter.route),
    ).length;
  }

  /** Request counts by `METHOD /route/template` (`METHOD /path` for unknown routes). */
  requestCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const request of this.#requests) {
      const key = `${request.method} ${request.route ?? request.path}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  clearRequests(): void {
    this.#requests.length = 0;
  }

  /** Forgets pull requests, requests, faults and rate-limit usage (repositories and tokens stay). */
  reset(): void {
    this.#pulls.length = 0;
    this.clearRequests();
    this.clearFaults();
    this.#usage.clear();
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  /** Serves one API request; `path` is what follows `/api/v3` (e.g. `/repos/o/r/pulls`). */
  async handle(
    request: IncomingMessage,
    response: ServerResponse,
    path: string,
    query: URLSearchParams,
  ): Promise<void> {
    const method = (request.method ?? 'GET').toUpperCase();
    const route = parseRoute(path);
    const raw = await readBody(request);
    const record = (
      status: number,
      caller: Caller | undefined,
      fault?: GitHubFault,
      body?: unknown,
    ) =>
      this.#requests.push({
        method,
        path,
        route: route?.template,
        query: Object.fromEntries(query),
        body,
        login: caller?.login,
        userAgent: request.headers['user-agent'],
        status,
        fault: fault?.kind,
      });

    if (raw === 'too-large') {
      record(413, undefined);
      this.#send(
        request,
        response,
        { status: 413, body: { message: 'Payload too large' } },
        undefined,
      );
      return;
    }
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        record(400, undefined);
        this.#send(
          request,
          response,
          { status: 400, body: { message: 'Problems parsing JSON', documentation_url: DOCS } },
          undefined,
        );
        return;
      }
    }

    const authentication = this.#authenticate(request);
    if ('status' in authentication) {
      record(authentication.status, undefined, undefined, body);
      this.#send(request, response, authentication, undefined);
      return;
    }
    const caller = authentication;

    const fault = this.#takeFault(method, path, route?.template);
    if (fault !== undefined && !('after' in fault && fault.after === true)) {
      record(fault.kind === 'connection-reset' ? 0 : this.#faultStatus(fault), caller, fault, body);
      this.#sendFault(request, response, fault, caller, body, route);
      return;
    }

    const limited = route?.template === '/rate_limit' ? undefined : this.#consumeRateLimit(caller);
    let answer: Answer;
    if (limited !== undefined) answer = limited;
    else if (route === undefined) answer = notFound();
    else answer = await this.#route(request, method, route, query, body, caller);

    if (fault !== undefined) {
      record(fault.kind === 'connection-reset' ? 0 : this.#faultStatus(fault), caller, fault, body);
      this.#sendFault(request, response, fault, caller, body, route);
      return;
    }
    record(answer.status, caller, undefined, body);
    this.#send(request, response, answer, caller);
  }

  // ---- internals ----------------------------------------------------------------------------

  #authenticate(request: IncomingMessage): Caller | Answer {
    const header = request.headers.authorization;
    if (header === undefined) {
      return {
        status: 401,
        body: { message: 'Requires authentication', documentation_url: DOCS, status: '401' },
      };
    }
    const match = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
    const token = match?.[1];
    const access = token === undefined ? undefined : this.#tokens.get(token);
    if (token === undefined || access === undefined) {
      return {
        status: 401,
        body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' },
      };
    }
    return { token, login: this.#login, access };
  }

  #takeFault(method: string, path: string, template: string | undefined): GitHubFault | undefined {
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

  #faultStatus(fault: GitHubFault): number {
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
  }

  #sendFault(
    request: IncomingMessage,
    response: ServerResponse,
    fault: GitHubFault,
    caller: Caller,
    body: unknown,
    route: Route | undefined,
  ): void {
    const requestId = this.#requestId();
    switch (fault.kind) {
      case 'connection-reset':
        response.socket?.resetAndDestroy();
        return;
      case 'status':
        this.#send(
          request,
          response,
          {
            status: fault.status,
            body: fault.body ?? {
              message: fault.status >= 500 ? 'Server Error' : 'Error',
              documentation_url: DOCS,
            },
            ...(fault.headers === undefined ? {} : { headers: fault.headers }),
          },
          caller,
        );
        return;
      case 'secondary-rate-limit':
        this.#send(
          request,
          response,
          {
            status: fault.status ?? 403,
            headers: { 'retry-after': String(fault.retryAfterSeconds ?? 60) },
            body: {
              message: `${SECONDARY_RATE_LIMIT_MESSAGE} ${requestId}.`,
              documentation_url:
                'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
            },
          },
          caller,
        );
        return;
      case 'primary-rate-limit': {
        const reset = Math.ceil(Date.now() / 1000) + (fault.resetInSeconds ?? 60);
        this.#send(
          request,
          response,
          {
            status: fault.status ?? 403,
            headers: {
              'x-ratelimit-limit': String(this.#rateLimit),
              'x-ratelimit-remaining': '0',
              'x-ratelimit-used': String(this.#rateLimit),
              'x-ratelimit-reset': String(reset),
              'x-ratelimit-resource': 'core',
            },
            body: {
              message: `API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID ${requestId}.`,
              documentation_url:
                'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit',
            },
          },
          caller,
        );
        return;
      }
      case 'already-exists': {
        const head =
          typeof body === 'object' &&
          body !== null &&
          'head' in body &&
          typeof body.head === 'string'
            ? body.head
            : 'branch';
        const owner = route?.owner ?? 'owner';
        this.#send(
          request,
          response,
          alreadyExists(head.includes(':') ? head : `${owner}:${head}`),
          caller,
        );
        return;
      }
    }
  }

  #consumeRateLimit(caller: Caller): Answer | undefined {
    const usage = this.#usageOf(caller.token);
    if (usage.used >= this.#rateLimit) {
      return {
        status: 403,
        body: {
          message: `API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID ${this.#requestId()}.`,
          documentation_url:
            'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit',
        },
      };
    }
    usage.used += 1;
    return undefined;
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

  #rateLimitHeaders(caller: Caller | undefined): Record<string, string> {
    if (caller === undefined) {
      const reset = Math.floor(Date.now() / 1000) + 3_600;
      return {
        'x-ratelimit-limit': '60',
        'x-ratelimit-remaining': '59',
        'x-ratelimit-used': '1',
        'x-ratelimit-reset': String(reset),
        'x-ratelimit-resource': 'core',
      };
    }
    const usage = this.#usageOf(caller.token);
    return {
      'x-ratelimit-limit': String(this.#rateLimit),
      'x-ratelimit-remaining': String(Math.max(0, this.#rateLimit - usage.used)),
      'x-ratelimit-used': String(usage.used),
      'x-ratelimit-reset': String(usage.windowStart + 3_600),
      'x-ratelimit-resource': 'core',
    };
  }

  #requestId(): string {
    return randomBytes(8).toString('hex').toUpperCase();
  }

  #send(
    request: IncomingMessage,
    response: ServerResponse,
    answer: Answer,
    caller: Caller | undefined,
  ): void {
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'x-github-api-version-selected': API_VERSION,
      'x-github-media-type': 'github.v3; format=json',
      'x-github-enterprise-version': ENTERPRISE_VERSION,
      'x-github-request-id': this.#requestId(),
      ...this.#rateLimitHeaders(caller),
      ...answer.headers,
    };
    if (answer.status === 401) headers['www-authenticate'] = 'Bearer realm="GitHub"';
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    headers['content-length'] = String(Buffer.byteLength(text));
    response.writeHead(answer.status, headers);
    response.end(request.method === 'HEAD' ? undefined : text);
  }

  #branchLookup(repository: StandInRepository): BranchLookup {
    const git = this.#git;
    if (git === undefined) return async () => undefined;
    let branches: Promise<ReadonlyMap<string, string>> | undefined;
    return async (branch) => {
      branches ??= git.branches(repository.owner, repository.name);
      return (await branches).get(branch);
    };
  }

  #repository(owner: string, repo: string): StandInRepository | undefined {
    return this.#repositories.get(`${owner}/${repo}`.toLowerCase());
  }

  #pullIndex(owner: string, repo: string, number: number): number {
    return this.#pulls.findIndex(
      (pull) =>
        pull.number === number &&
        pull.owner.toLowerCase() === owner.toLowerCase() &&
        pull.repo.toLowerCase() === repo.toLowerCase(),
    );
  }

  #createPull(
    repository: StandInRepository,
    fields: Pick<
      StandInPullRequest,
      'head' | 'base' | 'title' | 'body' | 'state' | 'headSha' | 'user'
    > & {
      readonly draft?: boolean;
    },
  ): StandInPullRequest {
    const number =
      1 +
      this.pullRequests(repository.owner, repository.name).reduce(
        (max, pull) => Math.max(max, pull.number),
        0,
      );
    const now = timestamp(new Date());
    const pull: StandInPullRequest = {
      id: this.#nextId++,
      number,
      owner: repository.owner,
      repo: repository.name,
      state: fields.state,
      title: fields.title,
      body: fields.body,
      head: fields.head,
      base: fields.base,
      headSha: fields.headSha,
      user: fields.user,
      draft: fields.draft ?? false,
      createdAt: now,
      updatedAt: now,
      closedAt: fields.state === 'closed' ? now : null,
    };
    this.#pulls.push(pull);
    return pull;
  }

  async #route(
    request: IncomingMessage,
    method: string,
    route: Route,
    query: URLSearchParams,
    body: unknown,
    caller: Caller,
  ): Promise<Answer> {
    if (route.template === '/rate_limit') {
      return method === 'GET' ? this.#rateLimitAnswer(caller) : notFound();
    }
    const repository = this.#repository(route.owner ?? '', route.repo ?? '');
    if (repository === undefined) return notFound('/repos/repos#get-a-repository');
    const isWrite = method !== 'GET' && method !== 'HEAD';
    if (isWrite && caller.access !== 'write') {
      return {
        status: 403,
        body: {
          message: 'Resource not accessible by personal access token',
          documentation_url: DOCS,
          status: '403',
        },
      };
    }
    const urls = this.#urls(request);
    const branches = this.#branchLookup(repository);
    switch (`${method} ${route.template}`) {
      case 'GET /repos/{owner}/{repo}':
        return { status: 200, body: this.#repositoryJson(repository, urls) };
      case 'GET /repos/{owner}/{repo}/pulls':
        return this.#listPulls(repository, query, urls, branches);
      case 'POST /repos/{owner}/{repo}/pulls':
        return this.#createPullRequest(repository, body, caller, urls, branches);
      case 'GET /repos/{owner}/{repo}/pulls/{pull_number}': {
        const pull = this.pullRequest(repository.owner, repository.name, route.number ?? 0);
        return pull === undefined
          ? notFound('/pulls/pulls#get-a-pull-request')
          : { status: 200, body: await this.#pullJson(pull, repository, urls, branches) };
      }
      case 'PATCH /repos/{owner}/{repo}/pulls/{pull_number}':
        return this.#updatePullRequest(repository, route.number ?? 0, body, urls, branches);
      default:
        return notFound();
    }
  }

  #rateLimitAnswer(caller: Caller): Answer {
    const headers = this.#rateLimitHeaders(caller);
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
    return {
      status: 200,
      body: {
        resources: {
          core,
          search: other(30),
          graphql: other(5_000),
          integration_manifest: other(5_000),
        },
        rate: core,
      },
    };
  }

  #urls(request: IncomingMessage): { web: string; api: string } {
    const web = this.#webBaseUrl ?? `http://${request.headers.host ?? '127.0.0.1'}`;
    return { web, api: `${web}/api/v3` };
  }

  async #listPulls(
    repository: StandInRepository,
    query: URLSearchParams,
    urls: { web: string; api: string },
    branches: BranchLookup,
  ): Promise<Answer> {
    const state = query.get('state') ?? 'open';
    if (!['open', 'closed', 'all'].includes(state)) {
      return validationFailed('pulls/pulls#list-pull-requests', {
        resource: 'Search',
        field: 'state',
        code: 'invalid',
      });
    }
    // Like GitHub, a `head` without `user:` is not a filter at all.
    const head = query.get('head') ?? '';
    const colon = head.indexOf(':');
    const headFilter =
      colon < 0 ? undefined : { owner: head.slice(0, colon), ref: head.slice(colon + 1) };
    const base = query.get('base');
    const sort = query.get('sort') ?? 'created';
    const direction = query.get('direction') ?? (sort === 'created' ? 'desc' : 'asc');
    const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? 30) || 30));
    const page = Math.max(1, Number(query.get('page') ?? 1) || 1);

    const matching = this.pullRequests(repository.owner, repository.name)
      .filter((pull) => state === 'all' || pull.state === state)
      .filter(
        (pull) =>
          headFilter === undefined ||
          (headFilter.owner.toLowerCase() === repository.owner.toLowerCase() &&
            headFilter.ref === pull.head),
      )
      .filter((pull) => base === null || pull.base === base)
      .sort((a, b) => {
        const key = sort === 'updated' ? 'updatedAt' : 'createdAt';
        const order = a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : a.number - b.number;
        return direction === 'asc' ? order : -order;
      });
    const slice = matching.slice((page - 1) * perPage, page * perPage);
    const headers: Record<string, string> = {};
    const lastPage = Math.max(1, Math.ceil(matching.length / perPage));
    if (lastPage > 1) {
      const link = (p: number, rel: string) => {
        const next = new URLSearchParams(query);
        next.set('page', String(p));
        return `<${urls.api}/repos/${repository.owner}/${repository.name}/pulls?${next}>; rel="${rel}"`;
      };
      const links: string[] = [];
      if (page > 1) links.push(link(page - 1, 'prev'));
      if (page < lastPage) links.push(link(page + 1, 'next'));
      links.push(link(lastPage, 'last'), link(1, 'first'));
      headers.link = links.join(', ');
    }
    const body = await Promise.all(
      slice.map((pull) => this.#pullJson(pull, repository, urls, branches)),
    );
    return { status: 200, body, headers };
  }

  async #createPullRequest(
    repository: StandInRepository,
    body: unknown,
    caller: Caller,
    urls: { web: string; api: string },
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'pulls/pulls#create-a-pull-request';
    const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<
      string,
      unknown
    >;
    const { title, head, base } = fields;
    const missing = (['title', 'head', 'base'] as const).filter(
      (name) => typeof fields[name] !== 'string' || fields[name] === '',
    );
    if (
      missing.length > 0 ||
      typeof title !== 'string' ||
      typeof head !== 'string' ||
      typeof base !== 'string'
    ) {
      return validationFailed(
        documentation,
        ...missing.map((field) => ({ resource: 'PullRequest', field, code: 'missing_field' })),
      );
    }
    const colon = head.indexOf(':');
    const headOwner = colon < 0 ? repository.owner : head.slice(0, colon);
    const headRef = colon < 0 ? head : head.slice(colon + 1);
    if (headOwner.toLowerCase() !== repository.owner.toLowerCase()) {
      return validationFailed(documentation, {
        resource: 'PullRequest',
        field: 'head',
        code: 'invalid',
      });
    }
    let headSha = fakeSha();
    if (this.#git !== undefined) {
      const [headCommit, baseCommit] = await Promise.all([branches(headRef), branches(base)]);
      if (headCommit === undefined) {
        return validationFailed(documentation, {
          resource: 'PullRequest',
          field: 'head',
          code: 'invalid',
        });
      }
      if (baseCommit === undefined) {
        return validationFailed(documentation, {
          resource: 'PullRequest',
          field: 'base',
          code: 'invalid',
        });
      }
      headSha = headCommit;
    }
    const label = `${repository.owner}:${headRef}`;
    const duplicate = this.pullRequests(repository.owner, repository.name).some(
      (pull) => pull.state === 'open' && pull.head === headRef && pull.base === base,
    );
    if (duplicate) return alreadyExists(label);
    if (this.#git?.commitsBetween !== undefined) {
      const ahead = await this.#git.commitsBetween(
        repository.owner,
        repository.name,
        base,
        headRef,
      );
      if (ahead === 0) {
        return validationFailed(documentation, {
          resource: 'PullRequest',
          code: 'custom',
          message: `No commits between ${base} and ${headRef}`,
        });
      }
    }
    const pull = this.#createPull(repository, {
      head: headRef,
      base,
      title,
      body: typeof fields.body === 'string' ? fields.body : null,
      state: 'open',
      headSha,
      user: caller.login,
      draft: fields.draft === true,
    });
    return {
      status: 201,
      headers: {
        location: `${urls.api}/repos/${repository.owner}/${repository.name}/pulls/${pull.number}`,
      },
      body: await this.#pullJson(pull, repository, urls, branches),
    };
  }

  async #updatePullRequest(
    repository: StandInRepository,
    number: number,
    body: unknown,
    urls: { web: string; api: string },
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'pulls/pulls#update-a-pull-request';
    const index = this.#pullIndex(repository.owner, repository.name, number);
    if (index < 0) return notFound(`/${documentation}`);
    const pull = this.#pulls[index] as StandInPullRequest;
    const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<
      string,
      unknown
    >;
    const { title, state, base } = fields;
    if (title !== undefined && (typeof title !== 'string' || title === '')) {
      return validationFailed(documentation, {
        resource: 'PullRequest',
        field: 'title',
        code: 'invalid',
      });
    }
    if (state !== undefined && state !== 'open' && state !== 'closed') {
      return validationFailed(documentation, {
        resource: 'PullRequest',
        field: 'state',
        code: 'invalid',
      });
    }
    if (base !== undefined && typeof base !== 'string') {
      return validationFailed(documentation, {
        resource: 'PullRequest',
        field: 'base',
        code: 'invalid',
      });
    }
    if (typeof base === 'string' && this.#git !== undefined) {
      if ((await branches(base)) === undefined) {
        return validationFailed(documentation, {
          resource: 'PullRequest',
          field: 'base',
          code: 'invalid',
        });
      }
    }
    const nextState = state ?? pull.state;
    const nextBase = base ?? pull.base;
    if (nextState === 'open') {
      const clash = this.pullRequests(repository.owner, repository.name).some(
        (other) =>
          other.number !== pull.number &&
          other.state === 'open' &&
          other.head === pull.head &&
          other.base === nextBase,
      );
      if (clash) return alreadyExists(`${repository.owner}:${pull.head}`);
    }
    const now = timestamp(new Date());
    const updated: StandInPullRequest = {
      ...pull,
      ...(typeof title === 'string' ? { title } : {}),
      ...('body' in fields ? { body: typeof fields.body === 'string' ? fields.body : null } : {}),
      state: nextState,
      base: nextBase,
      updatedAt: now,
      closedAt: nextState === 'closed' ? (pull.closedAt ?? now) : null,
    };
    this.#pulls[index] = updated;
    return { status: 200, body: await this.#pullJson(updated, repository, urls, branches) };
  }

  #userJson(login: string, urls: { web: string; api: string }) {
    return {
      login,
      id: 1,
      node_id: nodeId('U', 1),
      avatar_url: `${urls.web}/avatars/u/1`,
      gravatar_id: '',
      url: `${urls.api}/users/${login}`,
      html_url: `${urls.web}/${login}`,
      type: 'User',
      site_admin: false,
    };
  }

  #repositoryJson(repository: StandInRepository, urls: { web: string; api: string }) {
    const fullName = `${repository.owner}/${repository.name}`;
    return {
      id: repository.id,
      node_id: nodeId('R', repository.id),
      name: repository.name,
      full_name: fullName,
      private: repository.private,
      visibility: repository.private ? 'private' : 'public',
      owner: { ...this.#userJson(repository.owner, urls), type: 'Organization' },
      html_url: `${urls.web}/${fullName}`,
      description: null,
      fork: false,
      url: `${urls.api}/repos/${fullName}`,
      pulls_url: `${urls.api}/repos/${fullName}/pulls{/number}`,
      git_url: `git://${new URL(urls.web).host}/${fullName}.git`,
      ssh_url: `git@${new URL(urls.web).hostname}:${fullName}.git`,
      clone_url: `${urls.web}/${fullName}.git`,
      default_branch: repository.defaultBranch,
      archived: false,
      disabled: false,
      permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
      created_at: '2024-01-01T00:00:00Z',
      updated_at: '2024-01-01T00:00:00Z',
      pushed_at: '2024-01-01T00:00:00Z',
    };
  }

  async #pullJson(
    pull: StandInPullRequest,
    repository: StandInRepository,
    urls: { web: string; api: string },
    branches: BranchLookup,
  ) {
    const fullName = `${repository.owner}/${repository.name}`;
    const api = `${urls.api}/repos/${fullName}`;
    const html = `${urls.web}/${fullName}/pull/${pull.number}`;
    const [headSha, baseSha] = await Promise.all([branches(pull.head), branches(pull.base)]);
    const repo = this.#repositoryJson(repository, urls);
    const owner = this.#userJson(repository.owner, urls);
    return {
      url: `${api}/pulls/${pull.number}`,
      id: pull.id,
      node_id: nodeId('PR', pull.id),
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: `${api}/issues/${pull.number}`,
      commits_url: `${api}/pulls/${pull.number}/commits`,
      review_comments_url: `${api}/pulls/${pull.number}/comments`,
      comments_url: `${api}/issues/${pull.number}/comments`,
      statuses_url: `${api}/statuses/${headSha ?? pull.headSha}`,
      number: pull.number,
      state: pull.state,
      locked: false,
      title: pull.title,
      user: this.#userJson(pull.user, urls),
      body: pull.body,
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: pull.createdAt,
      updated_at: pull.updatedAt,
      closed_at: pull.closedAt,
      merged_at: null,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: {
        label: `${repository.owner}:${pull.head}`,
        ref: pull.head,
        sha: headSha ?? pull.headSha,
        user: owner,
        repo,
      },
      base: {
        label: `${repository.owner}:${pull.base}`,
        ref: pull.base,
        sha: baseSha ?? '0'.repeat(40),
        user: owner,
        repo,
      },
      _links: {
        self: { href: `${api}/pulls/${pull.number}` },
        html: { href: html },
        issue: { href: `${api}/issues/${pull.number}` },
        comments: { href: `${api}/issues/${pull.number}/comments` },
        review_comments: { href: `${api}/pulls/${pull.number}/comments` },
        review_comment: { href: `${api}/pulls/comments{/number}` },
        commits: { href: `${api}/pulls/${pull.number}/commits` },
        statuses: { href: `${api}/statuses/${headSha ?? pull.headSha}` },
      },
      author_association: 'MEMBER',
      auto_merge: null,
      draft: pull.draft,
      merged: false,
      mergeable: null,
      rebaseable: null,
      mergeable_state: 'unknown',
      merged_by: null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: 1,
      additions: 0,
      deletions: 0,
      changed_files: 0,
    };
  }
}
