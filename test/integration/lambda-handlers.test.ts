import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DeleteMessageCommand, type Message, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbPipelineStore } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../../functions/adapters/dynamodb-table.ts';
import { Metric } from '../../functions/core/metric-names.ts';
import { DEFAULT_METRICS_DETAIL, dimensionSetsOf } from '../../functions/core/metrics-detail.ts';
import type { PullRequestStrategy } from '../../functions/core/pipeline.ts';
import { signBody } from '../../functions/core/signature.ts';
import {
  createFifoQueue,
  createTestSecret,
  createTestTable,
} from '../support/aws-test-resources.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY, freshEvent } from '../support/fixtures.ts';
import { LAMBDA_CONTEXT, receiveMessages, sqsEventOf } from '../support/lambda-events.ts';
import { awsClientConfig } from '../support/moto-server.ts';
import { fleetTree, podinfoPipeline } from '../support/promotion-harness.ts';
import {
  STAGING_TARGETS,
  upgradeSucceededFrom,
  WAITING_FOR_THE_OTHER_STAGING_TARGET,
} from '../support/staging-targets.ts';

/**
 * The Lambda handlers called directly with real event shapes (API Gateway HTTP API payload 2.0,
 * SQS FIFO batches), on their real AWS adapters against moto and the fake GitHub Enterprise.
 */
let server: FakeGitHubEnterprise;
let sqs: SQSClient;
let queueUrl: string;
let state: DynamoDbPromotionStateStore;
let webhook: typeof import('../../functions/handlers/webhook-lambda.ts');
let worker: typeof import('../../functions/handlers/worker-lambda.ts');

beforeAll(async () => {
  const endpoint = inject('motoEndpoint');
  const aws = awsClientConfig(endpoint);
  server = await startFakeGitHubEnterprise();
  const before = await fleetTree('before');
  await server.createRepository('example-org', 'fleet', before);
  await server.createRepository('example-org', 'fleet-prod', before);

  sqs = new SQSClient(aws);
  queueUrl = await createFifoQueue(sqs, { namePrefix: 'jobs', visibilityTimeoutSeconds: 0 });
  const dynamo = new DynamoDBClient(aws);
  const tableName = await createTestTable(dynamo, 'promoter');
  const prefix = `test-${randomUUID()}/`;
  const secrets = new SecretsManagerClient(aws);
  for (const name of ['promotion-credentials', 'prod-promotion-credentials']) {
    await createTestSecret(secrets, `${prefix}flux-system/${name}`, {
      'hmac-key': FIXTURE_HMAC_KEY,
      token: server.token,
    });
  }
  await createTestSecret(secrets, `${prefix}flux-system/refused-credentials`, {
    token: 'ghp_refusedToken000000000000000000000000',
  });
  const store = new DynamoDbPipelineStore(createDocumentClient(dynamo), tableName);
  state = new DynamoDbPromotionStateStore(createDocumentClient(dynamo), tableName);
  await store.put(podinfoPipeline(server));
  const podinfo = podinfoPipeline(server, 'refused');
  await store.put({
    ...podinfo,
    promotion: {
      manual: false,
      hmacSecret: 'promotion-credentials',
      strategy: {
        ...(podinfo.promotion?.strategy as PullRequestStrategy),
        credentialsSecret: 'refused-credentials',
      },
    },
    environments: podinfo.environments.map(({ promotion: _, ...environment }) => environment),
  });
  // Two pipelines whose git server refuses connections: `down` has no per-env overrides.
  for (const name of ['unreachable', 'down']) {
    const pipeline = podinfoPipeline(server, name);
    await store.put({
      ...pipeline,
      ...(name === 'down'
        ? {
            environments: pipeline.environments.map(
              ({ promotion: _, ...environment }) => environment,
            ),
          }
        : {}),
      promotion: {
        manual: false,
        hmacSecret: 'promotion-credentials',
        strategy: {
          type: 'pull-request',
          baseBranch: 'main',
          credentialsSecret: 'promotion-credentials',
          repository: {
            provider: 'github',
            cloneUrl: 'http://127.0.0.1:9/example-org/fleet.git',
            apiBaseUrl: 'http://127.0.0.1:9/api/v3',
            owner: 'example-org',
            repo: 'fleet',
          },
        },
      },
    });
  }

  vi.stubEnv('AWS_REGION', aws.region);
  vi.stubEnv('AWS_ACCESS_KEY_ID', aws.credentials.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', aws.credentials.secretAccessKey);
  vi.stubEnv('PROMOTER_AWS_ENDPOINT', endpoint);
  vi.stubEnv('PROMOTER_QUEUE_URL', queueUrl);
  vi.stubEnv('PROMOTER_TABLE_NAME', tableName);
  vi.stubEnv('PROMOTER_SECRET_PREFIX', prefix);
  vi.stubEnv('PROMOTER_GIT_CACHE_DIR', await mkdtemp(join(tmpdir(), 'worker-git-')));
  // The fake GitHub Enterprise is on loopback, which the worker refuses unless it is listed.
  vi.stubEnv('PROMOTER_ALLOWED_GIT_HOSTS', '127.0.0.1');
  webhook = await import('../../functions/handlers/webhook-lambda.ts');
  worker = await import('../../functions/handlers/worker-lambda.ts');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await server?.close();
});

const apiEvent = (
  path: string,
  body: string,
  headers: Record<string, string>,
): APIGatewayProxyEventV2 => ({
  version: '2.0',
  routeKey: 'POST /promotion/{ns}/{name}/{env}',
  rawPath: path,
  rawQueryString: '',
  headers: { 'content-type': 'application/json', ...headers },
  requestContext: {
    accountId: '123456789012',
    apiId: 'api',
    domainName: 'api.example.com',
    domainPrefix: 'api',
    http: {
      method: 'POST',
      path,
      protocol: 'HTTP/1.1',
      sourceIp: '10.0.0.1',
      userAgent: 'Go-http-client/1.1',
    },
    requestId: 'id',
    routeKey: 'POST /promotion/{ns}/{name}/{env}',
    stage: '$default',
    time: '26/Nov/2026:07:00:00 +0000',
    timeEpoch: Date.now(),
  },
  body: Buffer.from(body).toString('base64'),
  isBase64Encoded: true,
});

interface EmfDocument {
  readonly _aws: {
    readonly CloudWatchMetrics: {
      readonly Namespace: string;
      readonly Dimensions: string[][];
      readonly Metrics: { readonly Name: string }[];
    }[];
  };
  readonly [key: string]: unknown;
}

const metricAndDimensions = (document: EmfDocument) => {
  const [directive] = document._aws.CloudWatchMetrics;
  const dimensions = directive?.Dimensions[0] ?? [];
  expect(directive?.Namespace).toBe('PipelinePromoter');
  return {
    metric: directive?.Metrics[0]?.Name,
    dimensions,
    values: Object.fromEntries(dimensions.map((name) => [name, document[name]])),
  };
};

/** What the SQS event source mapping does: call the handler, delete what did not fail. */
const runWorker = async (messages: Message[]) => {
  const result = await worker.handler(sqsEventOf(messages), LAMBDA_CONTEXT);
  const failed = new Set(result.batchItemFailures.map((failure) => failure.itemIdentifier));
  for (const message of messages.filter(
    (candidate) => !failed.has(candidate.MessageId as string),
  )) {
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
    );
  }
  return result;
};

