import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbPipelineStore } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../../functions/adapters/dynamodb-table.ts';
import { gateScheduleName } from '../../functions/adapters/scheduler-gate-timer.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import { NOTICE_SOURCE } from '../../functions/core/promotion-notices.ts';
import { signBody } from '../../functions/core/signature.ts';
import {
  createFifoQueue,
  createTestSecret,
  createTestTable,
} from '../support/aws-test-resources.ts';
import { type FakeGitLab, startFakeGitLab } from '../support/fake-gitlab.ts';
import { FIXTURE_HMAC_KEY, readFixture } from '../support/fixtures.ts';
import {
  apiGatewayEvent,
  iamStatusEvent,
  runQueuedJobs,
  startApiGatewayStandIn,
} from '../support/lambda-events.ts';
import { awsClientConfig } from '../support/moto-server.ts';
import {
  STAGING_TARGETS,
  upgradeSucceededFrom,
  WAITING_FOR_THE_OTHER_STAGING_TARGET,
} from '../support/staging-targets.ts';

/**
 * Issue 12's reach in AWS, through the Lambda handlers on moto (SQS FIFO, DynamoDB, Secrets
 * Manager, EventBridge) and the fake GitLab (API and git on one loopback port):
 * - Weave's notification strategy: prod's promotion is handed over as a `Promotion` event on
 *   the stack's bus (PROMOTER_EVENT_BUS_NAME), and the lifecycle's `Promotion State Change`
 *   events follow it there; a rule on the bus with an SQS queue as target reads them back, as a
 *   user's rule would get them.
 * - GitLab through the worker: the merge request opened over the API and git, its merge
 *   recorded by `POST /webhooks/gitlab` (the stand-in's Merge Request Hook, `X-Gitlab-Token`
 *   checked against `{prefix}gitlab-webhook`) and, where no hook is set up, by the reconcile
 *   handler reading it from the API.
 * - A soak: the webhook handler puts the one-time EventBridge Scheduler schedule that wakes the
 *   reconcile function when it ends (PROMOTER_GATE_SCHEDULE_*).
 * A loopback HTTP server stands in for API Gateway in front of the webhook handler, for the
 * stand-in's deliveries; the test calls the handlers directly otherwise.
 */
const NOTIFIED = { namespace: 'flux-system', name: 'podinfo' } as const;
const SOAKED = { namespace: 'flux-system', name: 'podinfo-soaked' } as const;
const SWEPT = { namespace: 'flux-system', name: 'podinfo-swept' } as const;
const RECONCILE_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:reconcile';
const GATE_ROLE_ARN = 'arn:aws:iam::123456789012:role/gate-schedules';
const GITLAB = { namespace: 'flux-system', name: 'podinfo-gitlab' } as const;
const STAGING_PROJECT = 'platform/gitops/fleet';
const PROD_PROJECT = 'platform/gitops/fleet-prod';
const STAGING_FILE = 'clusters/staging/podinfo/release.yaml';
const PROD_FILE = 'clusters/prod/podinfo/release.yaml';
const GITLAB_WEBHOOK_TOKEN = 'the-gitlab-webhook-token-of-the-stack';

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
    `      version: ${version} # {"$promotion": "flux-system:${GITLAB.name}:${environment}"}`,
    '',
  ].join('\n');

const parsedPipeline = (manifest: string): Pipeline => {
  const [pipeline] = parsePipelineManifests(manifest).pipelines;
  if (pipeline === undefined) throw new Error('the pipeline manifest did not parse');
  return pipeline;
};

/** The fixture podinfo pipeline, prod promoted by Weave's `strategy.notification: {}`. */
const notificationPipeline = (): Pipeline =>
  parsedPipeline(
    readFixture('pipelines/podinfo.yaml').replace(
      /\n {10}pull-request:\n(?: {12}.*\n)+? {14}name: prod-promotion-credentials\n/,
      '\n          notification: {}\n',
    ),
  );

