import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';

/**
 * Bare git repositories for the test git servers (git-server.ts, fake-github-enterprise.ts),
 * created, changed and read with the git CLI: `fast-import` for commits, `ls-tree` plus one
 * `cat-file --batch` to read a tree. A handful of processes per call, no working trees; the
 * fast-import path is tuned for repositories of 60,000 files (bench/promotion.bench.ts).
 */

/** The files of a commit, by path. */
export type FileTree = Readonly<Record<string, string | Buffer>>;

/** What a commit changes, by path: new content, or `null` to delete the path. */
export type FileChanges = Readonly<Record<string, string | Buffer | null>>;

export interface RunResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

const AUTHOR_NAME = 'Fleet Admin';
const AUTHOR_EMAIL = 'fleet@example.com';

/** No system or global configuration, no prompts, and a fixed identity for commits. */
const gitEnvironment = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: AUTHOR_NAME,
  GIT_AUTHOR_EMAIL: AUTHOR_EMAIL,
  GIT_COMMITTER_NAME: AUTHOR_NAME,
  GIT_COMMITTER_EMAIL: AUTHOR_EMAIL,
});

/**
 * Runs git with `args` in `cwd`, feeding `input`: a Buffer, a string, or chunks (written as
 * the pipe drains, so a generator is produced while git reads it). `env` adds variables.
 */
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

/** Runs git like runGit and returns its trimmed stdout; throws when git fails. */
export const mustGit = async (
  cwd: string,
  args: readonly string[],
  input?: Buffer | string | Iterable<Buffer | string>,
  env?: NodeJS.ProcessEnv,
): Promise<string> => {
  const result = await runGit(cwd, args, input, env);
  if (result.code !== 0) {
    throw new Error(`git ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout.toString('utf8').trim();
};

const data = (content: string | Buffer): Buffer[] => {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return [Buffer.from(`data ${bytes.length}\n`), bytes, Buffer.from('\n')];
};

/** A path as fast-import reads it: as is, unless it must be quoted. */
const quotePath = (path: string): string => {
  if (path === '' || path.startsWith('/')) {
    throw new Error(`Unsupported path in a test repository: ${JSON.stringify(path)}`);
  }
  return path.startsWith('"') || path.includes('\n') ? JSON.stringify(path) : path;
};

/**
 * A `git fast-import` stream of one commit on `branch` (on top of `from` when given), then
 * `done`, in chunks of about 1 MiB.
 */
function* fastImportCommit(
  branch: string,
  files: FileChanges,
  message: string,
  from: string | undefined,
  time: number,
): Generator<Buffer> {
  yield Buffer.from(
    `commit refs/heads/${branch}\ncommitter ${AUTHOR_NAME} <${AUTHOR_EMAIL}> ${time} +0000\n`,
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
  batch.push(Buffer.from('\ndone\n'));
  yield Buffer.concat(batch);
}

/** Commit times: a minute apart, so that commits of the same files still differ. */
let clock = 1_700_000_000;

// glibc returns memory to the system after each of fast-import's many small frees: on a big
// import that is most of its time (hundreds of thousands of brk calls). A trim threshold and a
// top pad make a 60,000-file import take about 2 s instead of 7 s.
const FAST_IMPORT_ENV = { MALLOC_TRIM_THRESHOLD_: '1073741824', MALLOC_TOP_PAD_: '268435456' };

const fastImport = (
  path: string,
  branch: string,
  files: FileChanges,
  message: string,
  from: string | undefined,
): Promise<string> => {
  clock += 60;
  return mustGit(
    path,
    ['fast-import', '--quiet', '--done', '--force'],
    fastImportCommit(branch, files, message, from, clock),
    FAST_IMPORT_ENV,
  );
};

export interface CreateBareRepositoryOptions {
  /** The branch that holds the commit, and HEAD. @default 'main' */
  readonly branch?: string;
  /** @default 'Initial commit' */
  readonly message?: string;
  /** Pack it as a git host would (deltas computed once, not at every fetch). @default false */
  readonly repack?: boolean;
}

/**
 * Creates the bare repository `path` (and its parent directories) with one commit holding
 * `files`, HEAD on its branch. Returns the commit id.
 */
export const createBareRepository = async (
  path: string,
  files: FileTree,
  options: CreateBareRepositoryOptions = {},
): Promise<string> => {
  const branch = options.branch ?? 'main';
  await mkdir(dirname(path), { recursive: true });
  await mustGit(dirname(path), ['init', '--quiet', '--bare', `--initial-branch=${branch}`, path]);
  await fastImport(path, branch, files, options.message ?? 'Initial commit', undefined);
  if (options.repack === true) await mustGit(path, ['repack', '-a', '-d', '-q']);
  return mustGit(path, ['rev-parse', `refs/heads/${branch}`]);
};

/** The commit id `ref` names in the repository, or undefined when either does not exist. */
export const resolveRef = async (path: string, ref: string): Promise<string | undefined> => {
  const result = await runGit(path, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).catch(
    () => undefined,
  );
  return result?.code === 0 ? result.stdout.toString('utf8').trim() : undefined;
};

/**
 * Adds a commit on `branch` that writes `files` (`null` deletes a path), on top of the branch,
 * or of HEAD when the branch does not exist yet. Returns the commit id.
 */
export const addCommit = async (
  path: string,
  branch: string,
  files: FileChanges,
  message = 'Upstream change',
): Promise<string> => {
  const from = (await resolveRef(path, `refs/heads/${branch}`)) ?? (await resolveRef(path, 'HEAD'));
  await fastImport(path, branch, files, message, from);
  return mustGit(path, ['rev-parse', `refs/heads/${branch}`]);
};

/** Every file of `ref` (a branch, or a commit id) as UTF-8 text, by path; throws when none. */
export const readFiles = async (path: string, ref: string): Promise<Record<string, string>> => {
  const listing = await runGit(path, ['ls-tree', '-r', '-z', '--full-tree', ref]);
  if (listing.code !== 0) {
    throw new Error(`No ${ref} in ${path}: ${listing.stderr.trim()}`);
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
    const size = Number(batch.stdout.subarray(offset, headerEnd).toString('latin1').split(' ')[2]);
    files[entry.path] = batch.stdout.subarray(headerEnd + 1, headerEnd + 1 + size).toString('utf8');
    offset = headerEnd + 1 + size + 1;
  }
  return files;
};
