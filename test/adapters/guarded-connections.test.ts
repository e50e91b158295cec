import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  SmartHttpConfigRepository,
  type SmartHttpConfigRepositoryOptions,
} from '../../functions/adapters/git/smart-http-config-repository.ts';
import { createGuardedAgents, guardedFetch } from '../../functions/adapters/guarded-http.ts';
import { createOctokitPullRequests } from '../../functions/adapters/octokit-pull-requests.ts';
import { ENV, readWorkerConfig } from '../../functions/config.ts';
import { isPromoterError, type PromoterError } from '../../functions/core/errors.ts';
import { SELF_HOSTED_ADDRESS_POLICY, strictAddressPolicy } from '../../functions/core/http.ts';
import type { PromotionBranchRequest, PullRequestRequest } from '../../functions/core/ports.ts';
import { editMarkers, isPromotableFile, needle } from '../../functions/core/promotion-markers.ts';
import { createWorkerDependencies } from '../../functions/wiring/aws-worker.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { fleetTree } from '../support/promotion-harness.ts';

/**
 * Where git and the GitHub client may connect (DESIGN.md section 14), checked on real
 * connections to a GitHub Enterprise stand-in on 127.0.0.1: AWS's strict policy refuses loopback
 * however the URL spells it, and the metadata address, unless the host is listed; serve's allows
 * loopback.
 */
const OWNER = 'example-org';
const PROD = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };
const LOOPBACK_SPELLINGS = ['127.1', '0x7f000001', 'localhost', '[::ffff:127.0.0.1]'];

let github: FakeGitHubEnterprise;
let cacheRoot: string;
let repositories = 0;

beforeAll(async () => {
  github = await startFakeGitHubEnterprise();
  cacheRoot = await mkdtemp(join(tmpdir(), 'promoter-guarded-'));
});

afterAll(async () => {
  await github?.close();
  await rm(cacheRoot, { recursive: true, force: true });
});

beforeEach(() => {
  github.standIn.reset();
});

/** A new repository on the stand-in, and its clone URL with `host` in place of 127.0.0.1. */
const repositoryAt = async (host: string): Promise<string> => {
  repositories += 1;
  const repo = `fleet-${repositories}`;
  await github.createRepository(OWNER, repo, await fleetTree('before'));
  return github.cloneUrl(OWNER, repo).replace('127.0.0.1', host);
};

const promotion = (cloneUrl: string): PromotionBranchRequest => ({
  repository: {
    provider: 'github',
    cloneUrl,
    apiBaseUrl: github.apiBaseUrl,
    owner: OWNER,
    repo: 'fleet',
  },
  credentials: { username: 'x-access-token', password: github.token },
  baseBranch: 'main',
  branch: 'promotion-flux-system-podinfo-prod',
  includePath: isPromotableFile,
  needle,
  edit: (_path, content) => editMarkers(content, PROD, '6.5.0'),
  commit: {
    message: 'Promote flux-system/podinfo in prod to 6.5.0',
    author: { name: 'Pipeline Promoter', email: 'promoter@example.com' },
  },
});

const adapter = async (
  options: SmartHttpConfigRepositoryOptions,
): Promise<SmartHttpConfigRepository> =>
  new SmartHttpConfigRepository({
    cacheDir: await mkdtemp(join(cacheRoot, 'adapter-')),
    retryBaseDelayMs: 1,
    ...options,
  });

const failure = async (promise: Promise<unknown>): Promise<PromoterError> => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isPromoterError(error)) throw new Error(`expected a PromoterError, got ${String(error)}`);
  return error;
};

describe('git connections', () => {
  it('are refused in AWS to loopback however it is spelled, before any request', async () => {
    // Prepare
    const refusals: PromoterError[] = [];
    const repository = await adapter({
      addressPolicy: strictAddressPolicy(),
      onRefusedConnection: (refusal) => refusals.push(refusal),
    });
    const urls = await Promise.all(LOOPBACK_SPELLINGS.map(repositoryAt));
    const served = github.gitRequests.length;

    // Act
    const errors = [];
    for (const url of urls)
      errors.push(await failure(repository.preparePromotionBranch(promotion(url))));

    // Assess
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'HOST_REFUSED', retryable: false });
      expect(error.message).toMatch(/loopback address\), which is refused/);
    }
    expect(refusals.length).toBeGreaterThanOrEqual(LOOPBACK_SPELLINGS.length);
    expect(github.gitRequests.length).toBe(served);
  });

  it('are refused in AWS to the metadata service without leaving the machine', async () => {
    // Prepare
    const repository = await adapter({ addressPolicy: strictAddressPolicy() });

    // Act
    const error = await failure(
      repository.preparePromotionBranch(promotion('https://169.254.169.254/fleet/podinfo.git')),
    );

    // Assess
    expect(error).toMatchObject({ code: 'HOST_REFUSED', retryable: false });
    expect(error.message).toMatch(/169\.254\.169\.254 \(link-local address\), which is refused/);
  });

  it('go through in AWS to a loopback host the stack lists', async () => {
    // Prepare: the IPv4 spellings (the IPv4-mapped one needs IPv6 on the machine).
    const spellings = ['127.1', '0x7f000001', 'localhost'];
    const urls = await Promise.all(spellings.map(repositoryAt));

    // Act
    const results = [];
    for (const [i, url] of urls.entries()) {
      const repository = await adapter({
        addressPolicy: strictAddressPolicy([spellings[i] ?? '']),
      });
      results.push(await repository.preparePromotionBranch(promotion(url)));
    }

    // Assess
    expect(results.map((result) => result.status)).toEqual(['pushed', 'pushed', 'pushed']);
  });

  it('go through in serve to loopback', async () => {
    // Prepare
    const url = await repositoryAt('localhost');
    const repository = await adapter({});

    // Act
    const result = await repository.preparePromotionBranch(promotion(url));

    // Assess
    expect(result.status).toBe('pushed');
  });
});

