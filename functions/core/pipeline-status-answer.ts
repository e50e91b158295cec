import * as z from 'zod/mini';
import { type PipelineStatus, PROMOTION_STATUS_STATES } from './pipeline-status.ts';
import { timelineSchema, waitingForSchema } from './state-records.ts';

// The pipeline status answer (`GET /pipelines/{ns}/{name}`, pipeline-status.ts) as a client
// reads it back (`promoter status`): one schema, checked against the PipelineStatus the API
// builds. Fields added to the answer after its first version default (`targets`, `waitingFor`,
// `approval`), so that a client reads an older server's answer.

const text = z.string();

const promotionStatusSchema = z.object({
  revision: text,
  state: z.enum(PROMOTION_STATUS_STATES),
  waitingFor: z._default(z.nullable(waitingForSchema), null),
  approval: z._default(
    z.nullable(
      z.object({
        requestedAt: z.nullable(text),
        approvedAt: z.nullable(text),
        approvedBy: z.nullable(text),
      }),
    ),
    null,
  ),
  from: text,
  pullRequest: z.nullable(
    z.object({
      number: z.number(),
      url: text,
      state: z.enum(['open', 'merged', 'closed']),
      mergedAt: z.nullable(text),
      mergeCommit: z.nullable(text),
    }),
  ),
  failure: z.nullable(z.object({ code: text, message: text })),
  timeline: timelineSchema,
  leadTimeMs: z.nullable(z.number()),
  eventTimestamp: text,
  updatedAt: text,
});

const environmentStatusSchema = z.object({
  name: text,
  deployed: z.nullable(z.object({ revision: text, eventTimestamp: text, recordedAt: text })),
  targets: z._default(
    z.readonly(
      z.array(
        z.object({
          name: text,
          cluster: z.nullable(text),
          namespace: text,
          revision: z.nullable(text),
          at: z.nullable(text),
          ok: z.nullable(z.boolean()),
        }),
      ),
    ),
    [],
  ),
  promotion: z.nullable(promotionStatusSchema),
});

export const pipelineStatusSchema = z.object({
  pipeline: text,
  namespace: text,
  name: text,
  app: z.object({ apiVersion: text, kind: text, name: text }),
  environments: z.readonly(z.array(environmentStatusSchema)),
});

/** A pipeline status as a client has read it. */
export type PipelineStatusAnswer = z.output<typeof pipelineStatusSchema>;

// Compile-time: every status the API builds is one this schema reads.
export type PipelineStatusIsAnAnswer =
  PipelineStatus extends z.input<typeof pipelineStatusSchema> ? true : never;
const _statusIsAnAnswer: PipelineStatusIsAnAnswer = true;