/** The fixture as `podinfo-swept`: a 30-minute soak into prod after staging's targets `gate`. */
const sweptPipeline = (gate: 'all' | 'any'): Pipeline =>
  parsedPipeline(
    readFixture('pipelines/podinfo.yaml')
      .replace('name: podinfo\n  namespace', `name: ${SWEPT.name}\n  namespace`)
      .replace(
        'metadata:\n',
        `metadata:\n  annotations:\n    pipeline-promoter/gate: ${gate}\n    pipeline-promoter/soak.prod: 30m\n`,
      ),
  );

/** The fixture podinfo pipeline as `podinfo-gitlab`, both its promotions on the fake GitLab. */
const gitlabPipeline = (gitlab: FakeGitLab): Pipeline =>
  parsedPipeline(
    readFixture('pipelines/podinfo.yaml')
      .replace('name: podinfo\n  namespace', `name: ${GITLAB.name}\n  namespace`)
      .replaceAll('type: github', 'type: gitlab')
      .replace('https://github.com/example-org/fleet-prod\n', `${gitlab.url}/${PROD_PROJECT}\n`)
      .replace('https://github.com/example-org/fleet\n', `${gitlab.url}/${STAGING_PROJECT}\n`),
  );

let gitlab: FakeGitLab;
let sweptStore: DynamoDbPipelineStore;
let scheduler: SchedulerClient;
let gateGroup: string;
let sqs: SQSClient;
let queueUrl: string;
let busQueueUrl: string;
let state: DynamoDbPromotionStateStore;
let apiGateway: Server;
let webhook: typeof import('../../functions/handlers/webhook-lambda.ts');
let worker: typeof import('../../functions/handlers/worker-lambda.ts');
let reconcile: typeof import('../../functions/handlers/reconcile-lambda.ts');
let pipelinesApi: typeof import('../../functions/handlers/pipelines-api-lambda.ts');

interface EnvironmentStatus {
  readonly name: string;
  readonly promotion: { readonly state: string; readonly [key: string]: unknown } | null;
}

/** The environment's entry in the pipelines API handler's status answer. */
const environmentStatus = async (
  ref: { readonly namespace: string; readonly name: string },
  environment: string,
): Promise<EnvironmentStatus | undefined> => {
  const result = await pipelinesApi.handler(iamStatusEvent(ref.namespace, ref.name));
  expect(result.statusCode).toBe(200);
  const status = JSON.parse(result.body ?? '{}') as { environments: EnvironmentStatus[] };
  return status.environments.find((entry) => entry.name === environment);
};

/** The stack's bus, and a rule on it sending every notice to a fresh queue (a user's rule). */
const createBusWithQueue = async (
  events: EventBridgeClient,
): Promise<{ bus: string; queueUrl: string }> => {
  const bus = `promotions-${randomUUID()}`;
  await events.send(new CreateEventBusCommand({ Name: bus }));
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: `notices-${randomUUID()}` }),
  );
  if (QueueUrl === undefined) throw new Error('moto returned no queue URL');
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  await events.send(
    new PutRuleCommand({
      Name: 'all-promotion-notices',
      EventBusName: bus,
      EventPattern: JSON.stringify({ source: [NOTICE_SOURCE] }),
    }),
  );
  await events.send(
    new PutTargetsCommand({
      Rule: 'all-promotion-notices',
      EventBusName: bus,
      Targets: [{ Id: 'queue', Arn: Attributes?.QueueArn }],
    }),
  );
  return { bus, queueUrl: QueueUrl };
};

