import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { runPromotion } from '../core/promotion.ts';
import { parsePromotionJob } from '../core/promotion-job.ts';
import { logger } from '../observability.ts';
import { createWorkerDependencies } from '../wiring/aws-worker.ts';

/**
 * SQS FIFO batch → the promotion core, one record at a time. A permanent failure is recorded by
 * the core and the message acknowledged. A transient one (thrown) fails the record and, FIFO
 * order oblige, the rest of its message group in the batch; those come back after a backoff,
 * and after the queue's maxReceiveCount they move to the DLQ. A job that does not parse is
 * thrown too, so that it reaches the DLQ for a person to read.
 */
const { promotion, redelivery } = createWorkerDependencies();
const processor = new SqsFifoPartialProcessorAsync();

const promote = async (record: SQSRecord): Promise<void> => {
  const job = parsePromotionJob(record.body);
  // On every line the core logs for this job, its one 'promotion finished' line included.
  logger.appendKeys({ receiveCount: record.attributes.ApproximateReceiveCount });
  try {
    await runPromotion(job, promotion);
  } finally {
    logger.removeKeys(['receiveCount']);
  }
};

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
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
        receiveCount: Number(record.attributes.ApproximateReceiveCount),
      })),
    );
    logger.warn('promotions to retry', { messages: records.length, notDeferred });
  }
  return response;
};
