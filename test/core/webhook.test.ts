import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PromoterError } from '../../functions/core/errors.ts';
import type { FluxEvent } from '../../functions/core/flux-event.ts';
import { signBody } from '../../functions/core/signature.ts';
import {
  handleWebhookRequest,
  MAX_BODY_BYTES,
  normaliseHeaders,
  type WebhookRequest,
} from '../../functions/core/webhook.ts';
import { FIXTURE_HMAC_KEY, freshEvent } from '../support/fixtures.ts';
import { memorySecrets, webhookHarness } from '../support/webhook-harness.ts';

const PODINFO_DEV = '/promotion/flux-system/podinfo/dev';

const signed = (
  path: string,
  body: string,
  key = FIXTURE_HMAC_KEY,
  headers: Record<string, string> = {},
): WebhookRequest => ({
  method: 'POST',
  path,
  headers: { 'x-signature': signBody(body, key), 'content-type': 'application/json', ...headers },
  body: Buffer.from(body),
});

type EventJson = FluxEvent;

const upgrade = (patch: (event: EventJson) => void = () => {}): string => {
  const event = JSON.parse(freshEvent('helmrelease-upgrade-succeeded.json')) as EventJson;
  patch(event);
  return JSON.stringify(event);
};

describe('handleWebhookRequest: the answer table of DESIGN.md section 5', () => {
  it('202: a signed UpgradeSucceeded from dev enqueues a promotion to staging', async () => {
    // Prepare
    const harness = webhookHarness();
    const body = freshEvent('helmrelease-upgrade-succeeded.json');

    // Act
    const result = await handleWebhookRequest(signed(PODINFO_DEV, body), harness.deps);

    // Assess
    expect(result.status).toBe(202);
    expect(result.body).toEqual({
      promoted: true,
      promotion: {
        id: expect.stringMatching(/^[0-9a-f]{40}$/),
        pipeline: 'flux-system/podinfo',
        from: 'dev',
        to: 'staging',
        revision: '6.5.0',
      },
    });
    expect(harness.jobs).toHaveLength(1);
    expect(harness.jobs[0]).toMatchObject({
      version: 1,
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      from: 'dev',
      to: 'staging',
      revision: '6.5.0',
      event: { reason: 'UpgradeSucceeded' },
    });
    expect(
      await harness.state.listDeployments({ namespace: 'flux-system', name: 'podinfo' }),
    ).toMatchObject([{ environment: 'dev', revision: '6.5.0' }]);
    expect(harness.metrics.sum('WebhookRequests', { Outcome: 'accepted' })).toBe(1);
    expect(
      harness.metrics.sum('Deployments', {
        Pipeline: 'flux-system/podinfo',
        Application: 'podinfo',
        Environment: 'dev',
      }),
    ).toBe(1);
  });

  it('a repeated delivery is answered like the first and enqueues the same job id', async () => {
    const harness = webhookHarness();
    const request = signed(PODINFO_DEV, freshEvent('helmrelease-upgrade-succeeded.json'));
    const first = await handleWebhookRequest(request, harness.deps);
    const second = await handleWebhookRequest(request, harness.deps);
    expect(second).toEqual(first);
    expect(harness.jobs).toHaveLength(1);
  });

  it('reads a Kustomization revision from metadata["<group>/revision"]', async () => {
    const harness = webhookHarness();
    const body = freshEvent('kustomization-reconciliation-succeeded.json');
    const result = await handleWebhookRequest(
      signed('/promotion/flux-system/apps/dev', body),
      harness.deps,
    );
    expect(result.status).toBe(202);
    expect(result.revision).toBe('main@sha1:6b3d5c0e9f2a4b1c8d7e6f5a4b3c2d1e0f9a8b7c');
  });

  it('accepts the previous key during a rotation, and the legacy reason "info"', async () => {
    const harness = webhookHarness();
    const result = await handleWebhookRequest(
      signed('/promotion/shopping/search/dev', freshEvent('helmrelease-legacy-reason-info.json')),
      harness.deps,
    );
    expect(result).toMatchObject({
      status: 202,
      body: { promotion: { to: 'prod', revision: '0.13.4' } },
    });
  });

  it('405: not POST', async () => {
    const result = await handleWebhookRequest(
      { method: 'GET', path: PODINFO_DEV, headers: {}, body: Buffer.alloc(0) },
      webhookHarness().deps,
    );
    expect(result).toMatchObject({
      status: 405,
      headers: { allow: 'POST' },
      outcome: 'method-not-allowed',
    });
  });

  it('413: body over 256 KiB, or cut short by the shell', async () => {
    const harness = webhookHarness();
    const big = await handleWebhookRequest(
      signed(PODINFO_DEV, 'x'.repeat(MAX_BODY_BYTES + 1)),
      harness.deps,
    );
    const truncated = await handleWebhookRequest(
      { ...signed(PODINFO_DEV, ''), bodyTruncated: true },
      harness.deps,
    );
    expect([big.status, truncated.status]).toEqual([413, 413]);
  });

  it.each([
    ['/promotion/flux-system/podinfo'],
    ['/promotion/flux-system/podinfo/dev/extra'],
    ['/hooks/x'],
    ['/promotion/flux-system/unknown/dev'],
    ['/promotion/%E0%A4%A/podinfo/dev'],
  ])('404: %s', async (path) => {
    const harness = webhookHarness();
    const result = await handleWebhookRequest(
      signed(path, freshEvent('helmrelease-upgrade-succeeded.json')),
      harness.deps,
    );
    expect(result.status).toBe(404);
    expect(harness.jobs).toEqual([]);
  });

  it.each([
    ['missing', {}],
    ['malformed', { 'x-signature': 'sha256:abc' }],
    ['unknown algorithm', { 'x-signature': `sha1=${'a'.repeat(40)}` }],
    [
      'wrong key',
      { 'x-signature': signBody(freshEvent('helmrelease-upgrade-succeeded.json'), 'wrong') },
    ],
  ])(
    '401: signature %s, nothing else checked, nothing recorded but a metric',
    async (_name, headers) => {
      const harness = webhookHarness();
      const request = {
        method: 'POST',
        path: PODINFO_DEV,
        headers,
        body: Buffer.from('not even json'),
      };
      const result = await handleWebhookRequest(request, harness.deps);
      expect(result).toMatchObject({ status: 401, outcome: 'rejected-signature' });
      expect(harness.jobs).toEqual([]);
      expect(
        await harness.state.listDeployments({ namespace: 'flux-system', name: 'podinfo' }),
      ).toEqual([]);
      expect(harness.metrics.sum('WebhookRequests', { Outcome: 'rejected-signature' })).toBe(1);
    },
  );

  it('401 when the secret is missing, without saying so to the caller', async () => {
    const harness = webhookHarness({
      secrets: {
        get: async () => {
          throw new PromoterError('SECRET_NOT_FOUND', 'secret x not found');
        },
      },
    });
    const result = await handleWebhookRequest(
      signed(PODINFO_DEV, freshEvent('helmrelease-upgrade-succeeded.json')),
      harness.deps,
    );
    expect(result.status).toBe(401);
    expect(JSON.stringify(result.body)).not.toContain('secret x');
  });

  it('503 when the secret store is unavailable, so that Flux retries', async () => {
    const harness = webhookHarness({
      secrets: {
        get: async () => {
          throw new PromoterError('SECRET_UNAVAILABLE', 'throttled', { retryable: true });
        },
      },
    });
    const result = await handleWebhookRequest(
      signed(PODINFO_DEV, freshEvent('helmrelease-upgrade-succeeded.json')),
      harness.deps,
    );
    expect(result.status).toBe(503);
  });

  it('400: body not JSON, or not a Flux event, naming the failing field', async () => {
    const harness = webhookHarness();
    const notJson = await handleWebhookRequest(signed(PODINFO_DEV, '{oops'), harness.deps);
    const noObject = await handleWebhookRequest(
      signed(
        PODINFO_DEV,
        upgrade((event) => {
          Reflect.deleteProperty(event.involvedObject, 'name');
        }),
      ),
      harness.deps,
    );
    const badTime = await handleWebhookRequest(
      signed(
        PODINFO_DEV,
        upgrade((event) => {
          event.timestamp = 'yesterday';
        }),
      ),
      harness.deps,
    );
    expect(notJson).toMatchObject({ status: 400, body: { error: 'body is not JSON' } });
    expect(noObject).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('involvedObject.name') },
    });
    expect(badTime).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('timestamp') },
    });
  });

  it.each([
    [
      'environment not in the pipeline',
      '/promotion/flux-system/podinfo/qa',
      () => {},
      /environment "qa" is not in pipeline/,
    ],
    [
      'another kind',
      PODINFO_DEV,
      (event: EventJson) => {
        event.involvedObject.kind = 'Kustomization';
      },
      /is not the pipeline's app/,
    ],
    [
      'another name',
      PODINFO_DEV,
      (event: EventJson) => {
        event.involvedObject.name = 'other';
      },
      /is not the pipeline's app/,
    ],
    [
      'another API group',
      PODINFO_DEV,
      (event: EventJson) => {
        event.involvedObject.apiVersion = 'example.com/v2';
      },
      /is not the pipeline's app/,
    ],
    [
      'a namespace outside the environment',
      PODINFO_DEV,
      (event: EventJson) => {
        event.involvedObject.namespace = 'podinfo-prod';
      },
      /is not a target of environment dev \(targets: cluster dev namespace podinfo-dev\)/,
    ],
    [
      'no revision',
      PODINFO_DEV,
      (event: EventJson) => {
        event.metadata = { summary: 'x' };
      },
      /metadata\.revision/,
    ],
    [
      'an event older than 15 minutes',
      PODINFO_DEV,
      (event: EventJson) => {
        event.timestamp = new Date(Date.now() - 16 * 60_000).toISOString();
      },
      /older than the maximum event age/,
    ],
    [
      'an event from the future',
      PODINFO_DEV,
      (event: EventJson) => {
        event.timestamp = new Date(Date.now() + 6 * 60_000).toISOString();
      },
      /in the future/,
    ],
  ])('422: %s', async (_name, path, patch, error) => {
    const harness = webhookHarness();
    const result = await handleWebhookRequest(signed(path, upgrade(patch)), harness.deps);
    expect(result.status).toBe(422);
    expect(result.body.error).toMatch(error);
    expect(harness.jobs).toEqual([]);
  });

  it('accepts another version of the app API group', async () => {
    const result = await handleWebhookRequest(
      signed(
        PODINFO_DEV,
        upgrade((event) => {
          event.involvedObject.apiVersion = 'helm.toolkit.fluxcd.io/v2beta2';
        }),
      ),
      webhookHarness().deps,
    );
    expect(result.status).toBe(202);
  });

  it.each([['helmrelease-rollback-succeeded.json'], ['helmrelease-upgrade-failed.json']])(
    '200 not-a-promoting-event: %s',
    async (file) => {
      const harness = webhookHarness();
      const result = await handleWebhookRequest(
        signed(PODINFO_DEV, freshEvent(file)),
        harness.deps,
      );
      expect(result).toMatchObject({
        status: 200,
        body: { promoted: false, reason: 'not-a-promoting-event' },
      });
      expect(harness.jobs).toEqual([]);
    },
  );

  it('200 final-environment: the deployment is recorded, nothing enqueued', async () => {
    const harness = webhookHarness();
    const body = upgrade((event) => {
      event.involvedObject.namespace = 'podinfo-prod';
    });
    const result = await handleWebhookRequest(
      signed('/promotion/flux-system/podinfo/prod', body),
      harness.deps,
    );
    expect(result).toMatchObject({
      status: 200,
      body: { promoted: false, reason: 'final-environment' },
    });
    expect(harness.jobs).toEqual([]);
    expect(
      await harness.state.listDeployments({ namespace: 'flux-system', name: 'podinfo' }),
    ).toMatchObject([{ environment: 'prod', revision: '6.5.0' }]);
  });

  it('503 when the queue is down: the caller retries, nothing is lost', async () => {
    const harness = webhookHarness();
    const deps = {
      ...harness.deps,
      queue: {
        enqueue: async () => {
          throw new PromoterError('QUEUE_UNAVAILABLE', 'down', { retryable: true });
        },
      },
    };
    const result = await handleWebhookRequest(
      signed(PODINFO_DEV, freshEvent('helmrelease-upgrade-succeeded.json')),
      deps,
    );
    expect(result).toMatchObject({ status: 503, outcome: 'unavailable' });
  });
});

