import * as nodeFs from 'node:fs';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SmartHttpConfigRepository } from '../../functions/adapters/git/smart-http-config-repository.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import type { PromotionBranchRequest } from '../../functions/core/ports.ts';
import {
  editMarkers,
  isPromotableFile,
  type MarkerTarget,
  needle,
} from '../../functions/core/promotion-markers.ts';
import { FIXTURES } from '../support/fixtures.ts';
import { type GitServer, runGit, startGitServer } from '../support/git-server.ts';

const CREDENTIALS = { username: 'promoter', password: 'pr0moter-s3cret' };
const PROD: MarkerTarget = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };
const BRANCH = 'promotion-flux-system-podinfo-prod';

const readTree = (root: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => {
        const path = join(entry.parentPath, entry.name);
        return [relative(root, path), readFileSync(path, 'utf8')];
      })
      .sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1)),
  );

const BEFORE = readTree(join(FIXTURES, 'fleet-repo/before'));
const AFTER = readTree(join(FIXTURES, 'fleet-repo/after'));

let server: GitServer;
let cacheRoot: string;
let repositories = 0;

beforeAll(async () => {
  server = await startGitServer({ credentials: CREDENTIALS });
  cacheRoot = await mkdtemp(join(tmpdir(), 'promoter-git-cache-'));
});

afterAll(async () => {
  await server.close();
  await rm(cacheRoot, { recursive: true, force: true });
});

/** A fresh repository on the server holding `files` on main. */
const createRepository = async (
  files: Readonly<Record<string, string | Buffer>> = BEFORE,
): Promise<{ name: string; head: string }> => {
  repositories += 1;
  const name = `fleet/config-${repositories}`;
  const head = await server.createRepository(name, files);
  return { name, head };
};

const promotion = (
  name: string,
  overrides: {
    target?: MarkerTarget;
    revision?: string;
    baseBranch?: string;
    branch?: string;
    credentials?: { username: string; password: string };
  } = {},
): PromotionBranchRequest => {
  const target = overrides.target ?? PROD;
  const revision = overrides.revision ?? '6.5.0';
  return {
    repository: {
      provider: 'github',
      cloneUrl: server.repositoryUrl(name),
      apiBaseUrl: `${server.url}/api/v3`,
      owner: name.split('/')[0] ?? '',
      repo: name.split('/')[1] ?? '',
    },
    credentials: overrides.credentials ?? CREDENTIALS,
    baseBranch: overrides.baseBranch ?? 'main',
    branch: overrides.branch ?? BRANCH,
    includePath: isPromotableFile,
    needle,
    edit: (_path, content) => editMarkers(content, target, revision),
    commit: {
      message: `Promote ${target.namespace}/${target.name} in ${target.environment} to ${revision}`,
      author: { name: 'Pipeline Promoter', email: 'promoter@example.com' },
    },
  };
};

// Retries of reads wait a few milliseconds (test/adapters/git-read-retry.test.ts covers them).
const adapter = async (): Promise<SmartHttpConfigRepository> =>
  new SmartHttpConfigRepository({
    cacheDir: await mkdtemp(join(cacheRoot, 'adapter-')),
    now: () => new Date('2026-11-02T10:00:00Z'),
    retryBaseDelayMs: 2,
  });

const parentsOf = async (name: string, ref: string): Promise<string[]> =>
  (await server.git(name, ['rev-list', '--parents', '-n', '1', ref])).split(' ').slice(1);

const failure = async (promise: Promise<unknown>): Promise<PromoterError> => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PromoterError);
  return error as PromoterError;
};