beforeAll(async () => {
  const endpoint = inject('motoEndpoint');
  const aws = awsClientConfig(endpoint);
  gitlab = await startFakeGitLab();
  await gitlab.createRepository(STAGING_PROJECT, {
    [STAGING_FILE]: release('podinfo-qa', 'staging', '6.4.0'),
    'README.md': 'the fleet\n',
  });
  await gitlab.createRepository(PROD_PROJECT, {
    [PROD_FILE]: release('podinfo-prod', 'prod', '6.4.0'),
  });

  sqs = new SQSClient(aws);
  queueUrl = await createFifoQueue(sqs, { namePrefix: 'reach', visibilityTimeoutSeconds: 0 });
  const bus = await createBusWithQueue(new EventBridgeClient(aws));
  busQueueUrl = bus.queueUrl;
  const dynamo = new DynamoDBClient(aws);
  const tableName = await createTestTable(dynamo, 'reach');
  const prefix = `reach-${randomUUID()}/`;
  const secrets = new SecretsManagerClient(aws);
  for (const name of ['promotion-credentials', 'prod-promotion-credentials']) {
    await createTestSecret(secrets, `${prefix}flux-system/${name}`, {
      'hmac-key': FIXTURE_HMAC_KEY,
      token: gitlab.token,
    });
  }
  await createTestSecret(secrets, `${prefix}gitlab-webhook`, { secret: GITLAB_WEBHOOK_TOKEN });
  const documents = createDocumentClient(dynamo);
  const pipelines = new DynamoDbPipelineStore(documents, tableName);
  await pipelines.put(notificationPipeline());
  await pipelines.put(gitlabPipeline(gitlab));
  await pipelines.put(
    parsedPipeline(
      readFixture('pipelines/podinfo.yaml')
        .replace('name: podinfo\n  namespace', `name: ${SOAKED.name}\n  namespace`)
        .replace(
          'metadata:\n',
          'metadata:\n  annotations:\n    pipeline-promoter/soak.staging: 30m\n',
        ),
    ),
  );
  await pipelines.put(sweptPipeline('all'));
  sweptStore = pipelines;
  gateGroup = `gates-${randomUUID().slice(0, 8)}`;
  scheduler = new SchedulerClient(aws);
  await scheduler.send(new CreateScheduleGroupCommand({ Name: gateGroup }));
  state = new DynamoDbPromotionStateStore(documents, tableName);

  vi.stubEnv('AWS_REGION', aws.region);
  vi.stubEnv('AWS_ACCESS_KEY_ID', aws.credentials.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', aws.credentials.secretAccessKey);
  vi.stubEnv('PROMOTER_AWS_ENDPOINT', endpoint);
  vi.stubEnv('PROMOTER_QUEUE_URL', queueUrl);
  vi.stubEnv('PROMOTER_TABLE_NAME', tableName);
  vi.stubEnv('PROMOTER_SECRET_PREFIX', prefix);
  vi.stubEnv('PROMOTER_EVENT_BUS_NAME', bus.bus);
  vi.stubEnv('PROMOTER_GATE_SCHEDULE_GROUP', gateGroup);
  vi.stubEnv('PROMOTER_GATE_SCHEDULE_TARGET_ARN', RECONCILE_ARN);
  vi.stubEnv('PROMOTER_GATE_SCHEDULE_ROLE_ARN', GATE_ROLE_ARN);
  vi.stubEnv('PROMOTER_GIT_CACHE_DIR', await mkdtemp(join(tmpdir(), 'reach-git-')));
  // The fake GitLab is on loopback, which the worker refuses (git and API) unless it is listed.
  vi.stubEnv('PROMOTER_ALLOWED_GIT_HOSTS', '127.0.0.1');
  webhook = await import('../../functions/handlers/webhook-lambda.ts');
  worker = await import('../../functions/handlers/worker-lambda.ts');
  reconcile = await import('../../functions/handlers/reconcile-lambda.ts');
  pipelinesApi = await import('../../functions/handlers/pipelines-api-lambda.ts');

  const gateway = await startApiGatewayStandIn((event) => webhook.handler(event));
  apiGateway = gateway.server;
  // Staging's project only: prod's merge has no hook, the reconcile sweep finds it.
  gitlab.deliverWebhooksTo(`${gateway.url}/webhooks/gitlab`, GITLAB_WEBHOOK_TOKEN, STAGING_PROJECT);
});

afterAll(async () => {
  await gitlab?.webhooksSettled();
  apiGateway?.closeAllConnections();
  await new Promise((resolve) => apiGateway?.close(resolve));
  vi.unstubAllEnvs();
  await gitlab?.close();
});

/** Event times: whole seconds (as Flux writes them), each one later than the one before. */
let lastEventAt = 0;
const eventTime = (): Date => {
  const at = Math.max(Math.floor(Date.now() / 1000) * 1000, lastEventAt + 1000);
  lastEventAt = at;
  return new Date(at);
};

/** The fixture's UpgradeSucceeded from `namespace` at 6.5.0, through the webhook handler. */
const fluxEvent = async (
  ref: { readonly namespace: string; readonly name: string },
  environment: string,
  namespace: string,
) => {
  const body = upgradeSucceededFrom(namespace, { at: eventTime() });
  const result = await webhook.handler(
    apiGatewayEvent(
      `/promotion/${ref.namespace}/${ref.name}/${environment}`,
      body,
      { 'X-Signature': signBody(body, FIXTURE_HMAC_KEY) },
      { base64: true },
    ),
  );
  return { status: result.statusCode, answer: JSON.parse(result.body ?? '{}') as unknown };
};

interface BusEvent {
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: {
    readonly pipeline: { readonly namespace: string; readonly name: string };
    readonly to: string;
    readonly state?: string;
    readonly timestamp: string;
    readonly [key: string]: unknown;
  };
}

/** Every event the rule delivered so far, in the order read. */
const busEvents: BusEvent[] = [];

/** Reads what is on the rule's queue now (waiting up to `waitSeconds` for something). */
const readBusQueue = async (waitSeconds: number): Promise<void> => {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: busQueueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: waitSeconds,
    }),
  );
  for (const message of Messages) {
    busEvents.push(JSON.parse(message.Body ?? '') as BusEvent);
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: busQueueUrl, ReceiptHandle: message.ReceiptHandle }),
    );
  }
};

