import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { GitHubRepository } from '../../functions/core/pipeline.ts';
import { type GitHttpBackendOptions, serveGit } from './git-http-backend.ts';
import { GitHubStandIn } from './github-stand-in.ts';

/**
 * One loopback HTTP server that looks like a GitHub Enterprise Server: `/api/v3/...` is the
 * GitHub REST stand-in, every other path is smart-HTTP git (`git http-backend`) over bare
 * repositories in a temporary directory, `{url}/{owner}/{repo}.git`. Git uses Basic auth whose
 * password must be an accepted token (any username, e.g. `x-access-token`); read-only tokens
 * may fetch but not push. Repositories are created and read with the git CLI (fast-import,
 * ls-tree, cat-file --batch): a handful of processes per call, no working trees.
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

export type RepositoryFiles = Readonly<Record<string, string | Buffer>>;

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
  /** The GitHubRepository the core works with for `owner/repo` on this server. */
  repository(owner: string, repo: string): GitHubRepository;
  /** The bare repository's directory. */
  repositoryPath(owner: string, repo: string): string;
  /**
   * Creates `owner/repo` (bare, HEAD on `branch`) with one commit holding `files`, and registers
   * it with the API stand-in. Returns the commit id.
   */
  createRepository(
    owner: string,
    repo: string,
    files: RepositoryFiles,
    branch?: string,
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
    files: Readonly<Record<string, string | Buffer | null>>,
    message?: string,
  ): Promise<string>;
  /** Runs git in the bare repository and returns its trimmed stdout (throws on failure). */
  git(owner: string, repo: string, args: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

interface GitResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

const AUTHOR = 'Fleet Admin <fleet@example.com>';

const gitEnvironment: NodeJS.ProcessEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
};

const runGit = (
  cwd: string,
  args: readonly string[],
  input?: Buffer | string,
): Promise<GitResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      'git',
      ['-c', 'user.name=Fleet Admin', '-c', 'user.email=fleet@example.com', ...args],
      { cwd, env: gitEnvironment, stdio: 'pipe' },
    );
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });

const mustGit = async (
  cwd: string,
  args: readonly string[],
  input?: Buffer | string,
): Promise<string> => {
  const result = await runGit(cwd, args, input);
  if (result.code !== 0) {
    throw new Error(`git ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout.toString('utf8').trim();
};

const fastImportData = (content: string | Buffer): Buffer[] => {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return [Buffer.from(`data ${bytes.length}\n`), bytes, Buffer.from('\n')];
};

const fastImportPath = (path: string): string => {
  if (path.includes('\n') || path.startsWith('/') || path === '') {
    throw new Error(`Unsupported path in a test repository: ${JSON.stringify(path)}`);
  }
  return path.startsWith('"') ? JSON.stringify(path) : path;
};

/** A `git fast-import` stream of one commit on `branch`, on top of `parent` when given. */
const fastImportCommit = (
  branch: string,
  files: Readonly<Record<string, string | Buffer | null>>,
  message: string,
  parent: string | undefined,
): Buffer => {
  const time = Math.floor(Date.now() / 1000);
  const parts: Buffer[] = [
    Buffer.from(`commit refs/heads/${branch}\ncommitter ${AUTHOR} ${time} +0000\n`),
    ...fastImportData(message),
  ];
  if (parent !== undefined) parts.push(Buffer.from(`from ${parent}\n`));
  for (const [path, content] of Object.entries(files)) {
    if (content === null) parts.push(Buffer.from(`D ${fastImportPath(path)}\n`));
    else {
      parts.push(Buffer.from(`M 100644 inline ${fastImportPath(path)}\n`));
      parts.push(...fastImportData(content));
    }
  }
  parts.push(Buffer.from('\ndone\n'));
  return Buffer.concat(parts);
};

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

  const resolveCommit = async (path: string, ref: string): Promise<string | undefined> => {
    const result = await runGit(path, [
      'rev-parse',
      '--verify',
      '--quiet',
      `${ref}^{commit}`,
    ]).catch(() => undefined);
    return result?.code === 0 ? result.stdout.toString('utf8').trim() : undefined;
  };
  const branchHead = (owner: string, repo: string, branch: string) =>
    resolveCommit(repositoryPath(owner, repo), `refs/heads/${branch}`);

  const standIn = new GitHubStandIn({
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
    },
  });

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
      .then((found) => {
        if (!found) {
          request.resume();
          response.writeHead(404, { 'content-type': 'text/plain' }).end('Repository not found.\n');
          return;
        }
        return serveGit(backend, request, response, url.pathname, url.search.slice(1));
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

  const cloneUrl = (owner: string, repo: string) => `${url}/${owner}/${repo}.git`;

  const readBranchFiles = async (
    owner: string,
    repo: string,
    branch: string,
  ): Promise<Record<string, string>> => {
    const path = repositoryPath(owner, repo);
    const listing = await runGit(path, [
      'ls-tree',
      '-r',
      '-z',
      '--full-tree',
      `refs/heads/${branch}`,
    ]);
    if (listing.code !== 0) {
      throw new Error(`No branch ${branch} in ${owner}/${repo}: ${listing.stderr.trim()}`);
    }
    const entries = listing.stdout
      .toString('utf8')
      .split('\0')
      .filter((line) => line !== '')
      .map((line) => {
        const tab = line.indexOf('\t');
        const [, type, oid] = line.slice(0, tab).split(' ');
        return { path: line.slice(tab + 1), type, oid: oid ?? '' };
      })
      .filter((entry) => entry.type === 'blob');
    const files: Record<string, string> = {};
    if (entries.length === 0) return files;
    const batch = await runGit(
      path,
      ['cat-file', '--batch'],
      entries.map((entry) => `${entry.oid}\n`).join(''),
    );
    let offset = 0;
    for (const entry of entries) {
      const headerEnd = batch.stdout.indexOf(0x0a, offset);
      const size = Number(
        batch.stdout.subarray(offset, headerEnd).toString('latin1').split(' ')[2],
      );
      files[entry.path] = batch.stdout
        .subarray(headerEnd + 1, headerEnd + 1 + size)
        .toString('utf8');
      offset = headerEnd + 1 + size + 1;
    }
    return files;
  };

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
    repository: (owner, repo) => ({ cloneUrl: cloneUrl(owner, repo), apiBaseUrl, owner, repo }),
    repositoryPath,
    async createRepository(owner, repo, files, branch = 'main') {
      const path = repositoryPath(owner, repo);
      await mkdir(dirname(path), { recursive: true });
      await mustGit(dirname(path), [
        'init',
        '--quiet',
        '--bare',
        `--initial-branch=${branch}`,
        path,
      ]);
      await mustGit(
        path,
        ['fast-import', '--quiet', '--done'],
        fastImportCommit(branch, files, 'Initial commit', undefined),
      );
      standIn.addRepository(owner, repo, { defaultBranch: branch });
      return mustGit(path, ['rev-parse', `refs/heads/${branch}`]);
    },
    readBranchFiles,
    branchHead,
    async commitOnBranch(owner, repo, branch, files, message = 'Upstream change') {
      const path = repositoryPath(owner, repo);
      const parent =
        (await resolveCommit(path, `refs/heads/${branch}`)) ?? (await resolveCommit(path, 'HEAD'));
      await mustGit(
        path,
        ['fast-import', '--quiet', '--done', '--force'],
        fastImportCommit(branch, files, message, parent),
      );
      return mustGit(path, ['rev-parse', `refs/heads/${branch}`]);
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