describe('webhook and worker Lambda handlers on moto', () => {
  it('Flux events through the webhook handler land on SQS FIFO once both staging targets reported, and the worker turns them into a PR', async () => {
    // Prepare: podinfo-qa reports first; the default gate `all` waits for podinfo-perf.
    const [firstTarget, lastTarget] = STAGING_TARGETS;
    const signed = (body: string) =>
      apiEvent('/promotion/flux-system/podinfo/staging', body, {
        'X-Signature': signBody(body, FIXTURE_HMAC_KEY),
      });
    const waiting = await webhook.handler(signed(upgradeSucceededFrom(firstTarget)));
    const queuedWhileWaiting = await receiveMessages(sqs, queueUrl);
    const body = upgradeSucceededFrom(lastTarget);
    const stdout = vi.spyOn(process.stdout, 'write');

    // Act: webhook (base64 body, mixed-case signature header as API Gateway passes it through)
    const answer = await webhook.handler(signed(body));

    // Assess
    expect([waiting.statusCode, JSON.parse(waiting.body as string)]).toEqual([
      202,
      WAITING_FOR_THE_OTHER_STAGING_TARGET,
    ]);
    expect(queuedWhileWaiting).toEqual([]);
    expect(answer.statusCode).toBe(202);
    expect(JSON.parse(answer.body as string)).toMatchObject({
      promoted: true,
      promotion: { to: 'prod', revision: '6.5.0' },
    });
    const emf = stdout.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes('"CloudWatchMetrics"'))
      .map((line) => JSON.parse(line) as EmfDocument);
    stdout.mockRestore();
    // EMF as CloudWatch reads it: exactly the dimension sets of DESIGN.md section 9 at the
    // default detail (core/metrics-detail.ts); the other facts are properties of the point.
    const facts = {
      Pipeline: 'flux-system/podinfo',
      Application: 'podinfo',
      Environment: 'staging',
    };
    const [deploymentDimensions = []] = dimensionSetsOf(Metric.Deployments, DEFAULT_METRICS_DETAIL);
    expect(emf.map(metricAndDimensions)).toEqual([
      {
        metric: 'Deployments',
        dimensions: [...deploymentDimensions],
        values: Object.fromEntries(
          deploymentDimensions.map((name) => [name, (facts as Record<string, string>)[name]]),
        ),
      },
      { metric: 'WebhookRequests', dimensions: ['Outcome'], values: { Outcome: 'accepted' } },
    ]);
    expect(emf[0]).toMatchObject({ ...facts, revision: '6.5.0' });
    const messages = await receiveMessages(sqs, queueUrl);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.Attributes?.MessageGroupId).toBe('flux-system/podinfo/prod');

    // Act: worker
    const result = await runWorker(messages);

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(
      server.standIn.pullRequests('example-org', 'fleet-prod').map((pull) => pull.title),
    ).toEqual(['Promote flux-system/podinfo in prod to 6.5.0']);
    expect(
      await server.readBranchFiles(
        'example-org',
        'fleet-prod',
        'promotion-flux-system-podinfo-prod',
      ),
    ).toEqual(await fleetTree('after'));
  });

  it('a transient failure fails the record and defers its redelivery; a bad job fails for the DLQ', async () => {
    // Prepare: a pipeline whose git server refuses connections, and a job that does not parse.
    const body = freshEvent('helmrelease-upgrade-succeeded.json');
    const accepted = await webhook.handler(
      apiEvent('/promotion/flux-system/unreachable/dev', body, {
        'x-signature': signBody(body, FIXTURE_HMAC_KEY),
      }),
    );
    expect(accepted.statusCode).toBe(202);
    const [message] = await receiveMessages(sqs, queueUrl);
    if (message === undefined) throw new Error('no message');
    const bad = { ...message, MessageId: 'bad', Body: '{"version":2}' };

    // Act
    const result = await runWorker([message, bad]);

    // Assess
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: message.MessageId },
      { itemIdentifier: 'bad' },
    ]);
    // The queue's own visibility timeout is 0 here: only the 30 s deferral keeps it hidden.
    expect(await receiveMessages(sqs, queueUrl)).toEqual([]);
  });

  it('on the last receive, a transient failure is recorded as dead-lettered, counted and logged with its reason', async () => {
    // Prepare: a job of the `down` pipeline, received for the fifth time.
    const body = freshEvent('helmrelease-upgrade-succeeded.json');
    await webhook.handler(
      apiEvent('/promotion/flux-system/down/dev', body, {
        'x-signature': signBody(body, FIXTURE_HMAC_KEY),
      }),
    );
    const [message] = await receiveMessages(sqs, queueUrl);
    if (message === undefined) throw new Error('no message');
    const fifth = {
      ...message,
      Attributes: { ...message.Attributes, ApproximateReceiveCount: '5' },
    };
    const output = captureOutput();

    // Act
    const result = await runWorker([fifth]);

    // Assess
    const lines = output.stop();
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: message.MessageId }]);
    expect(
      await state.getPromotion({ namespace: 'flux-system', name: 'down' }, 'staging'),
    ).toMatchObject({
      revision: '6.5.0',
      state: 'dead-lettered',
      failure: { code: 'GIT_UNAVAILABLE', message: expect.stringContaining('127.0.0.1:9') },
    });
    expect(lines).toContainEqual(
      expect.objectContaining({
        message: 'promotion dead-lettered',
        code: 'GIT_UNAVAILABLE',
        reason: expect.stringContaining('127.0.0.1:9'),
      }),
    );
    expect(lines.map((line) => line._aws?.CloudWatchMetrics?.[0]?.Metrics?.[0]?.Name)).toContain(
      'PromotionsDeadLettered',
    );
  });

  it("a permanent failure's reason reaches the worker's log under a key the logger keeps", async () => {
    // Prepare: a pipeline whose GitHub token the server refuses.
    const body = freshEvent('helmrelease-upgrade-succeeded.json');
    await webhook.handler(
      apiEvent('/promotion/flux-system/refused/dev', body, {
        'x-signature': signBody(body, FIXTURE_HMAC_KEY),
      }),
    );
    const messages = await receiveMessages(sqs, queueUrl);
    const output = captureOutput();

    // Act
    const result = await runWorker(messages);

    // Assess: acknowledged (not retried), and the log line says what to fix.
    const lines = output.stop();
    expect(result.batchItemFailures).toEqual([]);
    const finished = lines.find((line) => line.message === 'promotion finished');
    expect(finished).toMatchObject({
      level: 'ERROR',
      status: 'failed',
      code: 'GIT_AUTH_FAILED',
      reason: expect.stringContaining('git credentials were refused by'),
    });
    expect(JSON.stringify(lines)).not.toContain('ghp_refusedToken');
  });
});

interface OutputLine {
  readonly message?: string;
  readonly _aws?: { readonly CloudWatchMetrics?: { readonly Metrics?: { Name: string }[] }[] };
  readonly [key: string]: unknown;
}

/** The JSON lines the handlers write to stdout and stderr (Powertools' logs and EMF) meanwhile. */
const captureOutput = () => {
  const spies = [vi.spyOn(process.stdout, 'write'), vi.spyOn(process.stderr, 'write')];
  return {
    stop: (): OutputLine[] => {
      const lines = spies.flatMap((spy) => spy.mock.calls.map(([chunk]) => String(chunk)));
      for (const spy of spies) spy.mockRestore();
      return lines
        .flatMap((chunk) => chunk.split('\n'))
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as OutputLine);
    },
  };
};
