import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  SmartHttpConfigRepository,
  type SmartHttpConfigRepositoryOptions,
} from '../../functions/adapters/git/smart-http-config-repository.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import type { PromotionBranchRequest } from '../../functions/core/ports.ts';
import { editMarkers, isPromotableFile, needle } from '../../functions/core/promotion-markers.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { FIXTURES } from '../support/fixtures.ts';
import { type GitServer, startGitServer } from '../support/git-server.ts';

const CREDENTIALS = { username: 'promoter', password: 'pr0moter-s3cret' };
const PROD = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };
const BRANCH = 'promotion-flux-system-podinfo-prod';
const UPLOAD_REFS = '/info/refs?service=git-upload-pack';
const RECEIVE_REFS = '/info/refs?service=git-receive-pack';
const UPLOAD = '/git-upload-pack';
const RECEIVE = '/git-receive-pack';

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
let proxy: FaultProxy;
let cacheRoot: string;
let repositories = 0;

beforeAll(async () => {
  server = await startGitServer({ credentials: CREDENTIALS });
  proxy = await startFaultProxy(server.url);
  cacheRoot = await mkdtemp(join(tmpdir(), 'promoter-git-retry-'));
});

afterAll(async () => {
  await proxy.close();
  await server.close();
  await rm(cacheRoot, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.reset();
});

const createRepository = async (): Promise<{ name: string; head: string }> => {
  repositories += 1;
  const name = `fleet/retry-${repositories}`;
  return { name, head: await server.createRepository(name, BEFORE) };
};

/** A promotion of `name` to 6.5.0 in prod, through the proxy. */
const promotion = (
  name: string,
  credentials: { username: string; password: string } = CREDENTIALS,
): PromotionBranchRequest => ({
  repository: {
    provider: 'github',
    cloneUrl: `${proxy.url}/${name}.git`,
    apiBaseUrl: `${proxy.url}/api/v3`,
    owner: 'fleet',
    repo: name.split('/')[1] ?? '',
  },
  credentials,
  baseBranch: 'main',
  branch: BRANCH,
  includePath: isPromotableFile,
  needle,
  edit: (_path, content) => editMarkers(content, PROD, '6.5.0'),
  commit: {
    message: 'Promote flux-system/podinfo in prod to 6.5.0',
    author: { name: 'Pipeline Promoter', email: 'promoter@example.com' },
  },
});

// Retry waits of 2, 8 and 16 ms: the schedule's shape without the test sleeping.
const adapter = async (
  options: SmartHttpConfigRepositoryOptions = {},
): Promise<SmartHttpConfigRepository> =>
  new SmartHttpConfigRepository({
    cacheDir: await mkdtemp(join(cacheRoot, 'adapter-')),
    now: () => new Date('2026-11-02T10:00:00Z'),
    retryBaseDelayMs: 2,
    ...options,
  });

const failure = async (promise: Promise<unknown>): Promise<PromoterError> => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PromoterError);
  return error as PromoterError;
};

