import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppInstallations } from './app-installations.ts';
import {
  type CheckRunsJson,
  type CombinedStatusJson,
  CommitChecks,
  type CommitStatusJson,
  checkRunsJson,
  combinedStatusJson,
  commitStatusJson,
  isCommitStatusState,
} from './checks.ts';
import { FaultQueue, faultAnswer, faultStatus } from './faults.ts';
import { type EnableAutoMergeRequest, mutationError, parseGraphQLRequest } from './graphql.ts';
import {
  type Answer,
  API_VERSION,
  alreadyExists,
  DOCS,
  ENTERPRISE_VERSION,
  etagOf,
  failure,
  fakeSha,
  fieldsOf,
  invalidRequest,
  matchesEtag,
  nodeId,
  notFound,
  paginate,
  parseRoute,
  type Route,
  readBody,
  requestId,
  timestamp,
  validationFailed,
} from './http.ts';
import { RateLimits } from './rate-limit.ts';
import {
  fullRepositoryJson,
  type IssueCommentJson,
  issueCommentJson,
  type MergeResultJson,
  type PullRequestJson,
  pullRequestJson,
  pullRequestSimpleJson,
  type RepositoryJson,
  repositoryJson,
  type SimpleUserJson,
  type Urls,
  UserIds,
  urlsOf,
  userJson,
} from './shapes.ts';
import type {
  ApiUsage,
  CommitCheck,
  FaultRule,
  GitHubFault,
  GitHubStandInOptions,
  MergeableState,
  MergeMethod,
  MergeOptions,
  MergeResult,
  RecordedRequest,
  RequestFilter,
  StandInCheckRun,
  StandInComment,
  StandInCommitStatus,
  StandInGit,
  StandInPullRequest,
  StandInRepository,
  StandInRepositoryOptions,
  TokenAccess,
} from './types.ts';
import {
  type PullRequestChanges,
  type PullRequestWebhookAction,
  pingPayload,
  pullRequestPayload,
  WebhookDeliveries,
  type WebhookHook,
  type WebhookOptions,
} from './webhooks.ts';

/**
 * A GitHub REST API stand-in for tests: the routes the worker uses, as GitHub Enterprise Server
 * serves them under `/api/v3` (the caller strips that prefix and hands the rest to `handle`).
 * Shapes follow GitHub's OpenAPI types, errors use GitHub's bodies, every answer carries the
 * `x-ratelimit-*` headers, GETs carry an ETag and answer `If-None-Match` with a 304 that costs
 * no rate limit, and tests can queue faults (5xx, primary and secondary rate limits with
 * Retry-After, 422 already exists, connection reset) and inspect what clients did.
 *
 * With `git` (fake-github-enterprise.ts), head and base SHAs are the real branches', a merge
 * moves the base branch in the real repository, and pushes to an open PR's branch are its
 * `synchronize`. Registered webhooks receive signed `pull_request` events (`deliveries`).
 *
 * Routes: `GET /repos/{owner}/{repo}`, `GET|POST /repos/{owner}/{repo}/pulls`,
 * `GET|PATCH /repos/{owner}/{repo}/pulls/{pull_number}`,
 * `GET|PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge`,
 * `GET|POST /repos/{owner}/{repo}/issues/{issue_number}/comments`,
 * `GET /repos/{owner}/{repo}/commits/{ref}/status`, `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`,
 * `POST /repos/{owner}/{repo}/statuses/{sha}`, `GET /rate_limit`; and GraphQL's
 * `enablePullRequestAutoMerge` (`handleGraphQL`, GHES's `/api/graphql`).
 *
 * Merging follows branch protection as the repository's settings describe it (required checks,
 * required approving reviews): `mergeable_state` is `blocked` until they pass, and `PUT .../merge`
 * answers 405 with GitHub's reason. With auto-merge enabled on a PR, the stand-in merges it
 * itself (as the user who enabled it) as soon as it can, and sends the `closed` webhook.
 */

interface Caller {
  readonly token: string;
  readonly login: string;
  readonly access: TokenAccess;
}

/** The commit a branch points at, undefined when it does not exist or there is no git. */
type BranchLookup = (branch: string) => Promise<string | undefined>;

const noBranches: BranchLookup = async () => undefined;

/** Who merges and closes in the helpers: a person, not the promoter's token. */
const PERSON = 'fleet-admin';

const ZERO_SHA = '0'.repeat(40);
const MERGE_METHODS: readonly MergeMethod[] = ['merge', 'squash', 'rebase'];
/** The states in which GitHub merges now (and refuses to enable auto-merge). */
const MERGES_NOW: readonly MergeableState[] = ['clean', 'unstable', 'has_hooks'];
const CACHE_HEADERS = {
  'cache-control': 'private, max-age=60, s-maxage=60',
  vary: 'Accept, Authorization, Cookie, X-GitHub-OTP',
} as const;

const repositoryKey = (owner: string, repo: string): string => `${owner}/${repo}`.toLowerCase();

const messageOf = (answer: Answer): string => {
  const { message } = fieldsOf(answer.body);
  return typeof message === 'string' ? message : '';
};

export class GitHubStandIn {
  /** Webhook hooks' deliveries: controls (lose, duplicate, forge), inspection, `settled()`. */
  readonly deliveries: WebhookDeliveries;
  /** GitHub Apps: register, install, and the installation tokens issued (app-installations.ts). */
  readonly apps = new AppInstallations((token) => this.allowToken(token, 'write'));
  readonly #tokens = new Map<string, TokenAccess>();
  readonly #login: string;
  readonly #rateLimits: RateLimits;
  readonly #git: StandInGit | undefined;
  readonly #webBaseUrl: string | undefined;
  #seenWebBaseUrl: string | undefined;
  readonly #repositories = new Map<string, StandInRepository>();
  readonly #pulls: StandInPullRequest[] = [];
  readonly #comments: StandInComment[] = [];
  /** The head each open PR's branch had when last looked at, by PR id (for `synchronize`). */
  readonly #trackedHeads = new Map<number, string>();
  readonly #faults = new FaultQueue();
  readonly #requests: RecordedRequest[] = [];
  readonly #users = new UserIds();
  readonly #locks = new Map<string, Promise<void>>();
  readonly #checks = new CommitChecks(() => this.#nextId++);
  /** Approving reviewers by PR id. */
  readonly #approvals = new Map<number, Set<string>>();
  /** Reads of a PR still to answer `mergeable: null`, by PR id (GitHub computes it later). */
  readonly #deferredMergeability = new Map<number, number>();
  #nextId = 1_000;

