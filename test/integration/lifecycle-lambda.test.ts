import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbPipelineStore } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../../functions/adapters/dynamodb-table.ts';
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
import { signatureOf } from '../support/github-stand-in.ts';
import {
  apiGatewayEvent,
  receiveMessages,
  runQueuedJobs,
  startApiGatewayStandIn,
} from '../support/lambda-events.ts';
import { awsClientConfig } from '../support/moto-server.ts';
import { podinfoPipeline } from '../support/promotion-harness.ts';
import {
  STAGING_TARGETS,
  WAITING_FOR_THE_OTHER_STAGING_TARGET,
} from '../support/staging-targets.ts';

/**
 * The promotion lifecycle through the Lambda handlers on moto (SQS FIFO, DynamoDB, Secrets
 * Manager with `{prefix}github-webhook`) and the fake GitHub Enterprise: the webhook handler
 * takes Flux's events and, on `/webhooks/github`, the stand-in's signed `pull_request`
 * deliveries (a loopback HTTP server turns each POST into the API Gateway HTTP API event the
 * handler gets); the worker handler takes the SQS batches; the reconcile handler is the
 * scheduled sweep. The steps follow one promotion in order.
 */
const OWNER = 'example-org';
const REF = { namespace: 'flux-system', name: 'podinfo' } as const;
const WEBHOOK_SECRET = 'the-github-webhook-secret-of-the-stack';
const PULL = '/repos/{owner}/{repo}/pulls/{pull_number}';
const STAGING_FILE = 'clusters/staging/podinfo/release.yaml';
const PROD_FILE = 'clusters/prod/podinfo/release.yaml';

const release = (namespace: string, environment: string, version: string): string =>
  [
    'apiVersion: helm.toolkit.fluxcd.io/v2',
    'kind: HelmRelease',
    'metadata:',
    '  name: podinfo',
    `  namespace: ${namespace}`,
    'spec:',
    '  chart:',
    '    spec:',
    '      chart: podinfo',
    `      version: ${version} # {"$promotion": "flux-system:podinfo:${environment}"}`,
    '',
  ].join('\n');

let github: FakeGitHubEnterprise;
let sqs: SQSClient;
let queueUrl: string;
let state: DynamoDbPromotionStateStore;
let apiGateway: Server;
let webhook: typeof import('../../functions/handlers/webhook-lambda.ts');
let worker: typeof import('../../functions/handlers/worker-lambda.ts');
let reconcile: typeof import('../../functions/handlers/reconcile-lambda.ts');

