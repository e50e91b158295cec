import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { errorMessage, PromoterError } from '../core/errors.ts';
import { pipelineId } from '../core/pipeline.ts';
import type { DeadLetter, DeadLetters, PromotionStateStore } from '../core/ports.ts';
import { type PromotionJob, parsePromotionJob } from '../core/promotion-job.ts';
import { sqsMessageGroupId, sqsSafeId } from './sqs-job-queue.ts';

export interface SqsDeadLettersOptions {
  /** Where the failures are: the promotion records (the worker writes `dead-lettered` there). */
  readonly promotions?: Pick<PromotionStateStore, 'getPromotion'>;
  /**
   * `auto`: SQS's message move task, or moving the messages one by one where the endpoint has
   * no move task (moto); `resend`: always one by one.
   * @default 'auto'
   */
  readonly redrive?: 'auto' | 'resend';
  /** Receives a listing or a search makes at most (10 messages each). @default 100 */
  readonly maxReceives?: number;
  /** How long `retryAll` waits for a move task to finish before answering. @default 60 s */
  readonly moveTaskWaitMs?: number;
}

/** Messages stay hidden this long while they are read, then are made visible again at once. */
const READ_VISIBILITY_SECONDS = 60;
const MOVE_TASK_POLL_MS = 1_000;

