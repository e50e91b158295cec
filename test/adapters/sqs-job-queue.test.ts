import { randomUUID } from 'node:crypto';
import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  SqsJobQueue,
  sqsMessageGroupId,
  sqsSafeId,
} from '../../functions/adapters/sqs-job-queue.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { parsePromotionJob } from '../../functions/core/promotion-job.ts';
import { compareText } from '../../functions/core/text-order.ts';
import { createFifoQueue } from '../support/aws-test-resources.ts';
import { testJob } from '../support/jobs.ts';
import { awsClientConfig } from '../support/moto-server.ts';
import { describeJobQueueContract } from './job-queue.contract.ts';

describe('SqsJobQueue on a FIFO queue (moto)', () => {
  let client: SQSClient;

  beforeAll(() => {
    client = new SQSClient(awsClientConfig(inject('motoEndpoint')));
  });
  afterAll(() => client.destroy());

  const receiveAll = async (queueUrl: string): Promise<Message[]> => {
    const messages: Message[] = [];
    // FIFO receives may hand out one group per call: read until the queue is dry.
    for (let empty = 0; empty < 2; ) {
      const response = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 60,
          // AttributeNames (deprecated) is typed for queue attributes only; this is its successor.
          MessageSystemAttributeNames: ['MessageGroupId', 'MessageDeduplicationId'],
        }),
      );
      const batch = response.Messages ?? [];
      if (batch.length === 0) empty += 1;
      messages.push(...batch);
    }
    return messages;
  };

  describeJobQueueContract('SqsJobQueue', async () => {
    const queueUrl = await createFifoQueue(client);
    return {
      queue: new SqsJobQueue(client, queueUrl),
      // A FIFO queue hands out a group's next message once the one before is deleted.
      consume: async () => {
        const jobs = [];
        for (let empty = 0; empty < 2; ) {
          const { Messages = [] } = await client.send(
            new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
          );
          if (Messages.length === 0) empty += 1;
          for (const message of Messages) {
            jobs.push(parsePromotionJob(message.Body ?? ''));
            await client.send(
              new DeleteMessageCommand({
                QueueUrl: queueUrl,
                ReceiptHandle: message.ReceiptHandle,
              }),
            );
          }
        }
        return jobs;
      },
    };
  });

  it('enqueues the same job twice as one message with its group and deduplication ids', async () => {
    // Prepare
    const queueUrl = await createFifoQueue(client);
    const queue = new SqsJobQueue(client, queueUrl);
    const job = testJob('staging', '6.5.4');

    // Act
    await queue.enqueue(job);
    await queue.enqueue(job);

    // Assess
    const messages = await receiveAll(queueUrl);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message?.Attributes).toMatchObject({
      MessageGroupId: 'flux-system/podinfo/staging',
      MessageDeduplicationId: job.id,
    });
    expect(parsePromotionJob(message?.Body ?? '')).toEqual(job);
  });

  it('enqueues jobs for two target environments as two messages in two groups', async () => {
    // Prepare
    const queueUrl = await createFifoQueue(client);
    const queue = new SqsJobQueue(client, queueUrl);
    const staging = testJob('staging', '6.5.4');
    const prod = testJob('prod', '6.5.3');

    // Act
    await queue.enqueue(staging);
    await queue.enqueue(prod);

    // Assess
    const messages = await receiveAll(queueUrl);
    const received = messages
      .map((message) => ({
        group: message.Attributes?.MessageGroupId,
        dedup: message.Attributes?.MessageDeduplicationId,
      }))
      .sort((a, b) => compareText(String(a.group), String(b.group)));
    expect(received).toEqual([
      { group: 'flux-system/podinfo/prod', dedup: prod.id },
      { group: 'flux-system/podinfo/staging', dedup: staging.id },
    ]);
  });

  it('fails with QUEUE_UNAVAILABLE, retryable, when the queue does not exist', async () => {
    // Prepare
    const missing = `${inject('motoEndpoint')}/123456789012/missing-${randomUUID()}.fifo`;
    const queue = new SqsJobQueue(client, missing);

    // Act
    const error = await queue
      .enqueue(testJob('staging', '6.5.4'))
      .catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(PromoterError);
    expect(error).toMatchObject({ code: 'QUEUE_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toContain('flux-system/podinfo dev -> staging');
  });

  it('fails with QUEUE_UNAVAILABLE, retryable, when SQS cannot be reached', async () => {
    // Prepare: a loopback port nothing listens on, one attempt.
    const unreachable = new SQSClient({
      ...awsClientConfig('http://127.0.0.1:9'),
      maxAttempts: 1,
    });
    const queue = new SqsJobQueue(unreachable, 'http://127.0.0.1:9/123456789012/q.fifo');

    // Act
    const error = await queue
      .enqueue(testJob('staging', '6.5.4'))
      .catch((caught: unknown) => caught);
    unreachable.destroy();

    // Assess
    expect(error).toMatchObject({ code: 'QUEUE_UNAVAILABLE', retryable: true });
  });

  it('refuses an invalid job with INVALID_JOB before sending it', async () => {
    // Prepare
    const queue = new SqsJobQueue(client, 'http://127.0.0.1:9/unused.fifo');
    const invalid = testJob('staging', '6.5.4', { revision: '' });

    // Act
    const error = await queue.enqueue(invalid).catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ code: 'INVALID_JOB', retryable: false });
  });

  it('keeps SQS ids within 128 printable characters and distinct', () => {
    // Prepare
    const long = { pipeline: { namespace: 'ns', name: 'n'.repeat(200) }, to: 'prod' };
    const other = { pipeline: { namespace: 'ns', name: `${'n'.repeat(199)}m` }, to: 'prod' };

    // Act
    const id = sqsMessageGroupId(long);

    // Assess
    expect(id.length).toBeLessThanOrEqual(128);
    expect(id).toMatch(/^[\x21-\x7e]+$/);
    expect(id).not.toBe(sqsMessageGroupId(other));
    expect(sqsSafeId('flux-system/podinfo/prod')).toBe('flux-system/podinfo/prod');
  });
});
