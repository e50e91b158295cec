import { randomUUID } from 'node:crypto';
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  EventBridgeNotices,
  MAX_ENTRY_BYTES,
} from '../../functions/adapters/eventbridge-notices.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PromotionNotice, PromotionRecord } from '../../functions/core/ports.ts';
import {
  NOTICE_SOURCE,
  promoteNotice,
  stateChangeNotice,
} from '../../functions/core/promotion-notices.ts';
import { FAILED_PROMOTIONS_EVENT_PATTERN } from '../../lib/constructs/promotion-events.ts';
import { caught } from '../support/caught.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { readFixture } from '../support/fixtures.ts';
import { testJob } from '../support/jobs.ts';
import { awsClientConfig } from '../support/moto-server.ts';

/**
 * EventBridgeNotices on moto's EventBridge: a bus, a rule on it with an SQS queue as target, and
 * what reaches the queue is what a user's rule would get. The failures EventBridge answers and
 * moto does not (a throttled entry, a 5xx, AccessDenied, a cut connection) come from the fault
 * proxy in front of moto.
 */

const AT = new Date('2026-11-02T10:05:00Z');

const podinfo = (): Pipeline => {
  const [pipeline] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines;
  if (pipeline === undefined) throw new Error('the podinfo fixture holds no pipeline');
  return pipeline;
};

const record = (state: PromotionRecord['state']): PromotionRecord => ({
  pipeline: { namespace: 'flux-system', name: 'podinfo' },
  environment: 'prod',
  revision: '6.5.0',
  state,
  jobId: 'job-1',
  from: 'staging',
  eventTimestamp: '2026-11-02T10:00:00Z',
  updatedAt: '2026-11-02T10:05:00Z',
  ...(state === 'failed'
    ? { failure: { code: 'GIT_PUSH_REJECTED', message: 'the push was rejected' } }
    : {}),
});

interface EventOnQueue {
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Record<string, unknown>;
  readonly resources: unknown[];
}