/** The first event on the bus that `matches`, read back through the rule's queue. */
const eventOnBus = async (what: string, matches: (event: BusEvent) => boolean) => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = busEvents.find(matches);
    if (found !== undefined) return found;
    if (Date.now() > deadline) {
      throw new Error(`no ${what} on the bus; it carried:\n${JSON.stringify(busEvents, null, 2)}`);
    }
    await readBusQueue(1);
  }
};

/** The bus's events of one pipeline, as `detail-type` or `detail-type:state`, in time order. */
const busTimeline = async (ref: { readonly name: string }): Promise<string[]> => {
  await readBusQueue(0);
  return busEvents
    .filter((event) => event.detail.pipeline.name === ref.name)
    .toSorted((a, b) => a.detail.timestamp.localeCompare(b.detail.timestamp))
    .map((event) =>
      event.detail.state === undefined
        ? event['detail-type']
        : `${event['detail-type']}:${event.detail.to}:${event.detail.state}`,
    );
};

const stateChange = (ref: { readonly name: string }, environment: string, to: string) => {
  return (event: BusEvent) =>
    event['detail-type'] === 'Promotion State Change' &&
    event.detail.pipeline.name === ref.name &&
    event.detail.to === environment &&
    event.detail.state === to;
};

describe('the notification strategy through the Lambda handlers: notices on the EventBridge bus', () => {
  it("staging's two targets → waiting (webhook) → the worker hands prod over as a Promotion event → notified; prod's event → deployed", async () => {
    // Prepare: staging's first target reports; the gate `all` waits for the second.
    const [firstTarget, lastTarget] = STAGING_TARGETS;
    const first = await fluxEvent(NOTIFIED, 'staging', firstTarget);
    const waiting = await eventOnBus('waiting', stateChange(NOTIFIED, 'prod', 'waiting'));

    // Act
    const second = await fluxEvent(NOTIFIED, 'staging', lastTarget);
    const jobs = await runQueuedJobs(sqs, queueUrl, worker.handler);
    const handOver = await eventOnBus(
      'the hand-off',
      (event) =>
        event['detail-type'] === 'Promotion' && event.detail.pipeline.name === NOTIFIED.name,
    );
    const notified = await eventOnBus('notified', stateChange(NOTIFIED, 'prod', 'notified'));
    const notifiedRecord = await state.getPromotion(NOTIFIED, 'prod');
    const prodEvent = await fluxEvent(NOTIFIED, 'prod', 'podinfo-prod');
    const deployed = await eventOnBus('deployed', stateChange(NOTIFIED, 'prod', 'deployed'));
    const prod = await environmentStatus(NOTIFIED, 'prod');

    // Assess
    expect(first).toEqual({ status: 202, answer: WAITING_FOR_THE_OTHER_STAGING_TARGET });
    expect(waiting).toMatchObject({
      source: 'pipeline-promoter',
      detail: {
        reason: 'PromotionWaiting',
        from: 'staging',
        revision: '6.5.0',
        waitingFor: { targets: { ready: 1, needed: 2 } },
      },
    });
    expect(second).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { from: 'staging', to: 'prod', revision: '6.5.0' } },
    });
    expect(jobs.messages.map((message) => message.Attributes?.MessageGroupId)).toEqual([
      'flux-system/podinfo/prod',
    ]);
    expect(jobs.failures).toEqual([]);
    expect(handOver).toMatchObject({
      source: 'pipeline-promoter',
      'detail-type': 'Promotion',
      detail: {
        involvedObject: { kind: 'Pipeline', namespace: 'flux-system', name: 'podinfo' },
        reason: 'Promote',
        message: 'Promote pipeline flux-system/podinfo to prod with version 6.5.0',
        metadata: { environment: 'prod', version: '6.5.0' },
        pipeline: NOTIFIED,
        from: 'staging',
        to: 'prod',
        revision: '6.5.0',
        sourceEvent: {
          reason: 'UpgradeSucceeded',
          involvedObject: { kind: 'HelmRelease', namespace: lastTarget, name: 'podinfo' },
        },
      },
    });
    expect(notified.detail).toMatchObject({
      reason: 'PromotionNotified',
      from: 'staging',
      revision: '6.5.0',
    });
    expect(notifiedRecord).toMatchObject({ state: 'notified', revision: '6.5.0' });
    expect(notifiedRecord?.pullRequest).toBeUndefined();
    expect(prodEvent).toEqual({
      status: 200,
      answer: { promoted: false, reason: 'final-environment' },
    });
    expect(deployed.detail).toMatchObject({
      reason: 'PromotionDeployed',
      from: 'staging',
      revision: '6.5.0',
    });
    expect(prod?.promotion).toMatchObject({ state: 'deployed' });
    expect(await busTimeline(NOTIFIED)).toEqual([
      'Promotion State Change:prod:waiting',
      'Promotion',
      'Promotion State Change:prod:notified',
      'Promotion State Change:prod:deployed',
    ]);
  });
});

