import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../../functions/adapters/dynamodb-table.ts';
import { ENV } from '../../functions/config.ts';
import { MAX_SYNC_BODY_BYTES } from '../../functions/core/pipelines-api.ts';
import { createFifoQueue, createTestTable } from '../support/aws-test-resources.ts';
import { readFixture } from '../support/fixtures.ts';
import {
  BILLION_LAUGHS,
  COMPACT_NESTING_BOMB,
  documents,
  NESTING_BOMB,
} from '../support/hostile-yaml.ts';
import { awsClientConfig } from '../support/moto-server.ts';

/**
 * The pipelines API Lambda handler with API Gateway HTTP API (payload 2.0, IAM authoriser)
 * events, on moto's DynamoDB: the function's settings come from the environment, as in AWS.
 */
type Handler = (
  event: APIGatewayProxyEventV2WithIAMAuthorizer,
) => Promise<APIGatewayProxyStructuredResultV2>;

const FIXTURE_FILES = [
  'invalid-no-hmac.yaml',
  'list-from-kubectl.yaml',
  'podinfo.yaml',
  'search-rfc-draft.yaml',
];
const ALL = FIXTURE_FILES.map((file) => readFixture(`pipelines/${file}`)).join('\n---\n');

interface EventOptions {
  readonly query?: string;
  readonly body?: string;
  readonly base64?: boolean;
  readonly stage?: string;
  readonly contentType?: string;
}

/** An HTTP API payload 2.0 event as API Gateway sends it after the IAM authoriser allowed it. */
const apiEvent = (
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  options: EventOptions = {},
): APIGatewayProxyEventV2WithIAMAuthorizer => {
  const stage = options.stage ?? '$default';
  const rawPath = stage === '$default' ? path : `/${stage}${path}`;
  const status = /^\/pipelines\/([^/]+)\/([^/]+)$/.exec(path);
  const routeKey = status === null ? `${method} /pipelines` : `${method} /pipelines/{ns}/{name}`;
  const now = new Date();
  const body =
    options.body === undefined
      ? undefined
      : options.base64
        ? Buffer.from(options.body).toString('base64')
        : options.body;
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: options.query ?? '',
    headers: {
      accept: '*/*',
      'content-length': String(options.body === undefined ? 0 : Buffer.byteLength(options.body)),
      ...(options.body === undefined
        ? {}
        : { 'content-type': options.contentType ?? 'application/yaml' }),
      host: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com',
      'user-agent': 'pipeline-promoter-cli',
      'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x-amz-date': '20261120T160101Z',
      'x-amzn-trace-id': 'Root=1-67891233-abcdef012345678912345678',
      'x-forwarded-for': '203.0.113.10',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
    },
    ...(options.query === undefined
      ? {}
      : { queryStringParameters: Object.fromEntries(new URLSearchParams(options.query)) }),
    ...(status === null
      ? {}
      : { pathParameters: { ns: status[1] as string, name: status[2] as string } }),
    requestContext: {
      accountId: '123456789012',
      apiId: 'a1b2c3d4e5',
      authorizer: {
        iam: {
          accessKey: 'ASIAEXAMPLEKEY000000',
          accountId: '123456789012',
          callerId: 'AROAEXAMPLEROLE00000:promoter-sync',
          cognitoIdentity: null,
          principalOrgId: 'o-example0000',
          userArn: 'arn:aws:sts::123456789012:assumed-role/pipeline-promoter-sync/promoter-sync',
          userId: 'AROAEXAMPLEROLE00000:promoter-sync',
        },
      },
      domainName: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'a1b2c3d4e5',
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.10',
        userAgent: 'pipeline-promoter-cli',
      },
      requestId: `${randomUUID()}`,
      routeKey,
      stage,
      time: '20/Nov/2026:16:01:01 +0000',
      timeEpoch: now.getTime(),
    },
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: options.base64 === true,
  };
};

const json = (result: APIGatewayProxyStructuredResultV2): Record<string, unknown> =>
  JSON.parse(result.body ?? '') as Record<string, unknown>;

/** Imports the handler module afresh with the function's environment (it wires at import). */
const loadHandler = async (tableName: string, queueUrl: string): Promise<Handler> => {
  vi.resetModules();
  vi.stubEnv(ENV.tableName, tableName);
  vi.stubEnv(ENV.queueUrl, queueUrl);
  vi.stubEnv(ENV.awsEndpoint, inject('motoEndpoint'));
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'testing');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'testing');
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
  const module = await import('../../functions/handlers/pipelines-api-lambda.ts');
  return module.handler;
};