describe('handleWebhookRequest: one key per environment (DESIGN.md section 4)', () => {
  const KEYS = {
    approval: 'approval-key-0123456789',
    dev: 'dev-key-0123456789',
    staging: 'staging-key-0123456789',
    stagingOld: 'staging-old-key-0123456789',
  };
  const perEnvironment = () =>
    webhookHarness({
      secrets: memorySecrets({
        'flux-system/promotion-credentials': {
          'hmac-key': KEYS.approval,
          'hmac-key-dev': KEYS.dev,
          'hmac-key-staging': KEYS.staging,
          'hmac-key-staging-previous': KEYS.stagingOld,
          token: 'gh-token',
        },
      }),
    });
  const stagingEvent = () =>
    upgrade((event) => {
      event.involvedObject.namespace = 'podinfo-qa';
    });
  const PODINFO = { namespace: 'flux-system', name: 'podinfo' };

  it('202 for a dev event signed with the dev key', async () => {
    // Prepare
    const harness = perEnvironment();

    // Act
    const result = await handleWebhookRequest(
      signed(PODINFO_DEV, upgrade(), KEYS.dev),
      harness.deps,
    );

    // Assess
    expect(result).toMatchObject({ status: 202, body: { promotion: { from: 'dev' } } });
  });

  it('401 for a captured dev event replayed to /staging, and for a "staging" event the dev key signed', async () => {
    // Prepare
    const harness = perEnvironment();
    const captured = signed(PODINFO_DEV, upgrade(), KEYS.dev);

    // Act
    const replayed = await handleWebhookRequest(
      { ...captured, path: '/promotion/flux-system/podinfo/staging' },
      harness.deps,
    );
    const forged = await handleWebhookRequest(
      signed('/promotion/flux-system/podinfo/staging', stagingEvent(), KEYS.dev),
      harness.deps,
    );

    // Assess
    expect(replayed).toMatchObject({ status: 401, outcome: 'rejected-signature' });
    expect(forged).toMatchObject({ status: 401, outcome: 'rejected-signature' });
    expect(harness.jobs).toEqual([]);
    expect(await harness.state.listDeployments(PODINFO)).toEqual([]);
  });

  it("accepts staging's key and its previous one during a rotation", async () => {
    // Prepare
    const harness = perEnvironment();
    const path = '/promotion/flux-system/podinfo/staging';

    // Act
    const current = await handleWebhookRequest(
      signed(path, stagingEvent(), KEYS.staging),
      harness.deps,
    );
    const previous = await handleWebhookRequest(
      signed(path, stagingEvent(), KEYS.stagingOld),
      harness.deps,
    );

    // Assess
    expect([current.status, previous.status]).toEqual([202, 202]);
  });

  it('401 for the shared hmac-key on an environment that has its own; an environment without one still takes it', async () => {
    // Prepare
    const harness = perEnvironment();
    const prodEvent = upgrade((event) => {
      event.involvedObject.namespace = 'podinfo-prod';
    });

    // Act
    const dev = await handleWebhookRequest(
      signed(PODINFO_DEV, upgrade(), KEYS.approval),
      harness.deps,
    );
    const staging = await handleWebhookRequest(
      signed('/promotion/flux-system/podinfo/staging', stagingEvent(), KEYS.approval),
      harness.deps,
    );
    const prod = await handleWebhookRequest(
      signed('/promotion/flux-system/podinfo/prod', prodEvent, KEYS.approval),
      harness.deps,
    );

    // Assess
    expect([dev.status, staging.status]).toEqual([401, 401]);
    expect(prod).toMatchObject({ status: 200, body: { reason: 'final-environment' } });
  });
});