describe('GitLab through the Lambda handlers: the worker opens merge requests, the webhook and the sweep see them merged', () => {
  it("dev's event → the worker's merge request on GitLab; merged → Merge Request Hook → POST /webhooks/gitlab → merged", async () => {
    // Prepare
    const promoted = await fluxEvent(GITLAB, 'dev', 'podinfo-dev');
    const jobs = await runQueuedJobs(sqs, queueUrl, worker.handler);
    const [mergeRequest] = gitlab.mergeRequests(STAGING_PROJECT);
    if (mergeRequest === undefined) throw new Error('no staging merge request');
    const files = await gitlab.readFiles(STAGING_PROJECT, mergeRequest.sourceBranch);
    const opened = await state.getPromotion(GITLAB, 'staging');

    // Act: a maintainer merges; GitLab's Merge Request Hook reaches the webhook handler.
    const mergeCommit = await gitlab.mergeAsPerson(STAGING_PROJECT, mergeRequest.iid);
    await gitlab.webhooksSettled();
    const merged = await state.getPromotion(GITLAB, 'staging');

    // Assess
    expect(promoted).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { to: 'staging', revision: '6.5.0' } },
    });
    expect(jobs.failures).toEqual([]);
    expect(gitlab.mergeRequests(STAGING_PROJECT)).toHaveLength(1);
    expect(mergeRequest).toMatchObject({
      title: 'Promote flux-system/podinfo-gitlab in staging to 6.5.0',
      sourceBranch: 'promotion-flux-system-podinfo-gitlab-staging',
      targetBranch: 'main',
    });
    expect(mergeRequest.description).toContain(
      'pipeline-promoter: flux-system/podinfo-gitlab/staging',
    );
    expect(files).toEqual({
      [STAGING_FILE]: release('podinfo-qa', 'staging', '6.5.0'),
      'README.md': 'the fleet\n',
    });
    expect(opened).toMatchObject({
      revision: '6.5.0',
      state: 'opened',
      pullRequest: { number: mergeRequest.iid, state: 'open' },
    });
    const [delivery, ...others] = gitlab.webhookDeliveries;
    expect(others).toEqual([]);
    expect([delivery?.status, JSON.parse(delivery?.responseBody ?? '{}')]).toEqual([
      200,
      { pipeline: 'flux-system/podinfo-gitlab', environment: 'staging', state: 'merged' },
    ]);
    expect(merged).toMatchObject({
      state: 'merged',
      pullRequest: { number: mergeRequest.iid, state: 'merged', mergeCommit },
    });
    expect(mergeCommit).toBe(await gitlab.branchHead(STAGING_PROJECT, 'main'));
    const openedOnBus = await eventOnBus('opened', stateChange(GITLAB, 'staging', 'opened'));
    expect(openedOnBus.detail.pullRequest).toMatchObject({ number: mergeRequest.iid });
    await eventOnBus('merged', stateChange(GITLAB, 'staging', 'merged'));
  });

  it("staging deployed → the worker's prod merge request; merged without a hook → the reconcile handler reads it merged; prod's event → deployed", async () => {
    // Prepare: staging's two targets report the merged 6.5.0; prod's merge request opens.
    const [firstTarget, lastTarget] = STAGING_TARGETS;
    await fluxEvent(GITLAB, 'staging', firstTarget);
    const toProd = await fluxEvent(GITLAB, 'staging', lastTarget);
    const jobs = await runQueuedJobs(sqs, queueUrl, worker.handler);
    const [mergeRequest] = gitlab.mergeRequests(PROD_PROJECT);
    if (mergeRequest === undefined) throw new Error('no prod merge request');
    const files = await gitlab.readFiles(PROD_PROJECT, mergeRequest.sourceBranch);
    const unchanged = await reconcile.handler();

    // Act: merged by a person; no hook is set up on prod's project.
    const mergeCommit = await gitlab.mergeAsPerson(PROD_PROJECT, mergeRequest.iid);
    const beforeSweep = await state.getPromotion(GITLAB, 'prod');
    const found = await reconcile.handler();
    const afterSweep = await state.getPromotion(GITLAB, 'prod');
    const final = await fluxEvent(GITLAB, 'prod', 'podinfo-prod');
    const prod = await environmentStatus(GITLAB, 'prod');

    // Assess
    expect(toProd).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { from: 'staging', to: 'prod', revision: '6.5.0' } },
    });
    expect(jobs.failures).toEqual([]);
    expect(mergeRequest).toMatchObject({
      title: 'Promote flux-system/podinfo-gitlab in prod to 6.5.0',
      sourceBranch: 'promotion-flux-system-podinfo-gitlab-prod',
      targetBranch: 'main',
    });
    expect(files).toEqual({ [PROD_FILE]: release('podinfo-prod', 'prod', '6.5.0') });
    expect(unchanged).toMatchObject({ read: 1, merged: 0, failed: 0 });
    expect(beforeSweep).toMatchObject({ state: 'opened', pullRequest: { state: 'open' } });
    expect(found).toMatchObject({ read: 1, merged: 1, failed: 0 });
    expect(afterSweep).toMatchObject({
      state: 'merged',
      pullRequest: { number: mergeRequest.iid, state: 'merged', mergeCommit },
    });
    expect(gitlab.webhookDeliveries).toHaveLength(1);
    expect(final).toEqual({
      status: 200,
      answer: { promoted: false, reason: 'final-environment' },
    });
    expect(prod?.promotion).toMatchObject({
      state: 'deployed',
      pullRequest: { number: mergeRequest.iid, state: 'merged' },
    });
    await eventOnBus('prod deployed', stateChange(GITLAB, 'prod', 'deployed'));
    expect(await busTimeline(GITLAB)).toEqual([
      'Promotion State Change:staging:opened',
      'Promotion State Change:staging:merged',
      'Promotion State Change:prod:waiting',
      'Promotion State Change:staging:deployed',
      'Promotion State Change:prod:opened',
      'Promotion State Change:prod:merged',
      'Promotion State Change:prod:deployed',
    ]);
  });
});

