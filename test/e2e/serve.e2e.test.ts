import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../functions/core/signature.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../support/fixtures.ts';
import { type RunningServe, startPromoterServe } from '../support/promoter-serve.ts';
import { fleetTree } from '../support/promotion-harness.ts';
import {
  deployStagingFromBothTargets,
  upgradeSucceededFrom,
  WAITING_FOR_THE_OTHER_STAGING_TARGET,
} from '../support/staging-targets.ts';

/**
 * `promoter serve` started as a user would (the CLI, files on disk), sent the fixture events
 * signed like Flux, promoting into repositories on the fake GitHub Enterprise Server.
 */
let server: FakeGitHubEnterprise;
let serve: RunningServe;
let url: string;
let logs: readonly Record<string, unknown>[] = [];
const REFUSED_TOKEN = 'ghp_refusedToken000000000000000000000000';

const waitFor: RunningServe['waitFor'] = (what, probe, ms) => serve.waitFor(what, probe, ms);

const post = (path: string, body: string, signature = signBody(body, FIXTURE_HMAC_KEY)) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'X-Signature': signature },
    body,
  });

beforeAll(async () => {
  server = await startFakeGitHubEnterprise();
  const before = await fleetTree('before');
  await server.createRepository('example-org', 'fleet', before);
  await server.createRepository('example-org', 'fleet-prod', before);
  const podinfo = readFixture('pipelines/podinfo.yaml').replaceAll(
    'https://github.com/',
    `${server.url}/`,
  );
  // The same pipeline under another name, whose GitHub token the server refuses.
  const refused = podinfo
    .replace('name: podinfo\n  namespace', 'name: refused\n  namespace')
    .replaceAll(/name: (prod-)?promotion-credentials/g, 'name: refused-credentials');
  const pipelines = `${podinfo}\n---\n${refused}`;
  const credentials = { 'hmac-key': FIXTURE_HMAC_KEY, token: server.token };
  const secrets = {
    'flux-system/promotion-credentials': credentials,
    'flux-system/prod-promotion-credentials': { token: server.token },
    'flux-system/refused-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: REFUSED_TOKEN },
  };
  serve = await startPromoterServe({ pipelines, secrets });
  url = serve.url;
  logs = serve.logs;
});

afterAll(async () => {
  await serve?.stop();
  await server?.close();
});

describe('promoter serve, end to end', () => {
  it('answers /healthz', async () => {
    const response = await fetch(`${url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('Flux-signed UpgradeSucceeded events from both staging targets end in a PR whose branch holds exactly after/', async () => {
    // Prepare: the fixture event as each staging target (podinfo-qa, podinfo-perf) sends it,
    // bytes as Flux writes them; the default gate `all` promotes once both reported.
    const send = async (namespace: string) => {
      const response = await post(
        '/promotion/flux-system/podinfo/staging',
        upgradeSucceededFrom(namespace),
      );
      return { status: response.status, answer: (await response.json()) as unknown };
    };

    // Act
    const [waiting, promoting] = await deployStagingFromBothTargets(send);

    // Assess
    expect(waiting).toEqual({ status: 202, answer: WAITING_FOR_THE_OTHER_STAGING_TARGET });
    expect(promoting.status).toBe(202);
    expect(promoting.answer).toMatchObject({
      promoted: true,
      promotion: { from: 'staging', to: 'prod', revision: '6.5.0' },
    });
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
    const line = logs.find(
      (entry) => entry.message === 'webhook request' && entry.outcome === 'accepted',
    );
    expect(line).toMatchObject({
      status: 202,
      pipeline: 'flux-system/podinfo',
      environment: 'staging',
      revision: '6.5.0',
    });
    expect(typeof line?.latencyMs).toBe('number');
  });

  it.each([
    [
      'helmrelease-rollback-succeeded.json',
      200,
      { promoted: false, reason: 'not-a-promoting-event' },
    ],
    ['helmrelease-upgrade-failed.json', 200, { promoted: false, reason: 'not-a-promoting-event' }],
  ])('%s is not promoted', async (file, status, answer) => {
    const response = await post('/promotion/flux-system/podinfo/dev', freshEvent(file));
    expect(response.status).toBe(status);
    expect(await response.json()).toEqual(answer);
  });

  it('a bad signature is refused with 401 and an oversized body with 413', async () => {
    const body = freshEvent('helmrelease-upgrade-succeeded.json');
    const unsigned = await post(
      '/promotion/flux-system/podinfo/dev',
      body,
      signBody(body, 'not-the-key'),
    );
    const big = await post('/promotion/flux-system/podinfo/dev', 'x'.repeat(300 * 1024));
    expect([unsigned.status, big.status]).toEqual([401, 413]);
  });

  it('a refused token fails the promotion permanently, and no secret reaches the log', async () => {
    // Act
    const body = freshEvent('helmrelease-upgrade-succeeded.json');
    const response = await post('/promotion/flux-system/refused/dev', body);

    // Assess
    expect(response.status).toBe(202);
    const finished = await waitFor('the refused promotion', () =>
      logs.find((line) => line.message === 'promotion finished' && line.status === 'failed'),
    );
    // The reason names what to fix, under a key Powertools' Logger keeps (not `message`).
    expect(finished).toMatchObject({
      code: 'GIT_AUTH_FAILED',
      reason: expect.stringContaining('git credentials were refused by'),
    });
    const text = JSON.stringify(logs);
    for (const secret of [FIXTURE_HMAC_KEY, server.token, REFUSED_TOKEN])
      expect(text).not.toContain(secret);
  });

  it('stops cleanly on one Ctrl-C, even when a wrapper delivers it twice at once', async () => {
    const exited = new Promise<number | null>((resolve) => serve.child.once('exit', resolve));
    serve.child.kill('SIGINT');
    serve.child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(logs.some((line) => line.message === 'stopped')).toBe(true);
  });
});