describe('SmartHttpConfigRepository against a real git server', () => {
  it('promotes the fleet fixture: the branch holds exactly after/, one commit on the base head', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toEqual({
      status: 'pushed',
      baseCommit: head,
      commit: await server.resolve(name, BRANCH),
      changedFiles: ['clusters/prod/podinfo/release.yaml', 'clusters/prod/podinfo/vars.yml'],
    });
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
    expect(await parentsOf(name, BRANCH)).toEqual([head]);
    expect(await server.git(name, ['rev-list', '--count', `main..${BRANCH}`])).toBe('1');
    expect(await server.git(name, ['log', '-1', '--format=%an <%ae>|%cn|%ct|%B', BRANCH])).toBe(
      `Pipeline Promoter <promoter@example.com>|Pipeline Promoter|${Date.parse('2026-11-02T10:00:00Z') / 1000}|Promote flux-system/podinfo in prod to 6.5.0`,
    );
    expect(await server.resolve(name, 'main')).toBe(head);
    // The server's own consistency check passes on what was pushed.
    expect((await runGit(server.repositoryPath(name), ['fsck', '--strict'])).code).toBe(0);
  });

  it('a redelivered promotion (same base, same commit time) finds its commit there and pushes nothing', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    const request = promotion(name);
    const dated = {
      ...request,
      commit: { ...request.commit, time: new Date('2026-11-20T16:01:01Z') },
    };
    const first = await repository.preparePromotionBranch(dated);
    const pushesBefore = server.requests.filter((line) =>
      line.endsWith('/git-receive-pack'),
    ).length;

    // Act
    const second = await (await adapter()).preparePromotionBranch(dated);

    // Assess
    expect(second).toEqual(first);
    expect(server.requests.filter((line) => line.endsWith('/git-receive-pack'))).toHaveLength(
      pushesBefore,
    );
    expect(await server.git(name, ['log', '-1', '--format=%ct', BRANCH])).toBe(
      String(Date.parse('2026-11-20T16:01:01Z') / 1000),
    );
  });

  it('keeps every other byte: a byte order mark, CRLF, bytes that are not UTF-8', async () => {
    // Prepare
    const marker = '# {"$promotion": "flux-system:podinfo:prod"}';
    const bom = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(`kind: HelmRelease\r\nversion: 6.4.0 ${marker}\r\n`),
    ]);
    const latin1 = Buffer.concat([
      Buffer.from('# caf'),
      Buffer.from([0xe9]),
      Buffer.from(`\nversion: "6.4.0" ${marker}\n`),
    ]);
    const { name } = await createRepository({ 'bom.yaml': bom, 'latin1.yml': latin1 });
    const repository = await adapter();

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    const read = async (path: string) =>
      (await runGit(server.repositoryPath(name), ['cat-file', 'blob', `${BRANCH}:${path}`])).stdout;
    expect(await read('bom.yaml')).toEqual(
      Buffer.from(bom.toString('latin1').replace('6.4.0', '6.5.0'), 'latin1'),
    );
    expect(await read('latin1.yml')).toEqual(
      Buffer.from(latin1.toString('latin1').replace('6.4.0', '6.5.0'), 'latin1'),
    );
  });

  it('force-updates the branch to one new commit on the base head on every promotion', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    await repository.preparePromotionBranch(promotion(name, { revision: '6.4.5' }));

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
    expect(await parentsOf(name, BRANCH)).toEqual([head]);
  });

  it('answers unchanged, with the marked files, once the base holds the revision', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    await repository.preparePromotionBranch(promotion(name));
    const merged = await server.addCommit(
      name,
      'main',
      {
        'clusters/prod/podinfo/release.yaml': AFTER['clusters/prod/podinfo/release.yaml'] ?? '',
        'clusters/prod/podinfo/vars.yml': AFTER['clusters/prod/podinfo/vars.yml'] ?? '',
      },
      'Merge promotion',
    );
    const branchBefore = await server.resolve(name, BRANCH);

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toEqual({ status: 'unchanged', baseCommit: merged, markedFiles: 2 });
    expect(await server.resolve(name, BRANCH)).toBe(branchBefore);
  });

  it('answers unchanged with no marked files when no marker names the target', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    const target = { namespace: 'flux-system', name: 'podinfo', environment: 'qa' };

    // Act
    const result = await repository.preparePromotionBranch(promotion(name, { target }));

    // Assess
    expect(result).toEqual({ status: 'unchanged', baseCommit: head, markedFiles: 0 });
    expect(await server.resolve(name, BRANCH)).toBeUndefined();
  });

  it('starts again on the new head when the base moves before the push lands', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    let moved: string | undefined;
    server.beforeReceivePack = async () => {
      if (moved !== undefined) return;
      moved = await server.addCommit(name, 'main', {
        'clusters/prod/extra/release.yaml': 'x: 1\n',
      });
    };

    // Act
    const result = await repository.preparePromotionBranch(promotion(name)).finally(() => {
      server.beforeReceivePack = undefined;
    });

    // Assess
    expect(moved).toBeDefined();
    expect(result.status).toBe('pushed');
    expect(result.baseCommit).toBe(moved);
    expect(result.baseCommit).not.toBe(head);
    expect(await parentsOf(name, BRANCH)).toEqual([moved]);
    expect(await server.readFiles(name, BRANCH)).toEqual({
      ...AFTER,
      'clusters/prod/extra/release.yaml': 'x: 1\n',
    });
  });

  it('gives up with GIT_PUSH_REJECTED (retryable) when the base keeps moving', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = new SmartHttpConfigRepository({
      cacheDir: await mkdtemp(join(cacheRoot, 'adapter-')),
      maxAttempts: 2,
    });
    let pushes = 0;
    server.beforeReceivePack = async () => {
      pushes += 1;
      await server.addCommit(name, 'main', { [`moving/${pushes}.txt`]: `${pushes}\n` });
    };

    // Act
    const error = await failure(
      repository.preparePromotionBranch(promotion(name)).finally(() => {
        server.beforeReceivePack = undefined;
      }),
    );

    // Assess
    expect(error.code).toBe('GIT_PUSH_REJECTED');
    expect(error.retryable).toBe(true);
    expect(pushes).toBe(2);
  });

  it('reuses the warm cache: a second promotion after one upstream commit fetches only it', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    await repository.preparePromotionBranch(promotion(name, { revision: '6.4.9' }));
    const upstream = await server.addCommit(name, 'main', {
      'clusters/staging/podinfo/release.yaml': (
        BEFORE['clusters/staging/podinfo/release.yaml'] ?? ''
      ).replace('namespace: podinfo-qa', 'namespace: podinfo-staging'),
    });
    const directory = repository.cacheDirectoryFor(server.repositoryUrl(name));

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    expect(result.baseCommit).toBe(upstream);
    expect(await parentsOf(name, BRANCH)).toEqual([upstream]);
    const files = await server.readFiles(name, BRANCH);
    expect(files['clusters/prod/podinfo/vars.yml']).toBe(AFTER['clusters/prod/podinfo/vars.yml']);
    expect(files['clusters/staging/podinfo/release.yaml']).toContain('podinfo-staging');
    // Two packs: the first fetch's (the whole tree), then a small one with the upstream commit's
    // objects (the commit, the trees up to the root, the blob, and the delta bases that make the
    // thin pack whole). Both are valid for git.
    const packs = (await readdir(join(directory, 'objects/pack')))
      .filter((file) => file.endsWith('.pack'))
      .map((file) => join(directory, 'objects/pack', file));
    expect(packs).toHaveLength(2);
    const counts: number[] = [];
    for (const pack of packs) {
      const verify = await runGit(directory, ['verify-pack', '-v', pack]);
      expect(verify.code).toBe(0);
      const objects = verify.stdout
        .toString('utf8')
        .split('\n')
        .filter((line) => /^[0-9a-f]{40} /.test(line));
      counts.push(objects.length);
    }
    const [small, whole] = counts.sort((a, b) => a - b);
    expect(whole).toBe(17);
    expect(small).toBeGreaterThanOrEqual(6);
    expect(small).toBeLessThan(whole ?? 0);
  });

  it('follows a base whose history was rewritten upstream', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    await repository.preparePromotionBranch(promotion(name, { revision: '6.4.9' }));
    const tree = await server.git(name, ['rev-parse', 'main^{tree}']);
    const rewritten = await server.git(name, ['commit-tree', tree, '-m', 'Squashed history']);
    await server.git(name, ['update-ref', 'refs/heads/main', rewritten]);

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    expect(result.baseCommit).toBe(rewritten);
    expect(await parentsOf(name, BRANCH)).toEqual([rewritten]);
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
  });

  it('follows a base reset to a commit older than the one it fetched', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    await server.addCommit(name, 'main', { 'notes.txt': 'later\n' });
    await repository.preparePromotionBranch(promotion(name, { revision: '6.4.9' }));
    await server.git(name, ['update-ref', 'refs/heads/main', head]);

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    expect(result.baseCommit).toBe(head);
    expect(await parentsOf(name, BRANCH)).toEqual([head]);
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
  });

  it('leaves a cache directory git can read, and a new process resumes from it', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const cacheDir = await mkdtemp(join(cacheRoot, 'adapter-'));
    await new SmartHttpConfigRepository({ cacheDir }).preparePromotionBranch(
      promotion(name, { revision: '6.4.9' }),
    );
    const directory = new SmartHttpConfigRepository({ cacheDir }).cacheDirectoryFor(
      server.repositoryUrl(name),
    );
    const upstream = await server.addCommit(name, 'main', { 'notes.txt': 'hello\n' });
    // A fresh copy of the module stands for a new process: nothing in memory, the directory only.
    vi.resetModules();
    const fresh = await import('../../functions/adapters/git/smart-http-config-repository.ts');

    // Act
    const result = await new fresh.SmartHttpConfigRepository({
      cacheDir,
    }).preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    expect(result.baseCommit).toBe(upstream);
    expect(await server.readFiles(name, BRANCH)).toEqual({ ...AFTER, 'notes.txt': 'hello\n' });
    const check = await runGit(directory, ['cat-file', '-t', head]);
    expect(check.stdout.toString('utf8').trim()).toBe('commit');
    expect((await runGit(directory, ['cat-file', '-t', upstream])).stdout.toString().trim()).toBe(
      'commit',
    );
    const verify = await runGit(directory, ['fsck', '--no-dangling', upstream]);
    expect(verify.stderr).not.toMatch(/error|missing|broken/i);
    expect(verify.code).toBe(0);
  });

  it('starts from an empty cache when the cached pack is damaged', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const cacheDir = await mkdtemp(join(cacheRoot, 'adapter-'));
    const first = new SmartHttpConfigRepository({ cacheDir });
    await first.preparePromotionBranch(promotion(name, { revision: '6.4.9' }));
    const packDirectory = join(first.cacheDirectoryFor(server.repositoryUrl(name)), 'objects/pack');
    for (const file of await readdir(packDirectory)) {
      if (file.endsWith('.pack')) await writeFile(join(packDirectory, file), 'PACK garbage');
    }
    vi.resetModules();
    const fresh = await import('../../functions/adapters/git/smart-http-config-repository.ts');

    // Act
    const result = await new fresh.SmartHttpConfigRepository({
      cacheDir,
    }).preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toMatchObject({ status: 'pushed', baseCommit: head });
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
  });

  it('serialises concurrent promotions of one repository', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    const staging = { namespace: 'flux-system', name: 'podinfo', environment: 'staging' };

    // Act
    const [prod, stage] = await Promise.all([
      repository.preparePromotionBranch(promotion(name)),
      repository.preparePromotionBranch(
        promotion(name, { target: staging, branch: 'promotion-flux-system-podinfo-staging' }),
      ),
    ]);

    // Assess
    expect(prod.status).toBe('pushed');
    expect(stage.status).toBe('pushed');
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
    const staged = await server.readFiles(name, 'promotion-flux-system-podinfo-staging');
    expect(staged['clusters/prod/podinfo/vars.yml']).toContain(`podinfoTag: '6.5.0'`);
    expect(await parentsOf(name, 'promotion-flux-system-podinfo-staging')).toEqual([head]);
  });

  it('maps refused credentials to GIT_AUTH_FAILED without leaking them', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    const credentials = { username: 'promoter', password: 'wrong-password-123' };

    // Act
    const error = await failure(
      repository.preparePromotionBranch(promotion(name, { credentials })),
    );

    // Assess
    expect(error.code).toBe('GIT_AUTH_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(server.repositoryUrl(name));
    expect(error.message).toContain('main');
    expect(error.message).not.toContain('wrong-password-123');
    expect(JSON.stringify(error.data)).not.toContain('wrong-password-123');
  });

  it('maps a missing repository to GIT_REPOSITORY_NOT_FOUND', async () => {
    // Prepare
    const repository = await adapter();

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion('fleet/missing')));

    // Assess
    expect(error.code).toBe('GIT_REPOSITORY_NOT_FOUND');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(server.repositoryUrl('fleet/missing'));
  });

  it('maps a missing base branch to GIT_BRANCH_NOT_FOUND', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();

    // Act
    const error = await failure(
      repository.preparePromotionBranch(promotion(name, { baseBranch: 'release' })),
    );

    // Assess
    expect(error.code).toBe('GIT_BRANCH_NOT_FOUND');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('release');
    expect(error.message).toContain(server.repositoryUrl(name));
  });

  it('maps an unreachable server to GIT_UNAVAILABLE (retryable)', async () => {
    // Prepare
    const repository = await adapter();
    const request = promotion('fleet/any');
    const unreachable = {
      ...request,
      repository: { ...request.repository, cloneUrl: 'http://127.0.0.1:9/fleet/any.git' },
    };

    // Act
    const error = await failure(repository.preparePromotionBranch(unreachable));

    // Assess
    expect(error.code).toBe('GIT_UNAVAILABLE');
    expect(error.retryable).toBe(true);
  });
});

