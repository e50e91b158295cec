import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../functions/core/signature.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../support/fixtures.ts';
import { type RunningServe, startPromoterServe } from '../support/promoter-serve.ts';
import { fleetTree } from '../support/promotion-harness.ts';

/**
 * `promoter serve` promoting through a GitHub App: the secrets hold Flux's GitHub App keys and no
 * token, the fake GitHub Enterprise Server accepts no personal token at all, so the push and the
 * pull request (and the reconcile sweep's reads) can only have used the installation token the
 * App was issued.
 */
const APP_ID = 424242;
let server: FakeGitHubEnterprise;
let serve: RunningServe;
let url: string;
let logs: readonly Record<string, unknown>[] = [];
const keys = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
});

const waitFor: RunningServe['waitFor'] = (what, probe, ms) => serve.waitFor(what, probe, ms);

beforeAll(async () => {
  server = await startFakeGitHubEnterprise({ tokens: [] });
  const before = await fleetTree('before');
  await server.createRepository('example-org', 'fleet', before);
  await server.createRepository('example-org', 'fleet-prod', before);
  server.standIn.apps.registerApp(APP_ID, keys.publicKey, 'fleet-promoter');
  server.standIn.apps.install(APP_ID, 'example-org', ['fleet', 'fleet-prod']);
  const pipelines = readFixture('pipelines/podinfo.yaml').replaceAll(
    'https://github.com/',
    `${server.url}/`,
  );
  // As a Kubernetes secret holds them: strings, the key in PEM; no installation ID (looked up).
  const app = { githubAppID: String(APP_ID), githubAppPrivateKey: keys.privateKey };
  const secrets = {
    'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, ...app },
    'flux-system/prod-promotion-credentials': app,
  };
  serve = await startPromoterServe({ pipelines, secrets, args: ['--reconcile-interval', '1'] });
  url = serve.url;
  logs = serve.logs;
});

afterAll(async () => {
  await serve?.stop();
  await server?.close();
});

describe('promoter serve through a GitHub App, end to end', () => {
  it('pushes and opens the PR with one installation token, and logs neither it nor the key', async () => {
    // Prepare: the events of both staging targets (the gate waits for all), as Flux signs them.
    const events = ['podinfo-qa', 'podinfo-perf'].map((namespace) =>
      freshEvent('helmrelease-upgrade-succeeded.json').replace(
        '"namespace":"podinfo-dev"',
        `"namespace":"${namespace}"`,
      ),
    );

    // Act
    const statuses: number[] = [];
    for (const body of events) {
      const response = await fetch(`${url}/promotion/flux-system/podinfo/staging`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'X-Signature': signBody(body, FIXTURE_HMAC_KEY),
        },
        body,
      });
      statuses.push(response.status);
    }

    // Assess
    expect(statuses).toEqual([202, 202]);
    const pull = await waitFor(
      'the pull request',
      () => server.standIn.pullRequests('example-org', 'fleet-prod')[0],
    );
    expect(pull).toMatchObject({
      state: 'open',
      title: 'Promote flux-system/podinfo in prod to 6.5.0',
      head: 'promotion-flux-system-podinfo-prod',
    });
    expect(
      await server.readBranchFiles(
        'example-org',
        'fleet-prod',
        'promotion-flux-system-podinfo-prod',
      ),
    ).toEqual(await fleetTree('after'));
    // The reconcile sweep reads the PR with the worker's token.
    await waitFor('a sweep that read the PR', () =>
      logs.find(
        (line) =>
          line.message === 'reconcile sweep finished' && line.read === 1 && line.failed === 0,
      ),
    );
    // One token, asked for once, served git (the push), the API (the PR) and the sweep.
    const issued = server.standIn.apps.issued;
    expect(issued).toHaveLength(1);
    expect(server.gitRequests).toContain('POST /example-org/fleet-prod.git/git-receive-pack');
    expect(
      server.standIn.requestCount({
        method: 'POST',
        route: '/repos/{owner}/{repo}/pulls',
        status: 201,
      }),
    ).toBe(1);
    expect(
      server.standIn.requestCount({
        method: 'GET',
        route: '/repos/example-org/fleet-prod/installation',
      }),
    ).toBe(1);
    expect(
      server.standIn.requestCount({
        method: 'GET',
        route: '/repos/{owner}/{repo}/pulls/{pull_number}',
        status: 200,
      }),
    ).toBeGreaterThan(0);
    const text = JSON.stringify(logs);
    expect(text).not.toContain(issued[0]?.token ?? 'no token issued');
    expect(text).not.toContain(keys.privateKey.split('\n')[1] ?? 'no key');
  });
});