interface ReadMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly groupId: string | undefined;
  readonly receiveCount: number;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const httpStatus = (error: unknown): number | undefined =>
  (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

const errorName = (error: unknown): string => (error instanceof Error ? error.name : 'Error');

/**
 * The endpoint has no message move task: moto answers 500 with an HTML page, other emulators
 * name the action unknown. Access, throttling and parameter errors are not this.
 */
const moveTaskUnavailable = (error: unknown): boolean => {
  const status = httpStatus(error);
  return (
    status === 501 ||
    (status === 500 && !/^(InternalError|ServiceUnavailable)/i.test(errorName(error))) ||
    /^(InvalidAction|UnknownOperation|UnsupportedOperation|NotImplemented)/i.test(errorName(error))
  );
};

const queueError = (error: unknown, what: string, queueUrl: string): PromoterError => {
  const status = httpStatus(error);
  const throttled = /Throttl|RequestThrottled|OverLimit/i.test(errorName(error));
  return new PromoterError(
    'QUEUE_UNAVAILABLE',
    `could not ${what} on ${queueUrl}: ${errorName(error)}: ${errorMessage(error)}`,
    {
      retryable: throttled || status === undefined || status >= 500,
      cause: error,
      data: { queueUrl },
    },
  );
};

const jobOf = (message: ReadMessage): { job: PromotionJob } | { error: unknown } => {
  try {
    return { job: parsePromotionJob(message.body) };
  } catch (error) {
    return { error };
  }
};

/** The id `list` shows and `retry` takes: the job's, or the message's for a body that is no job. */
const deadLetterId = (message: ReadMessage): string => {
  const parsed = jobOf(message);
  return 'job' in parsed ? parsed.job.id : message.messageId;
};

/**
 * The `DeadLetters` port over the job queue's FIFO dead-letter queue (`promoter dead-letters`).
 *
 * SQS moves a message to the DLQ unchanged, so the failure is not in it: it is read from the
 * promotion record of the job's (pipeline, environment) when that record is this job's and
 * `dead-lettered` (the worker writes it on the last receive), else it is UNKNOWN.
 *
 * Reading a FIFO queue hides what it received, and SQS hands out nothing more of a message
 * group while some of it is hidden: `list` and `retry(id)` see the first 10 messages of each
 * group (a group is one pipeline's target environment), then make them visible again. Every
 * read counts as a receive (`ApproximateReceiveCount` is kept across queues); `receiveCount`
 * leaves the read itself out, not earlier ones. `retryAll` reaches every message.
 */
export class SqsDeadLetters implements DeadLetters {
  private readonly arns = new Map<string, string>();
  private readonly maxReceives: number;

  constructor(
    private readonly client: SQSClient,
    private readonly queues: { readonly jobQueueUrl: string; readonly deadLetterQueueUrl: string },
    private readonly options: SqsDeadLettersOptions = {},
  ) {
    this.maxReceives = options.maxReceives ?? 100;
  }

  async list(): Promise<DeadLetter[]> {
    const messages = await this.readAll(() => false);
    const records = new Map<string, ReturnType<PromotionStateStore['getPromotion']>>();
    const deadLetters: DeadLetter[] = [];
    for (const message of messages.read) {
      const parsed = jobOf(message);
      if (!('job' in parsed)) {
        deadLetters.push({
          id: message.messageId,
          failure: { code: 'INVALID_JOB', message: errorMessage(parsed.error) },
          receiveCount: message.receiveCount,
        });
        continue;
      }
      const { job } = parsed;
      const key = JSON.stringify([job.pipeline.namespace, job.pipeline.name, job.to]);
      let record = records.get(key);
      if (record === undefined && this.options.promotions !== undefined) {
        record = this.options.promotions.getPromotion(job.pipeline, job.to);
        records.set(key, record);
      }
      const promotion = await record;
      deadLetters.push(
        promotion?.jobId === job.id &&
          promotion.state === 'dead-lettered' &&
          promotion.failure !== undefined
          ? {
              id: job.id,
              job,
              failure: promotion.failure,
              receiveCount: message.receiveCount,
              deadLetteredAt: promotion.updatedAt,
            }
          : {
              id: job.id,
              job,
              failure: { code: 'UNKNOWN', message: `see the worker logs for job ${job.id}` },
              receiveCount: message.receiveCount,
            },
      );
    }
    return deadLetters;
  }

  async retry(id: string): Promise<boolean> {
    const { found } = await this.readAll((message) => deadLetterId(message) === id);
    if (found === undefined) return false;
    await this.moveBack(found);
    return true;
  }

  /**
   * SQS's DLQ redrive (a message move task to the job queue) where the endpoint has it; else,
   * and with `redrive: 'resend'`, each message sent again in its group, then deleted.
   */
  async retryAll(): Promise<number> {
    if (this.options.redrive !== 'resend') {
      const moved = await this.startMoveTask();
      if (moved !== undefined) return moved;
    }
    let moved = 0;
    // Each message moved frees its group for the next receive: this reaches every message.
    for (let receives = 0; receives < this.maxReceives * 10; receives += 1) {
      let batch = await this.receive(0);
      if (batch.length === 0) batch = await this.receive(1);
      if (batch.length === 0) break;
      for (const [index, message] of batch.entries()) {
        try {
          await this.moveBack(message);
        } catch (error) {
          await this.release(batch.slice(index + 1));
          throw error;
        }
        moved += 1;
      }
    }
    return moved;
  }

  /**
   * SQS's redrive from the DLQ to the job queue, awaited up to `moveTaskWaitMs`: how many it
   * moved (or, still running, is moving); undefined when the endpoint has no move task.
   */
  private async startMoveTask(): Promise<number | undefined> {
    const { deadLetterQueueUrl } = this.queues;
    const [sourceArn, destinationArn] = await Promise.all([
      this.queueArn(deadLetterQueueUrl),
      this.queueArn(this.queues.jobQueueUrl),
    ]);
    const startedAt = Date.now();
    try {
      await this.client.send(
        new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }),
      );
    } catch (error) {
      if (moveTaskUnavailable(error)) return undefined;
      throw queueError(error, 'start a message move task to the job queue', deadLetterQueueUrl);
    }
    const deadline = startedAt + (this.options.moveTaskWaitMs ?? 60_000);
    for (;;) {
      const task = await this.latestMoveTask(sourceArn);
      const moved = task?.ApproximateNumberOfMessagesMoved ?? 0;
      if (task?.Status === 'FAILED') {
        throw new PromoterError(
          'QUEUE_UNAVAILABLE',
          `the message move task from ${deadLetterQueueUrl} failed after moving ${moved}: ${task.FailureReason ?? 'no reason given'}`,
          { retryable: true, data: { queueUrl: deadLetterQueueUrl } },
        );
      }
      if (task !== undefined && task.Status !== 'RUNNING' && task.Status !== 'CANCELLING') {
        return moved;
      }
      if (Date.now() >= deadline) return task?.ApproximateNumberOfMessagesToMove ?? moved;
      await delay(MOVE_TASK_POLL_MS);
    }
  }

  private async latestMoveTask(
    sourceArn: string,
  ): Promise<ListMessageMoveTasksResultEntry | undefined> {
    try {
      const answer = await this.client.send(
        new ListMessageMoveTasksCommand({ SourceArn: sourceArn, MaxResults: 1 }),
      );
      return answer.Results?.[0];
    } catch (error) {
      throw queueError(error, 'list the message move tasks', this.queues.deadLetterQueueUrl);
    }
  }

  private async queueArn(queueUrl: string): Promise<string> {
    const known = this.arns.get(queueUrl);
    if (known !== undefined) return known;
    let arn: string | undefined;
    try {
      const answer = await this.client.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
      );
      arn = answer.Attributes?.QueueArn;
    } catch (error) {
      throw queueError(error, 'read the queue ARN', queueUrl);
    }
    if (arn === undefined) {
      throw new PromoterError('QUEUE_UNAVAILABLE', `${queueUrl} answered no queue ARN`, {
        retryable: true,
        data: { queueUrl },
      });
    }
    this.arns.set(queueUrl, arn);
    return arn;
  }

  /**
   * Receives until the DLQ has nothing more to hand out or `stop` matches a message, then makes
   * every message but the matching one visible again.
   */
  private async readAll(
    stop: (message: ReadMessage) => boolean,
  ): Promise<{ read: ReadMessage[]; found?: ReadMessage }> {
    const read = new Map<string, ReadMessage>();
    let found: ReadMessage | undefined;
    try {
      for (let receives = 0; receives < this.maxReceives && found === undefined; receives += 1) {
        let batch = await this.receive(0);
        // A short poll may miss messages; a long one asks every server.
        if (batch.length === 0) batch = await this.receive(1);
        if (batch.length === 0) break;
        for (const message of batch) {
          if (read.has(message.messageId)) continue;
          read.set(message.messageId, message);
          if (found === undefined && stop(message)) found = message;
        }
      }
    } finally {
      await this.release([...read.values()].filter((message) => message !== found));
    }
    return found === undefined ? { read: [...read.values()] } : { read: [...read.values()], found };
  }

  private async receive(waitTimeSeconds: number): Promise<ReadMessage[]> {
    const { deadLetterQueueUrl } = this.queues;
    let messages: Message[];
    try {
      const answer = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: waitTimeSeconds,
          VisibilityTimeout: READ_VISIBILITY_SECONDS,
          MessageSystemAttributeNames: ['MessageGroupId', 'ApproximateReceiveCount'],
        }),
      );
      messages = answer.Messages ?? [];
    } catch (error) {
      throw queueError(error, 'receive dead letters', deadLetterQueueUrl);
    }
    return messages.flatMap((message) =>
      message.MessageId === undefined || message.ReceiptHandle === undefined
        ? []
        : [
            {
              messageId: message.MessageId,
              receiptHandle: message.ReceiptHandle,
              body: message.Body ?? '',
              groupId: message.Attributes?.MessageGroupId,
              receiveCount: Math.max(0, Number(message.Attributes?.ApproximateReceiveCount) - 1),
            },
          ],
    );
  }

  /** Best effort: a message left hidden comes back by itself after READ_VISIBILITY_SECONDS. */
  private async release(messages: readonly ReadMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += 10) {
      const batch = messages.slice(start, start + 10);
      try {
        await this.client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queues.deadLetterQueueUrl,
            Entries: batch.map((message, index) => ({
              Id: String(index),
              ReceiptHandle: message.receiptHandle,
              VisibilityTimeout: 0,
            })),
          }),
        );
      } catch {}
    }
  }

  /**
   * Sends the message's body to the job queue in its group, then deletes it from the DLQ. The
   * deduplication id is new to the job queue (the job's own id was used there within the last
   * five minutes, maybe) and the same for the same dead letter, so a retry of a retry that
   * failed between the send and the delete is not a second job.
   */
  private async moveBack(message: ReadMessage): Promise<void> {
    const { jobQueueUrl, deadLetterQueueUrl } = this.queues;
    const parsed = jobOf(message);
    const groupId =
      message.groupId ?? ('job' in parsed ? sqsMessageGroupId(parsed.job) : 'dead-letters');
    const what =
      'job' in parsed
        ? `job ${parsed.job.id} (${pipelineId(parsed.job.pipeline)} ${parsed.job.from} -> ${parsed.job.to})`
        : `message ${message.messageId}`;
    try {
      await this.client.send(
        new SendMessageCommand({
          QueueUrl: jobQueueUrl,
          MessageBody: message.body,
          MessageGroupId: groupId,
          MessageDeduplicationId: sqsSafeId(`retry:${message.messageId}`),
        }),
      );
    } catch (error) {
      await this.release([message]);
      throw queueError(error, `send ${what} back to the job queue`, jobQueueUrl);
    }
    try {
      await this.client.send(
        new DeleteMessageCommand({
          QueueUrl: deadLetterQueueUrl,
          ReceiptHandle: message.receiptHandle,
        }),
      );
    } catch (error) {
      throw queueError(
        error,
        `delete ${what} from the dead-letter queue (it is also back on the job queue)`,
        deadLetterQueueUrl,
      );
    }
  }
}