describe('SmartHttpConfigRepository without a disk cache', () => {
  it('promotes from memory alone: a warm promotion fetches only the new commit', async () => {
    // Prepare
    const { name } = await createRepository();
    const touched: string[] = [];
    const fs = new Proxy(nodeFs, {
      get: (target, property) => {
        touched.push(String(property));
        return Reflect.get(target, property);
      },
    });
    const repository = new SmartHttpConfigRepository({ cacheDir: false, fs, retryBaseDelayMs: 2 });
    await repository.preparePromotionBranch(promotion(name, { revision: '6.4.9' }));
    const upstream = await server.addCommit(name, 'main', { 'notes.txt': 'hello\n' });
    const fetchesBefore = server.requests.filter((line) => line.endsWith('/git-upload-pack'));

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toMatchObject({ status: 'pushed', baseCommit: upstream });
    expect(await server.readFiles(name, BRANCH)).toEqual({ ...AFTER, 'notes.txt': 'hello\n' });
    const fetches = server.requests.filter((line) => line.endsWith('/git-upload-pack'));
    expect(fetches.length - fetchesBefore.length).toBe(1);
    expect(() => repository.cacheDirectoryFor(server.repositoryUrl(name))).toThrow(/memory only/);
    expect(touched).toEqual([]);
  });
});

