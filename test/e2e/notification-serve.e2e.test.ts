import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody, verifySignature } from '../../functions/core/signature.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../support/fixtures.ts';
import { type RunningServe, startPromoterServe } from '../support/promoter-serve.ts';

/**
 * `promoter serve --notify-url` with Weave's notification strategy, end to end: no git server,
 * no GitHub; a local receiver checks each POST's Flux-style signature and body. The first
 * hand-off is answered 503, so the promotion goes through serve's retry schedule before the
 * receiver takes it; the target's own deployment event then completes it.
 */

interface Received {
  readonly signed: boolean;
  readonly notice: string | undefined;
  readonly body: Record<string, unknown>;
}

let receiver: Server;
let receiverUrl: string;
let serve: RunningServe;
let url: string;
const received: Received[] = [];
let refuseNextHandOver = true;
let logs: readonly Record<string, unknown>[] = [];

const waitFor: RunningServe['waitFor'] = (what, probe, ms) => serve.waitFor(what, probe, ms);

/** The podinfo fixture promoting every environment by notification. */
const notificationManifest = (): string =>
  readFixture('pipelines/podinfo.yaml')
    .replace(
      /\n {10}pull-request:\n(?: {12}.*\n)+? {14}name: prod-promotion-credentials\n/,
      '\n          notification: {}\n',
    )
    .replace(
      /\n {6}pull-request:\n(?: {8}.*\n)+? {10}name: promotion-credentials\n/,
      '\n      notification: {}\n',
    );

const post = (path: string, body: string) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'X-Signature': signBody(body, FIXTURE_HMAC_KEY),
    },
    body,
  });

const eventFrom = (namespace: string, revision = '6.5.0'): string =>
  freshEvent('helmrelease-upgrade-succeeded.json')
    .replace('"namespace":"podinfo-dev"', `"namespace":"${namespace}"`)
    .replace('"revision":"6.5.1"', `"revision":"${revision}"`);

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const bytes = Buffer.concat(chunks);
      const notice = request.headers['x-promoter-notice'];
      if (notice === 'Promotion' && refuseNextHandOver) {
        refuseNextHandOver = false;
        response.writeHead(503).end();
        return;
      }
      received.push({
        signed: verifySignature(bytes, String(request.headers['x-signature']), [FIXTURE_HMAC_KEY])
          .valid,
        notice: Array.isArray(notice) ? notice[0] : notice,
        body: JSON.parse(bytes.toString('utf8')) as Record<string, unknown>,
      });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/promotions`;

  const pipelines = notificationManifest();
  const secrets = { 'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY } };
  // The retry after the receiver's 503 comes in milliseconds, not 30 s.
  serve = await startPromoterServe({
    pipelines,
    secrets,
    args: ['--notify-url', receiverUrl, '--retry-unit-ms', '2'],
  });
  url = serve.url;
  logs = serve.logs;
});

afterAll(async () => {
  await serve?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('promoter serve with the notification strategy, end to end', () => {
  it('hands the promotion to the receiver, signed, after a retry, and announces its lifecycle', async () => {
    // Prepare: staging's first target reports; the gate waits for the second.
    const first = await post('/promotion/flux-system/podinfo/staging', eventFrom('podinfo-qa'));

    // Act
    const second = await post('/promotion/flux-system/podinfo/staging', eventFrom('podinfo-perf'));
    const handOver = await waitFor('the hand-off', () =>
      received.find((entry) => entry.notice === 'Promotion'),
    );
    const notified = await waitFor('the notified state', () =>
      received.find((entry) => entry.body.state === 'notified'),
    );
    const deploy = await post('/promotion/flux-system/podinfo/prod', eventFrom('podinfo-prod'));
    const deployed = await waitFor('the deployed state', () =>
      received.find((entry) => entry.body.state === 'deployed'),
    );
    const status = await (await fetch(`${url}/pipelines/flux-system/podinfo`)).json();

    // Assess
    expect([first.status, second.status, deploy.status]).toEqual([202, 202, 200]);
    expect(received.every((entry) => entry.signed)).toBe(true);
    expect(handOver.body).toMatchObject({
      involvedObject: { kind: 'Pipeline', namespace: 'flux-system', name: 'podinfo' },
      reason: 'Promote',
      message: 'Promote pipeline flux-system/podinfo to prod with version 6.5.0',
      metadata: { environment: 'prod', version: '6.5.0' },
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      from: 'staging',
      to: 'prod',
      revision: '6.5.0',
      sourceEvent: {
        reason: 'UpgradeSucceeded',
        involvedObject: { kind: 'HelmRelease', name: 'podinfo' },
      },
    });
    expect(received.map((entry) => entry.body.state ?? 'hand-off')).toEqual([
      'waiting',
      'hand-off',
      'notified',
      'deployed',
    ]);
    expect(received[0]?.body).toMatchObject({
      reason: 'PromotionWaiting',
      waitingFor: { targets: { ready: 1, needed: 2 } },
    });
    expect(notified.notice).toBe('Promotion State Change');
    expect(deployed.body).toMatchObject({
      to: 'prod',
      revision: '6.5.0',
      reason: 'PromotionDeployed',
    });
    expect(logs.some((line) => line.code === 'NOTICE_UNAVAILABLE')).toBe(true);
    const prod = (
      status as { environments: { name: string; promotion: { state: string } | null }[] }
    ).environments.find((environment) => environment.name === 'prod');
    expect(prod?.promotion?.state).toBe('deployed');
  });
});
