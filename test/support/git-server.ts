import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileChanges, FileTree } from './bare-repositories.ts';
import * as bare from './bare-repositories.ts';
import { type GitHttpBackendOptions, serveGit } from './git-http-backend.ts';

export { type FileTree, type RunResult, runGit } from './bare-repositories.ts';

/**
 * A plain loopback git smart-HTTP server (`git http-backend` behind `serveGit`) over a temporary
 * project root, with helpers that create and inspect bare repositories through the git CLI.
 * Repositories are addressed as `owner/name` and served at `{url}/owner/name.git`.
 */
export interface GitServerOptions {
  /** When set, every request must carry these Basic credentials (else 401). */
  readonly credentials?: { readonly username: string; readonly password: string };
}

export interface GitServer {
  /** `http://127.0.0.1:{port}` */
  readonly url: string;
  readonly projectRoot: string;
  /** Set to run a hook before each push is handed to git (for example: move a branch). */
  beforeReceivePack: ((repositoryPath: string) => Promise<void> | void) | undefined;
  /** Requests served so far, by `METHOD pathInfo` (for asserting what a client did). */
  readonly requests: string[];
  /** The clone URL of `owner/name`. */
  repositoryUrl(name: string): string;
  /** The bare repository's directory on disk. */
  repositoryPath(name: string): string;
  /**
   * Creates bare repository `owner/name` with one commit holding `files` on `branch`
   * (default `main`), HEAD pointing at it. Returns the commit id.
   */
  createRepository(
    name: string,
    files: FileTree,
    options?: { readonly branch?: string; readonly message?: string; readonly repack?: boolean },
  ): Promise<string>;
  /**
   * Adds a commit on `branch` (started from HEAD when missing) that writes `files` (null
   * deletes). Returns the commit id.
   */
  addCommit(name: string, branch: string, files: FileChanges, message?: string): Promise<string>;
  /** The commit id `ref` names, or undefined when it does not exist. */
  resolve(name: string, ref: string): Promise<string | undefined>;
  /** Every file of `ref` (a branch, or a commit id) as UTF-8 text. */
  readFiles(name: string, ref: string): Promise<Record<string, string>>;
  /** Runs git in the bare repository and returns stdout (trimmed). */
  git(name: string, args: readonly string[], input?: Buffer | string): Promise<string>;
  close(): Promise<void>;
}

export const startGitServer = async (options: GitServerOptions = {}): Promise<GitServer> => {
  const projectRoot = await mkdtemp(join(tmpdir(), 'git-server-'));
  const requests: string[] = [];
  const state: { beforeReceivePack: GitServer['beforeReceivePack'] } = {
    beforeReceivePack: undefined,
  };
  const { credentials } = options;
  const backendOptions: GitHttpBackendOptions = {
    projectRoot,
    ...(credentials === undefined
      ? {}
      : {
          authorize: (given: { username: string; password: string } | undefined) =>
            given !== undefined &&
            given.username === credentials.username &&
            given.password === credentials.password,
        }),
    beforeReceivePack: (path: string) => state.beforeReceivePack?.(path),
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    requests.push(`${request.method ?? 'GET'} ${url.pathname}`);
    serveGit(backendOptions, request, response, url.pathname, url.search.slice(1)).catch(
      (error: unknown) => {
        if (!response.headersSent) response.writeHead(500);
        response.end(String(error));
      },
    );
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const repositoryPath = (name: string): string => join(projectRoot, `${name}.git`);

  return {
    url,
    projectRoot,
    requests,
    get beforeReceivePack() {
      return state.beforeReceivePack;
    },
    set beforeReceivePack(hook) {
      state.beforeReceivePack = hook;
    },
    repositoryUrl: (name) => `${url}/${name}.git`,
    repositoryPath,
    git: (name, args, input) => bare.mustGit(repositoryPath(name), args, input),
    resolve: (name, ref) => bare.resolveRef(repositoryPath(name), ref),
    createRepository: (name, files, createOptions = {}) =>
      bare.createBareRepository(repositoryPath(name), files, {
        ...createOptions,
        message: createOptions.message ?? 'Initial fleet',
      }),
    addCommit: (name, branch, files, message) =>
      bare.addCommit(repositoryPath(name), branch, files, message),
    readFiles: (name, ref) => bare.readFiles(repositoryPath(name), ref),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      await rm(projectRoot, { recursive: true, force: true });
    },
  };
};