describe('SmartHttpConfigRepository behind redirects', () => {
  let redirector: Server;
  let redirectorUrl: string;
  /** Where the redirector sends each request: the path it was asked for, on `target`. */
  let target = '';

  beforeAll(async () => {
    redirector = createServer((request, response) => {
      const path = (request.url ?? '/').replace('/moved/', '/');
      request.resume();
      response.writeHead(request.method === 'POST' ? 307 : 301, { location: `${target}${path}` });
      response.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    redirector.closeAllConnections();
    await new Promise((resolve) => redirector.close(resolve));
  });

  const movedPromotion = (name: string): PromotionBranchRequest => {
    const request = promotion(name);
    return {
      ...request,
      repository: { ...request.repository, cloneUrl: `${redirectorUrl}/moved/${name}.git` },
    };
  };

  it('follows a redirect on the same scheme', async () => {
    // Prepare: a server that asks for no credentials (the redirect leaves the origin).
    const open = await startGitServer();
    const name = 'fleet/moved';
    const head = await open.createRepository(name, BEFORE);
    target = open.url;
    const repository = await adapter();

    // Act
    const result = await repository
      .preparePromotionBranch(movedPromotion(name))
      .finally(() => open.close().catch(() => undefined));

    // Assess
    expect(result).toMatchObject({ status: 'pushed', baseCommit: head });
  });

  it('sends no credentials to the origin a redirect leads to', async () => {
    // Prepare: the git server (another port, so another origin) asks for credentials.
    const { name } = await createRepository();
    target = server.url;
    const repository = await adapter();

    // Act
    const error = await failure(repository.preparePromotionBranch(movedPromotion(name)));

    // Assess
    expect(error).toMatchObject({ code: 'GIT_AUTH_FAILED', retryable: false });
  });

  it('refuses a redirect to another scheme (HOST_REFUSED)', async () => {
    // Prepare
    const { name } = await createRepository();
    target = server.url.replace('http://', 'https://');
    const repository = await adapter();

    // Act
    const error = await failure(repository.preparePromotionBranch(movedPromotion(name)));

    // Assess
    expect(error).toMatchObject({ code: 'HOST_REFUSED', retryable: false });
    expect(error.message).toMatch(/redirected to another scheme/);
  });
});
