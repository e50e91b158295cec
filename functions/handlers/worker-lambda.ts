import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { runPromotion } from '../core/promotion.ts';
import { parsePromotionJob } from '../core/promotion-job.ts';
import { logger } from '../observability.ts';
import { createWorkerDependencies } from '../wiring/aws-worker.ts';

/**
 * SQS FIFO batch → the promotion core, one record at a time. A permanent failure is recorded by
 * the core and the message acknowledged; a transient one (thrown) fails the record, so that SQS
 * redelivers it after the visibility timeout, and the rest of its message group with it (FIFO
 * order); after the queue's maxReceiveCount it moves to the DLQ. A job that does not parse is
 * thrown too, so that it lands in the DLQ for a person to read.
 */
const deps = createWorkerDependencies();
const processor = new SqsFifoPartialProcessorAsync();

const promote = async (record: SQSRecord): Promise<void> => {
  const job = parsePromotionJob(record.body);
  logger.appendKeys({ jobId: job.id });
  try {
    const outcome = await runPromotion(job, deps);
    logger.info('promotion finished', {
      ...outcome,
      receiveCount: record.attributes.ApproximateReceiveCount,
    });
  } finally {
    logger.removeKeys(['jobId']);
  }
};

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processPartialResponse(event, promote, processor, { context, skipGroupOnError: true });
