import * as z from 'zod/mini';
import { PROVIDERS } from './pipeline.ts';

// The normalised Pipeline (pipeline.ts) as a store keeps it, for decoding it when read back
// (DynamoDB's definition items, with state-records.ts `decodeStored`): an item that does not
// decode is STORE_CORRUPT naming the field, never a pipeline with fields made up. The shape is pipeline.ts's interfaces, field
// for field; a field added there and not here is dropped on the way back, which the stores'
// round-trip tests show.

const text = z.string();

const repositorySchema = z.object({
  provider: z.enum(PROVIDERS),
  cloneUrl: text,
  apiBaseUrl: text,
  owner: text,
  repo: text,
});

/** Items written before GitLab kept the provider on the strategy (always github). */
const legacyPullRequestStrategy = z.pipe(
  z.object({
    type: z.literal('pull-request'),
    provider: z.literal('github'),
    repository: z.object({ cloneUrl: text, apiBaseUrl: text, owner: text, repo: text }),
    baseBranch: text,
    credentialsSecret: text,
  }),
  z.transform(({ provider, repository, ...strategy }) => ({
    ...strategy,
    repository: { provider, ...repository },
  })),
);

const promotionSchema = z.object({
  manual: z.boolean(),
  strategy: z.union([
    z.object({
      type: z.literal('pull-request'),
      repository: repositorySchema,
      baseBranch: text,
      credentialsSecret: text,
    }),
    legacyPullRequestStrategy,
    z.object({ type: z.literal('notification') }),
  ]),
  hmacSecret: z.optional(text),
});

const promotionSettingsSchema = z.partial(
  z.object({
    gate: z.union([
      z.object({ kind: z.literal('all') }),
      z.object({ kind: z.literal('any') }),
      z.object({ kind: z.literal('count'), count: z.number() }),
    ]),
    soakMs: z.number(),
    window: z.object({
      days: z.array(z.number()),
      startMinute: z.number(),
      endMinute: z.number(),
      timeZone: text,
      text,
    }),
    autoMerge: z.boolean(),
  }),
);

export const storedPipelineSchema = z.object({
  namespace: text,
  name: text,
  app: z.object({ apiVersion: text, kind: text, name: text }),
  hmacSecret: text,
  environments: z.array(
    z.object({
      name: text,
      targets: z.array(
        z.object({
          namespace: text,
          clusterRef: z.optional(z.object({ kind: text, name: text, namespace: z.optional(text) })),
        }),
      ),
      promotion: z.optional(promotionSchema),
    }),
  ),
  promotion: z.optional(promotionSchema),
  settings: z.optional(
    z.object({
      all: promotionSettingsSchema,
      into: z.record(text, promotionSettingsSchema),
    }),
  ),
});
