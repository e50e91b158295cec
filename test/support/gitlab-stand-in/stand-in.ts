import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mustGit, resolveRef } from '../bare-repositories.ts';
import { mergeableInBareRepository, mergeInBareRepository } from '../github-stand-in/bare-merge.ts';
import { type Answer, FaultQueue, gitlabError, plainFaultAnswer } from './faults.ts';
import type {
  FaultRule,
  MergeRequestState,
  PipelineStatus,
  ProjectOptions,
  RecordedRequest,
  StandInMergeRequest,
  StandInNote,
  StandInPipeline,
  StandInProject,
  TokenAccess,
} from './types.ts';
import {
  type MergeRequestHookAction,
  MergeRequestHooks,
  type WebhookDelivery,
} from './webhooks.ts';

/*
 * The GitLab REST API (v4) routes the GitLabMergeRequests adapter uses, over projects whose git
 * side is a bare repository: projects by URL-encoded path (or id), merge requests (list, create,
 * show, update, merge, notes) in GitLab's response shapes, `PRIVATE-TOKEN` and `Authorization:
 * Bearer` tokens (read-only ones get 403 insufficient_scope on writes), injectable faults, and
 * pipelines (set by tests, or `running` on each push in a project with `ci`) that drive
 * `head_pipeline`, `detailed_merge_status` and "merge when pipeline succeeds" as on GitLab: the
 * head pipeline is the source branch's latest pipeline, of whichever commit; without "Pipelines
 * must succeed" a merge request is `mergeable` while its pipeline runs; "merge when pipeline
 * succeeds" is only set while the head's pipeline is active, else a mergeable merge request
 * merges at once; a push to the source branch aborts it.
 * Merges move the target branch of the bare repository (bare-merge.ts); merged and closed merge
 * requests are sent as Merge Request Hooks to the hooks registered.
 */

export interface GitLabStandInOptions {
  /** `http://127.0.0.1:{port}` (with the relative URL root, if any): web URLs start with it. */
  readonly webUrl: string;
  readonly tokens: Iterable<string>;
  readonly readOnlyTokens?: Iterable<string>;
  /** The username the tokens act as (default `promoter-bot`). */
  readonly username?: string;
  /** The bare repository of a project path. */
  readonly repositoryPath: (project: string) => string;
}

/** `detailed_merge_status` values the stand-in computes; tests may set any other GitLab value. */
const WAITING = new Set(['checking', 'unchecked', 'preparing', 'approvals_syncing']);

/** Pipeline statuses GitLab counts as active: "merge when pipeline succeeds" may be set on them. */
const ACTIVE_PIPELINES = new Set<PipelineStatus>([
  'waiting_for_resource',
  'preparing',
  'pending',
  'running',
]);

const MERGE_REQUEST_ROUTES = [
  'GET /projects/:id',
  'GET /projects/:id/merge_requests',
  'POST /projects/:id/merge_requests',
  'GET /projects/:id/merge_requests/:iid',
  'PUT /projects/:id/merge_requests/:iid',
  'PUT /projects/:id/merge_requests/:iid/merge',
  'GET /projects/:id/merge_requests/:iid/notes',
  'POST /projects/:id/merge_requests/:iid/notes',
] as const;

interface Route {
  /** `/projects/:id/merge_requests/:iid` */
  readonly template: string;
  /** The project id segment, decoded: a path or a number. */
  readonly projectId?: string;
  readonly iid?: number;
}

const parseRoute = (path: string): Route | undefined => {
  const parts = path.split('/').slice(1);
  if (parts.length === 1 && parts[0] === 'user') return { template: '/user' };
  if (parts[0] !== 'projects' || parts[1] === undefined || parts[1] === '') return undefined;
  let projectId: string;
  try {
    projectId = decodeURIComponent(parts[1]);
  } catch {
    return undefined;
  }
  const [, , resource, iid, sub, ...rest] = parts;
  if (rest.length > 0) return undefined;
  if (resource === undefined) return { template: '/projects/:id', projectId };
  if (resource !== 'merge_requests') return undefined;
  if (iid === undefined) return { template: '/projects/:id/merge_requests', projectId };
  if (!/^[1-9][0-9]*$/.test(iid)) return undefined;
  const template = '/projects/:id/merge_requests/:iid';
  if (sub === undefined) return { template, projectId, iid: Number(iid) };
  if (sub === 'merge' || sub === 'notes') {
    return { template: `${template}/${sub}`, projectId, iid: Number(iid) };
  }
  return undefined;
};

const MAX_BODY_BYTES = 1 << 20;

const readBody = async (request: IncomingMessage): Promise<unknown> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return {};
  const type = request.headers['content-type'] ?? '';
  if (type.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

const fieldsOf = (body: unknown): Record<string, unknown> =>
  typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};

/** Grape's booleans: `true`, `"true"`, `1`, `"1"`. */
const truthy = (value: unknown): boolean =>
  value === true || value === 'true' || value === 1 || value === '1';