describe('GitHub API connections', () => {
  const pullRequest = (): PullRequestRequest => ({
    repository: github.repository(OWNER, 'fleet-api'),
    token: github.token,
    head: 'promotion-flux-system-podinfo-prod',
    base: 'main',
    title: 'Promote flux-system/podinfo in prod to 6.5.0',
    body: 'flux-system/podinfo/prod',
  });

  beforeAll(async () => {
    await github.createRepository(OWNER, 'fleet-api', await fleetTree('before'));
    await github.commitOnBranch(OWNER, 'fleet-api', 'promotion-flux-system-podinfo-prod', {
      'README.md': 'promoted\n',
    });
  });

  it('are refused in AWS to loopback once, not retried as a 500', async () => {
    // Prepare
    const refusals: PromoterError[] = [];
    const pullRequests = createOctokitPullRequests({
      addressPolicy: strictAddressPolicy(),
      onRefusedConnection: (refusal) => refusals.push(refusal),
      retryAfterBaseValue: 1,
      spaceWrites: false,
    });

    // Act
    const error = await failure(pullRequests.upsert(pullRequest()));

    // Assess
    expect(error).toMatchObject({ code: 'HOST_REFUSED', retryable: false });
    expect(refusals).toHaveLength(1);
    expect(github.standIn.requests).toEqual([]);
  });

  it('go through in AWS to a listed host, and in serve', async () => {
    // Prepare
    const listed = createOctokitPullRequests({
      addressPolicy: strictAddressPolicy(['127.0.0.1']),
      spaceWrites: false,
    });
    const serve = createOctokitPullRequests({ spaceWrites: false });

    // Act
    const opened = await listed.upsert(pullRequest());
    const updated = await serve.upsert(pullRequest());

    // Assess
    expect(opened.action).toBe('opened');
    expect(updated).toMatchObject({ action: 'updated', number: opened.number });
  });
});

describe('the AWS worker wiring', () => {
  const workerEnv = (extra: Record<string, string> = {}) =>
    readWorkerConfig({
      [ENV.tableName]: 'promoter',
      [ENV.queueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo',
      [ENV.gitCacheDir]: cacheRoot,
      AWS_REGION: 'eu-west-1',
      ...extra,
    });

  it('refuses loopback and the metadata service for git and GitHub, unless listed', async () => {
    // Prepare
    const strict = createWorkerDependencies(workerEnv()).promotion;
    const listed = createWorkerDependencies(
      workerEnv({ [ENV.allowedGitHosts]: 'localhost, 127.0.0.1' }),
    ).promotion;
    const url = await repositoryAt('localhost');

    // Act
    const git = await failure(strict.repository.preparePromotionBranch(promotion(url)));
    const metadata = await failure(
      strict.repository.preparePromotionBranch(
        promotion('https://169.254.169.254/latest/meta-data.git'),
      ),
    );
    const api = await failure(
      strict.pullRequests.upsert({
        repository: github.repository(OWNER, 'fleet-api'),
        token: github.token,
        head: 'promotion-flux-system-podinfo-prod',
        base: 'main',
        title: 'title',
        body: 'body',
      }),
    );
    const allowed = await listed.repository.preparePromotionBranch(promotion(url));

    // Assess
    expect([git.code, metadata.code, api.code]).toEqual([
      'HOST_REFUSED',
      'HOST_REFUSED',
      'HOST_REFUSED',
    ]);
    expect(allowed.status).toBe('pushed');
  });
});

describe('redirects', () => {
  it('keep every credential header with its origin: GitLab tokens too', async () => {
    // Prepare: one loopback server redirects to another (another port: another origin).
    const seen: Record<string, string | undefined>[] = [];
    const target = createServer((request, response) => {
      seen.push({
        authorization: request.headers.authorization,
        'private-token': request.headers['private-token'] as string | undefined,
        'job-token': request.headers['job-token'] as string | undefined,
        accept: request.headers.accept,
      });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const origin = createServer((_request, response) => {
      response.writeHead(301, { location: `${targetUrl}/api/v4/moved` }).end();
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    const fetch = guardedFetch(createGuardedAgents(SELF_HOSTED_ADDRESS_POLICY));

    // Act
    const response = await fetch(`${originUrl}/api/v4/projects/1`, {
      headers: {
        authorization: 'Bearer glpat-secret',
        'private-token': 'glpat-secret',
        'job-token': 'job-secret',
        accept: 'application/json',
      },
    }).finally(() => {
      target.close();
      origin.close();
    });

    // Assess
    expect(response.status).toBe(200);
    expect(seen).toEqual([
      {
        authorization: undefined,
        'private-token': undefined,
        'job-token': undefined,
        accept: 'application/json',
      },
    ]);
  });
});