describe('pipelines API Lambda handler (HTTP API payload 2.0, moto)', () => {
  let client: DynamoDBClient;
  let sqs: SQSClient;
  let tableName: string;
  let queueUrl: string;
  let handler: Handler;

  beforeAll(async () => {
    client = new DynamoDBClient(awsClientConfig(inject('motoEndpoint')));
    sqs = new SQSClient(awsClientConfig(inject('motoEndpoint')));
    tableName = await createTestTable(client, 'pipelines-api');
    queueUrl = await createFifoQueue(sqs, { namePrefix: 'approvals' });
    handler = await loadHandler(tableName, queueUrl);
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    client.destroy();
    sqs.destroy();
  });

  it('POST .../environments/prod/approval approves the waiting revision as the IAM caller and enqueues its job; a stale revision is a 422', async () => {
    // Prepare: a manual prod, waiting for approval at 6.5.0.
    const manual = readFixture('pipelines/podinfo.yaml')
      .replace('metadata:\n  name: podinfo', 'metadata:\n  name: gated')
      .replace(
        '      promotion:\n        strategy:',
        '      promotion:\n        manual: true\n        strategy:',
      );
    await handler(apiEvent('PUT', '/pipelines', { body: manual }));
    const state = new DynamoDbPromotionStateStore(createDocumentClient(client), tableName);
    const ref = { namespace: 'flux-system', name: 'gated' };
    const job = {
      version: 1 as const,
      id: 'job-gated-6.5.0',
      pipeline: ref,
      from: 'staging',
      to: 'prod',
      revision: '6.5.0',
      event: {
        timestamp: '2026-11-20T16:01:01Z',
        reason: 'UpgradeSucceeded',
        message: 'Helm upgrade succeeded',
        involvedObject: {
          kind: 'HelmRelease',
          namespace: 'podinfo-qa',
          name: 'podinfo',
          apiVersion: 'helm.toolkit.fluxcd.io/v2',
        },
      },
      receivedAt: '2026-11-20T16:01:02.000Z',
    };
    for (const namespace of ['podinfo-qa', 'podinfo-perf']) {
      await state.recordDeployment({
        pipeline: ref,
        environment: 'staging',
        target: `staging/${namespace}`,
        revision: '6.5.0',
        eventTimestamp: '2026-11-20T16:01:01Z',
        recordedAt: '2026-11-20T16:01:02.000Z',
      });
    }
    await state.putPromotion({
      pipeline: ref,
      environment: 'prod',
      revision: '6.5.0',
      state: 'awaiting-approval',
      jobId: job.id,
      from: 'staging',
      eventTimestamp: '2026-11-20T16:01:01.000Z',
      updatedAt: '2026-11-20T16:01:02.000Z',
      timeline: { approvalRequestedAt: '2026-11-20T16:01:02.000Z' },
      job,
    });
    const path = '/pipelines/flux-system/gated/environments/prod/approval';
    const post = (body: string) =>
      apiEvent('POST', path, { body, contentType: 'application/json' });

    // Act
    const stale = await handler(post('{"revision":"6.4.9"}'));
    const approved = await handler(post('{"revision":"6.5.0"}'));
    const messages = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
    );
    const record = await state.getPromotion(ref, 'prod');

    // Assess
    expect(stale.statusCode).toBe(422);
    expect(json(stale).error).toBe(
      'the promotion of flux-system/gated into prod waits for approval at 6.5.0, not 6.4.9: a newer revision replaced it',
    );
    expect(approved.statusCode).toBe(202);
    expect(json(approved)).toMatchObject({
      approved: {
        revision: '6.5.0',
        approvedBy: 'arn:aws:sts::123456789012:assumed-role/pipeline-promoter-sync/promoter-sync',
      },
      promoted: true,
    });
    expect(messages.Messages?.map((message) => JSON.parse(message.Body ?? '').id)).toEqual([
      job.id,
    ]);
    expect(record).toMatchObject({
      state: 'queued',
      approvedBy: 'arn:aws:sts::123456789012:assumed-role/pipeline-promoter-sync/promoter-sync',
    });
  });

  it('POST /freeze stores a freeze by the IAM caller, GET /freezes lists it, POST /unfreeze ends it', async () => {
    // Prepare
    const freeze = apiEvent('POST', '/freeze', {
      body: '{"environment":"prod","reason":"incident INC-9"}',
      contentType: 'application/json',
    });
    const noReason = apiEvent('POST', '/freeze', {
      body: '{"environment":"prod"}',
      contentType: 'application/json',
    });

    // Act
    const refused = await handler(noReason);
    const frozen = await handler(freeze);
    const listed = await handler(apiEvent('GET', '/freezes'));
    const unfrozen = await handler(
      apiEvent('POST', '/unfreeze', {
        body: '{"environment":"prod"}',
        contentType: 'application/json',
      }),
    );
    const again = await handler(
      apiEvent('POST', '/unfreeze', {
        body: '{"environment":"prod"}',
        contentType: 'application/json',
      }),
    );

    // Assess
    expect(refused.statusCode).toBe(400);
    expect(json(refused).error).toMatch(/^invalid body: reason: expected a reason/);
    expect(frozen.statusCode).toBe(201);
    expect(json(listed)).toEqual({
      freezes: [
        {
          environment: 'prod',
          reason: 'incident INC-9',
          by: 'arn:aws:sts::123456789012:assumed-role/pipeline-promoter-sync/promoter-sync',
          at: expect.any(String),
        },
      ],
    });
    expect(unfrozen.statusCode).toBe(200);
    expect(again.statusCode).toBe(404);
  });

  it('PUT /pipelines stores the valid pipelines and lists the invalid one; again: unchanged', async () => {
    // Prepare
    const first = apiEvent('PUT', '/pipelines', { body: ALL });
    const again = apiEvent('PUT', '/pipelines', { body: ALL, base64: true });

    // Act
    const created = await handler(first);
    const unchanged = await handler(again);

    // Assess
    expect(created.statusCode).toBe(200);
    expect(created.headers).toMatchObject({ 'content-type': 'application/json' });
    expect(json(created)).toMatchObject({
      counts: { created: 3, updated: 0, unchanged: 0, deleted: 0, invalid: 1 },
      created: ['flux-system/apps', 'flux-system/podinfo', 'shopping/search'],
      invalid: [{ id: 'flux-system/nohmac', errors: [expect.stringContaining('secretRef')] }],
    });
    expect(unchanged.statusCode).toBe(200);
    expect(json(unchanged)).toMatchObject({ counts: { created: 0, unchanged: 3, invalid: 1 } });
  });

  it('PUT /pipelines answers the nesting bombs and billion laughs per document, and syncs podinfo beside them', async () => {
    // Prepare
    const body = documents(
      NESTING_BOMB,
      BILLION_LAUGHS,
      readFixture('pipelines/podinfo.yaml'),
      COMPACT_NESTING_BOMB,
    );

    // Act
    const result = await handler(apiEvent('PUT', '/pipelines', { body, base64: true }));
    const podinfo = await handler(apiEvent('GET', '/pipelines/flux-system/podinfo'));

    // Assess
    expect(result.statusCode).toBe(200);
    expect(json(result)).toMatchObject({
      counts: { invalid: 3 },
      invalid: [
        { id: 'input document 1', errors: [expect.stringContaining('more than 64 levels deep')] },
        { id: 'input document 2', errors: [expect.stringContaining('an alias bomb')] },
        { id: 'input document 4', errors: [expect.stringContaining('more than 64 levels deep')] },
      ],
    });
    expect(podinfo.statusCode).toBe(200);
  });

  it('GET /pipelines/{ns}/{name} answers the status, with deployments and promotions; 404 when unknown', async () => {
    // Prepare
    await handler(apiEvent('PUT', '/pipelines', { body: readFixture('pipelines/podinfo.yaml') }));
    const state = new DynamoDbPromotionStateStore(createDocumentClient(client), tableName);
    const ref = { namespace: 'flux-system', name: 'podinfo' };
    await state.recordDeployment({
      pipeline: ref,
      environment: 'staging',
      revision: '6.5.0',
      eventTimestamp: '2026-11-20T16:01:01Z',
      recordedAt: '2026-11-20T16:01:02.000Z',
    });
    await state.putPromotion({
      pipeline: ref,
      environment: 'prod',
      revision: '6.5.0',
      state: 'opened',
      jobId: 'job-1',
      from: 'staging',
      eventTimestamp: '2026-11-20T16:01:01.000Z',
      updatedAt: '2026-11-20T16:01:09.000Z',
      pullRequest: { number: 12, url: 'https://github.com/example-org/fleet-prod/pull/12' },
    });

    // Act
    const found = await handler(apiEvent('GET', '/pipelines/flux-system/podinfo'));
    const unknown = await handler(apiEvent('GET', '/pipelines/flux-system/nope'));

    // Assess
    expect(found.statusCode).toBe(200);
    expect(json(found)).toMatchObject({
      pipeline: 'flux-system/podinfo',
      environments: [
        { name: 'dev', deployed: null, promotion: null },
        { name: 'staging', deployed: { revision: '6.5.0' }, promotion: null },
        {
          name: 'prod',
          deployed: null,
          promotion: {
            revision: '6.5.0',
            state: 'opened',
            pullRequest: { number: 12, url: 'https://github.com/example-org/fleet-prod/pull/12' },
          },
        },
      ],
    });
    expect(unknown.statusCode).toBe(404);
    expect(json(unknown)).toEqual({ error: 'pipeline flux-system/nope not found' });
  });

  it('PUT /pipelines?prune=true deletes the pipelines absent from the body (named stage too)', async () => {
    // Prepare
    await handler(apiEvent('PUT', '/pipelines', { body: ALL }));
    const event = apiEvent('PUT', '/pipelines', {
      body: readFixture('pipelines/podinfo.yaml'),
      query: 'prune=true',
      stage: 'live',
    });

    // Act
    const result = await handler(event);
    const search = await handler(apiEvent('GET', '/pipelines/shopping/search'));

    // Assess
    expect(result.statusCode).toBe(200);
    expect(json(result)).toMatchObject({
      // flux-system/gated: the approval test's pipeline.
      counts: { deleted: 3, invalid: 0 },
      deleted: ['flux-system/apps', 'flux-system/gated', 'shopping/search'],
      prune: { requested: true, performed: true },
    });
    expect(search.statusCode).toBe(404);
  });

  it.each([
    [
      'an empty body',
      apiEvent('PUT', '/pipelines', { body: '  \n' }),
      400,
      /empty body: expected what `kubectl get pipelines/,
    ],
    ['no body', apiEvent('PUT', '/pipelines'), 400, /empty body/],
    [
      'a body that is not UTF-8',
      {
        ...apiEvent('PUT', '/pipelines'),
        body: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'),
        isBase64Encoded: true,
      },
      400,
      /not UTF-8/,
    ],
    [
      'prune=maybe',
      apiEvent('PUT', '/pipelines', { body: ALL, query: 'prune=maybe' }),
      400,
      /prune: expected true or false/,
    ],
    [
      'an unknown parameter',
      apiEvent('PUT', '/pipelines', { body: ALL, query: 'purne=true' }),
      400,
      /unknown query parameter "purne"/,
    ],
    [
      'a body over 4 MiB',
      apiEvent('PUT', '/pipelines', { body: `# ${'x'.repeat(MAX_SYNC_BODY_BYTES)}` }),
      413,
      /body over 4194304 bytes/,
    ],
    [
      'a base64 body over 4 MiB',
      apiEvent('PUT', '/pipelines', { body: `# ${'x'.repeat(MAX_SYNC_BODY_BYTES)}`, base64: true }),
      413,
      /body over/,
    ],
    ['DELETE /pipelines', apiEvent('DELETE', '/pipelines'), 405, /use GET or PUT/],
    [
      'DELETE /pipelines/{ns}/{name}',
      apiEvent('DELETE', '/pipelines/flux-system/podinfo'),
      405,
      /use GET/,
    ],
    ['another path', apiEvent('POST', '/pipeline'), 404, /not found/],
  ])('%s: %i with a clear error', async (_name, event, status, message) => {
    // Prepare: the event

    // Act
    const result = await handler(event);

    // Assess
    expect(result.statusCode).toBe(status);
    expect(String(json(result).error)).toMatch(message);
  });

  it('405 answers name the allowed method', async () => {
    // Prepare
    const event = apiEvent('DELETE', '/pipelines');

    // Act
    const result = await handler(event);

    // Assess
    expect(result.headers).toMatchObject({ allow: 'GET, PUT' });
  });

  it('the table unavailable: 503, retry later', async () => {
    // Prepare
    const broken = await loadHandler(`missing-${randomUUID()}`, queueUrl);

    // Act
    const result = await broken(apiEvent('PUT', '/pipelines', { body: ALL }));
    const status = await broken(apiEvent('GET', '/pipelines/flux-system/podinfo'));

    // Assess
    expect(result.statusCode).toBe(503);
    expect(json(result)).toEqual({ error: 'pipeline store temporarily unavailable, retry later' });
    expect(status.statusCode).toBe(503);
  });
});