describe('handleWebhookRequest: unsigned requests cannot enumerate pipelines (DESIGN.md section 5)', () => {
  const unsigned = (path: string, headers: Record<string, string> = {}): WebhookRequest => ({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(upgrade()),
  });

  it('answers the same 401 for a known pipeline, an unknown one and a path that is no route, before any lookup', async () => {
    // Prepare
    const harness = webhookHarness();
    let lookups = 0;
    const deps = {
      ...harness.deps,
      pipelines: {
        get: async (ref: { namespace: string; name: string }) => {
          lookups += 1;
          return harness.deps.pipelines.get(ref);
        },
      },
    };

    // Act
    const answers = await Promise.all(
      [
        unsigned(PODINFO_DEV),
        unsigned('/promotion/flux-system/no-such-pipeline/dev'),
        unsigned('/promotion/no-such-namespace/podinfo/dev'),
        unsigned('/hooks/x'),
        unsigned(PODINFO_DEV, { 'x-signature': '  ' }),
      ].map((request) => handleWebhookRequest(request, deps)),
    );

    // Assess
    const first = answers[0];
    expect(first).toMatchObject({ status: 401, outcome: 'rejected-signature' });
    for (const answer of answers) expect(answer).toEqual(first);
    expect(lookups).toBe(0);
    expect(harness.metrics.sum('WebhookRequests', { Outcome: 'rejected-signature' })).toBe(5);
  });

  it('keeps the contract order for signed requests: unknown pipeline 404, known with a wrong key 401', async () => {
    // Prepare
    const harness = webhookHarness();
    const wrong = 'not-the-key-0123456789';

    // Act
    const unknown = await handleWebhookRequest(
      signed('/promotion/flux-system/no-such-pipeline/dev', upgrade(), wrong),
      harness.deps,
    );
    const known = await handleWebhookRequest(signed(PODINFO_DEV, upgrade(), wrong), harness.deps);

    // Assess
    expect(unknown.status).toBe(404);
    expect(known.status).toBe(401);
  });
});

