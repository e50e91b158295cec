import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { sqsMessageGroupId } from '../../functions/adapters/sqs-job-queue.ts';
import type { PromotionJob } from '../../functions/core/promotion-job.ts';

/**
 * A job queue and its dead-letter queue on moto, as the stack makes them (FIFO, explicit
 * deduplication ids, a redrive policy), for the `promoter dead-letters` tests.
 */
export interface QueuePair {
  readonly jobQueueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly maxReceiveCount: number;
}

const createQueue = async (
  client: SQSClient,
  name: string,
  attributes: Record<string, string> = {},
): Promise<string> => {
  const answer = await client.send(
    new CreateQueueCommand({
      QueueName: `${name}-${randomUUID()}.fifo`,
      Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false', ...attributes },
    }),
  );
  if (answer.QueueUrl === undefined) throw new Error('moto returned no queue URL');
  return answer.QueueUrl;
};

export const createQueuePair = async (
  client: SQSClient,
  maxReceiveCount = 2,
): Promise<QueuePair> => {
  const deadLetterQueueUrl = await createQueue(client, 'dead-letters');
  const attributes = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const jobQueueUrl = await createQueue(client, 'promotions', {
    // Received messages come back at once: the receives run out quickly.
    VisibilityTimeout: '0',
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: attributes.Attributes?.QueueArn,
      maxReceiveCount,
    }),
  });
  return { jobQueueUrl, deadLetterQueueUrl, maxReceiveCount };
};

/** Sends a body (a job as its JSON) with the job queue's group and deduplication ids. */
export const sendJob = async (
  client: SQSClient,
  queueUrl: string,
  job: PromotionJob | { readonly body: string; readonly groupId: string },
): Promise<void> => {
  const raw = 'body' in job;
  await client.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: raw ? job.body : JSON.stringify(job),
      MessageGroupId: raw ? job.groupId : sqsMessageGroupId(job),
      MessageDeduplicationId: raw ? randomUUID() : job.id,
    }),
  );
};

/** Receives the job queue until its receives are spent and SQS moves what it holds to the DLQ. */
export const spendReceives = async (client: SQSClient, queues: QueuePair): Promise<void> => {
  for (let attempt = 0; attempt < queues.maxReceiveCount + 3; attempt += 1) {
    await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queues.jobQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
      }),
    );
  }
};

/**
 * Every message of a queue, with its group and deduplication ids, deleted as it is read: FIFO
 * hands out nothing more of a group while some of it is in flight.
 */
export const drainQueue = async (client: SQSClient, queueUrl: string): Promise<Message[]> => {
  const messages: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const answer = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 60,
        MessageSystemAttributeNames: ['MessageGroupId', 'MessageDeduplicationId'],
      }),
    );
    const batch = answer.Messages ?? [];
    if (batch.length === 0) empty += 1;
    messages.push(...batch);
    for (const message of batch) {
      await client.send(
        new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
      );
    }
  }
  return messages;
};
