import { createHash } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { errorMessage, PromoterError } from '../core/errors.ts';
import { pipelineId } from '../core/pipeline.ts';
import type { JobQueue } from '../core/ports.ts';
import { type PromotionJob, promotionGroupId, promotionJobSchema } from '../core/promotion-job.ts';
import { formatIssues } from '../core/validation.ts';

/**
 * The `JobQueue` port on an SQS FIFO queue (DESIGN.md section 6):
 * - `MessageGroupId` = `{ns}/{name}/{toEnv}`: one promotion at a time per target environment,
 *   different pipelines and environments in parallel;
 * - `MessageDeduplicationId` = the job id (a hash of ns, name, toEnv, revision): the same
 *   promotion enqueued again within SQS's 5-minute deduplication window has no second effect,
 *   which is what makes Flux's retried deliveries harmless;
 * - the body is the versioned JSON job, validated before it is sent (and by the worker again).
 *
 * SQS limits both ids to 128 characters of printable ASCII; a longer or odd value (Kubernetes
 * names can reach 253 characters) keeps a readable prefix and ends with a hash of the whole, so
 * that distinct values stay distinct. The SQS client is created once by the wiring.
 */
export class SqsJobQueue implements JobQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(job: PromotionJob): Promise<void> {
    const checked = promotionJobSchema.safeParse(job);
    if (!checked.success) {
      throw new PromoterError(
        'INVALID_JOB',
        `promotion job ${job.id} is invalid: ${formatIssues(checked.error.issues).join('; ')}`,
        { data: { jobId: job.id } },
      );
    }
    const groupId = sqsMessageGroupId(job);
    try {
      await this.client.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: JSON.stringify(checked.data),
          MessageGroupId: groupId,
          MessageDeduplicationId: sqsMessageDeduplicationId(job),
        }),
      );
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error';
      throw new PromoterError(
        'QUEUE_UNAVAILABLE',
        `could not enqueue promotion job ${job.id} (${pipelineId(job.pipeline)} ${job.from} -> ${job.to}) ` +
          `on ${this.queueUrl}: ${name}: ${errorMessage(error)}`,
        {
          retryable: true,
          cause: error,
          data: { jobId: job.id, messageGroupId: groupId, queueUrl: this.queueUrl },
        },
      );
    }
  }
}

const SQS_ID = /^[\x21-\x7e]{1,128}$/;

/** `value` when SQS accepts it as a group or deduplication id, else a bounded, unique form. */
export const sqsSafeId = (value: string): string => {
  if (SQS_ID.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 32);
  const prefix = value.replace(/[^\x21-\x7e]/g, '_').slice(0, 128 - hash.length - 1);
  return `${prefix}#${hash}`;
};

export const sqsMessageGroupId = (job: Pick<PromotionJob, 'pipeline' | 'to'>): string =>
  sqsSafeId(promotionGroupId(job));

export const sqsMessageDeduplicationId = (job: Pick<PromotionJob, 'id'>): string =>
  sqsSafeId(job.id);
