import { randomUUID } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { SqsDeadLetters } from '../../functions/adapters/sqs-dead-letters.ts';
import { parsePromotionJob } from '../../functions/core/promotion-job.ts';
import { createTestTable, useMotoDynamoDb } from '../support/aws-test-resources.ts';
import {
  createQueuePair,
  drainQueue,
  sendJob,
  spendReceives,
} from '../support/dead-letter-queues.ts';
import { testJob } from '../support/jobs.ts';
import { awsClientConfig } from '../support/moto-server.ts';

describe('SqsDeadLetters on a FIFO dead-letter queue (moto)', () => {
  const moto = useMotoDynamoDb();
  let client: SQSClient;

  beforeAll(() => {
    client = new SQSClient(awsClientConfig(inject('motoEndpoint')));
  });
  afterAll(() => client.destroy());

  it('lists a job the redrive policy dead-lettered, and leaves it there', async () => {
    // Prepare
    const queues = await createQueuePair(client);
    const job = testJob('staging', '6.5.4');
    await sendJob(client, queues.jobQueueUrl, job);
    await spendReceives(client, queues);
    const deadLetters = new SqsDeadLetters(client, queues);

    // Act
    const first = await deadLetters.list();
    const second = await deadLetters.list();

    // Assess
    expect(first).toEqual([
      {
        id: job.id,
        job,
        failure: { code: 'UNKNOWN', message: `see the worker logs for job ${job.id}` },
        receiveCount: queues.maxReceiveCount,
      },
    ]);
    expect(second.map((deadLetter) => deadLetter.job?.id)).toEqual([job.id]);
    expect(await drainQueue(client, queues.jobQueueUrl)).toEqual([]);
  });

  it("takes the failure from the job's dead-lettered promotion record, and only from it", async () => {
    // Prepare
    const queues = await createQueuePair(client);
    const promotions = new DynamoDbPromotionStateStore(
      moto.documents,
      await createTestTable(moto.client),
    );
    const recorded = testJob('staging', '6.5.4');
    const other = testJob('prod', '6.5.3');
    await promotions.putPromotion({
      pipeline: recorded.pipeline,
      environment: 'staging',
      revision: '6.5.4',
      state: 'dead-lettered',
      jobId: recorded.id,
      from: 'dev',
      eventTimestamp: recorded.event.timestamp,
      updatedAt: '2026-11-02T10:20:00.000Z',
      failure: { code: 'GITHUB_UNAVAILABLE', message: 'GitHub answered 503' },
    });
    await promotions.putPromotion({
      pipeline: other.pipeline,
      environment: 'prod',
      revision: '6.5.2',
      state: 'dead-lettered',
      jobId: 'an-earlier-job',
      from: 'staging',
      eventTimestamp: other.event.timestamp,
      updatedAt: '2026-11-02T10:20:00.000Z',
      failure: { code: 'GIT_UNAVAILABLE', message: 'not this job' },
    });
    await sendJob(client, queues.deadLetterQueueUrl, recorded);
    await sendJob(client, queues.deadLetterQueueUrl, other);
    const deadLetters = new SqsDeadLetters(client, queues, { promotions });

    // Act
    const listed = await deadLetters.list();

    // Assess
    const byId = new Map(listed.map((deadLetter) => [deadLetter.job?.id, deadLetter]));
    expect(byId.get(recorded.id)).toEqual({
      id: recorded.id,
      job: recorded,
      failure: { code: 'GITHUB_UNAVAILABLE', message: 'GitHub answered 503' },
      receiveCount: 0,
      deadLetteredAt: '2026-11-02T10:20:00.000Z',
    });
    expect(byId.get(other.id)?.failure.code).toBe('UNKNOWN');
  });

  it('lists a body that is not a job under its message id, as INVALID_JOB', async () => {
    // Prepare
    const queues = await createQueuePair(client);
    await sendJob(client, queues.deadLetterQueueUrl, { body: 'not json', groupId: 'odd' });
    const deadLetters = new SqsDeadLetters(client, queues);

    // Act
    const [listed, ...rest] = await deadLetters.list();

    // Assess
    expect(rest).toEqual([]);
    expect(listed?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(listed?.job).toBeUndefined();
    expect(listed?.failure).toEqual({ code: 'INVALID_JOB', message: 'promotion job is not JSON' });
  });

  it('retries one job by id: back on the job queue in its group, gone from the DLQ', async () => {
    // Prepare
    const queues = await createQueuePair(client);
    const retried = testJob('staging', '6.5.4');
    const kept = testJob('prod', '6.5.3');
    await sendJob(client, queues.deadLetterQueueUrl, retried);
    await sendJob(client, queues.deadLetterQueueUrl, kept);
    const deadLetters = new SqsDeadLetters(client, queues);

    // Act
    const found = await deadLetters.retry(retried.id);
    const missing = await deadLetters.retry('no-such-job');

    // Assess
    expect([found, missing]).toEqual([true, false]);
    const back = await drainQueue(client, queues.jobQueueUrl);
    expect(back.map((message) => parsePromotionJob(message.Body ?? ''))).toEqual([retried]);
    expect(back[0]?.Attributes?.MessageGroupId).toBe('flux-system/podinfo/staging');
    expect(back[0]?.Attributes?.MessageDeduplicationId).not.toBe(retried.id);
    expect((await deadLetters.list()).map((deadLetter) => deadLetter.job?.id)).toEqual([kept.id]);
  });

  it('retries all, past the 10 messages of a group a receive hands out', async () => {
    // Prepare: 12 dead letters in one group, one in another (moto has no message move task:
    // this is the one-by-one path).
    const queues = await createQueuePair(client);
    const staging = Array.from({ length: 12 }, (_, index) => testJob('staging', `6.5.${index}`));
    const prod = testJob('prod', '6.4.0');
    for (const job of [...staging, prod]) await sendJob(client, queues.deadLetterQueueUrl, job);
    const deadLetters = new SqsDeadLetters(client, queues);

    // Act
    const moved = await deadLetters.retryAll();

    // Assess
    expect(moved).toBe(13);
    expect(await deadLetters.list()).toEqual([]);
    const back = await drainQueue(client, queues.jobQueueUrl);
    const groups = new Map<string, string[]>();
    for (const message of back) {
      const group = message.Attributes?.MessageGroupId ?? '';
      groups.set(group, [
        ...(groups.get(group) ?? []),
        parsePromotionJob(message.Body ?? '').revision,
      ]);
    }
    // In order within the group, as they were dead-lettered.
    expect(groups).toEqual(
      new Map([
        ['flux-system/podinfo/staging', staging.map((job) => job.revision)],
        ['flux-system/podinfo/prod', ['6.4.0']],
      ]),
    );
  });

  it('fails with QUEUE_UNAVAILABLE naming the queue when the DLQ does not exist', async () => {
    // Prepare
    const missing = `${inject('motoEndpoint')}/123456789012/missing-${randomUUID()}.fifo`;
    const deadLetters = new SqsDeadLetters(client, {
      jobQueueUrl: missing,
      deadLetterQueueUrl: missing,
    });

    // Act
    const error = await deadLetters.list().catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
    expect((error as Error).message).toContain(missing);
  });
});
