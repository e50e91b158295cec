import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostedRepository } from '../../functions/core/pipeline.ts';
import {
  addCommit,
  createBareRepository,
  type FileChanges,
  type FileTree,
  mustGit,
  readFiles,
  resolveRef,
} from './bare-repositories.ts';
import { type GitHttpBackendOptions, serveGit } from './git-http-backend.ts';
import { GitLabStandIn } from './gitlab-stand-in/stand-in.ts';
import type {
  FaultRule,
  PipelineStatus,
  ProjectOptions,
  RecordedRequest,
  StandInMergeRequest,
  StandInNote,
} from './gitlab-stand-in/types.ts';
import type { WebhookDelivery } from './gitlab-stand-in/webhooks.ts';

export type {
  FaultRule,
  GitLabFault,
  PipelineStatus,
  StandInMergeRequest,
} from './gitlab-stand-in/types.ts';
export {
  type MergeRequestHookInput,
  mergeRequestHookHeaders,
  mergeRequestHookPayload,
} from './gitlab-stand-in/webhooks.ts';

/**
 * One loopback HTTP server that looks like a self-managed GitLab: `/api/v4/...` is the GitLab
 * REST stand-in (gitlab-stand-in/stand-in.ts), every other path is smart-HTTP git (`git
 * http-backend`) over bare repositories in a temporary directory, `{url}/{group}/{project}.git`
 * (nested groups allowed). Git uses Basic auth as GitLab takes a token: username `oauth2`,
 * password an accepted token; read-only tokens may fetch but not push. With `relativeUrlRoot`
 * everything is served below that path (GitLab installed under `/gitlab`).
 */

/** The write token accepted unless `tokens` says otherwise. */
export const FAKE_GITLAB_TOKEN = 'glpat-fakeSelfManagedToken000';

export interface FakeGitLabOptions {
  /** Tokens with the `api` scope (default `[FAKE_GITLAB_TOKEN]`). */
  readonly tokens?: readonly string[];
  /** `read_api` tokens: API GETs and git fetch only. */
  readonly readOnlyTokens?: readonly string[];
  /** The username the tokens act as (default `promoter-bot`). */
  readonly username?: string;
  /** GitLab's relative URL root, e.g. `/gitlab` (default none). */
  readonly relativeUrlRoot?: string;
  /** The host name in URLs (default `127.0.0.1`; `localhost` also resolves to loopback). */
  readonly hostname?: string;
}

export interface FakeGitLab {
  /** `http://127.0.0.1:{port}` (with the relative URL root) */
  readonly url: string;
  /** `{url}/api/v4` */
  readonly apiBaseUrl: string;
  readonly port: number;
  /** The directory holding the bare repositories (`group/project.git`). */
  readonly projectRoot: string;
  /** The first write token (what most tests use). */
  readonly token: string;
  /** The API stand-in: faults, tokens, merge requests, pipelines and recorded requests. */
  readonly standIn: GitLabStandIn;
  /** Git requests served, as `METHOD /path` (without the query). */
  readonly gitRequests: readonly string[];
  /** `{url}/{projectPath}.git` */
  cloneUrl(projectPath: string): string;
  /** The HostedRepository (provider `gitlab`) of project `{group}/{project}`. */
  repository(group: string, project: string): HostedRepository;
  /** The bare repository's directory. */
  repositoryPath(projectPath: string): string;
  /**
   * Creates project `projectPath` (`group/sub/project`): a bare repository with HEAD on `branch`
   * and one commit holding `files`. Returns the commit id.
   */
  createRepository(
    projectPath: string,
    files: FileTree,
    branch?: string,
    options?: ProjectOptions,
  ): Promise<string>;
  /** Every file of `branch` as UTF-8 text, by path. Throws when the branch does not exist. */
  readFiles(projectPath: string, branch: string): Promise<Record<string, string>>;
  /** The commit `branch` points at, or undefined when it does not exist. */
  branchHead(projectPath: string, branch: string): Promise<string | undefined>;
  /** Adds a commit on `branch` (created from the default branch when missing); returns its id. */
  commitOnBranch(
    projectPath: string,
    branch: string,
    files: FileChanges,
    message?: string,
  ): Promise<string>;
  /** Runs git in the bare repository and returns its trimmed stdout. */
  git(projectPath: string, args: readonly string[]): Promise<string>;
  /** The merge requests of a project, in the order they were created. */
  mergeRequests(projectPath: string): StandInMergeRequest[];
  mergeRequest(projectPath: string, iid: number): StandInMergeRequest | undefined;
  notes(projectPath: string, iid: number): StandInNote[];
  /**
   * Sets the pipeline of the merge request's head (`success` runs a pending auto-merge, `none`
   * deletes it). A project created with `ci: true` gets a `running` one on each push.
   */
  setPipeline(projectPath: string, iid: number, status: PipelineStatus): Promise<void>;
  /** A maintainer merges it (no pipeline asked); returns the merge commit. */
  mergeAsPerson(projectPath: string, iid: number): Promise<string>;
  closeAsPerson(projectPath: string, iid: number): Promise<void>;
  injectFault(rule: FaultRule): void;
  /** POSTs Merge Request Hooks (merged, closed) to `url` with `X-Gitlab-Token: secretToken`. */
  deliverWebhooksTo(url: string, secretToken: string, projectPath?: string): void;
  readonly webhookDeliveries: readonly WebhookDelivery[];
  webhooksSettled(): Promise<void>;
  readonly requests: readonly RecordedRequest[];
  close(): Promise<void>;
}

