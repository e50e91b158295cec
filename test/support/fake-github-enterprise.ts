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
  runGit,
} from './bare-repositories.ts';
import { type GitHttpBackendOptions, serveGit } from './git-http-backend.ts';
import {
  GitHubStandIn,
  mergeableInBareRepository,
  mergeInBareRepository,
  type StandInRepositoryOptions,
} from './github-stand-in.ts';

/**
 * One loopback HTTP server that looks like a GitHub Enterprise Server: `/api/v3/...` is the
 * GitHub REST stand-in, every other path is smart-HTTP git (`git http-backend`) over bare
 * repositories in a temporary directory, `{url}/{owner}/{repo}.git`. Git uses Basic auth whose
 * password must be an accepted token (any username, e.g. `x-access-token`); read-only tokens
 * may fetch but not push. Repositories are created and read with the git CLI through
 * bare-repositories.ts: a handful of processes per call, no working trees. Merges through the
 * API (or `standIn.mergePullRequest`) move the base branch of the bare repository, and pushes
 * to an open PR's branch are its `synchronize` for the stand-in's webhooks.
 */

/** The write token accepted unless `tokens` says otherwise. */
export const FAKE_GITHUB_TOKEN = 'ghp_fakeEnterpriseToken0000000000000000';

export interface FakeGitHubEnterpriseOptions {
  /** Tokens that may read and write (default `[FAKE_GITHUB_TOKEN]`). */
  readonly tokens?: readonly string[];
  /** Tokens that may only read (API GETs and git fetch). */
  readonly readOnlyTokens?: readonly string[];
  /** The login the API reports for the tokens. */
  readonly login?: string;
  /** Requests per token per hour (primary rate limit) in the API stand-in. */
  readonly rateLimit?: number;
}

export type RepositoryFiles = FileTree;

