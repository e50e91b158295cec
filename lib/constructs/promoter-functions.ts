import { ArnFormat, Duration, type RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '../../functions/config.ts';
import { handlerEntry, PromoterFunction } from './promoter-function.ts';
import { type PromoterTable, TableAccess } from './promoter-table.ts';
import { type PromotionQueue, VISIBILITY_TO_TIMEOUT_RATIO } from './promotion-queue.ts';

/** The handler files, each exporting `handler`. */
export interface HandlerEntries {
  readonly webhook: string;
  readonly worker: string;
  readonly pipelinesApi: string;
}

export const DEFAULT_HANDLER_ENTRIES: HandlerEntries = {
  webhook: handlerEntry('webhook-lambda.ts'),
  worker: handlerEntry('worker-lambda.ts'),
  pipelinesApi: handlerEntry('pipelines-api-lambda.ts'),
};

/** `POWERTOOLS_SERVICE_NAME` of each function: the `service` of its logs and metrics. */
export const SERVICE_NAMES = {
  webhook: 'pipeline-promoter-webhook',
  worker: 'pipeline-promoter-worker',
  pipelinesApi: 'pipeline-promoter-pipelines-api',
} as const;

/**
 * From `npm run bench -- promotion` (bench/promotion.bench.ts): a cold promotion of a
 * 60,000-file repository takes about 2.5 s of one core and peaks at 265 MiB; a warm one about
 * 0.2 s. The work is CPU-bound, so one full vCPU (1769 MB) costs the same GB-seconds as less
 * memory for longer, and answers sooner. 120 s holds a batch of 5 cold promotions many times
 * over, and the GitHub client gives up one pull-request update after 60 s. The git cache takes
 * about 10 MB per 60,000-file repository, 16 repositories at most: 1 GiB of /tmp is ample.
 */
export const WORKER_DEFAULTS = {
  memorySize: 1769,
  timeout: Duration.seconds(120),
  ephemeralStorageSize: Size.mebibytes(1024),
  batchSize: 5,
  gitCacheDir: '/tmp/git-cache',
} as const;

export interface PromoterFunctionsProps {
  readonly table: PromoterTable;
  readonly queue: PromotionQueue;
  /** Secrets Manager name prefix of the pipelines' secrets, e.g. `pipeline-promoter/`. */
  readonly secretPrefix: string;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
  readonly tracing: boolean;
  /** @default DEFAULT_HANDLER_ENTRIES */
  readonly entries?: Partial<HandlerEntries>;
  /** @default the function's own default (15 minutes) */
  readonly maxEventAgeSeconds?: number;
  /** Promoting Flux event reasons. @default the function's own default list */
  readonly promotingReasons?: readonly string[];
  /** @default 1769 */
  readonly workerMemorySize?: number;
  /** Must be the timeout the queue's visibility timeout was computed from. @default 120 s */
  readonly workerTimeout?: Duration;
  /** @default 1024 MiB */
  readonly workerEphemeralStorageSize?: Size;
  /** Jobs per worker invocation (1 to 10 for a FIFO queue). @default 5 */
  readonly workerBatchSize?: number;
  /** Most concurrent worker invocations the event source starts (2 to 1000). @default no limit */
  readonly workerMaxConcurrency?: number;
}

/**
 * The three functions and, next to each, exactly the access it needs:
 * - webhook: `sqs:SendMessage` on the job queue; GetItem and PutItem on the table (read the
 *   pipeline, record the deployment); `secretsmanager:GetSecretValue` on the secret prefix (the
 *   pipelines' HMAC keys).
 * - worker: consumes the job queue (event source mapping, partial batch failures); GetItem and
 *   PutItem on the table (pipeline and promotion record); `secretsmanager:GetSecretValue` on the
 *   prefix (GitHub tokens).
 * - pipelines API: GetItem, Scan, PutItem and DeleteItem (definitions) and Query (a pipeline's
 *   deployments and promotions, for the status) on the table.
 */
export class PromoterFunctions extends Construct {
  public readonly webhook: NodejsFunction;
  public readonly worker: NodejsFunction;
  public readonly pipelinesApi: NodejsFunction;
  public readonly webhookLogGroup: logs.LogGroup;
  public readonly workerLogGroup: logs.LogGroup;
  public readonly pipelinesApiLogGroup: logs.LogGroup;
  public readonly workerEventSource: SqsEventSource;
  /** The ARN pattern the functions may read secrets from: `...:secret:${secretPrefix}*`. */
  public readonly secretsArnPattern: string;

  constructor(scope: Construct, id: string, props: PromoterFunctionsProps) {
    super(scope, id);
    const entries = { ...DEFAULT_HANDLER_ENTRIES, ...props.entries };
    const common = {
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      tracing: props.tracing,
    };
    const tableName = props.table.table.tableName;
    this.secretsArnPattern = Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${props.secretPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    // Secrets Manager appends `-XXXXXX` to a secret's ARN, so the prefix needs its `*`; the
    // names under it are the pipelines' `secretRef`s, created by the platform team after deploy.
    const readSecrets = new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [this.secretsArnPattern],
    });
    const secretsAcknowledgement = {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${props.secretPrefix}*]`,
      reason: `The functions read the pipelines' secrets, named ${props.secretPrefix}{namespace}/{secretRef} (DESIGN.md section 4) and created after deploy by the platform team; the wildcard is the name prefix plus the random suffix Secrets Manager adds to every secret ARN, and nothing else.`,
    };

    // --- Webhook: verifies, decides, records the deployment, enqueues the job.
    const webhook = new PromoterFunction(this, 'Webhook', {
      ...common,
      entry: entries.webhook,
      description: 'Pipeline Promoter webhook: Flux generic-hmac events in, promotion jobs out',
      serviceName: SERVICE_NAMES.webhook,
      memorySize: 512,
      timeout: Duration.seconds(10),
      environment: {
        [ENV.queueUrl]: props.queue.queue.queueUrl,
        [ENV.tableName]: tableName,
        [ENV.secretPrefix]: props.secretPrefix,
        ...(props.maxEventAgeSeconds === undefined
          ? {}
          : { [ENV.maxEventAgeSeconds]: String(props.maxEventAgeSeconds) }),
        ...(props.promotingReasons === undefined
          ? {}
          : { [ENV.promotingReasons]: props.promotingReasons.join(',') }),
      },
    });
    this.webhook = webhook.function;
    this.webhookLogGroup = webhook.logGroup;
    props.queue.queue.grant(webhook.role, 'sqs:SendMessage');
    props.table.grant(webhook.role, TableAccess.webhook);
    webhook.role.addToPrincipalPolicy(readSecrets);
    Validations.of(webhook.role).acknowledge(secretsAcknowledgement);

    // --- Worker: one job at a time per target environment (FIFO groups), git and GitHub work.
    const workerTimeout = props.workerTimeout ?? WORKER_DEFAULTS.timeout;
    const worker = new PromoterFunction(this, 'Worker', {
      ...common,
      entry: entries.worker,
      description: 'Pipeline Promoter worker: promotion jobs in, pull requests out',
      serviceName: SERVICE_NAMES.worker,
      memorySize: props.workerMemorySize ?? WORKER_DEFAULTS.memorySize,
      timeout: workerTimeout,
      ephemeralStorageSize:
        props.workerEphemeralStorageSize ?? WORKER_DEFAULTS.ephemeralStorageSize,
      environment: {
        // For ChangeMessageVisibility: a transient failure is retried after a backoff.
        [ENV.queueUrl]: props.queue.queue.queueUrl,
        [ENV.tableName]: tableName,
        [ENV.secretPrefix]: props.secretPrefix,
        [ENV.gitCacheDir]: WORKER_DEFAULTS.gitCacheDir,
        // A transient failure on the last receive is recorded as dead-lettered.
        [ENV.maxReceiveCount]: String(props.queue.maxReceiveCount),
      },
    });
    this.worker = worker.function;
    this.workerLogGroup = worker.logGroup;
    const neededVisibility = workerTimeout.toSeconds() * VISIBILITY_TO_TIMEOUT_RATIO;
    if (props.queue.visibilityTimeout.toSeconds() < neededVisibility) {
      throw new Error(
        `the job queue's visibility timeout (${props.queue.visibilityTimeout.toSeconds()} s) must be at least ${VISIBILITY_TO_TIMEOUT_RATIO} times the worker timeout (${neededVisibility} s)`,
      );
    }
    // The event source grants ReceiveMessage, DeleteMessage, ChangeMessageVisibility,
    // GetQueueAttributes and GetQueueUrl on the job queue only.
    this.workerEventSource = new SqsEventSource(props.queue.queue, {
      batchSize: props.workerBatchSize ?? WORKER_DEFAULTS.batchSize,
      reportBatchItemFailures: true,
      ...(props.workerMaxConcurrency === undefined
        ? {}
        : { maxConcurrency: props.workerMaxConcurrency }),
    });
    this.worker.addEventSource(this.workerEventSource);
    props.table.grant(worker.role, TableAccess.worker);
    worker.role.addToPrincipalPolicy(readSecrets);
    Validations.of(worker.role).acknowledge(secretsAcknowledgement);
    Validations.of(this.worker).acknowledge({
      id: 'Serverless-LambdaEventSourceMappingDestination',
      reason:
        'An SQS event source mapping cannot have an on-failure destination (Lambda supports those for stream and Kafka sources only); a job that keeps failing goes to the FIFO dead-letter queue through the job queue redrive policy, which has a depth alarm.',
    });

    // --- Pipelines API: `promoter sync` writes definitions, reads them back, deletes stale ones.
    const pipelinesApi = new PromoterFunction(this, 'PipelinesApi', {
      ...common,
      entry: entries.pipelinesApi,
      description: 'Pipeline Promoter pipelines API: definitions synced from the cluster',
      serviceName: SERVICE_NAMES.pipelinesApi,
      memorySize: 512,
      timeout: Duration.seconds(29),
      environment: { [ENV.tableName]: tableName },
    });
    this.pipelinesApi = pipelinesApi.function;
    this.pipelinesApiLogGroup = pipelinesApi.logGroup;
    props.table.grant(pipelinesApi.role, TableAccess.pipelinesApi);
  }
}
