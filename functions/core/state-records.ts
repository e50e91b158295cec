import * as z from 'zod/mini';
import { PromoterError } from './errors.ts';
import {
  type DeploymentRecord,
  type Freeze,
  PROMOTION_STATES,
  type PromotionRecord,
} from './ports.ts';
import { promotionJobSchema } from './promotion-job.ts';
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
  target: z.optional(text),
  revision: text,
  ok: z.optional(z.boolean()),
  eventTimestamp: time,
  recordedAt: time,
});

const freezeSchema = z.object({
  pipeline: z.optional(text),
  environment: z.optional(text),
  reason: text,
  by: text,
  at: time,
  until: z.optional(time),
});

/** A promotion's `timeline` (ports.ts PromotionTimeline). */
export const timelineSchema = z.object({
  sourceDeployedAt: z.optional(time),
  releaseStartedAt: z.optional(time),
  queuedAt: z.optional(time),
  pullRequestAt: z.optional(time),
  mergedAt: z.optional(time),
  deployedAt: z.optional(time),
  approvalRequestedAt: z.optional(time),
  approvedAt: z.optional(time),
});

/** The gate a waiting promotion waits at (ports.ts WaitingFor). */
export const waitingForSchema = z.union([
  z.object({ targets: z.object({ ready: z.number(), needed: z.number() }) }),
  z.object({ soak: z.object({ until: time }) }),
  z.object({ window: z.object({ opensAt: time }) }),
  z.object({ freeze: z.object({ reason: text, by: text, until: z.optional(time) }) }),
]);

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
      head: z.optional(text),
    }),
  ),
  failure: z.optional(z.object({ code: text, message: text })),
  timeline: z.optional(timelineSchema),
  leadTimeMs: z.optional(z.number()),
  waitingFor: z.optional(waitingForSchema),
  dueAt: z.optional(time),
  approvedBy: z.optional(text),
  job: z.optional(promotionJobSchema),
});

/** `value` as `schema` decodes it; STORE_CORRUPT naming `where` and each field that does not. */
export const decodeStored = <T>(schema: z.ZodMiniType, value: unknown, where: string): T => {
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
  decodeStored<DeploymentRecord>(deploymentSchema, value, where);

/** A stored promotion record; STORE_CORRUPT naming `where` and the field when it does not decode. */
export const decodePromotionRecord = (value: unknown, where: string): PromotionRecord =>
  decodeStored<PromotionRecord>(promotionSchema, value, where);

/** A stored freeze; STORE_CORRUPT naming `where` and the field when it does not decode. */
export const decodeFreeze = (value: unknown, where: string): Freeze =>
  decodeStored<Freeze>(freezeSchema, value, where);

/**
 * The key of a deployment among its pipeline's: one per environment and target (`env#target`),
 * and the environment alone for records written before targets were told apart.
 */
export const deploymentSlot = (record: Pick<DeploymentRecord, 'environment' | 'target'>): string =>
  record.target === undefined ? record.environment : `${record.environment}#${record.target}`;

/** The key of a freeze's scope: `*` stands for every pipeline or environment. */
export const freezeScope = (scope: Pick<Freeze, 'pipeline' | 'environment'>): string =>
  `${scope.pipeline ?? '*'}|${scope.environment ?? '*'}`;
