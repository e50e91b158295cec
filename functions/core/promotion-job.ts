import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { PromoterError } from './errors.ts';
import type { PipelineRef } from './pipeline.ts';
import { formatIssues } from './validation.ts';

/**
 * The versioned message between the webhook and the worker (DESIGN.md section 6), validated on
 * both sides of the queue.
 */
const text = z.string().check(z.minLength(1, 'expected a non-empty string'));

export const promotionJobSchema = z.object({
  version: z.literal(1, { error: 'expected job version 1' }),
  id: text,
  pipeline: z.object({ namespace: text, name: text }),
  from: text,
  to: text,
  revision: text,
  event: z.object({
    timestamp: z.iso.datetime({ offset: true }),
    reason: z.string(),
    message: z.string(),
    involvedObject: z.object({
      kind: text,
      namespace: text,
      name: text,
      apiVersion: text,
      uid: z.optional(z.string()),
    }),
  }),
  receivedAt: z.iso.datetime({ offset: true }),
});

export type PromotionJob = z.infer<typeof promotionJobSchema>;

/**
 * The queue's deduplication key (DESIGN.md section 6): same (pipeline, target environment,
 * revision, event instant), same id. Flux's retries of one event collapse; dev going A → B → A
 * within the deduplication window still promotes A again, its event being a later one.
 */
export const promotionJobId = (
  pipeline: PipelineRef,
  to: string,
  revision: string,
  eventTimestamp: string,
): string =>
  createHash('sha256')
    .update(
      JSON.stringify([
        pipeline.namespace,
        pipeline.name,
        to,
        revision,
        new Date(eventTimestamp).toISOString(),
      ]),
    )
    .digest('hex')
    .slice(0, 40);

/** One promotion at a time per target environment; others run in parallel. */
export const promotionGroupId = (job: Pick<PromotionJob, 'pipeline' | 'to'>): string =>
  `${job.pipeline.namespace}/${job.pipeline.name}/${job.to}`;

export const parsePromotionJob = (body: string): PromotionJob => {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new PromoterError('INVALID_JOB', 'promotion job is not JSON', { cause: error });
  }
  const result = promotionJobSchema.safeParse(value);
  if (!result.success) {
    throw new PromoterError(
      'INVALID_JOB',
      `promotion job is invalid: ${formatIssues(result.error.issues).join('; ')}`,
    );
  }
  return result.data;
};
