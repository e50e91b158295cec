import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { recordDeadLetter, runPromotion } from '../core/promotion.ts';
import { type PromotionJob, parsePromotionJob } from '../core/promotion-job.ts';
import { retryDelaySeconds } from '../core/retry-policy.ts';
import { logger } from '../observability.ts';
import { createWorkerDependencies } from '../wiring/aws-worker.ts';

/**
 * SQS FIFO batch → the promotion core, one record at a time. A permanent failure is recorded by
 * the core and the message acknowledged. A transient one (thrown) fails the record and, FIFO
 * order oblige, the rest of its message group in the batch; those come back after the shared
 * retry schedule (core/retry-policy.ts: backoff, Retry-After, rate limits), and after the
 * queue's maxReceiveCount they move to the DLQ: the last receive's failure is recorded on the
 * promotion as `dead-lettered` first. A job that does not parse is thrown too, so that it
 * reaches the DLQ for a person to read.
 */
const { promotion, redelivery, maxReceiveCount } = createWorkerDependencies();
const processor = new SqsFifoPartialProcessorAsync();

/** What each failed record of the current batch failed with, by message id. */
const failures = new Map<string, { readonly error: unknown; readonly job?: PromotionJob }>();

const receiveCountOf = (record: SQSRecord): number =>
  Number(record.attributes.ApproximateReceiveCount);

const promote = async (record: SQSRecord): Promise<void> => {
  let job: PromotionJob | undefined;
  // On every line the core logs for this job, its one 'promotion finished' line included.
  logger.appendKeys({ receiveCount: record.attributes.ApproximateReceiveCount });
  try {
    job = parsePromotionJob(record.body);
    await runPromotion(job, promotion);
  } catch (error) {
    failures.set(record.messageId, job === undefined ? { error } : { error, job });
    if (job !== undefined && receiveCountOf(record) >= maxReceiveCount) {
      await recordDeadLetter(job, error, promotion);
    }
    throw error;
  } finally {
    logger.removeKeys(['receiveCount']);
  }
};

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  failures.clear();
  const response = await processPartialResponse(event, promote, processor, {
    context,
    skipGroupOnError: true,
    // Report every failure, even all of them, so that each gets its backoff below.
    throwOnFullBatchFailure: false,
  });
  const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
  if (failed.size > 0) {
    const records = event.Records.filter((record) => failed.has(record.messageId));
    const { failed: notDeferred } = await redelivery.defer(
      records.map((record) => ({
        receiptHandle: record.receiptHandle,
        // A record skipped behind a failure of its group did not fail itself: the schedule's
        // plain backoff for its receive.
        delaySeconds: retryDelaySeconds(
          receiveCountOf(record),
          failures.get(record.messageId)?.error,
        ),
      })),
    );
    logger.warn('promotions to retry', { messages: records.length, notDeferred });
  }
  return response;
};