describe('git reads are retried in process, pushes are not', () => {
  it('promotes through 503s and dropped connections on both advertisements and the fetch', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    proxy.inject({ path: UPLOAD_REFS, times: 2, fault: { kind: 'status', status: 503 } });
    proxy.inject({ path: RECEIVE_REFS, fault: { kind: 'drop', reset: true } });
    proxy.inject({ path: UPLOAD, fault: { kind: 'status', status: 502 } });
    proxy.inject({ path: UPLOAD, fault: { kind: 'drop' } });

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toMatchObject({ status: 'pushed', baseCommit: head });
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
    expect(proxy.pending()).toBe(0);
    // First contact: two 503s and the answer; then the check after the push.
    expect(proxy.count({ path: UPLOAD_REFS })).toBe(4);
    expect(proxy.count({ path: RECEIVE_REFS })).toBe(2);
    expect(proxy.count({ method: 'POST', path: UPLOAD })).toBe(3);
    expect(proxy.count({ method: 'POST', path: RECEIVE })).toBe(1);
  });

  it('fetches again when the fetch answer is cut short mid-pack', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    proxy.inject({ method: 'POST', path: UPLOAD, fault: { kind: 'truncate', bytes: 200 } });

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toMatchObject({ status: 'pushed', baseCommit: head });
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
    expect(proxy.count({ method: 'POST', path: UPLOAD })).toBe(2);
  });

  it('fetches again when the answer ends cleanly but without its closing flush', async () => {
    // Prepare
    const { name, head } = await createRepository();
    const repository = await adapter();
    proxy.inject({
      method: 'POST',
      path: UPLOAD,
      fault: { kind: 'truncate', bytes: 200, clean: true },
    });

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result).toMatchObject({ status: 'pushed', baseCommit: head });
    expect(await server.readFiles(name, BRANCH)).toEqual(AFTER);
    expect(proxy.count({ method: 'POST', path: UPLOAD })).toBe(2);
  });

  it('waits a short Retry-After in process', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    proxy.inject({
      path: UPLOAD_REFS,
      fault: { kind: 'status', status: 503, headers: { 'retry-after': '0' } },
    });

    // Act
    const result = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(result.status).toBe('pushed');
    expect(proxy.count({ path: UPLOAD_REFS })).toBe(3);
  });

  it('hands a longer Retry-After to the queue at once, with retryAfterSeconds', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    proxy.inject({
      path: UPLOAD_REFS,
      fault: { kind: 'status', status: 429, headers: { 'retry-after': '30' } },
    });

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion(name)));

    // Assess
    expect(error).toMatchObject({
      code: 'GIT_UNAVAILABLE',
      retryable: true,
      data: { status: 429, retryAfterSeconds: 30 },
    });
    expect(proxy.count({ path: UPLOAD_REFS })).toBe(1);
  });

  it('gives up after the retries with the error as it was (GIT_UNAVAILABLE, retryable)', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    proxy.inject({ path: UPLOAD_REFS, times: 10, fault: { kind: 'status', status: 503 } });

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion(name)));

    // Assess
    expect(error).toMatchObject({
      code: 'GIT_UNAVAILABLE',
      retryable: true,
      data: { status: 503 },
    });
    expect(error.data.retryAfterSeconds).toBeUndefined();
    expect(proxy.count({ path: UPLOAD_REFS })).toBe(4);
  });

  it('retries as many times as readRetries says', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter({ readRetries: 0 });
    proxy.inject({ method: 'POST', path: UPLOAD, fault: { kind: 'drop', reset: true } });

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion(name)));

    // Assess
    expect(error).toMatchObject({ code: 'GIT_UNAVAILABLE', retryable: true });
    expect(proxy.count({ method: 'POST', path: UPLOAD })).toBe(1);
  });

  it('does not retry a 503 on the push in process', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    proxy.inject({
      method: 'POST',
      path: RECEIVE,
      times: 5,
      fault: { kind: 'status', status: 503 },
    });

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion(name)));

    // Assess
    expect(error).toMatchObject({
      code: 'GIT_UNAVAILABLE',
      retryable: true,
      data: { status: 503 },
    });
    expect(proxy.count({ method: 'POST', path: RECEIVE })).toBe(1);
    expect(await server.resolve(name, BRANCH)).toBeUndefined();
  });

  it('does not retry a push whose answer was lost; the next try finds the branch pushed', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    proxy.inject({ method: 'POST', path: RECEIVE, fault: { kind: 'drop', after: true } });
    const error = await failure(repository.preparePromotionBranch(promotion(name)));
    const landed = await server.resolve(name, BRANCH);

    // Act
    const again = await repository.preparePromotionBranch(promotion(name));

    // Assess
    expect(error).toMatchObject({ code: 'GIT_UNAVAILABLE', retryable: true });
    expect(landed).toBeDefined();
    expect(again).toMatchObject({ status: 'pushed', commit: landed });
    expect(proxy.count({ method: 'POST', path: RECEIVE })).toBe(1);
  });

  it('does not retry refused credentials (401): one challenge answered, no more', async () => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    const wrong = { username: 'promoter', password: 'wrong-password-123' };

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion(name, wrong)));

    // Assess
    expect(error).toMatchObject({ code: 'GIT_AUTH_FAILED', retryable: false });
    // The request with the credentials and the answer to the server's challenge.
    expect(proxy.count({ path: UPLOAD_REFS })).toBe(2);
    expect(proxy.requests.every((request) => request.status === 401)).toBe(true);
  });

  it.each([
    [403, 'GIT_AUTH_FAILED'],
    [404, 'GIT_REPOSITORY_NOT_FOUND'],
  ])('does not retry a %i', async (status, code) => {
    // Prepare
    const { name } = await createRepository();
    const repository = await adapter();
    proxy.inject({ path: UPLOAD_REFS, times: 10, fault: { kind: 'status', status } });

    // Act
    const error = await failure(repository.preparePromotionBranch(promotion(name)));

    // Assess
    expect(error).toMatchObject({ code, retryable: false, data: { status } });
    expect(proxy.count({ path: UPLOAD_REFS })).toBe(1);
  });
});