describe('a soak in AWS: the webhook handler wakes the reconcile function when it ends', () => {
  it("dev's event → waiting for the soak → a one-time schedule of the reconcile function at its end", async () => {
    // Act
    const answer = await fluxEvent(SOAKED, 'dev', 'podinfo-dev');
    const body = answer.answer as { waiting?: { soak?: { until: string } } };
    const until = body.waiting?.soak?.until ?? 'no soak';
    const schedule = await scheduler.send(
      new GetScheduleCommand({ GroupName: gateGroup, Name: gateScheduleName(new Date(until)) }),
    );

    // Assess
    expect(answer.status).toBe(202);
    expect(Date.parse(until) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(schedule).toMatchObject({
      ScheduleExpression: `at(${new Date(Math.ceil(Date.parse(until) / 60_000) * 60_000).toISOString().slice(0, 19)})`,
      ActionAfterCompletion: 'DELETE',
      Target: { Arn: RECONCILE_ARN, RoleArn: GATE_ROLE_ARN },
    });
  });
});

describe('a soak the sweep starts: the reconcile function wakes itself, by the ARN it was invoked as', () => {
  it("one of staging's two targets → waiting; the gate lowered to any → the sweep opens it, the soak's schedule invokes the unqualified reconcile ARN", async () => {
    // Prepare
    const first = await fluxEvent(SWEPT, 'staging', STAGING_TARGETS[0]);
    await sweptStore.put(sweptPipeline('any'));

    // Act
    const report = await reconcile.handler({}, { invokedFunctionArn: `${RECONCILE_ARN}:live` });
    const record = await state.getPromotion(SWEPT, 'prod');
    const until =
      record?.waitingFor !== undefined && 'soak' in record.waitingFor
        ? record.waitingFor.soak.until
        : 'no soak';
    const schedule = await scheduler.send(
      new GetScheduleCommand({ GroupName: gateGroup, Name: gateScheduleName(new Date(until)) }),
    );

    // Assess
    expect(first.answer).toEqual(WAITING_FOR_THE_OTHER_STAGING_TARGET);
    expect(report.gates).toMatchObject({ reviewed: 1, released: 0 });
    expect(record?.state).toBe('waiting');
    expect(schedule.Target).toMatchObject({ Arn: RECONCILE_ARN, RoleArn: GATE_ROLE_ARN });
  });

  it("the schedule's own invocation releases due gates only: no pull request is read", async () => {
    // Act
    const report = await reconcile.handler(
      { source: 'gate-timer', dueAt: new Date().toISOString() },
      { invokedFunctionArn: RECONCILE_ARN },
    );

    // Assess
    expect(Object.keys(report)).toEqual(['gates']);
  });
});