const basicCredentials = (
  request: IncomingMessage,
): { username: string; password: string } | undefined => {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0
    ? undefined
    : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
};

export const startFakeGitLab = async (options: FakeGitLabOptions = {}): Promise<FakeGitLab> => {
  const projectRoot = await mkdtemp(join(tmpdir(), 'fake-gitlab-'));
  const tokens = options.tokens ?? [FAKE_GITLAB_TOKEN];
  const root = (options.relativeUrlRoot ?? '').replace(/\/+$/, '');
  const repositoryPath = (projectPath: string): string => join(projectRoot, `${projectPath}.git`);
  const gitRequests: string[] = [];
  const backend: GitHttpBackendOptions = {
    projectRoot,
    authorize: (credentials) =>
      credentials !== undefined &&
      credentials.username === 'oauth2' &&
      standIn.tokenAccess(credentials.password) !== undefined,
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const fail = (error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`fake GitLab: ${String(error)}\n`);
    };
    if (root !== '' && url.pathname !== root && !url.pathname.startsWith(`${root}/`)) {
      request.resume();
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      return;
    }
    const pathname = url.pathname.slice(root.length) || '/';
    if (pathname === '/api/v4' || pathname.startsWith('/api/v4/')) {
      standIn
        .handle(request, response, pathname.slice('/api/v4'.length) || '/', url.searchParams)
        .catch(fail);
      return;
    }
    gitRequests.push(`${request.method ?? 'GET'} ${pathname}`);
    const isPush =
      pathname.endsWith('/git-receive-pack') ||
      url.searchParams.get('service') === 'git-receive-pack';
    const credentials = basicCredentials(request);
    if (
      isPush &&
      credentials !== undefined &&
      standIn.tokenAccess(credentials.password) === 'read'
    ) {
      request.resume();
      response
        .writeHead(403, { 'content-type': 'text/plain' })
        .end('You are not allowed to push code to this project.\n');
      return;
    }
    // A missing repository is answered here: `git http-backend` would not read the body first.
    const project = /^\/(.+?)\.git\//.exec(pathname)?.[1];
    const exists =
      project === undefined || project.split('/').includes('..')
        ? Promise.resolve(false)
        : stat(repositoryPath(project)).then(
            (found) => found.isDirectory(),
            () => false,
          );
    exists
      .then(async (found) => {
        if (!found || project === undefined) {
          request.resume();
          response.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
          return;
        }
        await serveGit(backend, request, response, pathname, url.search.slice(1));
        if (request.method === 'POST' && pathname.endsWith('/git-receive-pack')) {
          await standIn.branchesUpdated(project);
        }
      })
      .catch(fail);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.hostname ?? '127.0.0.1'}:${port}${root}`;
  const apiBaseUrl = `${url}/api/v4`;

  const standIn = new GitLabStandIn({
    webUrl: url,
    tokens,
    readOnlyTokens: options.readOnlyTokens ?? [],
    ...(options.username === undefined ? {} : { username: options.username }),
    repositoryPath,
  });

  const cloneUrl = (projectPath: string) => `${url}/${projectPath}.git`;

  return {
    url,
    apiBaseUrl,
    port,
    projectRoot,
    token: tokens[0] ?? FAKE_GITLAB_TOKEN,
    standIn,
    gitRequests,
    cloneUrl,
    repository: (group, project) => ({
      provider: 'gitlab',
      cloneUrl: cloneUrl(`${group}/${project}`),
      apiBaseUrl,
      owner: group,
      repo: project,
    }),
    repositoryPath,
    async createRepository(projectPath, files, branch = 'main', projectOptions = {}) {
      const commit = await createBareRepository(repositoryPath(projectPath), files, { branch });
      standIn.addProject(projectPath, branch, projectOptions);
      return commit;
    },
    readFiles: (projectPath, branch) =>
      readFiles(repositoryPath(projectPath), `refs/heads/${branch}`),
    branchHead: (projectPath, branch) =>
      resolveRef(repositoryPath(projectPath), `refs/heads/${branch}`),
    async commitOnBranch(projectPath, branch, files, message) {
      const commit = await addCommit(repositoryPath(projectPath), branch, files, message);
      await standIn.branchesUpdated(projectPath);
      return commit;
    },
    git: (projectPath, args) => mustGit(repositoryPath(projectPath), args),
    mergeRequests: (projectPath) => standIn.mergeRequests(projectPath),
    mergeRequest: (projectPath, iid) => standIn.mergeRequest(projectPath, iid),
    notes: (projectPath, iid) => standIn.notes(projectPath, iid),
    setPipeline: (projectPath, iid, status) => standIn.setPipeline(projectPath, iid, status),
    mergeAsPerson: (projectPath, iid) => standIn.mergeAsPerson(projectPath, iid),
    closeAsPerson: (projectPath, iid) => standIn.closeAsPerson(projectPath, iid),
    injectFault: (rule) => standIn.injectFault(rule),
    deliverWebhooksTo: (hookUrl, secretToken, projectPath) =>
      standIn.deliverWebhooksTo(hookUrl, secretToken, projectPath),
    get webhookDeliveries() {
      return standIn.webhookDeliveries;
    },
    webhooksSettled: () => standIn.webhooksSettled(),
    get requests() {
      return standIn.requests;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(projectRoot, { recursive: true, force: true });
    },
  };
};
