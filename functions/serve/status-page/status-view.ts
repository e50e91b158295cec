import * as z from 'zod';

/**
 * What the status page reads from the pipelines API (`GET /pipelines`, `GET /freezes`), decoded
 * leniently: the page shows what it understands and leaves out what it does not, so that a
 * newer server (a field added, a state it does not know) or an older one (no `targets`, no
 * gates) still gives a page rather than an error. A field of the wrong type reads as absent.
 */
const text = z.string().optional().catch(undefined);
const count = z.number().optional().catch(undefined);

const targetView = z.object({
  name: z.string().catch('target'),
  cluster: text,
  namespace: text,
  revision: text,
  at: text,
  ok: z.boolean().optional().catch(undefined),
});

const pullRequestView = z.object({
  number: z.number(),
  url: z.string(),
  state: text,
  mergedAt: z.string().nullable().optional().catch(undefined),
});

const approvalView = z.object({
  requestedAt: text,
  approvedAt: text,
  approvedBy: text,
});

const promotionView = z.object({
  state: z.string().catch('unknown'),
  revision: z.string().catch('?'),
  from: text,
  /** `{targets: {ready, needed}}`, `{soak: {until}}`, `{window: {opensAt}}`, `{freeze: {...}}`. */
  waitingFor: z.record(z.string(), z.unknown()).nullable().optional().catch(undefined),
  approval: approvalView.nullable().optional().catch(undefined),
  pullRequest: pullRequestView.nullable().optional().catch(undefined),
  timeline: z.record(z.string(), z.unknown()).optional().catch(undefined),
  leadTimeMs: z.number().nullable().optional().catch(undefined),
  failure: z
    .object({ code: z.string().catch('UNKNOWN'), message: z.string().catch('') })
    .nullable()
    .optional()
    .catch(undefined),
  updatedAt: text,
});

const environmentView = z.object({
  name: z.string(),
  targets: z.array(targetView).optional().catch(undefined),
  deployed: z
    .object({ revision: z.string(), eventTimestamp: text })
    .nullable()
    .optional()
    .catch(undefined),
  promotion: promotionView.nullable().optional().catch(undefined),
});

const pipelineView = z.object({
  pipeline: z.string(),
  app: z
    .object({ kind: z.string().catch(''), name: z.string().catch('') })
    .optional()
    .catch(undefined),
  environments: z.array(environmentView).catch([]),
});

const freezeView = z.object({
  pipeline: text,
  environment: text,
  reason: text,
  by: text,
  until: text,
  at: text,
});

export type TargetView = z.infer<typeof targetView>;
export type PromotionView = z.infer<typeof promotionView>;
export type EnvironmentView = z.infer<typeof environmentView>;
export type PipelineView = z.infer<typeof pipelineView>;
export type FreezeView = z.infer<typeof freezeView>;

/** The pipelines of a `GET /pipelines` answer; one that cannot be read at all is left out. */
export const readPipelineViews = (body: unknown): PipelineView[] => {
  const list = z.object({ pipelines: z.array(z.unknown()) }).safeParse(body);
  if (!list.success) return [];
  return list.data.pipelines.flatMap((item) => {
    const pipeline = pipelineView.safeParse(item);
    return pipeline.success ? [pipeline.data] : [];
  });
};

/** The freezes of a `GET /freezes` answer. */
export const readFreezeViews = (body: unknown): FreezeView[] => {
  const list = z.object({ freezes: z.array(z.unknown()) }).safeParse(body);
  if (!list.success) return [];
  return list.data.freezes.flatMap((item) => {
    const freeze = freezeView.safeParse(item);
    return freeze.success ? [freeze.data] : [];
  });
};

/** Numbers the page reads inside `waitingFor` (its shape is open-ended). */
export const numberAt = (value: unknown, key: string): number | undefined =>
  count.parse(
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : value,
  );

export const textAt = (value: unknown, key: string): string | undefined =>
  text.parse(
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : value,
  );