describe('EventBridgeNotices (moto)', () => {
  let events: EventBridgeClient;
  let sqs: SQSClient;
  const proxies: FaultProxy[] = [];

  beforeAll(() => {
    events = new EventBridgeClient(awsClientConfig(inject('motoEndpoint')));
    sqs = new SQSClient(awsClientConfig(inject('motoEndpoint')));
  });
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  });
  afterAll(() => {
    events.destroy();
    sqs.destroy();
  });

  /** A fresh bus whose rule (`pattern`) sends what matches to a fresh queue. */
  const busWithQueue = async (
    pattern: object = { source: [NOTICE_SOURCE] },
  ): Promise<{ bus: string; queueUrl: string }> => {
    const bus = `promotions-${randomUUID()}`;
    await events.send(new CreateEventBusCommand({ Name: bus }));
    const { QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: `notices-${randomUUID()}` }),
    );
    if (queueUrl === undefined) throw new Error('moto returned no queue URL');
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    await events.send(
      new PutRuleCommand({
        Name: 'notices',
        EventBusName: bus,
        EventPattern: JSON.stringify(pattern),
      }),
    );
    await events.send(
      new PutTargetsCommand({
        Rule: 'notices',
        EventBusName: bus,
        Targets: [{ Id: 'queue', Arn: Attributes?.QueueArn }],
      }),
    );
    return { bus, queueUrl };
  };

  const received = async (queueUrl: string): Promise<EventOnQueue[]> => {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    return Messages.map((message) => JSON.parse(message.Body ?? '') as EventOnQueue);
  };

  /** A client through a fault proxy in front of moto, without the SDK's own retries. */
  const throughProxy = async (): Promise<{ client: EventBridgeClient; proxy: FaultProxy }> => {
    const proxy = await startFaultProxy(inject('motoEndpoint'));
    proxies.push(proxy);
    return {
      client: new EventBridgeClient({ ...awsClientConfig(proxy.url), maxAttempts: 1 }),
      proxy,
    };
  };

  it('puts the hand-off on the bus: source pipeline-promoter, detail-type Promotion, the body as detail', async () => {
    // Prepare
    const { bus, queueUrl } = await busWithQueue();
    const notice = promoteNotice(podinfo(), testJob('prod', '6.5.0'), AT);

    // Act
    await new EventBridgeNotices(events, bus).publish(notice);

    // Assess
    const [event, ...others] = await received(queueUrl);
    expect(others).toEqual([]);
    expect(event).toMatchObject({
      source: 'pipeline-promoter',
      'detail-type': 'Promotion',
      resources: [],
      detail: JSON.parse(JSON.stringify(notice.body)) as Record<string, unknown>,
    });
    expect(event?.detail).toMatchObject({
      reason: 'Promote',
      message: 'Promote pipeline flux-system/podinfo to prod with version 6.5.0',
      to: 'prod',
      revision: '6.5.0',
    });
  });

  it("matches the example rule's pattern with a failed promotion, and not with a deployed one", async () => {
    // Prepare
    const { bus, queueUrl } = await busWithQueue(FAILED_PROMOTIONS_EVENT_PATTERN);
    const notices = new EventBridgeNotices(events, bus);

    // Act
    await notices.publish(stateChangeNotice(podinfo(), record('deployed'), AT));
    await notices.publish(stateChangeNotice(podinfo(), record('failed'), AT));

    // Assess
    const delivered = await received(queueUrl);
    expect(delivered.map((event) => [event['detail-type'], event.detail.state])).toEqual([
      ['Promotion State Change', 'failed'],
    ]);
    expect(delivered[0]?.detail).toMatchObject({
      severity: 'error',
      reason: 'PromotionFailed',
      failure: { code: 'GIT_PUSH_REJECTED' },
    });
  });

  it('refuses, permanently, a bus that does not exist (moto and EventBridge: ResourceNotFoundException)', async () => {
    // Prepare
    const bus = `missing-${randomUUID()}`;
    const notice = stateChangeNotice(podinfo(), record('merged'), AT);

    // Act
    const error = await caught(new EventBridgeNotices(events, bus).publish(notice));

    // Assess
    expect(error).toMatchObject({
      code: 'NOTICE_REJECTED',
      retryable: false,
      data: {
        eventBusName: bus,
        error: 'ResourceNotFoundException',
        noticeType: 'Promotion State Change',
      },
    });
    expect(error.message).toContain(`event bus ${bus} does not exist`);
  });

  it('refuses, permanently and without sending it, a detail over the 256 KB entry limit', async () => {
    // Prepare
    const { bus, queueUrl } = await busWithQueue();
    const notice: PromotionNotice = {
      ...promoteNotice(podinfo(), testJob('prod', '6.5.0'), AT),
      body: { message: 'x'.repeat(MAX_ENTRY_BYTES) },
    };

    // Act
    const error = await caught(new EventBridgeNotices(events, bus).publish(notice));

    // Assess
    expect(error).toMatchObject({ code: 'NOTICE_REJECTED', retryable: false });
    expect(error.message).toContain('over EventBridge');
    expect(await received(queueUrl)).toEqual([]);
  });

  it('is unavailable (retryable) when an entry is throttled, naming its error code and message', async () => {
    // Prepare
    const { client, proxy } = await throughProxy();
    proxy.inject({
      fault: {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/x-amz-json-1.1' },
        body: JSON.stringify({
          FailedEntryCount: 1,
          Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }],
        }),
      },
    });

    // Act
    const error = await caught(
      new EventBridgeNotices(client, 'promotions').publish(
        stateChangeNotice(podinfo(), record('opened'), AT),
      ),
    );

    // Assess
    expect(error).toMatchObject({
      code: 'NOTICE_UNAVAILABLE',
      retryable: true,
      data: { error: 'ThrottlingException' },
    });
    expect(error.message).toContain('ThrottlingException: Rate exceeded');
    client.destroy();
  });

  it('is rejected (permanent) when an entry is refused for what it is', async () => {
    // Prepare
    const { client, proxy } = await throughProxy();
    proxy.inject({
      fault: {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/x-amz-json-1.1' },
        body: JSON.stringify({
          FailedEntryCount: 1,
          Entries: [{ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' }],
        }),
      },
    });

    // Act
    const error = await caught(
      new EventBridgeNotices(client, 'promotions').publish(
        stateChangeNotice(podinfo(), record('opened'), AT),
      ),
    );

    // Assess
    expect(error).toMatchObject({ code: 'NOTICE_REJECTED', retryable: false });
    expect(error.message).toContain('MalformedDetail: Detail is malformed.');
    client.destroy();
  });

  it('is unavailable (retryable) on a 5xx, throttling and a cut connection', async () => {
    // Prepare
    const { client, proxy } = await throughProxy();
    const jsonError = (status: number, type: string) => ({
      kind: 'status' as const,
      status,
      headers: { 'content-type': 'application/x-amz-json-1.1' },
      body: JSON.stringify({ __type: type, message: `${type} of the test` }),
    });
    proxy.inject({ fault: jsonError(500, 'InternalException') });
    proxy.inject({ fault: jsonError(400, 'ThrottlingException') });
    proxy.inject({ fault: { kind: 'drop', reset: true } });
    const notices = new EventBridgeNotices(client, 'promotions');
    const notice = stateChangeNotice(podinfo(), record('merged'), AT);

    // Act
    const errors = [
      await caught(notices.publish(notice)),
      await caught(notices.publish(notice)),
      await caught(notices.publish(notice)),
    ];

    // Assess
    expect(errors.map((error) => [error.code, error.retryable])).toEqual([
      ['NOTICE_UNAVAILABLE', true],
      ['NOTICE_UNAVAILABLE', true],
      ['NOTICE_UNAVAILABLE', true],
    ]);
    expect(errors[0]?.message).toContain('InternalException');
    expect(errors[1]?.message).toContain('ThrottlingException');
    client.destroy();
  });

  it('is rejected (permanent) on AccessDenied, saying what to grant', async () => {
    // Prepare
    const { client, proxy } = await throughProxy();
    proxy.inject({
      fault: {
        kind: 'status',
        status: 400,
        headers: { 'content-type': 'application/x-amz-json-1.1' },
        body: JSON.stringify({
          __type: 'AccessDeniedException',
          message: 'User is not authorized to perform: events:PutEvents',
        }),
      },
    });

    // Act
    const error = await caught(
      new EventBridgeNotices(client, 'promotions').publish(
        stateChangeNotice(podinfo(), record('merged'), AT),
      ),
    );

    // Assess
    expect(error).toMatchObject({
      code: 'NOTICE_REJECTED',
      retryable: false,
      data: { error: 'AccessDeniedException' },
    });
    expect(error.message).toContain('events:PutEvents on the bus');
    client.destroy();
  });
});