export interface FakeGitHubEnterprise {
  /** `http://127.0.0.1:{port}` */
  readonly url: string;
  /** `http://127.0.0.1:{port}/api/v3` */
  readonly apiBaseUrl: string;
  readonly port: number;
  /** The directory holding the bare repositories (`owner/repo.git`). */
  readonly projectRoot: string;
  /** The first write token (what most tests use). */
  readonly token: string;
  /** The API stand-in: faults, tokens, pull requests and recorded requests. */
  readonly standIn: GitHubStandIn;
  /** Runs before each push is handed to git (e.g. to move a branch under the client). */
  beforeReceivePack: ((repositoryPath: string) => Promise<void> | void) | undefined;
  /** Git requests served, as `METHOD /path` (without the query). */
  readonly gitRequests: readonly string[];
  cloneUrl(owner: string, repo: string): string;
  /** The HostedRepository the core works with for `owner/repo` on this server. */
  repository(owner: string, repo: string): HostedRepository;
  /** The bare repository's directory. */
  repositoryPath(owner: string, repo: string): string;
  /**
   * Creates `owner/repo` (bare, HEAD on `branch`) with one commit holding `files`, and registers
   * it with the API stand-in (with `options`, e.g. `deleteBranchOnMerge`). Returns the commit id.
   */
  createRepository(
    owner: string,
    repo: string,
    files: RepositoryFiles,
    branch?: string,
    options?: Omit<StandInRepositoryOptions, 'defaultBranch'>,
  ): Promise<string>;
  /** Every file of `branch` as UTF-8 text, by path. Throws when the branch does not exist. */
  readBranchFiles(owner: string, repo: string, branch: string): Promise<Record<string, string>>;
  /** The commit `branch` points at, or undefined when it does not exist. */
  branchHead(owner: string, repo: string, branch: string): Promise<string | undefined>;
  /**
   * Adds a commit on `branch` (created from the default branch when missing) that writes `files`
   * (`null` deletes a path). Returns the commit id.
   */
  commitOnBranch(
    owner: string,
    repo: string,
    branch: string,
    files: FileChanges,
    message?: string,
  ): Promise<string>;
  /** Runs git in the bare repository and returns its trimmed stdout (throws on failure). */
  git(owner: string, repo: string, args: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

const basicPassword = (request: IncomingMessage): string | undefined => {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
};

export const startFakeGitHubEnterprise = async (
  options: FakeGitHubEnterpriseOptions = {},
): Promise<FakeGitHubEnterprise> => {
  const projectRoot = await mkdtemp(join(tmpdir(), 'fake-ghe-'));
  const tokens = options.tokens ?? [FAKE_GITHUB_TOKEN];
  const repositoryPath = (owner: string, repo: string): string =>
    join(projectRoot, owner, `${repo}.git`);

  const branchHead = (owner: string, repo: string, branch: string) =>
    resolveRef(repositoryPath(owner, repo), `refs/heads/${branch}`);

  const hooks: { beforeReceivePack: FakeGitHubEnterprise['beforeReceivePack'] } = {
    beforeReceivePack: undefined,
  };
  const gitRequests: string[] = [];
  const backend: GitHttpBackendOptions = {
    projectRoot,
    authorize: (credentials) =>
      credentials !== undefined && standIn.tokenAccess(credentials.password) !== undefined,
    beforeReceivePack: (path) => hooks.beforeReceivePack?.(path),
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const fail = (error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`fake GitHub Enterprise: ${String(error)}\n`);
    };
    if (url.pathname === '/api/v3' || url.pathname.startsWith('/api/v3/')) {
      standIn
        .handle(request, response, url.pathname.slice('/api/v3'.length) || '/', url.searchParams)
        .catch(fail);
      return;
    }
    if (url.pathname === '/api/graphql') {
      standIn.handleGraphQL(request, response).catch(fail);
      return;
    }
    gitRequests.push(`${request.method ?? 'GET'} ${url.pathname}`);
    const isPush =
      url.pathname.endsWith('/git-receive-pack') ||
      url.searchParams.get('service') === 'git-receive-pack';
    const password = basicPassword(request);
    if (isPush && password !== undefined && standIn.tokenAccess(password) === 'read') {
      response.writeHead(403, { 'content-type': 'text/plain' }).end('read-only token\n');
      return;
    }
    // Answer a missing repository here, as GitHub does: `git http-backend` would answer 404 too,
    // but without reading the request body, and serveGit does not handle the EPIPE that follows.
    const repository = /^\/([^/]+)\/([^/]+?)\.git\//.exec(url.pathname);
    const path = repository && repositoryPath(repository[1] ?? '', repository[2] ?? '');
    const exists =
      path === null
        ? Promise.resolve(false)
        : stat(path).then(
            (found) => found.isDirectory(),
            () => false,
          );
    exists
      .then(async (found) => {
        if (!found) {
          request.resume();
          response.writeHead(404, { 'content-type': 'text/plain' }).end('Repository not found.\n');
          return;
        }
        await serveGit(backend, request, response, url.pathname, url.search.slice(1));
        if (request.method === 'POST' && url.pathname.endsWith('/git-receive-pack')) {
          await standIn.branchesUpdated(repository?.[1] ?? '', repository?.[2] ?? '');
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
  const url = `http://127.0.0.1:${port}`;
  const apiBaseUrl = `${url}/api/v3`;

  // Made once the port is known, so that webhook payloads carry this server's URLs.
  const standIn = new GitHubStandIn({
    webBaseUrl: url,
    tokens,
    readOnlyTokens: options.readOnlyTokens ?? [],
    ...(options.login === undefined ? {} : { login: options.login }),
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    git: {
      branches: async (owner, repo) => {
        const result = await runGit(repositoryPath(owner, repo), [
          'for-each-ref',
          '--format=%(refname:strip=2)%00%(objectname)',
          'refs/heads/',
        ]).catch(() => undefined);
        const lines = result?.code === 0 ? result.stdout.toString('utf8').split('\n') : [];
        return new Map(
          lines
            .filter((line) => line.includes('\0'))
            .map((line) => line.split('\0') as [string, string]),
        );
      },
      commitsBetween: async (owner, repo, base, head) =>
        Number(
          await mustGit(repositoryPath(owner, repo), [
            'rev-list',
            '--count',
            `refs/heads/${base}..refs/heads/${head}`,
          ]),
        ),
      merge: (owner, repo, request) => mergeInBareRepository(repositoryPath(owner, repo), request),
      mergeable: (owner, repo, baseSha, headSha) =>
        mergeableInBareRepository(repositoryPath(owner, repo), baseSha, headSha),
    },
  });

  const cloneUrl = (owner: string, repo: string) => `${url}/${owner}/${repo}.git`;

  return {
    url,
    apiBaseUrl,
    port,
    projectRoot,
    token: tokens[0] ?? FAKE_GITHUB_TOKEN,
    standIn,
    get beforeReceivePack() {
      return hooks.beforeReceivePack;
    },
    set beforeReceivePack(hook) {
      hooks.beforeReceivePack = hook;
    },
    gitRequests,
    cloneUrl,
    repository: (owner, repo) => ({
      provider: 'github',
      cloneUrl: cloneUrl(owner, repo),
      apiBaseUrl,
      owner,
      repo,
    }),
    repositoryPath,
    async createRepository(owner, repo, files, branch = 'main', options = {}) {
      const commit = await createBareRepository(repositoryPath(owner, repo), files, { branch });
      standIn.addRepository(owner, repo, { ...options, defaultBranch: branch });
      return commit;
    },
    readBranchFiles: (owner, repo, branch) =>
      readFiles(repositoryPath(owner, repo), `refs/heads/${branch}`),
    branchHead,
    async commitOnBranch(owner, repo, branch, files, message) {
      const commit = await addCommit(repositoryPath(owner, repo), branch, files, message);
      await standIn.branchesUpdated(owner, repo);
      return commit;
    },
    git: (owner, repo, args) => mustGit(repositoryPath(owner, repo), args),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(projectRoot, { recursive: true, force: true });
    },
  };
};

/** Short alias: `const github = await start()`. */
export const start = startFakeGitHubEnterprise;
