import * as z from 'zod/mini';
import { DEFAULT_MAX_EVENT_AGE_SECONDS } from './core/decision.ts';
import { PromoterError } from './core/errors.ts';
import { DEFAULT_METRICS_DETAIL, METRICS_DETAILS } from './core/metrics-detail.ts';
import { DEFAULT_SECRET_PREFIX } from './core/pipeline-secret.ts';
import { closestName } from './core/pipeline-settings.ts';
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
  metricsDetail: 'PROMOTER_METRICS_DETAIL',
  eventBusName: 'PROMOTER_EVENT_BUS_NAME',
  gateScheduleGroup: 'PROMOTER_GATE_SCHEDULE_GROUP',
  gateScheduleTargetArn: 'PROMOTER_GATE_SCHEDULE_TARGET_ARN',
  gateScheduleRoleArn: 'PROMOTER_GATE_SCHEDULE_ROLE_ARN',
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
  [ENV.maxEventAgeSeconds]: z._default(wholeSeconds(1), DEFAULT_MAX_EVENT_AGE_SECONDS),
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
  /** The EventBridge bus promotion notices go to (DESIGN.md section 13); unset: no notices. */
  [ENV.eventBusName]: z.optional(
    z.string().check(z.minLength(1, 'expected the EventBridge event bus name or ARN')),
  ),
  /**
   * Where a due gate's one-time schedule goes, what it invokes (the reconcile function) and as
   * whom; all three or none (then only the periodic sweep looks at due gates).
   */
  [ENV.gateScheduleGroup]: z.optional(
    z.string().check(z.minLength(1, 'expected the EventBridge Scheduler group name')),
  ),
  [ENV.gateScheduleTargetArn]: z.optional(
    z.string().check(z.startsWith('arn:', 'expected the reconcile function ARN')),
  ),
  [ENV.gateScheduleRoleArn]: z.optional(
    z.string().check(z.startsWith('arn:', 'expected the scheduler role ARN')),
  ),
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

/** The pipelines API enqueues the job of an approved or unfrozen promotion. */
export const readPipelinesApiConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parse(z.extend(commonSettings, { [ENV.queueUrl]: z.url('expected the SQS queue URL') }), env);

/** Which facts of a metric point are CloudWatch dimensions (core/metrics-detail.ts). */
export const readMetricsDetail = (env: NodeJS.ProcessEnv = process.env) =>
  parse(
    z.object({
      [ENV.metricsDetail]: z._default(
        z.enum(METRICS_DETAILS, `expected one of ${METRICS_DETAILS.join(', ')}`),
        DEFAULT_METRICS_DETAIL,
      ),
    }),
    env,
  )[ENV.metricsDetail];

/** Context keys of CDK itself (feature flags, `aws:cdk:*`, cached lookups) or of its CLI. */
const isCdkContextKey = (key: string): boolean =>
  key.includes(':') ||
  key.startsWith('@') ||
  key === '//' ||
  key === 'acknowledged-issue-numbers' ||
  key.startsWith('cdk-');

/**
 * Refuses a context key that is no setting of the stack (a misspelt one would otherwise be
 * ignored, and the default used without a word), naming the setting it likely means.
 *
 * @example
 * checkContextKeys(['stackName', 'workerMemroyMb'], ['stackName', 'workerMemoryMb']);
 * // throws: unknown context key "workerMemroyMb" (did you mean "workerMemoryMb"?) ...
 */
export const checkContextKeys = (keys: readonly string[], known: readonly string[]): void => {
  const unknown = keys.filter((key) => !known.includes(key) && !isCdkContextKey(key));
  if (unknown.length === 0) return;
  const problems = unknown.map((key) => {
    const meant = closestName(key, known);
    return `unknown context key ${JSON.stringify(key)}${meant === undefined ? '' : ` (did you mean ${JSON.stringify(meant)}?)`}`;
  });
  throw new PromoterError(
    'INVALID_CONFIG',
    `${problems.join('; ')}: the stack's settings are ${[...known].sort().join(', ')} (README: Settings)`,
    { data: { keys: unknown } },
  );
};