beforeAll(async () => {
  const endpoint = inject('motoEndpoint');
  const aws = awsClientConfig(endpoint);
  github = await startFakeGitHubEnterprise();
  await github.createRepository(OWNER, 'fleet', {
    [STAGING_FILE]: release('podinfo-qa', 'staging', '6.4.0'),
  });
  await github.createRepository(OWNER, 'fleet-prod', {
    [PROD_FILE]: release('podinfo-prod', 'prod', '6.4.0'),
  });

  sqs = new SQSClient(aws);
  queueUrl = await createFifoQueue(sqs, { namePrefix: 'lifecycle', visibilityTimeoutSeconds: 0 });
  const dynamo = new DynamoDBClient(aws);
  const tableName = await createTestTable(dynamo, 'lifecycle');
  const prefix = `lifecycle-${randomUUID()}/`;
  const secrets = new SecretsManagerClient(aws);
  for (const name of ['promotion-credentials', 'prod-promotion-credentials']) {
    await createTestSecret(secrets, `${prefix}flux-system/${name}`, {
      'hmac-key': FIXTURE_HMAC_KEY,
      token: github.token,
    });
  }
  await createTestSecret(secrets, `${prefix}github-webhook`, { secret: WEBHOOK_SECRET });
  const documents = createDocumentClient(dynamo);
  await new DynamoDbPipelineStore(documents, tableName).put(podinfoPipeline(github));
  state = new DynamoDbPromotionStateStore(documents, tableName);

  vi.stubEnv('AWS_REGION', aws.region);
  vi.stubEnv('AWS_ACCESS_KEY_ID', aws.credentials.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', aws.credentials.secretAccessKey);
  vi.stubEnv('PROMOTER_AWS_ENDPOINT', endpoint);
  vi.stubEnv('PROMOTER_QUEUE_URL', queueUrl);
  vi.stubEnv('PROMOTER_TABLE_NAME', tableName);
  vi.stubEnv('PROMOTER_SECRET_PREFIX', prefix);
  vi.stubEnv('PROMOTER_GIT_CACHE_DIR', await mkdtemp(join(tmpdir(), 'lifecycle-git-')));
  // The fake GitHub Enterprise is on loopback, which the worker refuses unless it is listed.
  vi.stubEnv('PROMOTER_ALLOWED_GIT_HOSTS', '127.0.0.1');
  webhook = await import('../../functions/handlers/webhook-lambda.ts');
  worker = await import('../../functions/handlers/worker-lambda.ts');
  reconcile = await import('../../functions/handlers/reconcile-lambda.ts');

  const gateway = await startApiGatewayStandIn((event) => webhook.handler(event));
  apiGateway = gateway.server;
  await github.standIn.deliverWebhooksTo(`${gateway.url}/webhooks/github`, WEBHOOK_SECRET);
});

afterAll(async () => {
  await github?.standIn.deliveries.settled();
  apiGateway?.closeAllConnections();
  await new Promise((resolve) => apiGateway?.close(resolve));
  vi.unstubAllEnvs();
  await github?.close();
});

/** Event times: whole seconds (as Flux writes them), each one later than the one before. */
let lastEventAt = 0;
const eventTime = (agoMs = 0): Date => {
  const at = Math.max(Math.floor((Date.now() - agoMs) / 1000) * 1000, lastEventAt + 1000);
  lastEventAt = at;
  return new Date(at);
};

/** The fixture's UpgradeSucceeded from `namespace` at `revision`, through the webhook handler. */
const fluxEvent = async (environment: string, namespace: string, revision: string, at: Date) => {
  const body = freshEvent('helmrelease-upgrade-succeeded.json', at)
    .replace('"namespace":"podinfo-dev"', `"namespace":"${namespace}"`)
    .replaceAll('6.5.0', revision);
  const result = await webhook.handler(
    apiGatewayEvent(
      `/promotion/${REF.namespace}/${REF.name}/${environment}`,
      body,
      { 'X-Signature': signBody(body, FIXTURE_HMAC_KEY) },
      { base64: true },
    ),
  );
  return { status: result.statusCode, answer: JSON.parse(result.body ?? '{}') as unknown };
};

interface EmfLine {
  readonly _aws?: { readonly CloudWatchMetrics?: { readonly Metrics?: { Name: string }[] }[] };
  readonly [key: string]: unknown;
}

/** The EMF documents the handlers write to stdout meanwhile. */
const captureEmf = () => {
  const spy = vi.spyOn(process.stdout, 'write');
  return {
    stop: (): EmfLine[] => {
      const chunks = spy.mock.calls.map(([chunk]) => String(chunk));
      spy.mockRestore();
      return chunks
        .flatMap((chunk) => chunk.split('\n'))
        .filter((line) => line.includes('"CloudWatchMetrics"'))
        .map((line) => JSON.parse(line) as EmfLine);
    },
  };
};

const metricNamed = (lines: readonly EmfLine[], name: string) =>
  lines.filter((line) => line._aws?.CloudWatchMetrics?.[0]?.Metrics?.[0]?.Name === name);

const closedDeliveries = () =>
  github.standIn.deliveries.list({ event: 'pull_request', action: 'closed' });

const openPulls = (repo: string) =>
  github.standIn.pullRequests(OWNER, repo).filter((pull) => pull.state === 'open');

const iso = (value: string | Date | null | undefined): string =>
  new Date(value ?? 'missing').toISOString();

describe('the promotion lifecycle through the Lambda handlers on moto', () => {
  let devAt: Date;
  let stagingAt: Date;

  it("answers the stand-in's ping through the webhook handler", () => {
    // Prepare, Act: beforeAll created the hook, which GitHub pings.

    // Assess
    const [ping] = github.standIn.deliveries.list({ event: 'ping' });
    expect(ping).toMatchObject({ outcome: 'sent', status: 200 });
    expect(JSON.parse(ping?.response ?? '{}')).toEqual({ pong: true });
  });

  it('dev event → SQS → worker → staging PR; merged → webhook → merged in DynamoDB; the events of both staging targets → deployed with its lead time; the prod PR opened', async () => {
    // Prepare
    devAt = eventTime(5 * 60_000);
    const promoted = await fluxEvent('dev', 'podinfo-dev', '6.5.0', devAt);
    const toStaging = await runQueuedJobs(sqs, queueUrl, worker.handler);
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    const opened = await state.getPromotion(REF, 'staging');

    // Act: a person merges; GitHub's delivery reaches the webhook handler.
    const emf = captureEmf();
    const merge = await github.standIn.mergePullRequest(OWNER, 'fleet', pull.number);
    await github.standIn.deliveries.settled();
    const merged = await state.getPromotion(REF, 'staging');
    // Staging's targets report 6.5.0, podinfo-qa first: the gate `all` waits for podinfo-perf.
    const [firstTarget, lastTarget] = STAGING_TARGETS;
    const firstTargetEvent = await fluxEvent('staging', firstTarget, '6.5.0', eventTime());
    const halfDeployed = await state.getPromotion(REF, 'staging');
    const prodWhileWaiting = await state.getPromotion(REF, 'prod');
    const queuedWhileWaiting = await receiveMessages(sqs, queueUrl);
    stagingAt = eventTime();
    const deployedEvent = await fluxEvent('staging', lastTarget, '6.5.0', stagingAt);
    const lines = emf.stop();
    const staging = await state.getPromotion(REF, 'staging');
    const toProd = await runQueuedJobs(sqs, queueUrl, worker.handler);
    const prod = await state.getPromotion(REF, 'prod');

    // Assess
    expect(promoted).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { to: 'staging', revision: '6.5.0' } },
    });
    expect(toStaging.messages.map((message) => message.Attributes?.MessageGroupId)).toEqual([
      'flux-system/podinfo/staging',
    ]);
    expect(toStaging.failures).toEqual([]);
    expect(pull.title).toBe('Promote flux-system/podinfo in staging to 6.5.0');
    expect(opened).toMatchObject({
      revision: '6.5.0',
      state: 'opened',
      pullRequest: { number: pull.number, state: 'open' },
    });

    const delivery = closedDeliveries().at(-1);
    expect(delivery).toMatchObject({ outcome: 'sent', status: 200 });
    expect(JSON.parse(delivery?.response ?? '{}')).toEqual({
      pipeline: 'flux-system/podinfo',
      environment: 'staging',
      state: 'merged',
    });
    const mergedAt = iso(github.standIn.pullRequest(OWNER, 'fleet', pull.number)?.mergedAt);
    expect(merged).toMatchObject({
      state: 'merged',
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: merge.sha },
      timeline: { mergedAt },
    });
    expect(merge.sha).toBe(await github.branchHead(OWNER, 'fleet', 'main'));

    expect(firstTargetEvent).toEqual({ status: 202, answer: WAITING_FOR_THE_OTHER_STAGING_TARGET });
    expect(halfDeployed).toMatchObject({ revision: '6.5.0', state: 'merged' });
    expect(prodWhileWaiting).toMatchObject({
      revision: '6.5.0',
      state: 'waiting',
      from: 'staging',
      waitingFor: { targets: { ready: 1, needed: 2 } },
    });
    expect(queuedWhileWaiting).toEqual([]);
    expect(metricNamed(lines, 'PromotionsWaiting')).toEqual([
      expect.objectContaining({ PromotionsWaiting: 1, Environment: 'prod', Gate: 'targets' }),
    ]);

    expect(deployedEvent).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { from: 'staging', to: 'prod', revision: '6.5.0' } },
    });
    const leadTimeMs = stagingAt.getTime() - devAt.getTime();
    expect(staging).toMatchObject({
      revision: '6.5.0',
      state: 'deployed',
      leadTimeMs,
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: merge.sha },
      timeline: {
        sourceDeployedAt: iso(devAt),
        queuedAt: expect.any(String),
        pullRequestAt: expect.any(String),
        mergedAt,
        deployedAt: iso(stagingAt),
      },
    });
    expect(metricNamed(lines, 'PullRequestMergeTime')).toHaveLength(1);
    expect(metricNamed(lines, 'PromotionLeadTime')).toEqual([
      expect.objectContaining({ PromotionLeadTime: leadTimeMs, Environment: 'staging' }),
    ]);
    expect(metricNamed(lines, 'GitHubWebhookRequests')).toContainEqual(
      expect.objectContaining({ Outcome: 'merged' }),
    );

    expect(toProd.failures).toEqual([]);
    const [prodPull] = openPulls('fleet-prod');
    expect(prodPull?.title).toBe('Promote flux-system/podinfo in prod to 6.5.0');
    expect(prod).toMatchObject({
      revision: '6.5.0',
      state: 'opened',
      from: 'staging',
      pullRequest: { number: prodPull?.number, state: 'open' },
    });
  });

  it('the reconcile handler: an unchanged PR costs a 304 across invocations; it finds a merge whose webhook was lost', async () => {
    // Prepare: the prod PR of the step before, open.
    const [pull] = openPulls('fleet-prod');
    if (pull === undefined) throw new Error('no prod pull request');
    const first = await reconcile.handler();
    github.standIn.clearRequests();
    const unchanged = await reconcile.handler();
    const unchangedCost = github.standIn.apiUsage({ route: PULL });

    // Act
    github.standIn.deliveries.loseNext(1, { event: 'pull_request', action: 'closed' });
    const merge = await github.standIn.mergePullRequest(OWNER, 'fleet-prod', pull.number);
    await github.standIn.deliveries.settled();
    const beforeSweep = await state.getPromotion(REF, 'prod');
    const found = await reconcile.handler();
    const afterSweep = await state.getPromotion(REF, 'prod');
    const prodAt = eventTime();
    const final = await fluxEvent('prod', 'podinfo-prod', '6.5.0', prodAt);
    const prod = await state.getPromotion(REF, 'prod');

    // Assess
    // Nothing is held at a gate here: the sweep's look at the gates finds nothing to release.
    const gates = { reviewed: 0, released: 0, failed: 0 };
    const sweep = {
      read: 1,
      notModified: 0,
      merged: 0,
      closed: 0,
      failed: 0,
      autoMerged: 0,
      gates,
    };
    expect(first).toEqual(sweep);
    expect(unchanged).toEqual({ ...sweep, notModified: 1 });
    expect(unchangedCost).toEqual({ requests: 1, notModified: 1, counted: 0 });
    expect(closedDeliveries().at(-1)).toMatchObject({ outcome: 'lost' });
    expect(beforeSweep).toMatchObject({ state: 'opened', pullRequest: { state: 'open' } });
    expect(found).toEqual({ ...sweep, merged: 1 });
    const mergedAt = iso(github.standIn.pullRequest(OWNER, 'fleet-prod', pull.number)?.mergedAt);
    expect(afterSweep).toMatchObject({
      state: 'merged',
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: merge.sha },
      timeline: { mergedAt },
    });
    expect(final).toEqual({
      status: 200,
      answer: { promoted: false, reason: 'final-environment' },
    });
    expect(prod).toMatchObject({
      state: 'deployed',
      leadTimeMs: prodAt.getTime() - stagingAt.getTime(),
      timeline: { mergedAt, deployedAt: iso(prodAt) },
    });
  });

  it("a replayed delivery (the merge's, again) has no second effect; one signed with another secret is refused", async () => {
    // Prepare: the staging merge's delivery, as recorded by the stand-in.
    const merged = closedDeliveries().find((delivery) => delivery.outcome === 'sent');
    if (merged === undefined) throw new Error('no delivered merge');
    const before = await state.getPromotion(REF, 'staging');
    const forgedHeaders = {
      ...merged.headers,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signatureOf('not-the-webhook-secret', merged.body, 'sha256'),
    };

    // Act
    const replayed = await webhook.handler(
      apiGatewayEvent('/webhooks/github', merged.body, merged.headers),
    );
    const forged = await webhook.handler(
      apiGatewayEvent('/webhooks/github', merged.body, forgedHeaders),
    );
    const after = await state.getPromotion(REF, 'staging');

    // Assess
    expect([replayed.statusCode, JSON.parse(replayed.body ?? '{}')]).toEqual([
      200,
      { duplicate: true },
    ]);
    expect([forged.statusCode, JSON.parse(forged.body ?? '{}')]).toEqual([
      401,
      { error: 'X-Hub-Signature-256 does not match' },
    ]);
    expect(after).toEqual(before);
    expect(after?.state).toBe('deployed');
  });
});
