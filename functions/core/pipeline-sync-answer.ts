import * as z from 'zod/mini';
import type { PipelineSyncResult } from './pipeline-sync.ts';

// The sync answer (`PUT /pipelines`, pipeline-sync.ts PipelineSyncResult) as a client reads it
// back (`promoter sync`): one schema, checked against the result the API builds. `warnings`
// came after the first version and defaults, so that a client reads an older server's answer.

const ids = z.readonly(z.array(z.string()));

export const pipelineSyncSchema = z.object({
  counts: z.object({
    created: z.number(),
    updated: z.number(),
    unchanged: z.number(),
    deleted: z.number(),
    invalid: z.number(),
  }),
  created: ids,
  updated: ids,
  unchanged: ids,
  deleted: ids,
  invalid: z.readonly(z.array(z.object({ id: z.string(), errors: ids }))),
  prune: z.object({
    requested: z.boolean(),
    performed: z.boolean(),
    reason: z.optional(z.string()),
    kept: ids,
  }),
  warnings: z._default(z.readonly(z.array(z.object({ id: z.string(), message: z.string() }))), []),
});

// Compile-time: every result the API builds is one this schema reads.
export type PipelineSyncResultIsAnAnswer =
  PipelineSyncResult extends z.input<typeof pipelineSyncSchema> ? true : never;
const _syncResultIsAnAnswer: PipelineSyncResultIsAnAnswer = true;