describe('handleWebhookRequest: revisions that would write into a commit message', () => {
  it.each([
    ['a newline', '6.5.0\nSigned-off-by: mallory <m@example.com>'],
    ['a carriage return', '6.5.0\r'],
    ['a NUL', '6.5.0\u0000'],
    ['an escape sequence', '\u001b[31m6.5.0'],
    ['a line separator', '6.5.0\u2028x'],
  ])('422 for a revision with %s, naming the field', async (_name, revision) => {
    // Prepare
    const harness = webhookHarness();
    const body = upgrade((event) => {
      event.metadata = { revision };
    });

    // Act
    const result = await handleWebhookRequest(signed(PODINFO_DEV, body), harness.deps);

    // Assess
    expect(result).toMatchObject({
      status: 422,
      outcome: 'rejected-invalid',
      body: {
        error: 'metadata.revision: expected a revision without newlines or control characters',
      },
    });
    expect(harness.jobs).toEqual([]);
    expect(
      await harness.state.listDeployments({ namespace: 'flux-system', name: 'podinfo' }),
    ).toEqual([]);
  });

  it('names metadata["<group>/revision"] when the revision is there', async () => {
    // Prepare
    const harness = webhookHarness();
    const body = freshEvent('kustomization-reconciliation-succeeded.json').replace(
      /"kustomize\.toolkit\.fluxcd\.io\/revision":"[^"]*"/,
      '"kustomize.toolkit.fluxcd.io/revision":"main@sha1:abc\\ninjected"',
    );

    // Act
    const result = await handleWebhookRequest(
      signed('/promotion/flux-system/apps/dev', body),
      harness.deps,
    );

    // Assess
    expect(result.status).toBe(422);
    expect(result.body.error).toMatch(/^metadata\["kustomize\.toolkit\.fluxcd\.io\/revision"\]: /);
  });
});

