import {
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SqsRedelivery } from '../../functions/adapters/sqs-redelivery.ts';
import { createFifoQueue } from '../support/aws-test-resources.ts';
import { awsClientConfig } from '../support/moto-server.ts';

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
      { receiptHandle: deferred?.ReceiptHandle ?? '', delaySeconds: 30 },
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
      { receiptHandle: 'not-a-receipt-handle', delaySeconds: 60 },
    ]);

    // Assess
    expect(result).toEqual({ failed: 1 });
  });
});
