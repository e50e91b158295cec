import * as z from 'zod/mini';
import { PromoterError } from './core/errors.ts';
import { DEFAULT_SECRET_PREFIX } from './core/pipeline-secret.ts';
import { MAX_RECEIVES } from './core/retry-policy.ts';
import { formatIssues } from './core/validation.ts';

export { DEFAULT_SECRET_PREFIX };

/**
 * The functions' settings, read once from the environment at start-up (fail fast: a function
 * with a missing or malformed setting throws before it takes its first event). The stack sets
 * these names; ENV below is the one list of them.
 */
export const ENV = {
  queueUrl: 'PROMOTER_QUEUE_URL',
  tableName: 'PROMOTER_TABLE_NAME',
  secretPrefix: 'PROMOTER_SECRET_PREFIX',
  secretTtlSeconds: 'PROMOTER_SECRET_TTL_SECONDS',
  maxEventAgeSeconds: 'PROMOTER_MAX_EVENT_AGE_SECONDS',
  promotingReasons: 'PROMOTER_PROMOTING_REASONS',
  gitCacheDir: 'PROMOTER_GIT_CACHE_DIR',
  awsEndpoint: 'PROMOTER_AWS_ENDPOINT',
  pipelineCacheSeconds: 'PROMOTER_PIPELINE_CACHE_SECONDS',
  maxReceiveCount: 'PROMOTER_MAX_RECEIVE_COUNT',
  gitMaxPackMb: 'PROMOTER_GIT_MAX_PACK_MB',
  gitMaxObjectMb: 'PROMOTER_GIT_MAX_OBJECT_MB',
  gitMaxDeltaDepth: 'PROMOTER_GIT_MAX_DELTA_DEPTH',
  promotionTimeoutSeconds: 'PROMOTER_PROMOTION_TIMEOUT_SECONDS',
  allowedGitHosts: 'PROMOTER_ALLOWED_GIT_HOSTS',
} as const;

const wholeSeconds = (minimum: number) =>
  z.coerce
    .number()
    .check(
      z.refine(Number.isInteger, 'expected whole seconds'),
      z.gte(minimum, `expected seconds >= ${minimum}`),
    );

/** A comma-separated list; unset, empty or blank (no reason in it) means the default list. */
const reasonList = z.pipe(
  z.optional(z.string()),
  z.transform((value): string[] | undefined => {
    const reasons = (value ?? '')
      .split(',')
      .map((reason) => reason.trim())
      .filter(Boolean);
    return reasons.length === 0 ? undefined : reasons;
  }),
);

const positiveWhole = z.coerce
  .number()
  .check(z.refine(Number.isInteger, 'expected a whole number'), z.gte(1, 'expected a number >= 1'));

/** Host names, comma-separated; unset or blank: none. */
const hostList = z.pipe(
  z.optional(z.string()),
  z.transform((value): string[] =>
    (value ?? '')
      .split(',')
      .map((host) => host.trim())
      .filter(Boolean),
  ),
);

const webhookSettings = {
  [ENV.maxEventAgeSeconds]: z._default(wholeSeconds(1), 15 * 60),
  [ENV.promotingReasons]: reasonList,
  [ENV.queueUrl]: z.url('expected the SQS queue URL'),
};

const commonSettings = z.object({
  [ENV.tableName]: z.string().check(z.minLength(1, 'expected the DynamoDB table name')),
  [ENV.secretPrefix]: z._default(z.string(), DEFAULT_SECRET_PREFIX),
  [ENV.secretTtlSeconds]: z._default(wholeSeconds(1), 60),
  /** How long the webhook and the worker keep a pipeline definition in memory; 0: not at all. */
  [ENV.pipelineCacheSeconds]: z._default(wholeSeconds(0), 30),
  /** Only for tests and local stacks: an AWS endpoint (moto, LocalStack). */
  [ENV.awsEndpoint]: z.optional(z.url()),
});

const parse = <T extends z.ZodMiniType>(schema: T, env: NodeJS.ProcessEnv): z.output<T> => {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new PromoterError(
      'INVALID_CONFIG',
      `invalid function settings: ${formatIssues(result.error.issues).join('; ')}`,
    );
  }
  return result.data;
};

export const readWebhookConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parse(z.extend(commonSettings, webhookSettings), env);

export const readWorkerConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parse(
    z.extend(commonSettings, {
      [ENV.gitCacheDir]: z.optional(z.string()),
      [ENV.queueUrl]: z.url('expected the SQS queue URL'),
      /** The job queue's maxReceiveCount: a transient failure on that receive is a dead letter. */
      [ENV.maxReceiveCount]: z._default(
        z.coerce
          .number()
          .check(
            z.refine(Number.isInteger, 'expected a whole number'),
            z.gte(1, 'expected a number >= 1'),
          ),
        MAX_RECEIVES,
      ),
      /** The git adapter's limits (DESIGN.md section 14); unset: the adapter's defaults. */
      [ENV.gitMaxPackMb]: z.optional(positiveWhole),
      [ENV.gitMaxObjectMb]: z.optional(positiveWhole),
      [ENV.gitMaxDeltaDepth]: z.optional(positiveWhole),
      [ENV.promotionTimeoutSeconds]: z.optional(positiveWhole),
      /** Hosts git and the GitHub API may reach at loopback, link-local or private addresses. */
      [ENV.allowedGitHosts]: hostList,
    }),
    env,
  );

export const readPipelinesApiConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parse(commonSettings, env);
