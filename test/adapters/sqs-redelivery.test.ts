import {
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redeliveryDelaySeconds, SqsRedelivery } from '../../functions/adapters/sqs-redelivery.ts';
import { createFifoQueue } from '../support/aws-test-resources.ts';
import { awsClientConfig } from '../support/moto-server.ts';

describe('redeliveryDelaySeconds', () => {
  it.each([
    [1, 30],
    [2, 60],
    [3, 120],
    [5, 480],
    [6, 900],
    [10, 900],
  ])('receive %i: %i s', (receiveCount, seconds) => {
    // Act
    const delay = redeliveryDelaySeconds(receiveCount);

    // Assess
    expect(delay).toBe(seconds);
  });

  it('treats a receive count below 1 as the first receive', () => {
    // Act
    const delays = [0, -1].map(redeliveryDelaySeconds);

    // Assess
    expect(delays).toEqual([30, 30]);
  });
});

describe('SqsRedelivery on a FIFO queue (moto)', () => {
  let client: SQSClient;

  beforeAll(() => {
    client = new SQSClient(awsClientConfig(inject('motoEndpoint')));
  });
  afterAll(() => client.destroy());

  /** One receive of the visible messages (up to 10). */
  const receive = async (queueUrl: string): Promise<Message[]> =>
    (
      await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
        }),
      )
    ).Messages ?? [];

  const send = async (queueUrl: string, group: string): Promise<void> => {
    await client.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: group,
        MessageGroupId: group,
        MessageDeduplicationId: group,
      }),
    );
  };

  it('keeps a deferred message away, while one not deferred comes back at once', async () => {
    // Prepare: visibility timeout 0, so that a received message is visible again right away.
    const queueUrl = await createFifoQueue(client, { visibilityTimeoutSeconds: 0 });
    await send(queueUrl, 'deferred');
    await send(queueUrl, 'kept');
    const received = await receive(queueUrl);
    const deferred = received.find((message) => message.Body === 'deferred');
    const redelivery = new SqsRedelivery(client, queueUrl);

    // Act
    const result = await redelivery.defer([
      { receiptHandle: deferred?.ReceiptHandle ?? '', receiveCount: 1 },
    ]);
    const again = await receive(queueUrl);

    // Assess
    expect(received.map((message) => message.Body).sort()).toEqual(['deferred', 'kept']);
    expect(result).toEqual({ failed: 0 });
    expect(again.map((message) => message.Body)).toEqual(['kept']);
  });

  it('counts, and does not throw for, messages whose visibility cannot be changed', async () => {
    // Prepare
    const queueUrl = await createFifoQueue(client, { visibilityTimeoutSeconds: 0 });
    const redelivery = new SqsRedelivery(client, queueUrl);

    // Act
    const result = await redelivery.defer([
      { receiptHandle: 'not-a-receipt-handle', receiveCount: 2 },
    ]);

    // Assess
    expect(result).toEqual({ failed: 1 });
  });
});
