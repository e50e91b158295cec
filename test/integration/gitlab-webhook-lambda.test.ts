import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbPipelineStore } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../../functions/adapters/dynamodb-table.ts';
import { createTestSecret, createTestTable } from '../support/aws-test-resources.ts';
import {
  gitlabHookHeaders,
  gitlabPodinfoPipeline,
  mergeRequestHook,
  openedMergeRequestPromotion,
} from '../support/gitlab-hooks.ts';
import { awsClientConfig } from '../support/moto-server.ts';

/**
 * The webhook Lambda handler's `POST /webhooks/gitlab` on moto (DynamoDB, Secrets Manager with
 * `{prefix}gitlab-webhook` holding the current and previous token): API Gateway HTTP API events
 * as the stack's route hands them over, the promotion moved in the table.
 */
const TOKEN = 'the-gitlab-webhook-token-of-the-stack';
const PREVIOUS = 'the-previous-gitlab-webhook-token';
const ref = openedMergeRequestPromotion.pipeline;

let state: DynamoDbPromotionStateStore;
let webhook: typeof import('../../functions/handlers/webhook-lambda.ts');

/** An API Gateway HTTP API (payload 2.0) event of `{method} /webhooks/gitlab`. */
const apiEvent = (
  body: string,
  headers: Record<string, string>,
  options: { readonly method?: string; readonly base64?: boolean } = {},
): APIGatewayProxyEventV2 => ({
  version: '2.0',
  routeKey: 'POST /webhooks/gitlab',
  rawPath: '/webhooks/gitlab',
  rawQueryString: '',
  headers,
  requestContext: {
    accountId: '123456789012',
    apiId: 'api',
    domainName: 'api.example.com',
    domainPrefix: 'api',
    http: {
      method: options.method ?? 'POST',
      path: '/webhooks/gitlab',
      protocol: 'HTTP/1.1',
      sourceIp: '34.74.90.64',
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: randomUUID(),
    routeKey: 'POST /webhooks/gitlab',
    stage: '$default',
    time: '01/Dec/2026:07:00:00 +0000',
    timeEpoch: Date.now(),
  },
  body: options.base64 === true ? Buffer.from(body).toString('base64') : body,
  isBase64Encoded: options.base64 === true,
});

beforeAll(async () => {
  const endpoint = inject('motoEndpoint');
  const aws = awsClientConfig(endpoint);
  const dynamo = new DynamoDBClient(aws);
  const tableName = await createTestTable(dynamo, 'gitlab-webhook');
  const prefix = `gitlab-webhook-${randomUUID()}/`;
  await createTestSecret(new SecretsManagerClient(aws), `${prefix}gitlab-webhook`, {
    secret: TOKEN,
    'secret-previous': PREVIOUS,
  });
  const documents = createDocumentClient(dynamo);
  await new DynamoDbPipelineStore(documents, tableName).put(gitlabPodinfoPipeline());
  state = new DynamoDbPromotionStateStore(documents, tableName);
  await state.putPromotion(openedMergeRequestPromotion);

  vi.stubEnv('AWS_REGION', aws.region);
  vi.stubEnv('AWS_ACCESS_KEY_ID', aws.credentials.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', aws.credentials.secretAccessKey);
  vi.stubEnv('PROMOTER_AWS_ENDPOINT', endpoint);
  // The GitLab webhook enqueues nothing; the function's Flux webhook needs a queue to start.
  vi.stubEnv('PROMOTER_QUEUE_URL', `${endpoint}/123456789012/unused-${randomUUID()}.fifo`);
  vi.stubEnv('PROMOTER_TABLE_NAME', tableName);
  vi.stubEnv('PROMOTER_SECRET_PREFIX', prefix);
  webhook = await import('../../functions/handlers/webhook-lambda.ts');
});

describe('webhook Lambda handler: POST /webhooks/gitlab on moto', () => {
  it('refuses a wrong token; a merge (base64 body, previous token) moves the promotion once', async () => {
    // Prepare
    const body = mergeRequestHook();

    // Act
    const forged = await webhook.handler(
      apiEvent(body, gitlabHookHeaders('not-the-token-of-the-stack-at-all', 'l-0')),
    );
    const afterForged = await state.getPromotion(ref, 'staging');
    const merged = await webhook.handler(
      apiEvent(body, gitlabHookHeaders(PREVIOUS, 'l-1'), { base64: true }),
    );
    const repeated = await webhook.handler(apiEvent(body, gitlabHookHeaders(TOKEN, 'l-1')));

    // Assess
    expect(forged.statusCode).toBe(401);
    expect(afterForged?.state).toBe('opened');
    expect([merged.statusCode, JSON.parse(merged.body ?? '')]).toEqual([
      200,
      { pipeline: 'flux-system/podinfo', environment: 'staging', state: 'merged' },
    ]);
    expect([repeated.statusCode, JSON.parse(repeated.body ?? '')]).toEqual([
      200,
      { duplicate: true },
    ]);
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'merged',
      pullRequest: { number: 7, state: 'merged', mergeCommit: 'f00dfeed' },
      timeline: { mergedAt: '2026-11-20T16:20:00.000Z' },
    });
  });

  it('answers another method with 405 and a System Hook with 202', async () => {
    // Act
    const get = await webhook.handler(
      apiEvent('', gitlabHookHeaders(TOKEN, 'l-2'), { method: 'GET' }),
    );
    const system = await webhook.handler(
      apiEvent(mergeRequestHook(), gitlabHookHeaders(TOKEN, 'l-3', 'System Hook')),
    );

    // Assess
    expect([get.statusCode, get.headers?.allow]).toEqual([405, 'POST']);
    expect(system.statusCode).toBe(202);
  });
});