describe('normaliseHeaders', () => {
  it('lower-cases header names, so that X-Signature and x-signature are the same header', async () => {
    const harness = webhookHarness();
    const body = freshEvent('helmrelease-upgrade-succeeded.json');
    const headers = normaliseHeaders({
      'X-SIGNATURE': signBody(body, FIXTURE_HMAC_KEY),
      'Content-Type': ['application/json'],
    });
    expect(headers).toEqual({
      'x-signature': signBody(body, FIXTURE_HMAC_KEY),
      'content-type': 'application/json',
    });
    const result = await handleWebhookRequest(
      { method: 'POST', path: PODINFO_DEV, headers, body: Buffer.from(body) },
      harness.deps,
    );
    expect(result.status).toBe(202);
  });
});

describe('handleWebhookRequest: properties', () => {
  const paths = fc.oneof(
    fc.constant(PODINFO_DEV),
    fc.constant('/promotion/shopping/search/dev'),
    fc.string().map((text) => `/promotion/${text}`),
    fc.string(),
  );
  const headers = fc.dictionary(fc.oneof(fc.constant('x-signature'), fc.string()), fc.string());

  it('random bodies and headers never give a 5xx and never enqueue without a valid signature', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('POST', 'GET', 'PUT'),
        paths,
        headers,
        fc.uint8Array({ maxLength: 2048 }),
        async (method, path, randomHeaders, body) => {
          const harness = webhookHarness();
          const result = await handleWebhookRequest(
            { method, path, headers: randomHeaders, body },
            harness.deps,
          );
          expect(result.status).toBeLessThan(500);
          expect(harness.jobs).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('signed random JSON bodies never give a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const harness = webhookHarness();
        const result = await handleWebhookRequest(
          signed(PODINFO_DEV, JSON.stringify(value) ?? 'null'),
          harness.deps,
        );
        expect([400, 422, 200]).toContain(result.status);
      }),
      { numRuns: 300 },
    );
  });
});
