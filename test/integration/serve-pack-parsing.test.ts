import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SmartHttpConfigRepository } from '../../functions/adapters/git/smart-http-config-repository.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { PromotionBranchRequest } from '../../functions/core/ports.ts';
import { editMarkers, isPromotableFile, needle } from '../../functions/core/promotion-markers.ts';
import { createServeServer, listen } from '../../functions/serve/server.ts';
import { createServeApp, type ServeApp } from '../../functions/wiring/serve.ts';
import { FIXTURE_HMAC_KEY, readFixture } from '../support/fixtures.ts';
import { type GitServer, startGitServer } from '../support/git-server.ts';
import { fleetTree } from '../support/promotion-harness.ts';

/**
 * `promoter serve` parses received packs in a worker thread (DESIGN.md section 14): while a
 * large, legal pack is read, the process's HTTP server still answers `/healthz`.
 */
const PROD = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };
const FILES = 8_000;

let git: GitServer;
let app: ServeApp;
let server: Server;
let url: string;

/** The fleet fixture and `FILES` more values files, each a little different. */
const largeFleet = async (): Promise<Record<string, string>> => {
  const files: Record<string, string> = await fleetTree('before');
  for (let i = 0; i < FILES; i++) {
    files[`clusters/team-${i % 40}/app-${i}/values.yaml`] =
      `replicaCount: ${i % 7}\nimage:\n  repository: registry.example.com/app-${i}\n  tag: "1.${i}.0"\nresources:\n  limits: { cpu: ${i % 5}00m, memory: ${i % 9}00Mi }\n`;
  }
  return files;
};

beforeAll(async () => {
  git = await startGitServer();
  const files = await largeFleet();
  await git.createRepository('fleet/warm-up', await fleetTree('before'));
  await git.createRepository('fleet/large', files, { repack: true });
  const folder = await mkdtemp(join(tmpdir(), 'serve-pack-parsing-'));
  await writeFile(join(folder, 'pipelines.yaml'), readFixture('pipelines/podinfo.yaml'));
  await writeFile(
    join(folder, 'secrets.json'),
    JSON.stringify({ 'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY } }),
  );
  app = await createServeApp(
    {
      pipelinesPath: join(folder, 'pipelines.yaml'),
      secretsPath: join(folder, 'secrets.json'),
      gitCacheDir: join(folder, 'git-cache'),
      dataDir: join(folder, 'data'),
      runWorker: false,
    },
    silentLogger,
  );
  server = createServeServer({
    webhook: app.webhook,
    logger: silentLogger,
    pipelinesApi: app.pipelinesApi,
  });
  url = await listen(server, 0, '127.0.0.1');
});

afterAll(async () => {
  await app?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await git?.close();
});

const promotion = (name: string): PromotionBranchRequest => ({
  repository: {
    provider: 'github',
    cloneUrl: git.repositoryUrl(name),
    apiBaseUrl: `${git.url}/api/v3`,
    owner: 'fleet',
    repo: name.split('/')[1] ?? '',
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

describe('serve parses packs off its event loop', () => {
  it('answers /healthz while a large pack is parsed in the worker thread', async () => {
    // Prepare: a first promotion starts the parsing thread.
    const repository = app.promotion.repository as SmartHttpConfigRepository;
    const parser = repository.packParser;
    await repository.preparePromotionBranch(promotion('fleet/warm-up'));
    let settled = false;
    let answeredWhileParsing = 0;
    let answered = 0;

    // Act
    const promoted = repository.preparePromotionBranch(promotion('fleet/large')).finally(() => {
      settled = true;
    });
    while (!settled) {
      const response = await fetch(`${url}/healthz`);
      await response.arrayBuffer();
      if (response.status === 200) answered += 1;
      if (response.status === 200 && parser.running > 0) answeredWhileParsing += 1;
    }
    const result = await promoted;

    // Assess
    expect(parser.mode).toBe('worker-thread');
    expect(result.status).toBe('pushed');
    expect(answered).toBeGreaterThan(0);
    expect(answeredWhileParsing).toBeGreaterThan(0);
  });
});
