import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type GitHttpBackendOptions, serveGit } from './git-http-backend.ts';

/**
 * A plain loopback git smart-HTTP server (`git http-backend` behind `serveGit`) over a temporary
 * project root, with helpers that create and inspect bare repositories through the git CLI.
 * Repositories are addressed as `owner/name` and served at `{url}/owner/name.git`.
 */
export interface GitServerOptions {
  /** When set, every request must carry these Basic credentials (else 401). */
  readonly credentials?: { readonly username: string; readonly password: string };
}

export type FileTree = Readonly<Record<string, string | Buffer>>;

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
  /** Adds a commit on `branch` that writes `files` (null deletes). Returns the commit id. */
  addCommit(
    name: string,
    branch: string,
    files: Readonly<Record<string, string | Buffer | null>>,
    message?: string,
  ): Promise<string>;
  /** The commit id `ref` names, or undefined when it does not exist. */
  resolve(name: string, ref: string): Promise<string | undefined>;
  /** Every file of `ref` (a branch, or a commit id) as UTF-8 text. */
  readFiles(name: string, ref: string): Promise<Record<string, string>>;
  /** Runs git in the bare repository and returns stdout (trimmed). */
  git(name: string, args: readonly string[], input?: Buffer | string): Promise<string>;
  close(): Promise<void>;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

const gitEnvironment = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? tmpdir(),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Fleet Admin',
  GIT_AUTHOR_EMAIL: 'fleet@example.com',
  GIT_COMMITTER_NAME: 'Fleet Admin',
  GIT_COMMITTER_EMAIL: 'fleet@example.com',
});

/** Runs git with `args` in `cwd`, feeding `input` (a Buffer, a string, or chunks). */
export const runGit = (
  cwd: string,
  args: readonly string[],
  input?: Buffer | string | Iterable<Buffer | string>,
  env: NodeJS.ProcessEnv = {},
): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: { ...gitEnvironment(), ...env }, stdio: 'pipe' });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr }));
    child.stdin.on('error', () => undefined);
    if (input === undefined) {
      child.stdin.end();
    } else if (typeof input === 'string' || Buffer.isBuffer(input)) {
      child.stdin.end(input);
    } else {
      void (async () => {
        for (const chunk of input) {
          if (!child.stdin.write(chunk)) {
            await new Promise<void>((done) => child.stdin.once('drain', () => done()));
          }
        }
        child.stdin.end();
      })();
    }
  });

const mustGit = async (
  cwd: string,
  args: readonly string[],
  input?: Buffer | string | Iterable<Buffer | string>,
  env?: NodeJS.ProcessEnv,
): Promise<string> => {
  const result = await runGit(cwd, args, input, env);
  if (result.code !== 0) {
    throw new Error(`git ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  }
  return result.stdout.toString('utf8').trim();
};

const data = (content: string | Buffer): Buffer[] => {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return [Buffer.from(`data ${bytes.length}\n`), bytes, Buffer.from('\n')];
};

const quotePath = (path: string): string =>
  /^[^"\n\\ ]+$/.test(path) && !path.startsWith('"') ? path : JSON.stringify(path);

/** A `git fast-import` stream of one commit on `branch` (on top of `from` when given). */
function* fastImportCommit(
  branch: string,
  files: Readonly<Record<string, string | Buffer | null>>,
  message: string,
  from: string | undefined,
  time: number,
): Generator<Buffer> {
  yield Buffer.from(
    `commit refs/heads/${branch}\ncommitter Fleet Admin <fleet@example.com> ${time} +0000\n`,
  );
  yield* data(message);
  if (from !== undefined) yield Buffer.from(`from ${from}\n`);
  const batch: Buffer[] = [];
  let size = 0;
  for (const [path, content] of Object.entries(files)) {
    const chunk =
      content === null
        ? [Buffer.from(`D ${quotePath(path)}\n`)]
        : [Buffer.from(`M 100644 inline ${quotePath(path)}\n`), ...data(content)];
    for (const part of chunk) {
      batch.push(part);
      size += part.length;
    }
    if (size > 1 << 20) {
      yield Buffer.concat(batch);
      batch.length = 0;
      size = 0;
    }
  }
  batch.push(Buffer.from('\n'));
  yield Buffer.concat(batch);
}

let clock = 1_700_000_000;

// glibc returns memory to the system after each of fast-import's many small frees: on a big
// import that is most of its time (hundreds of thousands of brk calls). A trim threshold and a
// top pad make a 60,000-file import take about 2 s instead of 7 s.
const FAST_IMPORT_ENV = { MALLOC_TRIM_THRESHOLD_: '1073741824', MALLOC_TOP_PAD_: '268435456' };

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
  const git = (name: string, args: readonly string[], input?: Buffer | string) =>
    mustGit(repositoryPath(name), args, input);
  const resolve = async (name: string, ref: string): Promise<string | undefined> => {
    const result = await runGit(repositoryPath(name), [
      'rev-parse',
      '--verify',
      '-q',
      `${ref}^{commit}`,
    ]);
    return result.code === 0 ? result.stdout.toString('utf8').trim() : undefined;
  };

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
    git,
    resolve,
    async createRepository(name, files, createOptions = {}) {
      const branch = createOptions.branch ?? 'main';
      const path = repositoryPath(name);
      await mkdir(dirname(path), { recursive: true });
      await mustGit(dirname(path), ['init', '-q', '--bare', '-b', branch, path]);
      clock += 60;
      await mustGit(
        path,
        ['fast-import', '--quiet', '--done'],
        [
          ...fastImportCommit(
            branch,
            files,
            createOptions.message ?? 'Initial fleet',
            undefined,
            clock,
          ),
          Buffer.from('done\n'),
        ],
        FAST_IMPORT_ENV,
      );
      await mustGit(path, ['symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
      // Pack it as a git host would (deltas computed once, not at every fetch).
      if (createOptions.repack === true) await mustGit(path, ['repack', '-a', '-d', '-q']);
      return mustGit(path, ['rev-parse', `refs/heads/${branch}`]);
    },
    async addCommit(name, branch, files, message = 'Upstream change') {
      const path = repositoryPath(name);
      const from = await resolve(name, `refs/heads/${branch}`);
      clock += 60;
      await mustGit(
        path,
        ['fast-import', '--quiet', '--done', '--force'],
        [...fastImportCommit(branch, files, message, from, clock), Buffer.from('done\n')],
        FAST_IMPORT_ENV,
      );
      return mustGit(path, ['rev-parse', `refs/heads/${branch}`]);
    },
    async readFiles(name, ref) {
      const path = repositoryPath(name);
      const listing = (await runGit(path, ['ls-tree', '-r', '-z', ref])).stdout.toString('utf8');
      const entries = listing
        .split('\0')
        .filter((line) => line !== '')
        .map((line) => {
          const tab = line.indexOf('\t');
          const [, , oid] = line.slice(0, tab).split(' ');
          return { path: line.slice(tab + 1), oid: oid ?? '' };
        });
      const batch = await runGit(
        path,
        ['cat-file', '--batch'],
        entries.map((entry) => `${entry.oid}\n`).join(''),
      );
      const files: Record<string, string> = {};
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
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      await rm(projectRoot, { recursive: true, force: true });
    },
  };
};