const now = (): string => new Date().toISOString();

const DRAFT = /^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|draft\s)/i;

interface Caller {
  readonly username: string;
  readonly access: TokenAccess;
  readonly auth: RecordedRequest['auth'];
}

export class GitLabStandIn {
  readonly #options: GitLabStandInOptions;
  readonly #username: string;
  readonly #tokens = new Map<string, TokenAccess>();
  readonly #projects = new Map<string, StandInProject>();
  readonly #mergeRequests: StandInMergeRequest[] = [];
  /** By `project\0sha`. */
  readonly #pipelines = new Map<string, StandInPipeline>();
  /** The sha of each branch's latest pipeline, by `project\0branch`. */
  readonly #branchPipelines = new Map<string, string>();
  /** Commits the CI of a `ci` project has already seen, by `project\0sha`. */
  readonly #ciSeen = new Set<string>();
  readonly #statusOverrides = new Map<string, { status: string; reads: number | undefined }>();
  readonly #faults = new FaultQueue();
  readonly #requests: RecordedRequest[] = [];
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #hooks = new MergeRequestHooks();
  #ids = { project: 0, mergeRequest: 0, note: 0, pipeline: 0 };

  constructor(options: GitLabStandInOptions) {
    this.#options = options;
    this.#username = options.username ?? 'promoter-bot';
    for (const token of options.tokens) this.#tokens.set(token, 'write');
    for (const token of options.readOnlyTokens ?? []) this.#tokens.set(token, 'read');
  }

  // --- controls -------------------------------------------------------------------------------

  addProject(path: string, defaultBranch: string, options: ProjectOptions = {}): StandInProject {
    this.#ids.project += 1;
    const project: StandInProject = {
      id: this.#ids.project,
      path,
      defaultBranch,
      pipelineMustSucceed: options.pipelineMustSucceed ?? false,
      ci: options.ci ?? false,
      createdAt: now(),
    };
    this.#projects.set(path, project);
    return project;
  }

  project(path: string): StandInProject | undefined {
    return this.#projects.get(path);
  }

  allowToken(token: string, access: TokenAccess = 'write'): void {
    this.#tokens.set(token, access);
  }

  revokeToken(token: string): void {
    this.#tokens.delete(token);
  }

  tokenAccess(token: string): TokenAccess | undefined {
    return this.#tokens.get(token);
  }

  injectFault(rule: FaultRule): void {
    this.#faults.inject(rule);
  }

  pendingFaults(): number {
    return this.#faults.pending();
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  /** The merge requests (copies), of one project or all, in the order they were created. */
  mergeRequests(project?: string): StandInMergeRequest[] {
    return this.#mergeRequests
      .filter((mr) => project === undefined || mr.project === project)
      .map((mr) => ({ ...mr, notes: [...mr.notes] }));
  }

  mergeRequest(project: string, iid: number): StandInMergeRequest | undefined {
    return this.mergeRequests(project).find((mr) => mr.iid === iid);
  }

  notes(project: string, iid: number): StandInNote[] {
    return this.mergeRequest(project, iid)?.notes ?? [];
  }

  /**
   * Sets the pipeline of the merge request's current head (`none` deletes it: `head_pipeline`
   * reads null again). A pipeline that turns `success` on a merge request set to merge when it
   * succeeds, at the pinned head, merges it.
   */
  async setPipeline(project: string, iid: number, status: PipelineStatus): Promise<void> {
    await this.#exclusive(project, async () => {
      const mr = this.#mustMergeRequest(project, iid);
      const head = await this.#refreshHead(mr);
      this.#ciSeen.add(`${project}\0${head}`);
      if (status === 'none') {
        this.#pipelines.delete(`${project}\0${head}`);
        const branch = `${project}\0${mr.sourceBranch}`;
        if (this.#branchPipelines.get(branch) === head) this.#branchPipelines.delete(branch);
        return;
      }
      this.#recordPipeline(project, mr.sourceBranch, head, status);
      if (status === 'success') await this.#runAutoMerge(mr);
    });
  }

  pipelineOf(project: string, sha: string): PipelineStatus {
    return this.#pipelines.get(`${project}\0${sha}`)?.status ?? 'none';
  }

  /**
   * Makes `detailed_merge_status` read `status` (any GitLab value: `not_approved`, `checking`,
   * ...) for the next `reads` reads, or until cleared with `undefined`.
   */
  setDetailedMergeStatus(
    project: string,
    iid: number,
    status: string | undefined,
    reads?: number,
  ): void {
    const key = `${project}!${iid}`;
    if (status === undefined) this.#statusOverrides.delete(key);
    else this.#statusOverrides.set(key, { status, reads });
  }

