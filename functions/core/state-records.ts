import * as z from 'zod/mini';
import { PromoterError } from './errors.ts';
import { type DeploymentRecord, PROMOTION_STATES, type PromotionRecord } from './ports.ts';
import { formatIssues } from './validation.ts';

/**
 * The stored shapes of deployments and promotion records, decoded with zod by every state
 * store (DynamoDB and serve's SQLite): a stored item that does not decode is STORE_CORRUPT,
 * naming the item and the field, never a record with fields made up.
 */
const text = z.string();
const time = z.string();

const deploymentSchema = z.object({
  pipeline: z.object({ namespace: text, name: text }),
  environment: text,
  revision: text,
  eventTimestamp: time,
  recordedAt: time,
});

const promotionSchema = z.object({
  pipeline: z.object({ namespace: text, name: text }),
  environment: text,
  revision: text,
  state: z.enum(PROMOTION_STATES),
  jobId: text,
  from: text,
  eventTimestamp: time,
  updatedAt: time,
  pullRequest: z.optional(
    z.object({
      number: z.number(),
      url: text,
      state: z.optional(z.enum(['open', 'merged', 'closed'])),
      mergeCommit: z.optional(text),
    }),
  ),
  failure: z.optional(z.object({ code: text, message: text })),
  timeline: z.optional(
    z.object({
      sourceDeployedAt: z.optional(time),
      releaseStartedAt: z.optional(time),
      queuedAt: z.optional(time),
      pullRequestAt: z.optional(time),
      mergedAt: z.optional(time),
      deployedAt: z.optional(time),
    }),
  ),
  leadTimeMs: z.optional(z.number()),
});

const decode = <T>(schema: z.ZodMiniType, value: unknown, where: string): T => {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new PromoterError(
      'STORE_CORRUPT',
      `${where}: the stored record is invalid: ${formatIssues(result.error.issues).join('; ')}`,
    );
  }
  return result.data as T;
};

/** A stored deployment; STORE_CORRUPT naming `where` and the field when it does not decode. */
export const decodeDeploymentRecord = (value: unknown, where: string): DeploymentRecord =>
  decode<DeploymentRecord>(deploymentSchema, value, where);

/** A stored promotion record; STORE_CORRUPT naming `where` and the field when it does not decode. */
export const decodePromotionRecord = (value: unknown, where: string): PromotionRecord =>
  decode<PromotionRecord>(promotionSchema, value, where);
