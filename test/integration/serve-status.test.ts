import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../functions/core/logger.ts';
import { signBody } from '../../functions/core/signature.ts';
import { createServeServer, listen } from '../../functions/serve/server.ts';
import { createServeApp, type ServeApp } from '../../functions/wiring/serve.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY, readFixture } from '../support/fixtures.ts';
import { type PromoterRun, runPromoter } from '../support/promoter-cli.ts';
import { fleetTree } from '../support/promotion-harness.ts';
import {
  deployStagingFromBothTargets,
  STAGING_TARGETS,
  upgradeSucceededFrom,
  WAITING_FOR_THE_OTHER_STAGING_TARGET,
} from '../support/staging-targets.ts';

/**
 * The status of a pipeline after an end-to-end promotion in `serve`: signed Flux events from
 * both staging targets, the in-process worker promoting into prod on git http-backend and the GitHub stand-in,
 * then `GET /pipelines/{ns}/{name}` and `promoter status` showing the deployment and the PR.
 */
const OWNER = 'example-org';

let github: FakeGitHubEnterprise;
let app: ServeApp;
let server: Server;
let url: string;

beforeAll(async () => {
  github = await startFakeGitHubEnterprise();
  const files = await fleetTree('before');
  await github.createRepository(OWNER, 'fleet', files);
  await github.createRepository(OWNER, 'fleet-prod', files);
  const folder = await mkdtemp(join(tmpdir(), 'serve-status-'));
  await writeFile(
    join(folder, 'pipelines.yaml'),
    readFixture('pipelines/podinfo.yaml').replaceAll('https://github.com/', `${github.url}/`),
  );
  await writeFile(
    join(folder, 'secrets.json'),
    JSON.stringify({
      'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: github.token },
      'flux-system/prod-promotion-credentials': { token: github.token },
    }),
  );
  app = await createServeApp(
    {
      pipelinesPath: join(folder, 'pipelines.yaml'),
      secretsPath: join(folder, 'secrets.json'),
      gitCacheDir: join(folder, 'git-cache'),
      dataDir: join(folder, 'data'),
      retryUnitMs: 0.2,
      github: { spaceWrites: false, retryAfterBaseValue: 5 },
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
  await github?.close();
});

const promoterStatus = (args: string[]): Promise<PromoterRun> =>
  runPromoter(['status', ...args], { env: { AWS_EC2_METADATA_DISABLED: 'true' } });

describe('serve: pipeline status after an end-to-end promotion', () => {
  it('GET /pipelines/flux-system/podinfo shows the staging deployment and the prod PR; promoter status prints it', async () => {
    // Prepare
    const before = await fetch(`${url}/pipelines/flux-system/podinfo`);
    const beforeStatus = (await before.json()) as { environments: unknown[] };

    // Act: both staging targets report 6.5.0 (the default gate `all` waits for both).
    const reportedAt = new Map<string, string>();
    const deliveries = await deployStagingFromBothTargets(async (namespace) => {
      const at = new Date(Math.floor(Date.now() / 1000) * 1000);
      reportedAt.set(namespace, at.toISOString());
      const body = upgradeSucceededFrom(namespace, { at });
      const delivery = await fetch(`${url}/promotion/flux-system/podinfo/staging`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-signature': signBody(body, FIXTURE_HMAC_KEY),
        },
        body,
      });
      return { status: delivery.status, answer: (await delivery.json()) as unknown };
    });
    await app.queue.drain();
    const response = await fetch(`${url}/pipelines/flux-system/podinfo`);
    const status = (await response.json()) as Record<string, unknown>;
    const printed = await promoterStatus(['flux-system/podinfo', '--api', url]);

    // Assess
    const unreported = (cluster: string, namespace: string) => ({
      name: `${cluster}/${namespace}`,
      cluster,
      namespace,
      revision: null,
      at: null,
      ok: null,
    });
    expect(beforeStatus.environments).toEqual([
      {
        name: 'dev',
        deployed: null,
        targets: [unreported('dev', 'podinfo-dev')],
        promotion: null,
      },
      {
        name: 'staging',
        deployed: null,
        targets: STAGING_TARGETS.map((namespace) => unreported('staging', namespace)),
        promotion: null,
      },
      {
        name: 'prod',
        deployed: null,
        targets: [unreported('prod', 'podinfo-prod')],
        promotion: null,
      },
    ]);
    expect(deliveries).toEqual([
      { status: 202, answer: WAITING_FOR_THE_OTHER_STAGING_TARGET },
      {
        status: 202,
        answer: expect.objectContaining({
          promoted: true,
          promotion: expect.objectContaining({ from: 'staging', to: 'prod', revision: '6.5.0' }),
        }),
      },
    ]);
    const [pull] = github.standIn.pullRequests(OWNER, 'fleet-prod');
    const prUrl = `${github.url}/${OWNER}/fleet-prod/pull/${pull?.number}`;
    expect(response.status).toBe(200);
    expect(status).toMatchObject({
      pipeline: 'flux-system/podinfo',
      environments: [
        {
          name: 'dev',
          deployed: null,
          targets: [unreported('dev', 'podinfo-dev')],
          promotion: null,
        },
        {
          name: 'staging',
          deployed: { revision: '6.5.0' },
          targets: STAGING_TARGETS.map((namespace) => ({
            ...unreported('staging', namespace),
            revision: '6.5.0',
            at: reportedAt.get(namespace),
            ok: true,
          })),
          promotion: null,
        },
        {
          name: 'prod',
          deployed: null,
          targets: [unreported('prod', 'podinfo-prod')],
          promotion: {
            revision: '6.5.0',
            state: 'opened',
            waitingFor: null,
            approval: null,
            from: 'staging',
            pullRequest: { number: pull?.number, url: prUrl },
            failure: null,
          },
        },
      ],
    });
    expect(printed.stderr).toBe('');
    expect(printed.code).toBe(0);
    const prodRow = printed.stdout.split('\n').find((line) => line.startsWith('prod '));
    expect(prodRow?.split(/\s{2,}/)).toEqual([
      'prod',
      '-',
      '6.5.0',
      'opened',
      prUrl,
      expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    ]);
  });

  it('an unknown pipeline is 404; PUT /pipelines is 405 (serve reads its pipelines from files)', async () => {
    // Prepare: nothing

    // Act
    const unknown = await fetch(`${url}/pipelines/flux-system/nope`);
    const put = await fetch(`${url}/pipelines`, { method: 'PUT', body: 'kind: List\nitems: []\n' });
    const remove = await fetch(`${url}/pipelines/flux-system/podinfo`, { method: 'DELETE' });

    // Assess
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'pipeline flux-system/nope not found' });
    expect(put.status).toBe(405);
    expect(((await put.json()) as { error: string }).error).toMatch(
      /reads its pipelines from files/,
    );
    expect([remove.status, remove.headers.get('allow')]).toEqual([405, 'GET']);
  });
});