  constructor(options: GitHubStandInOptions = {}) {
    for (const token of options.readOnlyTokens ?? []) this.#tokens.set(token, 'read');
    for (const token of options.tokens ?? []) this.#tokens.set(token, 'write');
    this.#login = options.login ?? 'promoter-bot';
    this.#rateLimits = new RateLimits(options.rateLimit ?? 5_000);
    this.#git = options.git;
    this.#webBaseUrl = options.webBaseUrl;
    this.deliveries = new WebhookDeliveries(() => new URL(this.#payloadUrls().web).host);
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
    options: StandInRepositoryOptions = {},
  ): StandInRepository {
    const repository: StandInRepository = {
      id: this.#nextId++,
      owner,
      name,
      defaultBranch: options.defaultBranch ?? 'main',
      private: options.private ?? true,
      deleteBranchOnMerge: options.deleteBranchOnMerge ?? false,
      allowMergeCommit: options.allowMergeCommit ?? true,
      allowSquashMerge: options.allowSquashMerge ?? true,
      allowAutoMerge: options.allowAutoMerge ?? false,
      requiredChecks: [...(options.requiredChecks ?? [])],
      requiredApprovingReviews: options.requiredApprovingReviews ?? 0,
    };
    this.#repositories.set(repositoryKey(owner, name), repository);
    return repository;
  }

  /**
   * Changes a repository's settings (auto-merge, branch protection); PRs waiting for auto-merge
   * that can now merge are merged.
   */
  async updateRepository(
    owner: string,
    repo: string,
    options: Omit<StandInRepositoryOptions, 'defaultBranch'>,
  ): Promise<StandInRepository> {
    const current = this.#mustRepository(owner, repo);
    const updated: StandInRepository = {
      ...current,
      ...(options.private === undefined ? {} : { private: options.private }),
      ...(options.deleteBranchOnMerge === undefined
        ? {}
        : { deleteBranchOnMerge: options.deleteBranchOnMerge }),
      ...(options.allowMergeCommit === undefined
        ? {}
        : { allowMergeCommit: options.allowMergeCommit }),
      ...(options.allowSquashMerge === undefined
        ? {}
        : { allowSquashMerge: options.allowSquashMerge }),
      ...(options.allowAutoMerge === undefined ? {} : { allowAutoMerge: options.allowAutoMerge }),
      ...(options.requiredChecks === undefined
        ? {}
        : { requiredChecks: [...options.requiredChecks] }),
      ...(options.requiredApprovingReviews === undefined
        ? {}
        : { requiredApprovingReviews: options.requiredApprovingReviews }),
    };
    this.#repositories.set(repositoryKey(owner, repo), updated);
    await this.#exclusive(updated, async () =>
      this.#runAutoMerges(updated, await this.#refresh(updated)),
    );
    return updated;
  }

  /**
   * Reports a commit status or a check run on `ref` (a SHA, or a branch: its head), as CI does;
   * a PR waiting for auto-merge that can now merge is merged. Answers the commit's SHA.
   */
  async setCommitCheck(
    owner: string,
    repo: string,
    ref: string,
    check: CommitCheck,
    options: { readonly by?: string } = {},
  ): Promise<string> {
    const repository = this.#mustRepository(owner, repo);
    return this.#exclusive(repository, async () => {
      const branches = await this.#refresh(repository);
      const sha = await this.#resolveRef(ref, branches);
      if (sha === undefined) throw new Error(`No commit ${ref} in ${owner}/${repo}`);
      this.#checks.set(repositoryKey(owner, repo), sha, check, options.by ?? 'ci-bot');
      await this.#runAutoMerges(repository, branches);
      return sha;
    });
  }

  /** An approving review on the PR (what `requiredApprovingReviews` counts). */
  async approvePullRequest(
    owner: string,
    repo: string,
    number: number,
    options: { readonly by?: string } = {},
  ): Promise<void> {
    const repository = this.#mustRepository(owner, repo);
    const pull = this.#pulls[this.#mustPullIndex(owner, repo, number)] as StandInPullRequest;
    const reviewers = this.#approvals.get(pull.id) ?? new Set<string>();
    reviewers.add(options.by ?? PERSON);
    this.#approvals.set(pull.id, reviewers);
    await this.#exclusive(repository, async () =>
      this.#runAutoMerges(repository, await this.#refresh(repository)),
    );
  }

  /**
   * The next `reads` reads of the PR answer `mergeable: null` and `mergeable_state: unknown`, as
   * GitHub does while it computes mergeability in the background (after a push, for example).
   */
  deferMergeability(owner: string, repo: string, number: number, reads = 1): void {
    const pull = this.#pulls[this.#mustPullIndex(owner, repo, number)] as StandInPullRequest;
    this.#deferredMergeability.set(pull.id, reads);
  }

  /** Adds a pull request directly (for example a stale one left open by hand); no webhook. */
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
    return this.#createPull(this.#mustRepository(owner, repo), {
      head: pull.head,
      base: pull.base,
      title: pull.title,
      body: pull.body ?? null,
      state: pull.state ?? 'open',
      headSha: pull.headSha ?? fakeSha(),
      user: this.#login,
    });
  }

  /**
   * Closes (or reopens) a pull request at once, as a person would on the web, with the head
   * last seen; `closePullRequest` and `reopenPullRequest` look at the branch first.
   */
  setPullRequestState(owner: string, repo: string, number: number, state: 'open' | 'closed'): void {
    const repository = this.#mustRepository(owner, repo);
    const index = this.#mustPullIndex(owner, repo, number);
    const pull = this.#pulls[index] as StandInPullRequest;
    if (pull.state === state) return;
    const now = timestamp();
    const updated: StandInPullRequest = {
      ...pull,
      state,
      updatedAt: now,
      closedAt: state === 'closed' ? now : null,
    };
    this.#pulls[index] = updated;
    this.#stateChanged(repository, pull, updated, PERSON);
  }

  /** Closes the pull request unmerged, as a person clicking "Close pull request". */
  async closePullRequest(
    owner: string,
    repo: string,
    number: number,
    options: { readonly by?: string } = {},
  ): Promise<StandInPullRequest> {
    return this.#helperUpdate(owner, repo, number, { state: 'closed' }, options.by);
  }

  /** Reopens a closed, unmerged pull request (refused when its branch is gone). */
  async reopenPullRequest(
    owner: string,
    repo: string,
    number: number,
    options: { readonly by?: string } = {},
  ): Promise<StandInPullRequest> {
    return this.#helperUpdate(owner, repo, number, { state: 'open' }, options.by);
  }

  /**
   * Merges the pull request as a person clicking merge: the same checks and effects as
   * `PUT .../pulls/{n}/merge` (the base branch moves in the git repository, webhooks go out).
   * Throws with GitHub's status and message when GitHub would refuse.
   */
  async mergePullRequest(
    owner: string,
    repo: string,
    number: number,
    options: MergeOptions = {},
  ): Promise<MergeResult> {
    const repository = this.#mustRepository(owner, repo);
    const answer = await this.#exclusive(repository, async () =>
      this.#merge(
        repository,
        number,
        {
          merge_method: options.method ?? 'merge',
          ...(options.sha === undefined ? {} : { sha: options.sha }),
          ...(options.commitTitle === undefined ? {} : { commit_title: options.commitTitle }),
          ...(options.commitMessage === undefined ? {} : { commit_message: options.commitMessage }),
        },
        options.by ?? PERSON,
        await this.#refresh(repository),
      ),
    );
    if (answer.status !== 200) {
      throw new Error(
        `Merging ${owner}/${repo}#${number}: ${answer.status} ${messageOf(answer)}`.trim(),
      );
    }
    return answer.body as MergeResult;
  }

  /**
   * Tells the stand-in that branches of `owner/repo` moved (a push): open PRs whose head moved
   * get GitHub's `synchronize`. Requests notice it too; this is for when none follows.
   */
  async branchesUpdated(owner: string, repo: string): Promise<void> {
    const repository = this.#repository(owner, repo);
    if (repository === undefined) return;
    await this.#exclusive(repository, async () =>
      this.#runAutoMerges(repository, await this.#refresh(repository)),
    );
  }

  // ---- webhooks -----------------------------------------------------------------------------

  /**
   * Registers a webhook: `pull_request` events (or `options.events`) of every repository (or of
   * `options.repository`) are POSTed to `url`, signed with `secret`. Resolves once the `ping`
   * GitHub sends on creation has its answer (`ping: false` skips it).
   */
  async deliverWebhooksTo(
    url: string,
    secret: string,
    options: WebhookOptions = {},
  ): Promise<WebhookHook> {
    let repository: StandInRepository | undefined;
    if (options.repository !== undefined) {
      const [owner = '', repo = ''] = options.repository.split('/');
      repository = this.#mustRepository(owner, repo);
    }
    const hook = this.deliveries.addHook(
      url,
      secret,
      repository === undefined
        ? { type: 'organization', id: 1 }
        : { type: 'repository', id: repository.id },
      {
        ...(options.events === undefined ? {} : { events: options.events }),
        ...(repository === undefined
          ? {}
          : { repository: `${repository.owner}/${repository.name}` }),
      },
    );
    if (options.ping ?? true) {
      const urls = this.#payloadUrls();
      const hooksUrl =
        repository === undefined
          ? `${urls.api}/hooks`
          : `${urls.api}/repos/${repository.owner}/${repository.name}/hooks`;
      await this.deliveries.send(
        'ping',
        pingPayload(
          hook,
          hooksUrl,
          this.#user(PERSON, urls),
          repository === undefined ? undefined : this.#repositoryJson(repository, urls),
        ),
        { hookId: hook.id },
      );
    }
    return hook;
  }

  /** Removes one webhook, or all of them. */
  stopDeliveringWebhooks(hookId?: number): void {
    this.deliveries.removeHooks(hookId);
  }

  // ---- faults -------------------------------------------------------------------------------

  injectFault(rule: FaultRule): void {
    this.#faults.inject(rule);
  }

  /** How many fault answers are still queued. */
  pendingFaults(): number {
    return this.#faults.pending();
  }

  clearFaults(): void {
    this.#faults.clear();
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

  /** The comments on a pull request, oldest first. */
  pullRequestComments(owner: string, repo: string, number: number): StandInComment[] {
    return this.#comments.filter(
      (comment) =>
        comment.issueNumber === number &&
        repositoryKey(comment.owner, comment.repo) === repositoryKey(owner, repo),
    );
  }

  /** The latest commit status of each context on `sha`, most recent first. */
  commitStatuses(owner: string, repo: string, sha: string): StandInCommitStatus[] {
    return this.#checks.latestStatuses(repositoryKey(owner, repo), sha);
  }

  checkRuns(owner: string, repo: string, sha: string): StandInCheckRun[] {
    return this.#checks.checkRuns(repositoryKey(owner, repo), sha);
  }

  /** The PR's `mergeable_state` as a fresh read would compute it (without deferral). */
  async mergeableState(owner: string, repo: string, number: number): Promise<MergeableState> {
    const repository = this.#mustRepository(owner, repo);
    const pull = this.#pulls[this.#mustPullIndex(owner, repo, number)] as StandInPullRequest;
    return this.#exclusive(repository, async () => {
      const branches = await this.#refresh(repository);
      const [head, base] = await Promise.all([branches(pull.head), branches(pull.base)]);
      return (await this.#mergeability(pull, repository, head, base)).state;
    });
  }

  get requests(): readonly RecordedRequest[] {
    return [...this.#requests];
  }

  /** Requests matching `method`, `route` (template or concrete path) and `status`. */
  requestCount(filter: RequestFilter = {}): number {
    return this.#matching(filter).length;
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

  /** What the matching requests cost: how many, how many were 304s, how many used the limit. */
  apiUsage(filter: Omit<RequestFilter, 'status'> = {}): ApiUsage {
    const matching = this.#matching(filter);
    return {
      requests: matching.length,
      notModified: matching.filter((request) => request.status === 304).length,
      counted: matching.filter((request) => request.counted).length,
    };
  }

  clearRequests(): void {
    this.#requests.length = 0;
  }

  /**
   * Forgets pull requests, comments, requests, faults, rate-limit usage and webhook deliveries
   * (repositories, tokens and webhook hooks stay).
   */
  reset(): void {
    this.#pulls.length = 0;
    this.#comments.length = 0;
    this.#trackedHeads.clear();
    this.clearRequests();
    this.clearFaults();
    this.#rateLimits.clear();
    this.deliveries.clear();
    this.#checks.clear();
    this.#approvals.clear();
    this.#deferredMergeability.clear();
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  /** Serves one API request; `path` is what follows `/api/v3` (e.g. `/repos/o/r/pulls`). */
  async handle(
    request: IncomingMessage,
    response: ServerResponse,
    path: string,
    query: URLSearchParams,
  ): Promise<void> {
    await this.#serve(request, response, path, query, 'rest');
  }

  /**
   * Serves one GraphQL request (GitHub Enterprise Server's `POST /api/graphql`): recorded and
   * matched by faults as `/graphql`; it does not use the REST rate limit.
   */
  async handleGraphQL(request: IncomingMessage, response: ServerResponse): Promise<void> {
    await this.#serve(request, response, '/graphql', new URLSearchParams(), 'graphql');
  }

  async #serve(
    request: IncomingMessage,
    response: ServerResponse,
    path: string,
    query: URLSearchParams,
    api: 'rest' | 'graphql',
  ): Promise<void> {
    const method = (request.method ?? 'GET').toUpperCase();
    const route: Route | undefined =
      api === 'graphql' ? { template: '/graphql' } : parseRoute(path);
    const ifNoneMatch = request.headers['if-none-match'];
    const raw = await readBody(request);
    const record = (
      status: number,
      caller: Caller | undefined,
      options: { fault?: GitHubFault; body?: unknown; counted?: boolean } = {},
    ) =>
      this.#requests.push({
        method,
        path,
        route: route?.template,
        query: Object.fromEntries(query),
        body: options.body,
        login: caller?.login,
        userAgent: request.headers['user-agent'],
        status,
        fault: options.fault?.kind,
        conditional: ifNoneMatch !== undefined,
        counted: options.counted ?? false,
      });

    if (raw === 'too-large') {
      record(413, undefined);
      this.#send(request, response, { status: 413, body: { message: 'Payload too large' } });
      return;
    }
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        record(400, undefined);
        this.#send(request, response, {
          status: 400,
          body: { message: 'Problems parsing JSON', documentation_url: DOCS },
        });
        return;
      }
    }

    // The App routes authenticate with a JWT, and answer here (app-installations.ts).
    const app = this.apps.answer(method, path, request.headers.authorization);
    const authentication = app ?? this.#authenticate(request);
    if ('status' in authentication) {
      record(authentication.status, undefined, { body });
      this.#send(request, response, authentication);
      return;
    }
    const caller = authentication;

    const fault = this.#faults.take(method, path, route?.template);
    if (fault !== undefined && !('after' in fault && fault.after === true)) {
      record(faultStatus(fault), caller, { fault, body });
      this.#sendFault(request, response, fault, caller, body, route);
      return;
    }

    // GraphQL has its own (points) budget, which the stand-in does not model.
    const unlimited = route?.template === '/rate_limit' || api === 'graphql';
    const limited = unlimited ? undefined : this.#rateLimits.consume(caller.token);
    let counted = limited === undefined && !unlimited;
    let answer: Answer;
    if (limited !== undefined) answer = limited;
    else if (route === undefined) answer = notFound();
    else if (api === 'graphql') {
      answer = method === 'POST' ? await this.#graphql(body, caller) : notFound();
    } else answer = await this.#route(request, method, route, query, body, caller);

    if (method === 'GET' && answer.status === 200 && route?.template !== '/rate_limit') {
      const etag = etagOf(answer.body);
      if (matchesEtag(ifNoneMatch, etag)) {
        // GitHub does not count a 304 against the rate limit.
        if (counted) this.#rateLimits.refund(caller.token);
        counted = false;
        answer = { status: 304, headers: { etag, ...CACHE_HEADERS } };
      } else {
        answer = { ...answer, headers: { ...answer.headers, etag, ...CACHE_HEADERS } };
      }
    }

    if (fault !== undefined) {
      record(faultStatus(fault), caller, { fault, body, counted });
      this.#sendFault(request, response, fault, caller, body, route);
      return;
    }
    record(answer.status, caller, { body, counted });
    this.#send(request, response, answer, caller);
  }

  // ---- HTTP internals -----------------------------------------------------------------------

  #matching(filter: RequestFilter): RecordedRequest[] {
    return this.#requests.filter(
      (request) =>
        (filter.method === undefined || request.method === filter.method.toUpperCase()) &&
        (filter.route === undefined ||
          request.route === filter.route ||
          request.path === filter.route) &&
        (filter.status === undefined || request.status === filter.status),
    );
  }

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

  #sendFault(
    request: IncomingMessage,
    response: ServerResponse,
    fault: GitHubFault,
    caller: Caller,
    body: unknown,
    route: Route | undefined,
  ): void {
    const answer = faultAnswer(fault, { rateLimit: this.#rateLimits.limit, body, route });
    if (answer === 'reset') {
      response.socket?.resetAndDestroy();
      return;
    }
    this.#send(request, response, answer, caller);
  }

  #send(request: IncomingMessage, response: ServerResponse, answer: Answer, caller?: Caller): void {
    const headers: Record<string, string> = {
      'x-github-api-version-selected': API_VERSION,
      'x-github-media-type': 'github.v3; format=json',
      'x-github-enterprise-version': ENTERPRISE_VERSION,
      'x-github-request-id': requestId(),
      ...this.#rateLimits.headers(caller?.token),
      ...answer.headers,
    };
    if (answer.status === 401) headers['www-authenticate'] = 'Bearer realm="GitHub"';
    if (answer.status === 304 || answer.status === 204) {
      response.writeHead(answer.status, headers);
      response.end();
      return;
    }
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    headers['content-type'] = 'application/json; charset=utf-8';
    headers['content-length'] = String(Buffer.byteLength(text));
    response.writeHead(answer.status, headers);
    response.end(request.method === 'HEAD' ? undefined : text);
  }

  #urls(request: IncomingMessage): Urls {
    const web = this.#webBaseUrl ?? `http://${request.headers.host ?? '127.0.0.1'}`;
    this.#seenWebBaseUrl = web;
    return urlsOf(web);
  }

  /** The URLs of what answers no request (webhook payloads, helpers). */
  #payloadUrls(): Urls {
    return urlsOf(this.#webBaseUrl ?? this.#seenWebBaseUrl ?? 'http://127.0.0.1');
  }

  // ---- state --------------------------------------------------------------------------------

  /** Runs `task` alone among the state changes of one repository. */
  #exclusive<T>(repository: StandInRepository, task: () => Promise<T>): Promise<T> {
    const key = repositoryKey(repository.owner, repository.name);
    const run = (this.#locks.get(key) ?? Promise.resolve()).then(task);
    const done = run.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(key, done);
    void done.then(() => {
      if (this.#locks.get(key) === done) this.#locks.delete(key);
    });
    return run;
  }

  /**
   * Reads the repository's branches once, notes the pushes to open PRs' branches since last
   * time (`synchronize`), and answers lookups from that reading.
   */
  async #refresh(repository: StandInRepository): Promise<BranchLookup> {
    if (this.#git === undefined) return noBranches;
    const branches = await this.#git.branches(repository.owner, repository.name);
    for (let index = 0; index < this.#pulls.length; index += 1) {
      const pull = this.#pulls[index] as StandInPullRequest;
      if (pull.state !== 'open' || !this.#inRepository(pull, repository)) continue;
      const live = branches.get(pull.head);
      if (live === undefined) continue;
      const tracked = this.#trackedHeads.get(pull.id);
      this.#trackedHeads.set(pull.id, live);
      if (tracked === undefined) {
        // A seeded PR: its first look at the branch is where it stands, not a push.
        if (pull.headSha !== live) this.#pulls[index] = { ...pull, headSha: live };
      } else if (tracked !== live) {
        const updated = { ...pull, headSha: live, updatedAt: timestamp() };
        this.#pulls[index] = updated;
        this.#emit(repository, updated, 'synchronize', this.#login, {
          before: tracked,
          after: live,
        });
      }
    }
    return async (branch) => branches.get(branch);
  }

  #repository(owner: string, repo: string): StandInRepository | undefined {
    return this.#repositories.get(repositoryKey(owner, repo));
  }

  #mustRepository(owner: string, repo: string): StandInRepository {
    const repository = this.#repository(owner, repo);
    if (repository === undefined) throw new Error(`No repository ${owner}/${repo} in the stand-in`);
    return repository;
  }

  #inRepository(pull: StandInPullRequest, repository: StandInRepository): boolean {
    return (
      repositoryKey(pull.owner, pull.repo) === repositoryKey(repository.owner, repository.name)
    );
  }

  #pullIndex(owner: string, repo: string, number: number): number {
    return this.#pulls.findIndex(
      (pull) =>
        pull.number === number &&
        repositoryKey(pull.owner, pull.repo) === repositoryKey(owner, repo),
    );
  }

  #mustPullIndex(owner: string, repo: string, number: number): number {
    const index = this.#pullIndex(owner, repo, number);
    if (index < 0) throw new Error(`No pull request ${owner}/${repo}#${number}`);
    return index;
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
    const now = timestamp();
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
      merged: false,
      mergedAt: null,
      mergeCommitSha: null,
      mergedBy: null,
      autoMerge: null,
    };
    this.#pulls.push(pull);
    return pull;
  }

  /** Keeps the head tracking right across a close or a reopen, and tells the webhooks. */
  #stateChanged(
    repository: StandInRepository,
    before: StandInPullRequest,
    after: StandInPullRequest,
    sender: string,
  ): void {
    if (before.state === after.state) return;
    if (after.state === 'closed') {
      this.#trackedHeads.delete(after.id);
      this.#emit(repository, after, 'closed', sender);
    } else {
      if (this.#git !== undefined) this.#trackedHeads.set(after.id, after.headSha);
      this.#emit(repository, after, 'reopened', sender);
    }
  }

  /** Queues a `pull_request` event of `pull` as it is now (no work without hooks). */
  #emit(
    repository: StandInRepository,
    pull: StandInPullRequest,
    action: PullRequestWebhookAction,
    sender: string,
    extra: { changes?: PullRequestChanges; before?: string; after?: string } = {},
  ): void {
    if (this.deliveries.hooks.length === 0) return;
    const urls = this.#payloadUrls();
    const payload = (async () => {
      const branches =
        this.#git === undefined
          ? noBranches
          : await this.#git.branches(repository.owner, repository.name).then(
              (map): BranchLookup =>
                async (branch) =>
                  map.get(branch),
            );
      return pullRequestPayload(
        action,
        {
          pull: await this.#pullJson(pull, repository, urls, branches),
          repository: this.#repositoryJson(repository, urls),
          sender: this.#user(sender, urls),
          deleteBranchOnMerge: repository.deleteBranchOnMerge,
          allowAutoMerge: repository.allowAutoMerge,
        },
        extra,
      );
    })();
    this.deliveries
      .send('pull_request', payload, { repository: `${repository.owner}/${repository.name}` })
      .catch(() => undefined);
  }

  // ---- routes -------------------------------------------------------------------------------

  async #route(
    request: IncomingMessage,
    method: string,
    route: Route,
    query: URLSearchParams,
    body: unknown,
    caller: Caller,
  ): Promise<Answer> {
    if (route.template === '/rate_limit') {
      return method === 'GET' ? this.#rateLimits.answer(caller.token) : notFound();
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
    const number = route.number ?? 0;
    if (!isWrite) {
      const branches = await this.#exclusive(repository, () => this.#refresh(repository));
      switch (`${method} ${route.template}`) {
        case 'GET /repos/{owner}/{repo}':
          return {
            status: 200,
            body: fullRepositoryJson(repository, this.#owner(repository, urls), urls),
          };
        case 'GET /repos/{owner}/{repo}/pulls':
          return this.#listPulls(repository, query, urls, branches);
        case 'GET /repos/{owner}/{repo}/pulls/{pull_number}': {
          const pull = this.pullRequest(repository.owner, repository.name, number);
          return pull === undefined
            ? notFound('/pulls/pulls#get-a-pull-request')
            : {
                status: 200,
                body: await this.#pullJson(pull, repository, urls, branches, {
                  mergeable: true,
                }),
              };
        }
        case 'GET /repos/{owner}/{repo}/pulls/{pull_number}/merge':
          return this.pullRequest(repository.owner, repository.name, number)?.merged === true
            ? { status: 204 }
            : notFound('/pulls/pulls#check-if-a-pull-request-has-been-merged');
        case 'GET /repos/{owner}/{repo}/issues/{issue_number}/comments':
          return this.#listComments(repository, number, query, urls);
        case 'GET /repos/{owner}/{repo}/commits/{ref}/status':
          return this.#combinedStatus(repository, route.ref ?? '', query, urls, branches);
        case 'GET /repos/{owner}/{repo}/commits/{ref}/check-runs':
          return this.#listCheckRuns(repository, route.ref ?? '', query, urls, branches);
        default:
          return notFound();
      }
    }
    return this.#exclusive(repository, async () => {
      const branches = await this.#refresh(repository);
      switch (`${method} ${route.template}`) {
        case 'POST /repos/{owner}/{repo}/pulls':
          return this.#createPullRequest(repository, body, caller, urls, branches);
        case 'PATCH /repos/{owner}/{repo}/pulls/{pull_number}':
          return this.#updatePullRequest(repository, number, body, caller.login, urls, branches);
        case 'PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge':
          return this.#merge(repository, number, body, caller.login, branches);
        case 'POST /repos/{owner}/{repo}/issues/{issue_number}/comments':
          return this.#createComment(repository, number, body, caller.login, urls);
        case 'POST /repos/{owner}/{repo}/statuses/{sha}': {
          const answer = this.#createStatus(repository, route.ref ?? '', body, caller.login, urls);
          if (answer.status === 201) await this.#runAutoMerges(repository, branches);
          return answer;
        }
        default:
          return notFound();
      }
    });
  }

  async #listPulls(
    repository: StandInRepository,
    query: URLSearchParams,
    urls: Urls,
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
    const { slice, headers } = paginate(
      matching,
      query,
      `${urls.api}/repos/${repository.owner}/${repository.name}/pulls`,
    );
    const body = await Promise.all(
      slice.map(async (pull) =>
        pullRequestSimpleJson(await this.#pullJson(pull, repository, urls, branches)),
      ),
    );
    return { status: 200, body, headers };
  }

  async #createPullRequest(
    repository: StandInRepository,
    body: unknown,
    caller: Caller,
    urls: Urls,
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'pulls/pulls#create-a-pull-request';
    const fields = fieldsOf(body);
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
    if (this.#git !== undefined) this.#trackedHeads.set(pull.id, headSha);
    this.#emit(repository, pull, 'opened', caller.login);
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
    sender: string,
    urls: Urls,
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'pulls/pulls#update-a-pull-request';
    const index = this.#pullIndex(repository.owner, repository.name, number);
    if (index < 0) return notFound(`/${documentation}`);
    const pull = this.#pulls[index] as StandInPullRequest;
    const fields = fieldsOf(body);
    const { title, state, base } = fields;
    const invalid = (field: string) =>
      validationFailed(documentation, { resource: 'PullRequest', field, code: 'invalid' });
    if (title !== undefined && (typeof title !== 'string' || title === '')) return invalid('title');
    if (state !== undefined && state !== 'open' && state !== 'closed') return invalid('state');
    if (base !== undefined && typeof base !== 'string') return invalid('base');
    if (typeof base === 'string' && this.#git !== undefined) {
      if ((await branches(base)) === undefined) return invalid('base');
    }
    const nextState = state ?? pull.state;
    const nextBase = base ?? pull.base;
    const reopening = pull.state === 'closed' && nextState === 'open';
    let headSha = pull.headSha;
    if (reopening) {
      const cannot = (why: string) =>
        validationFailed(documentation, {
          resource: 'PullRequest',
          field: 'state',
          code: 'custom',
          message: `state cannot be changed. ${why}`,
        });
      if (pull.merged) return cannot('The pull request has been merged.');
      if (this.#git !== undefined) {
        const live = await branches(pull.head);
        if (live === undefined) return cannot(`The ${pull.head} branch has been deleted.`);
        headSha = live;
      }
    }
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
    const nextBody =
      'body' in fields ? (typeof fields.body === 'string' ? fields.body : null) : pull.body;
    const now = timestamp();
    const updated: StandInPullRequest = {
      ...pull,
      ...(typeof title === 'string' ? { title } : {}),
      body: nextBody,
      state: nextState,
      base: nextBase,
      headSha,
      updatedAt: now,
      closedAt: nextState === 'closed' ? (pull.closedAt ?? now) : null,
    };
    this.#pulls[index] = updated;

    const changes: PullRequestChanges = {
      ...(updated.title === pull.title ? {} : { title: { from: pull.title } }),
      ...(updated.body === pull.body ? {} : { body: { from: pull.body ?? '' } }),
      ...(updated.base === pull.base
        ? {}
        : {
            base: {
              ref: { from: pull.base },
              sha: { from: (await branches(pull.base)) ?? ZERO_SHA },
            },
          }),
    };
    if (Object.keys(changes).length > 0)
      this.#emit(repository, updated, 'edited', sender, { changes });
    this.#stateChanged(repository, pull, updated, sender);
    return { status: 200, body: await this.#pullJson(updated, repository, urls, branches) };
  }

  async #helperUpdate(
    owner: string,
    repo: string,
    number: number,
    fields: { readonly state: 'open' | 'closed' },
    by: string | undefined,
  ): Promise<StandInPullRequest> {
    const repository = this.#mustRepository(owner, repo);
    this.#mustPullIndex(owner, repo, number);
    const answer = await this.#exclusive(repository, async () =>
      this.#updatePullRequest(
        repository,
        number,
        fields,
        by ?? PERSON,
        this.#payloadUrls(),
        await this.#refresh(repository),
      ),
    );
    if (answer.status !== 200) {
      throw new Error(
        `Updating ${owner}/${repo}#${number}: ${answer.status} ${messageOf(answer)}`.trim(),
      );
    }
    return this.pullRequest(owner, repo, number) as StandInPullRequest;
  }

  /** GitHub's "Merge a pull request", on the real repository when the git side can merge. */
  async #merge(
    repository: StandInRepository,
    number: number,
    body: unknown,
    login: string,
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'pulls/pulls#merge-a-pull-request';
    const index = this.#pullIndex(repository.owner, repository.name, number);
    if (index < 0) return notFound(`/${documentation}`);
    const pull = this.#pulls[index] as StandInPullRequest;
    const fields = fieldsOf(body);
    const method = fields.merge_method ?? 'merge';
    if (!MERGE_METHODS.includes(method as MergeMethod)) {
      return invalidRequest(
        documentation,
        `For 'properties/merge_method', ${JSON.stringify(method)} is not a member of ["merge", "squash", "rebase"].`,
      );
    }
    for (const name of ['sha', 'commit_title', 'commit_message'] as const) {
      const value = fields[name];
      if (value !== undefined && typeof value !== 'string') {
        return invalidRequest(
          documentation,
          `For 'properties/${name}', ${JSON.stringify(value)} is not a string.`,
        );
      }
    }
    const {
      sha,
      commit_title: commitTitle,
      commit_message: commitMessage,
    } = fields as {
      sha?: string;
      commit_title?: string;
      commit_message?: string;
    };
    const notAllowed = (message: string) => failure(405, message, documentation);
    if (pull.state !== 'open') return notAllowed('Pull Request is not mergeable');
    if (pull.draft) return notAllowed('Pull Request is still a draft');
    if (method === 'rebase') return notAllowed('Rebase merges are not allowed on this repository.');
    if (method === 'merge' && !repository.allowMergeCommit) {
      return notAllowed('Merge commits are not allowed on this repository.');
    }
    if (method === 'squash' && !repository.allowSquashMerge) {
      return notAllowed('Squash merges are not allowed on this repository.');
    }
    const headSha = this.#git === undefined ? pull.headSha : await branches(pull.head);
    const baseSha = this.#git === undefined ? ZERO_SHA : await branches(pull.base);
    if (headSha === undefined || baseSha === undefined) {
      return notAllowed('Pull Request is not mergeable');
    }
    if (sha !== undefined && sha !== headSha) {
      return failure(
        409,
        'Head branch was modified. Review and try the merge again.',
        documentation,
      );
    }
    const blocker = this.#mergeBlocker(repository, pull, headSha);
    if (blocker !== undefined) return notAllowed(blocker);
    const title =
      commitTitle ??
      (method === 'merge'
        ? `Merge pull request #${pull.number} from ${repository.owner}/${pull.head}`
        : `${pull.title} (#${pull.number})`);
    let mergeSha = fakeSha();
    if (this.#git?.merge !== undefined) {
      const host = new URL(this.#payloadUrls().web).hostname;
      const outcome = await this.#git.merge(repository.owner, repository.name, {
        base: pull.base,
        baseSha,
        headSha,
        method: method as 'merge' | 'squash',
        title,
        message: commitMessage ?? (method === 'merge' ? pull.title : undefined),
        author: {
          name: login,
          email: `${this.#users.id(login)}+${login}@users.noreply.${host}`,
        },
        committer: { name: 'GitHub Enterprise', email: `noreply@${host}` },
        ...(repository.deleteBranchOnMerge ? { deleteBranch: pull.head } : {}),
      });
      if (outcome.kind === 'conflict') return notAllowed('Pull Request is not mergeable');
      if (outcome.kind === 'base-moved') {
        return failure(
          409,
          'Base branch was modified. Review and try the merge again.',
          documentation,
        );
      }
      mergeSha = outcome.sha;
    }
    const now = timestamp();
    const merged: StandInPullRequest = {
      ...pull,
      state: 'closed',
      headSha,
      updatedAt: now,
      closedAt: now,
      merged: true,
      mergedAt: now,
      mergeCommitSha: mergeSha,
      mergedBy: login,
    };
    this.#pulls[index] = merged;
    this.#stateChanged(repository, pull, merged, login);
    const answer: MergeResultJson = {
      sha: mergeSha,
      merged: true,
      message: 'Pull Request successfully merged',
    };
    return { status: 200, body: answer };
  }

  // ---- branch protection, checks and auto-merge ---------------------------------------------

  /** A SHA as it is, a branch as its head. */
  async #resolveRef(ref: string, branches: BranchLookup): Promise<string | undefined> {
    if (/^[0-9a-f]{40}$/i.test(ref)) return ref.toLowerCase();
    return this.#git === undefined ? undefined : branches(ref);
  }

  /**
   * Why GitHub refuses to merge the PR at `headSha` now (its 405 message), or undefined: a
   * required check not passed, or too few approving reviews.
   */
  #mergeBlocker(
    repository: StandInRepository,
    pull: StandInPullRequest,
    headSha: string,
  ): string | undefined {
    const required = this.#checks.required(
      repositoryKey(repository.owner, repository.name),
      headSha,
      repository.requiredChecks,
    );
    const describe = (checks: typeof required, verb: string) =>
      checks.length === 1
        ? `Required status check "${checks[0]?.name}" is ${verb}.`
        : `${checks.length} of ${required.length} required status checks are ${verb}.`;
    const failed = required.filter((check) => check.outcome === 'failed');
    if (failed.length > 0) return describe(failed, 'failing');
    const pending = required.filter((check) => check.outcome === 'pending');
    if (pending.length > 0) return describe(pending, 'expected');
    const needed = repository.requiredApprovingReviews;
    if ((this.#approvals.get(pull.id)?.size ?? 0) < needed) {
      return needed === 1
        ? 'At least 1 approving review is required by reviewers with write access.'
        : `At least ${needed} approving reviews are required by reviewers with write access.`;
    }
    return undefined;
  }

  /** GitHub's `mergeable` and `mergeable_state` of an open PR (unknown without git). */
  async #mergeability(
    pull: StandInPullRequest,
    repository: StandInRepository,
    headSha: string | undefined,
    baseSha: string | undefined,
  ): Promise<{ mergeable: boolean | null; state: MergeableState }> {
    if (
      pull.state !== 'open' ||
      headSha === undefined ||
      baseSha === undefined ||
      this.#git?.mergeable === undefined
    ) {
      return { mergeable: null, state: 'unknown' };
    }
    const mergeable = await this.#git.mergeable(
      repository.owner,
      repository.name,
      baseSha,
      headSha,
    );
    if (!mergeable) return { mergeable, state: 'dirty' };
    if (pull.draft) return { mergeable, state: 'draft' };
    if (this.#mergeBlocker(repository, pull, headSha) !== undefined) {
      return { mergeable, state: 'blocked' };
    }
    const outcomes = this.#checks.outcomes(
      repositoryKey(repository.owner, repository.name),
      headSha,
    );
    const settled = [...outcomes.values()].every((outcome) => outcome === 'passed');
    return { mergeable, state: settled ? 'clean' : 'unstable' };
  }

  /** Merges each open PR of the repository whose auto-merge is on and that can merge now. */
  async #runAutoMerges(repository: StandInRepository, branches: BranchLookup): Promise<void> {
    let lookup = branches;
    for (const { number } of this.pullRequests(repository.owner, repository.name)) {
      const pull = this.pullRequest(repository.owner, repository.name, number);
      if (pull === undefined || pull.state !== 'open' || pull.autoMerge === null) continue;
      const [headSha, baseSha] = await Promise.all([lookup(pull.head), lookup(pull.base)]);
      const { state } = await this.#mergeability(pull, repository, headSha, baseSha);
      if (!MERGES_NOW.includes(state)) continue;
      const answer = await this.#merge(
        repository,
        number,
        {
          merge_method: pull.autoMerge.mergeMethod,
          ...(headSha === undefined ? {} : { sha: headSha }),
        },
        pull.autoMerge.enabledBy,
        lookup,
      );
      // The base moved: the next PR is looked at on the new one.
      if (answer.status === 200) lookup = await this.#refresh(repository);
    }
  }

  /** GraphQL: `enablePullRequestAutoMerge`, the only operation served. */
  async #graphql(body: unknown, caller: Caller): Promise<Answer> {
    const parsed = parseGraphQLRequest(body);
    if (parsed.kind === 'invalid') return { status: 200, body: { errors: parsed.errors } };
    const mutation = parsed.request;
    const fail = (type: Parameters<typeof mutationError>[1], message: string): Answer => ({
      status: 200,
      body: mutationError(mutation, type, message),
    });
    if (caller.access !== 'write') {
      return fail('FORBIDDEN', 'Resource not accessible by personal access token');
    }
    const found = this.#pulls.find((pull) => nodeId('PR', pull.id) === mutation.pullRequestId);
    const repository = found && this.#repository(found.owner, found.repo);
    if (found === undefined || repository === undefined) {
      return fail(
        'NOT_FOUND',
        `Could not resolve to a node with the global id of '${mutation.pullRequestId}'`,
      );
    }
    return this.#exclusive(repository, async () => {
      const branches = await this.#refresh(repository);
      const index = this.#pullIndex(repository.owner, repository.name, found.number);
      const pull = this.#pulls[index] as StandInPullRequest;
      if (!repository.allowAutoMerge) {
        return fail('UNPROCESSABLE', 'Pull request Auto merge is not allowed for this repository');
      }
      if (pull.state !== 'open')
        return fail('UNPROCESSABLE', 'Pull request Pull request is closed');
      if (pull.draft) return fail('UNPROCESSABLE', "Can't enable auto-merge for this pull request");
      const method = mutation.mergeMethod;
      const allowed =
        (method === 'merge' && repository.allowMergeCommit) ||
        (method === 'squash' && repository.allowSquashMerge);
      if (!allowed) {
        return fail(
          'UNPROCESSABLE',
          `Pull request ${method === 'merge' ? 'Merge commits are' : `${method[0]?.toUpperCase()}${method.slice(1)} merges are`} not allowed on this repository`,
        );
      }
      if (pull.autoMerge === null) {
        const [headSha, baseSha] = await Promise.all([branches(pull.head), branches(pull.base)]);
        if (mutation.expectedHeadOid !== undefined && mutation.expectedHeadOid !== headSha) {
          return fail(
            'UNPROCESSABLE',
            `Pull request Head sha didn't match expected head ${mutation.expectedHeadOid}`,
          );
        }
        const { state } = await this.#mergeability(pull, repository, headSha, baseSha);
        // Nothing to wait for: GitHub says merge it now instead.
        if (MERGES_NOW.includes(state)) {
          return fail('UNPROCESSABLE', `Pull request Pull request is in ${state} status`);
        }
        const now = timestamp();
        const enabled: StandInPullRequest = {
          ...pull,
          autoMerge: { enabledBy: caller.login, mergeMethod: method, enabledAt: now },
          updatedAt: now,
        };
        this.#pulls[index] = enabled;
        this.#emit(repository, enabled, 'auto_merge_enabled', caller.login);
      }
      return { status: 200, body: { data: this.#autoMergeData(mutation, index) } };
    });
  }

  /** The mutation's payload: the pull request and its auto-merge request. */
  #autoMergeData(mutation: EnableAutoMergeRequest, index: number) {
    const pull = this.#pulls[index] as StandInPullRequest;
    const urls = this.#payloadUrls();
    const autoMerge = pull.autoMerge;
    return {
      [mutation.key]: {
        clientMutationId: null,
        pullRequest: {
          id: nodeId('PR', pull.id),
          number: pull.number,
          url: `${urls.web}/${pull.owner}/${pull.repo}/pull/${pull.number}`,
          autoMergeRequest:
            autoMerge === null
              ? null
              : {
                  enabledAt: autoMerge.enabledAt,
                  mergeMethod: autoMerge.mergeMethod.toUpperCase(),
                  enabledBy: { login: autoMerge.enabledBy },
                },
        },
      },
    };
  }

  #createStatus(
    repository: StandInRepository,
    sha: string,
    body: unknown,
    login: string,
    urls: Urls,
  ): Answer {
    const documentation = 'commits/statuses#create-a-commit-status';
    const fields = fieldsOf(body);
    if (!/^[0-9a-f]{40}$/i.test(sha)) {
      return failure(422, `No commit found for SHA: ${sha}`, documentation);
    }
    if (!isCommitStatusState(fields.state)) {
      return validationFailed(documentation, {
        resource: 'Status',
        field: 'state',
        code: 'custom',
        message: 'state is not included in the list',
      });
    }
    const text = (name: string) => (typeof fields[name] === 'string' ? fields[name] : null);
    const status = this.#checks.addStatus(
      repositoryKey(repository.owner, repository.name),
      sha.toLowerCase(),
      {
        context: text('context') ?? 'default',
        state: fields.state,
        description: text('description'),
        targetUrl: text('target_url'),
      },
      login,
    );
    const json: CommitStatusJson = commitStatusJson(
      status,
      this.#repositoryJson(repository, urls),
      this.#user(login, urls),
      urls,
    );
    return { status: 201, headers: { location: json.url }, body: json };
  }

  async #combinedStatus(
    repository: StandInRepository,
    ref: string,
    query: URLSearchParams,
    urls: Urls,
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'commits/statuses#get-the-combined-status-for-a-specific-reference';
    const sha = await this.#resolveRef(ref, branches);
    if (sha === undefined) return failure(422, `No commit found for SHA: ${ref}`, documentation);
    const statuses = this.#checks.latestStatuses(
      repositoryKey(repository.owner, repository.name),
      sha,
    );
    const { slice, headers } = paginate(
      statuses,
      query,
      `${urls.api}/repos/${repository.owner}/${repository.name}/commits/${ref}/status`,
    );
    const json: CombinedStatusJson = combinedStatusJson(
      sha,
      { all: statuses, page: slice },
      {
        repository: this.#repositoryJson(repository, urls),
        creatorAvatar: (login) => this.#user(login, urls).avatar_url,
        required: repository.requiredChecks,
      },
      urls,
    );
    return { status: 200, body: json, headers };
  }

  async #listCheckRuns(
    repository: StandInRepository,
    ref: string,
    query: URLSearchParams,
    urls: Urls,
    branches: BranchLookup,
  ): Promise<Answer> {
    const documentation = 'checks/runs#list-check-runs-for-a-git-reference';
    const sha = await this.#resolveRef(ref, branches);
    if (sha === undefined) return failure(422, `No commit found for SHA: ${ref}`, documentation);
    const name = query.get('check_name');
    const status = query.get('status');
    const runs = this.#checks
      .checkRuns(repositoryKey(repository.owner, repository.name), sha)
      .filter(
        (run) => (name === null || run.name === name) && (status === null || run.status === status),
      )
      .sort((a, b) => b.id - a.id);
    const { slice, headers } = paginate(
      runs,
      query,
      `${urls.api}/repos/${repository.owner}/${repository.name}/commits/${ref}/check-runs`,
    );
    const pullRequests = await Promise.all(
      this.pullRequests(repository.owner, repository.name)
        .filter((pull) => pull.state === 'open' && pull.headSha === sha)
        .map(async (pull) => ({
          id: pull.id,
          number: pull.number,
          head: pull.head,
          base: pull.base,
          baseSha: (await branches(pull.base)) ?? ZERO_SHA,
        })),
    );
    const json: CheckRunsJson = checkRunsJson(
      slice,
      {
        repository: this.#repositoryJson(repository, urls),
        owner: this.#owner(repository, urls),
        pullRequests,
      },
      urls,
    );
    return { status: 200, body: { ...json, total_count: runs.length }, headers };
  }

  #createComment(
    repository: StandInRepository,
    number: number,
    body: unknown,
    login: string,
    urls: Urls,
  ): Answer {
    const documentation = 'issues/comments#create-an-issue-comment';
    const index = this.#pullIndex(repository.owner, repository.name, number);
    if (index < 0) return notFound(`/${documentation}`);
    const text = fieldsOf(body).body;
    if (typeof text !== 'string' || text === '') {
      return validationFailed(documentation, {
        resource: 'IssueComment',
        code: 'missing_field',
        field: 'body',
      });
    }
    const now = timestamp();
    const comment: StandInComment = {
      id: this.#nextId++,
      owner: repository.owner,
      repo: repository.name,
      issueNumber: number,
      body: text,
      user: login,
      createdAt: now,
      updatedAt: now,
    };
    this.#comments.push(comment);
    const pull = this.#pulls[index] as StandInPullRequest;
    this.#pulls[index] = { ...pull, updatedAt: now };
    const json = this.#commentJson(comment, repository, urls);
    return { status: 201, headers: { location: json.url }, body: json };
  }

  #listComments(
    repository: StandInRepository,
    number: number,
    query: URLSearchParams,
    urls: Urls,
  ): Answer {
    if (this.#pullIndex(repository.owner, repository.name, number) < 0) {
      return notFound('/issues/comments#list-issue-comments');
    }
    const since = query.get('since');
    const comments = this.pullRequestComments(repository.owner, repository.name, number).filter(
      (comment) => since === null || comment.updatedAt >= since,
    );
    const { slice, headers } = paginate(
      comments,
      query,
      `${urls.api}/repos/${repository.owner}/${repository.name}/issues/${number}/comments`,
    );
    return {
      status: 200,
      body: slice.map((comment) => this.#commentJson(comment, repository, urls)),
      headers,
    };
  }

  // ---- shapes -------------------------------------------------------------------------------

  #user(login: string, urls: Urls): SimpleUserJson {
    return userJson(login, this.#users.id(login), urls);
  }

  #owner(repository: StandInRepository, urls: Urls): SimpleUserJson {
    return userJson(repository.owner, this.#users.id(repository.owner), urls, 'Organization');
  }

  #repositoryJson(repository: StandInRepository, urls: Urls): RepositoryJson {
    return repositoryJson(repository, this.#owner(repository, urls), urls);
  }

  #commentJson(comment: StandInComment, repository: StandInRepository, urls: Urls) {
    const json: IssueCommentJson = issueCommentJson(
      comment,
      repository,
      this.#user(comment.user, urls),
      urls,
    );
    return json;
  }

  async #pullJson(
    pull: StandInPullRequest,
    repository: StandInRepository,
    urls: Urls,
    branches: BranchLookup,
    options: { readonly mergeable?: boolean } = {},
  ): Promise<PullRequestJson> {
    // A closed PR keeps the head it had; an open one shows its branch as it is.
    const [liveHead, baseSha] = await Promise.all([
      pull.state === 'open' ? branches(pull.head) : Promise.resolve(undefined),
      branches(pull.base),
    ]);
    const headSha = liveHead ?? pull.headSha;
    let mergeability: { mergeable: boolean | null; state: MergeableState } = {
      mergeable: null,
      state: 'unknown',
    };
    const deferred = this.#deferredMergeability.get(pull.id) ?? 0;
    if (options.mergeable === true && deferred > 0) {
      if (deferred > 1) this.#deferredMergeability.set(pull.id, deferred - 1);
      else this.#deferredMergeability.delete(pull.id);
    } else if (options.mergeable === true) {
      mergeability = await this.#mergeability(pull, repository, liveHead, baseSha);
    }
    return pullRequestJson(
      pull,
      {
        repository: this.#repositoryJson(repository, urls),
        owner: this.#owner(repository, urls),
        user: this.#user(pull.user, urls),
        mergedBy: pull.mergedBy === null ? null : this.#user(pull.mergedBy, urls),
        headSha,
        baseSha: baseSha ?? ZERO_SHA,
        comments: this.pullRequestComments(repository.owner, repository.name, pull.number).length,
        mergeable: mergeability.mergeable,
        mergeableState: mergeability.state,
        autoMergeEnabledBy:
          pull.autoMerge === null ? null : this.#user(pull.autoMerge.enabledBy, urls),
      },
      urls,
    );
  }
}
