import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { MAX_RECEIVES } from '../../functions/core/retry-policy.ts';

/** The visibility timeout is this many times the consumer's timeout (AWS's recommendation). */
export const VISIBILITY_TO_TIMEOUT_RATIO = 6;

export interface PromotionQueueProps {
  /**
   * The timeout of the function that consumes the queue. The visibility timeout is six times
   * it, so that a message is not redelivered while a (retried) invocation still works on it.
   */
  readonly consumerTimeout: Duration;
  /**
   * Receives before a job goes to the dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * How long a job waits in the queue at most.
   * @default Duration.days(4)
   */
  readonly retentionPeriod?: Duration;
}

/**
 * The promotion job queue: SQS FIFO (`MessageGroupId` = `{ns}/{name}/{toEnv}`, so one promotion
 * at a time per target environment; `MessageDeduplicationId` set by the webhook, so no
 * content-based deduplication), with a FIFO dead-letter queue. Both are encrypted with
 * SQS-managed keys (no KMS key to grant: the producers and the consumer need SQS permissions
 * only) and refuse requests that are not over TLS.
 */
export class PromotionQueue extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly maxReceiveCount: number;
  public readonly visibilityTimeout: Duration;

  constructor(scope: Construct, id: string, props: PromotionQueueProps) {
    super(scope, id);
    this.maxReceiveCount = props.maxReceiveCount ?? MAX_RECEIVES;
    this.visibilityTimeout = Duration.seconds(
      props.consumerTimeout.toSeconds() * VISIBILITY_TO_TIMEOUT_RATIO,
    );

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      fifo: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is the dead-letter queue of the promotion job queue; its messages are kept 14 days for inspection and redrive, and an alarm fires on its depth. A DLQ of the DLQ would only move the problem.',
    });

    this.queue = new sqs.Queue(this, 'Queue', {
      fifo: true,
      contentBasedDeduplication: false,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: this.visibilityTimeout,
      retentionPeriod: props.retentionPeriod ?? Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
    });
  }
}