  /** A maintainer presses Merge: no pipeline or approval rule is asked. Returns the merge commit. */
  async mergeAsPerson(project: string, iid: number, username = 'maintainer'): Promise<string> {
    return this.#exclusive(project, async () => {
      const mr = this.#mustMergeRequest(project, iid);
      if (mr.state !== 'opened') throw new Error(`${project}!${iid} is ${mr.state}`);
      const outcome = await this.#merge(mr, username, false);
      if (outcome === undefined) throw new Error(`${project}!${iid} conflicts`);
      return outcome;
    });
  }

  /** A person closes the merge request unmerged. */
  async closeAsPerson(project: string, iid: number, username = 'maintainer'): Promise<void> {
    await this.#exclusive(project, async () => {
      const mr = this.#mustMergeRequest(project, iid);
      await this.#close(mr, username);
    });
  }

  /**
   * After a push: a `ci` project's new branch heads get a `running` pipeline, heads are read
   * again, and an auto-merge pinned to a head that moved is aborted.
   */
  async branchesUpdated(project: string): Promise<void> {
    await this.#exclusive(project, async () => {
      await this.#startPipelines(project);
      for (const mr of this.#mergeRequests) {
        if (mr.project !== project || mr.state !== 'opened') continue;
        const head = await this.#refreshHead(mr);
        if (mr.mergeWhenPipelineSucceeds && mr.autoMergeSha !== head) {
          mr.mergeWhenPipelineSucceeds = false;
          delete mr.autoMergeSha;
          mr.notes.push(
            this.#note(
              'aborted the automatic merge because the source branch was updated',
              'GitLab',
            ),
          );
        }
      }
    });
  }

  /** Registers a project hook (of one project, or all) for Merge Request events. */
  deliverWebhooksTo(url: string, secretToken: string, project?: string): void {
    this.#hooks.add(url, secretToken, project);
  }

  get webhookDeliveries(): readonly WebhookDelivery[] {
    return this.#hooks.deliveries;
  }

  webhooksSettled(): Promise<void> {
    return this.#hooks.settled();
  }

  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  /** `{'GET /projects/:id/merge_requests': 1, ...}` */
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

  /** Forgets merge requests, pipelines, overrides, faults, requests and deliveries (not projects, tokens or hooks). */
  reset(): void {
    this.#mergeRequests.length = 0;
    this.#pipelines.clear();
    this.#branchPipelines.clear();
    this.#ciSeen.clear();
    this.#statusOverrides.clear();
    this.#faults.clear();
    this.#requests.length = 0;
    this.#hooks.forgetDeliveries();
  }

  /** `detailed_merge_status` as a read would compute it now (without using up an override). */
  async detailedMergeStatus(project: string, iid: number): Promise<string> {
    return this.#detailedStatus(this.#mustMergeRequest(project, iid), false);
  }

  // --- HTTP -----------------------------------------------------------------------------------

  /** Serves one API request; `path` is below `/api/v4`, still URL-encoded. */
  async handle(
    request: IncomingMessage,
    response: ServerResponse,
    path: string,
    query: URLSearchParams,
  ): Promise<void> {
    const method = (request.method ?? 'GET').toUpperCase();
    const route = parseRoute(path);
    const template = route === undefined ? undefined : `${method} ${route.template}`;
    const known =
      template !== undefined && (MERGE_REQUEST_ROUTES as readonly string[]).includes(template);
    const body = method === 'GET' ? {} : await readBody(request);
    const caller = this.#authenticate(request);
    const record = (status: number) =>
      this.#requests.push({
        method,
        path,
        route: route === undefined ? undefined : route.template,
        query: Object.fromEntries(query),
        body,
        status,
        auth: caller.auth,
        userAgent: request.headers['user-agent'],
      });
    const send = (answer: Answer) => {
      record(answer.status);
      this.#send(response, answer);
    };

    if (caller.access === undefined) {
      send(gitlabError(401, '401 Unauthorized'));
      return;
    }
    if (method !== 'GET' && caller.access === 'read') {
      send({
        status: 403,
        body: {
          error: 'insufficient_scope',
          error_description:
            'The request requires higher privileges than provided by the access token.',
          scope: 'api',
        },
      });
      return;
    }
    const fault = this.#faults.take(method, path, route?.template);
    if (fault?.kind === 'connection-reset') {
      record(0);
      request.socket.destroy();
      return;
    }
    const plain = fault === undefined ? undefined : plainFaultAnswer(fault);
    if (plain !== undefined) {
      send(plain);
      return;
    }
    if (route === undefined || !known) {
      send({ status: 404, body: { error: '404 Not Found' } });
      return;
    }
    if (body === undefined) {
      send({ status: 400, body: { error: 'The request body is not valid JSON' } });
      return;
    }
    if (route.template === '/user') {
      send({ status: 200, body: this.#userJson(caller.username) });
      return;
    }
    const project = this.#projectById(route.projectId ?? '');
    if (project === undefined) {
      send(gitlabError(404, '404 Project Not Found'));
      return;
    }
    const fields = { ...Object.fromEntries(query), ...fieldsOf(body) };
    const access = caller.access;
    const answer = await this.#exclusive(project.path, () =>
      this.#route(method, route, project, fields, query, { ...caller, access }, fault?.kind),
    );
    send(answer);
  }

  async #route(
    method: string,
    route: Route,
    project: StandInProject,
    fields: Record<string, unknown>,
    query: URLSearchParams,
    caller: Caller,
    fault: string | undefined,
  ): Promise<Answer> {
    switch (`${method} ${route.template}`) {
      case 'GET /projects/:id':
        return { status: 200, body: this.#projectJson(project) };
      case 'GET /projects/:id/merge_requests':
        return this.#list(project, query);
      case 'POST /projects/:id/merge_requests':
        return this.#create(project, fields, caller, fault);
    }
    const mr = this.#mergeRequests.find(
      (candidate) => candidate.project === project.path && candidate.iid === route.iid,
    );
    if (mr === undefined) return gitlabError(404, '404 Not found');
    switch (`${method} ${route.template}`) {
      case 'GET /projects/:id/merge_requests/:iid':
        return { status: 200, body: await this.#mergeRequestJson(mr, true) };
      case 'PUT /projects/:id/merge_requests/:iid':
        return this.#update(mr, fields, caller);
      case 'PUT /projects/:id/merge_requests/:iid/merge':
        return this.#acceptMerge(mr, fields, caller);
      case 'GET /projects/:id/merge_requests/:iid/notes':
        return { status: 200, body: mr.notes.map((note) => this.#noteJson(note, mr)) };
      case 'POST /projects/:id/merge_requests/:iid/notes': {
        const text = fields.body;
        if (typeof text !== 'string' || text.trim() === '') {
          return { status: 400, body: { error: 'body is missing' } };
        }
        const note = this.#note(text, caller.username);
        mr.notes.push(note);
        return { status: 201, body: this.#noteJson(note, mr) };
      }
    }
    return { status: 404, body: { error: '404 Not Found' } };
  }

  async #list(project: StandInProject, query: URLSearchParams): Promise<Answer> {
    const state = query.get('state') ?? 'all';
    const source = query.get('source_branch');
    const target = query.get('target_branch');
    const iids = query.getAll('iids[]').map(Number);
    const matching = this.#mergeRequests
      .filter((mr) => mr.project === project.path)
      .filter((mr) => state === 'all' || mr.state === state)
      .filter((mr) => source === null || mr.sourceBranch === source)
      .filter((mr) => target === null || mr.targetBranch === target)
      .filter((mr) => iids.length === 0 || iids.includes(mr.iid))
      .sort((a, b) => (query.get('sort') === 'asc' ? a.id - b.id : b.id - a.id));
    const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? 20) || 20));
    const page = Math.max(1, Number(query.get('page') ?? 1) || 1);
    const slice = matching.slice((page - 1) * perPage, page * perPage);
    const totalPages = Math.max(1, Math.ceil(matching.length / perPage));
    return {
      status: 200,
      body: await Promise.all(slice.map((mr) => this.#mergeRequestJson(mr, false))),
      headers: {
        'x-total': String(matching.length),
        'x-total-pages': String(totalPages),
        'x-per-page': String(perPage),
        'x-page': String(page),
        'x-next-page': page < totalPages ? String(page + 1) : '',
        'x-prev-page': page > 1 ? String(page - 1) : '',
      },
    };
  }

  async #create(
    project: StandInProject,
    fields: Record<string, unknown>,
    caller: Caller,
    fault: string | undefined,
  ): Promise<Answer> {
    for (const name of ['source_branch', 'target_branch', 'title']) {
      if (typeof fields[name] !== 'string' || fields[name] === '') {
        return { status: 400, body: { error: `${name} is missing` } };
      }
    }
    const source = fields.source_branch as string;
    const target = fields.target_branch as string;
    if (source === target) {
      return gitlabError(422, ["You can't use same project/branch for source and target"]);
    }
    const path = this.#options.repositoryPath(project.path);
    for (const [name, branch] of [
      ['Source', source],
      ['Target', target],
    ] as const) {
      if ((await resolveRef(path, `refs/heads/${branch}`)) === undefined) {
        return gitlabError(400, { base: [`${name} branch "${branch}" does not exist`] });
      }
    }
    const duplicate = () =>
      this.#mergeRequests.find(
        (mr) =>
          mr.project === project.path &&
          mr.state === 'opened' &&
          mr.sourceBranch === source &&
          mr.targetBranch === target,
      );
    if (fault === 'race') {
      // Another worker's create lands first.
      await this.#add(project, {
        source,
        target,
        title: `${String(fields.title)} (opened by another worker)`,
        description: '',
        author: 'other-worker',
        removeSourceBranch: false,
      });
    }
    const existing = duplicate();
    if (existing !== undefined) {
      return gitlabError(409, [
        `Another open merge request already exists for this source branch: !${existing.iid}`,
      ]);
    }
    const mr = await this.#add(project, {
      source,
      target,
      title: fields.title as string,
      description: typeof fields.description === 'string' ? fields.description : '',
      author: caller.username,
      removeSourceBranch: truthy(fields.remove_source_branch),
    });
    if (fault === 'lost-answer') return gitlabError(502, '502 Bad Gateway');
    return { status: 201, body: await this.#mergeRequestJson(mr, true) };
  }

  async #add(
    project: StandInProject,
    values: {
      source: string;
      target: string;
      title: string;
      description: string;
      author: string;
      removeSourceBranch: boolean;
    },
  ): Promise<StandInMergeRequest> {
    this.#ids.mergeRequest += 1;
    const iid =
      1 +
      this.#mergeRequests
        .filter((mr) => mr.project === project.path)
        .reduce((max, mr) => Math.max(max, mr.iid), 0);
    const created = now();
    const mr: StandInMergeRequest = {
      id: 1000 + this.#ids.mergeRequest,
      iid,
      project: project.path,
      title: values.title,
      description: values.description,
      sourceBranch: values.source,
      targetBranch: values.target,
      state: 'opened',
      sha: '',
      createdAt: created,
      updatedAt: created,
      author: values.author,
      removeSourceBranch: values.removeSourceBranch,
      mergeWhenPipelineSucceeds: false,
      notes: [],
    };
    await this.#refreshHead(mr);
    this.#mergeRequests.push(mr);
    return mr;
  }

  async #update(
    mr: StandInMergeRequest,
    fields: Record<string, unknown>,
    caller: Caller,
  ): Promise<Answer> {
    if (typeof fields.title === 'string') {
      if (fields.title.trim() === '') return gitlabError(400, { title: ["can't be blank"] });
      mr.title = fields.title;
    }
    if (typeof fields.description === 'string') mr.description = fields.description;
    if (typeof fields.target_branch === 'string') mr.targetBranch = fields.target_branch;
    if (fields.remove_source_branch !== undefined) {
      mr.removeSourceBranch = truthy(fields.remove_source_branch);
    }
    const event = fields.state_event;
    if (event === 'close' && mr.state === 'opened') await this.#close(mr, caller.username);
    else if (event === 'reopen' && mr.state === 'closed') {
      mr.state = 'opened';
      delete mr.closedAt;
      delete mr.closedBy;
    }
    mr.updatedAt = now();
    return { status: 200, body: await this.#mergeRequestJson(mr, true) };
  }

  /**
   * GitLab's `PUT .../merge`: 405 unless it can merge now or can be set to merge when its running
   * pipeline succeeds, 422 "Branch cannot be merged" on conflicts, 409 when `sha` is not the
   * source branch's head. "Merge when pipeline succeeds" is only possible with an active pipeline;
   * without one a mergeable merge request merges at once.
   */
  async #acceptMerge(
    mr: StandInMergeRequest,
    fields: Record<string, unknown>,
    caller: Caller,
  ): Promise<Answer> {
    if (mr.state !== 'opened') return gitlabError(405, '405 Method Not Allowed');
    const autoRequested = truthy(fields.merge_when_pipeline_succeeds) || truthy(fields.auto_merge);
    const status = await this.#detailedStatus(mr, true);
    const head = mr.sha;
    const active = ACTIVE_PIPELINES.has(this.pipelineOf(mr.project, head));
    const automatic =
      autoRequested && active && (status === 'mergeable' || status === 'ci_still_running');
    const immediately = status === 'mergeable' && !automatic;
    if (!automatic && !immediately) {
      return status === 'conflict'
        ? gitlabError(422, 'Branch cannot be merged')
        : gitlabError(405, '405 Method Not Allowed');
    }
    if (typeof fields.sha === 'string' && fields.sha !== head) {
      return gitlabError(409, `SHA does not match HEAD of source branch: ${head}`);
    }
    if (automatic) {
      mr.mergeWhenPipelineSucceeds = true;
      mr.autoMergeSha = head;
      mr.updatedAt = now();
      return { status: 200, body: await this.#mergeRequestJson(mr, true) };
    }
    const merged = await this.#merge(
      mr,
      caller.username,
      truthy(fields.should_remove_source_branch),
    );
    if (merged === undefined) return gitlabError(422, 'Branch cannot be merged');
    return { status: 200, body: await this.#mergeRequestJson(mr, true) };
  }

  /** Merges the head as it is now; undefined on conflicts. */
  async #merge(
    mr: StandInMergeRequest,
    username: string,
    removeSourceBranch: boolean,
  ): Promise<string | undefined> {
    const path = this.#options.repositoryPath(mr.project);
    const headSha = await this.#refreshHead(mr);
    for (let attempt = 0; attempt < 3; attempt++) {
      const baseSha = await resolveRef(path, `refs/heads/${mr.targetBranch}`);
      if (baseSha === undefined) return undefined;
      const identity = { name: 'Promoter Bot', email: 'promoter-bot@gitlab.example' };
      const outcome = await mergeInBareRepository(path, {
        base: mr.targetBranch,
        baseSha,
        headSha,
        method: 'merge',
        title: `Merge branch '${mr.sourceBranch}' into '${mr.targetBranch}'`,
        message: `${mr.title}\n\nSee merge request ${mr.project}!${mr.iid}`,
        author: identity,
        committer: identity,
        ...(removeSourceBranch || mr.removeSourceBranch ? { deleteBranch: mr.sourceBranch } : {}),
      });
      if (outcome.kind === 'conflict') return undefined;
      if (outcome.kind === 'base-moved') continue;
      const at = now();
      mr.state = 'merged';
      mr.mergeCommitSha = outcome.sha;
      mr.mergedAt = at;
      mr.mergedBy = username;
      mr.updatedAt = at;
      this.#hook('merge', mr);
      return outcome.sha;
    }
    return undefined;
  }

  async #close(mr: StandInMergeRequest, username: string): Promise<void> {
    if (mr.state !== 'opened') return;
    const at = now();
    mr.state = 'closed';
    mr.closedAt = at;
    mr.closedBy = username;
    mr.updatedAt = at;
    mr.mergeWhenPipelineSucceeds = false;
    delete mr.autoMergeSha;
    await this.#refreshHead(mr);
    this.#hook('close', mr);
  }

  async #runAutoMerge(mr: StandInMergeRequest): Promise<void> {
    if (mr.state !== 'opened' || !mr.mergeWhenPipelineSucceeds) return;
    const head = await this.#refreshHead(mr);
    // GitLab merges only the head the auto-merge was set for (the merge's `sha`).
    if (head !== mr.autoMergeSha) return;
    if ((await this.#detailedStatus(mr, false)) !== 'mergeable') return;
    await this.#merge(mr, this.#username, false);
  }

  /** Creates or updates the pipeline of `sha`, the latest of `branch`. */
  #recordPipeline(
    project: string,
    branch: string,
    sha: string,
    status: Exclude<PipelineStatus, 'none'>,
  ): void {
    const key = `${project}\0${sha}`;
    const existing = this.#pipelines.get(key);
    if (existing === undefined) {
      this.#ids.pipeline += 1;
      const at = now();
      this.#pipelines.set(key, {
        id: 5000 + this.#ids.pipeline,
        sha,
        ref: branch,
        status,
        createdAt: at,
        updatedAt: at,
      });
    } else {
      existing.status = status;
      existing.updatedAt = now();
    }
    this.#branchPipelines.set(`${project}\0${branch}`, sha);
  }

  /** A `ci` project's branch pipelines: each new head of a branch but the default one runs one. */
  async #startPipelines(project: string): Promise<void> {
    const settings = this.#projects.get(project);
    if (settings?.ci !== true) return;
    const refs = await mustGit(this.#options.repositoryPath(project), [
      'for-each-ref',
      '--format=%(objectname) %(refname:lstrip=2)',
      'refs/heads',
    ]);
    for (const line of refs.split('\n')) {
      const [sha, branch] = line.split(' ');
      if (sha === undefined || branch === undefined || branch === settings.defaultBranch) continue;
      const key = `${project}\0${sha}`;
      if (this.#ciSeen.has(key)) continue;
      this.#ciSeen.add(key);
      this.#recordPipeline(project, branch, sha, 'running');
    }
  }

  #hook(action: MergeRequestHookAction, mr: StandInMergeRequest): void {
    const project = this.#projects.get(mr.project);
    if (project === undefined) return;
    this.#hooks.deliver({
      action,
      instanceUrl: this.#options.webUrl,
      project: {
        id: project.id,
        pathWithNamespace: project.path,
        defaultBranch: project.defaultBranch,
      },
      mergeRequest: {
        id: mr.id,
        iid: mr.iid,
        state: mr.state,
        sourceBranch: mr.sourceBranch,
        targetBranch: mr.targetBranch,
        title: mr.title,
        description: mr.description,
        mergeCommitSha: mr.mergeCommitSha ?? null,
        lastCommitId: mr.sha,
        createdAt: mr.createdAt,
        updatedAt: mr.updatedAt,
        mergeWhenPipelineSucceeds: mr.mergeWhenPipelineSucceeds,
      },
      user: { id: 1, username: this.#username, name: 'Promoter Bot' },
    });
  }

  /** The source branch's head (kept as it was when the branch is gone). */
  async #refreshHead(mr: StandInMergeRequest): Promise<string> {
    const head = await resolveRef(
      this.#options.repositoryPath(mr.project),
      `refs/heads/${mr.sourceBranch}`,
    );
    if (head !== undefined) mr.sha = head;
    return mr.sha;
  }

  async #detailedStatus(mr: StandInMergeRequest, useOverride: boolean): Promise<string> {
    const key = `${mr.project}!${mr.iid}`;
    const override = this.#statusOverrides.get(key);
    if (override !== undefined) {
      if (useOverride && override.reads !== undefined) {
        override.reads -= 1;
        if (override.reads <= 0) this.#statusOverrides.delete(key);
      }
      return override.status;
    }
    if (mr.state !== 'opened') return 'not_open';
    if (DRAFT.test(mr.title)) return 'draft_status';
    const path = this.#options.repositoryPath(mr.project);
    const head = await resolveRef(path, `refs/heads/${mr.sourceBranch}`);
    const base = await resolveRef(path, `refs/heads/${mr.targetBranch}`);
    if (head === undefined || base === undefined) return 'commits_status';
    mr.sha = head;
    const ahead = await mustGit(path, ['rev-list', '--count', `${base}..${head}`]);
    if (ahead === '0') return 'commits_status';
    if (!(await mergeableInBareRepository(path, base, head))) return 'conflict';
    const project = this.#projects.get(mr.project);
    const pipeline = this.pipelineOf(mr.project, head);
    if (project?.pipelineMustSucceed === true) {
      if (ACTIVE_PIPELINES.has(pipeline) || pipeline === 'created') return 'ci_still_running';
      if (pipeline !== 'success') return 'ci_must_pass';
    }
    return 'mergeable';
  }

  // --- shapes ---------------------------------------------------------------------------------

  #userJson(username: string) {
    return {
      id: username === this.#username ? 1 : 2,
      username,
      name: username === this.#username ? 'Promoter Bot' : username,
      state: 'active',
      locked: false,
      avatar_url: null,
      web_url: `${this.#options.webUrl}/${username}`,
    };
  }

  #projectJson(project: StandInProject) {
    const webUrl = `${this.#options.webUrl}/${project.path}`;
    const name = project.path.split('/').at(-1) ?? project.path;
    const namespace = project.path.split('/').slice(0, -1).join('/');
    return {
      id: project.id,
      description: null,
      name,
      name_with_namespace: project.path.split('/').join(' / '),
      path: name,
      path_with_namespace: project.path,
      created_at: project.createdAt,
      default_branch: project.defaultBranch,
      ssh_url_to_repo: `git@${new URL(this.#options.webUrl).host}:${project.path}.git`,
      http_url_to_repo: `${webUrl}.git`,
      web_url: webUrl,
      namespace: {
        id: project.id + 100,
        name: namespace.split('/').at(-1) ?? namespace,
        path: namespace.split('/').at(-1) ?? namespace,
        kind: 'group',
        full_path: namespace,
        web_url: `${this.#options.webUrl}/groups/${namespace}`,
      },
      merge_method: 'merge',
      only_allow_merge_if_pipeline_succeeds: project.pipelineMustSucceed,
      remove_source_branch_after_merge: false,
      archived: false,
      visibility: 'private',
    };
  }

  #noteJson(note: StandInNote, mr: StandInMergeRequest) {
    return {
      id: note.id,
      type: null,
      body: note.body,
      author: this.#userJson(note.author),
      created_at: note.createdAt,
      updated_at: note.createdAt,
      system: note.author === 'GitLab',
      noteable_id: mr.id,
      noteable_type: 'MergeRequest',
      project_id: this.#projects.get(mr.project)?.id,
      noteable_iid: mr.iid,
      resolvable: false,
      confidential: false,
      internal: false,
    };
  }

  #note(body: string, author: string): StandInNote {
    this.#ids.note += 1;
    return { id: this.#ids.note, body, author, createdAt: now() };
  }

  /** GitLab's MergeRequest entity; `single` adds what `GET .../merge_requests/:iid` adds. */
  async #mergeRequestJson(mr: StandInMergeRequest, single: boolean) {
    const project = this.#projects.get(mr.project);
    const projectId = project?.id ?? 0;
    const detailed = await this.#detailedStatus(mr, true);
    const path = this.#options.repositoryPath(mr.project);
    const head = await this.#refreshHead(mr);
    const webUrl = `${this.#options.webUrl}/${mr.project}/-/merge_requests/${mr.iid}`;
    const legacyStatus =
      detailed === 'conflict'
        ? 'cannot_be_merged'
        : WAITING.has(detailed)
          ? detailed === 'checking'
            ? 'checking'
            : 'unchecked'
          : 'can_be_merged';
    const user = (name: string | undefined) => (name === undefined ? null : this.#userJson(name));
    const state: MergeRequestState = mr.state;
    // GitLab's head pipeline: the source branch's latest, which may be of an older commit.
    const latest = this.#branchPipelines.get(`${mr.project}\0${mr.sourceBranch}`);
    const headPipeline =
      latest === undefined ? undefined : this.#pipelines.get(`${mr.project}\0${latest}`);
    const pipeline =
      headPipeline === undefined
        ? null
        : {
            id: headPipeline.id,
            iid: headPipeline.id,
            project_id: projectId,
            sha: headPipeline.sha,
            ref: headPipeline.ref,
            status: headPipeline.status,
            source: 'push',
            created_at: headPipeline.createdAt,
            updated_at: headPipeline.updatedAt,
            web_url: `${this.#options.webUrl}/${mr.project}/-/pipelines/${headPipeline.id}`,
          };
    const base = {
      id: mr.id,
      iid: mr.iid,
      project_id: projectId,
      title: mr.title,
      description: mr.description,
      state,
      created_at: mr.createdAt,
      updated_at: mr.updatedAt,
      merged_by: user(mr.mergedBy),
      merge_user: user(mr.mergedBy),
      merged_at: mr.mergedAt ?? null,
      closed_by: user(mr.closedBy),
      closed_at: mr.closedAt ?? null,
      target_branch: mr.targetBranch,
      source_branch: mr.sourceBranch,
      user_notes_count: mr.notes.length,
      upvotes: 0,
      downvotes: 0,
      author: this.#userJson(mr.author),
      assignees: [],
      assignee: null,
      reviewers: [],
      source_project_id: projectId,
      target_project_id: projectId,
      labels: [],
      draft: DRAFT.test(mr.title),
      work_in_progress: DRAFT.test(mr.title),
      milestone: null,
      merge_when_pipeline_succeeds: mr.mergeWhenPipelineSucceeds,
      merge_status: legacyStatus,
      detailed_merge_status: detailed,
      merge_after: null,
      sha: head,
      merge_commit_sha: mr.mergeCommitSha ?? null,
      squash_commit_sha: null,
      discussion_locked: null,
      should_remove_source_branch: null,
      force_remove_source_branch: mr.removeSourceBranch,
      prepared_at: mr.createdAt,
      reference: `!${mr.iid}`,
      references: { short: `!${mr.iid}`, relative: `!${mr.iid}`, full: `${mr.project}!${mr.iid}` },
      web_url: webUrl,
      time_stats: {
        time_estimate: 0,
        total_time_spent: 0,
        human_time_estimate: null,
        human_total_time_spent: null,
      },
      squash: false,
      squash_on_merge: false,
      task_completion_status: { count: 0, completed_count: 0 },
      has_conflicts: detailed === 'conflict',
      blocking_discussions_resolved: true,
      approvals_before_merge: null,
    };
    if (!single) return base;
    const targetHead = await resolveRef(path, `refs/heads/${mr.targetBranch}`);
    return {
      ...base,
      subscribed: false,
      changes_count: '1',
      latest_build_started_at: null,
      latest_build_finished_at: null,
      first_deployed_to_production_at: null,
      pipeline,
      head_pipeline: pipeline,
      diff_refs: { base_sha: targetHead ?? null, head_sha: head, start_sha: targetHead ?? null },
      merge_error: null,
      first_contribution: false,
      user: { can_merge: true },
    };
  }

  // --- plumbing -------------------------------------------------------------------------------

  #authenticate(
    request: IncomingMessage,
  ): Omit<Caller, 'access'> & { access: TokenAccess | undefined } {
    const privateToken = request.headers['private-token'];
    const authorization = request.headers.authorization;
    if (typeof privateToken === 'string') {
      return {
        username: this.#username,
        access: this.#tokens.get(privateToken),
        auth: 'private-token',
      };
    }
    if (authorization?.startsWith('Bearer ') === true) {
      return {
        username: this.#username,
        access: this.#tokens.get(authorization.slice('Bearer '.length)),
        auth: 'bearer',
      };
    }
    return { username: this.#username, access: undefined, auth: 'none' };
  }

  #send(response: ServerResponse, answer: Answer): void {
    const headers: Record<string, string> = {
      'x-request-id': randomBytes(13).toString('base64url'),
      'cache-control': 'max-age=0, private, must-revalidate',
      ...answer.headers,
    };
    const text =
      typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? null);
    headers['content-type'] ??= 'application/json';
    response.writeHead(answer.status, headers).end(text);
  }

  #projectById(id: string): StandInProject | undefined {
    if (/^[0-9]+$/.test(id))
      return [...this.#projects.values()].find((project) => project.id === Number(id));
    return this.#projects.get(id);
  }

  #mustMergeRequest(project: string, iid: number): StandInMergeRequest {
    const mr = this.#mergeRequests.find(
      (candidate) => candidate.project === project && candidate.iid === iid,
    );
    if (mr === undefined) throw new Error(`no merge request ${project}!${iid}`);
    return mr;
  }

  /** Runs `task` after the project's earlier tasks: one write at a time per project, like a lock. */
  #exclusive<T>(project: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(project) ?? Promise.resolve();
    const next = previous.then(task, task);
    this.#locks.set(
      project,
      next.then(
        () => undefined,
        () => undefined,
      ),
    );
    return next;
  }
}
