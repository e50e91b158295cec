import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/**
 * Backoff for jobs that failed for a transient reason. SQS would redeliver them only after the
 * queue's visibility timeout (six times the worker's); this brings them back after
 * 30 s × 2^(receives − 1), at most 15 minutes, so that a short GitHub outage costs seconds and a
 * long one does not burn the receives that lead to the dead-letter queue.
 */
export const redeliveryDelaySeconds = (receiveCount: number): number =>
  Math.min(15 * 60, 30 * 2 ** Math.max(0, receiveCount - 1));

export interface FailedMessage {
  readonly receiptHandle: string;
  readonly receiveCount: number;
}

export class SqsRedelivery {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  /** Best effort: a message whose visibility cannot be changed comes back after the timeout. */
  async defer(messages: readonly FailedMessage[]): Promise<{ failed: number }> {
    let failed = 0;
    for (let start = 0; start < messages.length; start += 10) {
      const batch = messages.slice(start, start + 10);
      try {
        const answer = await this.client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((message, index) => ({
              Id: String(index),
              ReceiptHandle: message.receiptHandle,
              VisibilityTimeout: redeliveryDelaySeconds(message.receiveCount),
            })),
          }),
        );
        failed += answer.Failed?.length ?? 0;
      } catch {
        failed += batch.length;
      }
    }
    return { failed };
  }
}
