import * as z from 'zod';
import { PromoterError } from './core/errors.ts';
import { formatIssues } from './core/validation.ts';
import { DEFAULT_SECRET_PREFIX } from './adapters/secrets-manager-secret-store.ts';

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
} as const;

const seconds = z.coerce.number().int('expected whole seconds').positive('expected seconds > 0');

const webhookSettings = z.object({
  [ENV.maxEventAgeSeconds]: seconds.default(15 * 60),
  [ENV.promotingReasons]: z
    .string()
    .optional()
    .transform((value) =>
      value === undefined
        ? undefined
        : value
            .split(',')
            .map((reason) => reason.trim())
            .filter(Boolean),
    ),
});

const commonSettings = z.object({
  [ENV.tableName]: z.string().min(1, 'expected the DynamoDB table name'),
  [ENV.secretPrefix]: z.string().default(DEFAULT_SECRET_PREFIX),
  [ENV.secretTtlSeconds]: seconds.default(60),
  /** Only for tests and local stacks: an AWS endpoint (moto, LocalStack). */
  [ENV.awsEndpoint]: z.url().optional(),
});

const parse = <T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.output<T> => {
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
  parse(
    commonSettings.extend(webhookSettings.shape).extend({
      [ENV.queueUrl]: z.url('expected the SQS queue URL'),
    }),
    env,
  );

export const readWorkerConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parse(commonSettings.extend({ [ENV.gitCacheDir]: z.string().optional() }), env);

export const readPipelinesApiConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parse(commonSettings, env);
