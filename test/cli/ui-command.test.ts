import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  readAll,
  type SignedApiStandIn,
  STAND_IN_CREDENTIALS,
  startSignedApiStandIn,
} from '../support/signed-api-stand-in.ts';
import { type PromoterProcess, startUi } from '../support/status-page-browser.ts';

/**
 * `promoter ui` as a user runs it (the CLI, static credentials in the environment) in front of
 * a loopback stand-in for the AWS API that checks every request's SigV4 signature as API
 * Gateway does (test/support/signed-api-stand-in.ts).
 */
const ACCESS_KEY = STAND_IN_CREDENTIALS.accessKeyId;
const REGION = 'eu-central-1';

let api: SignedApiStandIn;
let apiUrl: string;
let received: SignedApiStandIn['received'];
let ui: PromoterProcess;
let uiUrl: string;

/** A GET with a Host header of our choosing (fetch sets Host from the URL): DNS rebinding. */
const getWithHost = (url: string, host: string): Promise<{ status: number; text: string }> =>
  new Promise((resolve, reject) => {
    const sent = request(url, { headers: { host } }, async (answer) => {
      resolve({ status: answer.statusCode ?? 0, text: (await readAll(answer)).toString('utf8') });
    });
    sent.once('error', reject);
    sent.end();
  });

beforeAll(async () => {
  api = await startSignedApiStandIn(REGION);
  apiUrl = api.url;
  received = api.received;
  const started = await startUi(apiUrl, REGION);
  ui = started.process;
  uiUrl = started.url;
});

afterAll(async () => {
  await ui?.stop();
  await api?.close();
});

describe('promoter ui: the status page of the AWS API, signed like kubectl proxy', () => {
  it('renders the page from signed reads of GET /pipelines and GET /freezes', async () => {
    // Prepare
    received.length = 0;

    // Act
    const response = await fetch(`${uiUrl}/`);
    const html = await response.text();

    // Assess
    expect(response.status).toBe(200);
    expect(html).toContain('flux-system/podinfo');
    expect(html).toContain('awaiting-approval');
    expect(html).toContain('Approve 6.5.0 into prod');
    expect(received.map(({ method, path }) => `${method} ${path}`).sort()).toEqual([
      'GET /prod/freezes',
      'GET /prod/pipelines',
    ]);
    for (const request of received) {
      expect(request.verified).toBe(true);
      expect(request.authorization).toMatch(
        new RegExp(
          `^AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/\\d{8}/${REGION}/execute-api/aws4_request, SignedHeaders=`,
        ),
      );
    }
  });

  it("forwards the page's approval with its body, signed, and hands back the API's answer", async () => {
    // Prepare
    received.length = 0;
    const body = JSON.stringify({ revision: '6.5.0' });

    // Act
    const response = await fetch(
      `${uiUrl}/pipelines/flux-system/podinfo/environments/prod/approval`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body },
    );

    // Assess
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({
      approved: { revision: '6.5.0', approvedBy: expect.stringMatching(/^arn:aws:iam::/) },
    });
    expect(received).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/prod/pipelines/flux-system/podinfo/environments/prod/approval',
        body,
        verified: true,
      }),
    ]);
  });

  it('refuses, without signing or forwarding, requests from another origin, another Host, or to other routes', async () => {
    // Prepare
    received.length = 0;
    const approval = `${uiUrl}/pipelines/flux-system/podinfo/environments/prod/approval`;

    // Act
    const crossOrigin = await fetch(approval, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: '{}',
    });
    const crossSite = await fetch(approval, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' },
      body: '{}',
    });
    const rebound = await getWithHost(`${uiUrl}/pipelines`, 'evil.example:80');
    const sync = await fetch(`${uiUrl}/pipelines`, { method: 'PUT', body: 'kind: List' });

    // Assess
    expect([crossOrigin.status, crossSite.status, rebound.status, sync.status]).toEqual([
      403, 403, 403, 404,
    ]);
    expect(((await crossOrigin.json()) as { error: string }).error).toMatch(/another origin/);
    expect(JSON.parse(rebound.text).error).toMatch(/not a loopback name/);
    expect(((await sync.json()) as { error: string }).error).toMatch(/forwards only/);
    expect(received).toEqual([]);
  });

  it('a signature the API refuses shows on the page as its answer, not as a broken page', async () => {
    // Prepare: the same API, reached through a ui with other credentials.
    const other = await startUi(apiUrl, REGION, 'not-the-secret-the-api-knows');
    try {
      const otherUrl = other.url;

      // Act
      const response = await fetch(`${otherUrl}/status-page/view`);
      const html = await response.text();

      // Assess
      expect(response.status).toBe(200);
      expect(html).toContain(
        'Could not read the pipelines: the API answered 403: The request signature we calculated does not match',
      );
    } finally {
      await other.process.stop();
    }
  });
});
