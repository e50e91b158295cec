import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMIT_SETTINGS } from '../../functions/adapters/git/errors.ts';
import {
  SmartHttpConfigRepository,
  type SmartHttpConfigRepositoryOptions,
} from '../../functions/adapters/git/smart-http-config-repository.ts';
import { ENV } from '../../functions/config.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import type { PromotionBranchRequest } from '../../functions/core/ports.ts';
import { editMarkers, isPromotableFile, needle } from '../../functions/core/promotion-markers.ts';
import { appendDelta, type PackEntry, writeTestPack } from '../support/pack-writer.ts';
import { type SmartHttpStandIn, startSmartHttpStandIn } from '../support/smart-http-stand-in.ts';

/**
 * The git adapter against a hostile git server: a stand-in speaking smart HTTP that sends packs
 * written in the test. Each limit refuses its attack for good, naming the limit and its setting.
 */
const HEAD = 'c0ffee0000000000000000000000000000000001';
const PROD = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };

let server: SmartHttpStandIn;
let cacheRoot: string;

beforeAll(async () => {
  server = await startSmartHttpStandIn();
  cacheRoot = await mkdtemp(join(tmpdir(), 'promoter-git-limits-'));
});

afterAll(async () => {
  await server.close();
  await rm(cacheRoot, { recursive: true, force: true });
});

const request = (): PromotionBranchRequest => ({
  repository: {
    provider: 'github',
    cloneUrl: server.repositoryUrl,
    apiBaseUrl: 'http://127.0.0.1:9/api/v3',
    owner: 'fleet',
    repo: 'hostile',
  },
  credentials: { username: '', password: '' },
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

const refusal = async (
  pack: Buffer,
  options: SmartHttpConfigRepositoryOptions = {},
  stall = false,
): Promise<PromoterError> => {
  server.serve(pack, HEAD);
  if (stall) server.stall();
  const repository = new SmartHttpConfigRepository({
    cacheDir: await mkdtemp(join(cacheRoot, 'adapter-')),
    retryBaseDelayMs: 1,
    ...options,
  });
  try {
    const error = await repository.preparePromotionBranch(request()).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(PromoterError);
    return error as PromoterError;
  } finally {
    await repository.close();
  }
};

const chainPack = (depth: number): Buffer => {
  let content: Buffer = Buffer.from('replicas: 1\n');
  const entries: PackEntry[] = [{ kind: 'whole', type: 'blob', content }];
  for (let i = 0; i < depth; i++) {
    const step = appendDelta(content, Buffer.from(`# ${i}\n`));
    entries.push({ kind: 'ofs-delta', back: 1, delta: step.delta });
    content = step.result;
  }
  return writeTestPack(entries);
};

describe('bounded git work', () => {
  it('names the settings the stack and the worker use', () => {
    // Prepare
    const names = Object.values(LIMIT_SETTINGS).map((setting) => setting.env);

    // Act
    const known = new Set<string>(Object.values(ENV));

    // Assess
    expect(names.filter((name) => !known.has(name))).toEqual([]);
  });

  it('refuses an entry that inflates past the object limit from a few KB', async () => {
    // Prepare
    const bomb = writeTestPack([
      { kind: 'whole', type: 'blob', content: Buffer.alloc(8 * 1024 * 1024) },
    ]);

    // Act
    const error = await refusal(bomb, { maxObjectBytes: 1024 * 1024 });

    // Assess
    expect(bomb.length).toBeLessThan(16 * 1024);
    expect(error).toMatchObject({
      code: 'GIT_LIMIT_EXCEEDED',
      retryable: false,
      data: { limit: 'maxObjectBytes', setting: 'gitMaxObjectMb', url: server.repositoryUrl },
    });
    expect(error.message).toMatch(/8 MiB, over the 1 MiB limit on an inflated object/);
    expect(error.message).toMatch(
      /gitMaxObjectMb, PROMOTER_GIT_MAX_OBJECT_MB, serve --git-max-object-mb/,
    );
  });

  it('refuses an entry that says it is larger than the default 64 MiB before inflating it', async () => {
    // Prepare
    const liar = writeTestPack([
      {
        kind: 'whole',
        type: 'blob',
        content: Buffer.from('tiny'),
        declaredSize: 200 * 1024 * 1024,
      },
    ]);

    // Act
    const error = await refusal(liar);

    // Assess
    expect(error).toMatchObject({ code: 'GIT_LIMIT_EXCEEDED', data: { limit: 'maxObjectBytes' } });
    expect(error.message).toMatch(/200 MiB, over the 64 MiB limit/);
  });

  it('refuses a delta chain deeper than the default 50', async () => {
    // Prepare
    const pack = chainPack(60);

    // Act
    const error = await refusal(pack);

    // Assess
    expect(error).toMatchObject({
      code: 'GIT_LIMIT_EXCEEDED',
      retryable: false,
      data: { limit: 'maxDeltaDepth', setting: 'gitMaxDeltaDepth' },
    });
    expect(error.message).toMatch(/deeper than 50/);
  });

  it('reads a chain of 60 when the setting allows it (and then misses the commit)', async () => {
    // Prepare
    const pack = chainPack(60);

    // Act
    const error = await refusal(pack, { maxDeltaDepth: 60 });

    // Assess: past the limits, the pack simply lacks the advertised head.
    expect(error.code).toBe('GIT_UNAVAILABLE');
    expect(error.message).toMatch(/commit .* is missing after the fetch/);
  });

  it('refuses a first fetch whose answer passes the pack limit', async () => {
    // Prepare
    const large = writeTestPack([{ kind: 'whole', type: 'blob', content: randomBytes(2 << 20) }]);

    // Act
    const error = await refusal(large, { maxPackBytes: 1024 * 1024 });

    // Assess
    expect(error).toMatchObject({
      code: 'GIT_LIMIT_EXCEEDED',
      retryable: false,
      data: { limit: 'maxPackBytes', setting: 'gitMaxPackMb' },
    });
    expect(error.message).toMatch(/more than 1 MiB for one fetch/);
  });

  it('refuses a promotion that outlives its time budget (a server that never answers the fetch)', async () => {
    // Prepare
    const stall = true;

    // Act
    const error = await refusal(Buffer.alloc(0), { promotionTimeoutMs: 300 }, stall);

    // Assess
    expect(error).toMatchObject({
      code: 'GIT_LIMIT_EXCEEDED',
      retryable: false,
      data: { limit: 'promotionTimeout', setting: 'promotionTimeoutSeconds' },
    });
    expect(error.message).toMatch(/longer than its 0.3 s time budget/);
  });

  it('refuses the inflate bomb the same when packs are parsed in a worker thread', async () => {
    // Prepare
    const bomb = writeTestPack([
      { kind: 'whole', type: 'blob', content: Buffer.alloc(8 * 1024 * 1024) },
    ]);

    // Act
    const error = await refusal(bomb, {
      maxObjectBytes: 1024 * 1024,
      packParsing: 'worker-thread',
    });

    // Assess
    expect(error).toMatchObject({ code: 'GIT_LIMIT_EXCEEDED', data: { limit: 'maxObjectBytes' } });
  });
});
