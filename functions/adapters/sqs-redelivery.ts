import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/*
 * Backoff for jobs that failed for a transient reason. SQS would redeliver them only after the
 * queue's visibility timeout (six times the worker's); this brings them back after the delay
 * the shared retry schedule gives (core/retry-policy.ts), so that a short GitHub outage costs
 * seconds and a long one does not burn the receives that lead to the dead-letter queue.
 */

export interface FailedMessage {
  readonly receiptHandle: string;
  /** When the message should be received again. */
  readonly delaySeconds: number;
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
              VisibilityTimeout: Math.round(message.delaySeconds),
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
