import {
  ArnFormat,
  Aws,
  Duration,
  type RemovalPolicy,
  Size,
  Stack,
  Validations,
} from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import {
  ScheduleTargetBase,
  type ScheduleTargetBaseProps,
} from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { GIT_LIMIT_DEFAULTS } from '../../functions/adapters/git/limits.ts';
import { ENV } from '../../functions/config.ts';
import { handlerEntry, PromoterFunction } from './promoter-function.ts';
import { type PromoterTable, TableAccess } from './promoter-table.ts';
import { type PromotionQueue, VISIBILITY_TO_TIMEOUT_RATIO } from './promotion-queue.ts';

/** The handler files, each exporting `handler`. */
export interface HandlerEntries {
  readonly webhook: string;
  readonly worker: string;
  readonly pipelinesApi: string;
  readonly reconcile: string;
}

export const DEFAULT_HANDLER_ENTRIES: HandlerEntries = {
  webhook: handlerEntry('webhook-lambda.ts'),
  worker: handlerEntry('worker-lambda.ts'),
  pipelinesApi: handlerEntry('pipelines-api-lambda.ts'),
  reconcile: handlerEntry('reconcile-lambda.ts'),
};

/** `POWERTOOLS_SERVICE_NAME` of each function: the `service` of its logs and metrics. */
export const SERVICE_NAMES = {
  webhook: 'pipeline-promoter-webhook',
  worker: 'pipeline-promoter-worker',
  pipelinesApi: 'pipeline-promoter-pipelines-api',
  reconcile: 'pipeline-promoter-reconcile',
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
  // Reserved, so that a webhook flood or another application in the account cannot take the
  // worker's concurrency, and a cap on parallel git and GitHub work (GitHub's rate limits).
  reservedConcurrency: 10,
} as const;

/**
 * The reconcile sweep (DESIGN.md section 10) reads each open promotion PR once through the
 * GitHub API (a conditional request: a 304 for an unchanged PR) and writes the PRs that were
 * merged or closed: network-bound, one at a time. 60 s holds a sweep of hundreds of open PRs;
 * one sweep at a time (reserved concurrency 1), every 5 minutes.
 */
export const RECONCILE_DEFAULTS = {
  memorySize: 512,
  timeout: Duration.seconds(60),
  interval: Duration.minutes(5),
  reservedConcurrency: 1,
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
  /**
   * Most concurrent worker invocations the event source starts (2 to 1000), at most the reserved
   * concurrency. @default the reserved concurrency
   */
  readonly workerMaxConcurrency?: number;
  /** Concurrent executions reserved for the worker, and the most it may run. @default 10 */
  readonly workerReservedConcurrency?: number;
  /** Concurrent executions reserved for the webhook, and the most it may run. @default none */
  readonly webhookReservedConcurrency?: number;
  /** Bytes one git fetch may receive, in MiB. @default 256 */
  readonly gitMaxPackMb?: number;
  /** An object's or delta's inflated size, in MiB. @default 64 */
  readonly gitMaxObjectMb?: number;
  /** A delta chain's depth. @default 50 */
  readonly gitMaxDeltaDepth?: number;
  /** One promotion's git work, in seconds; under the worker timeout. @default 90, or 3/4 of a shorter worker timeout */
  readonly promotionTimeoutSeconds?: number;
  /** Hosts the worker may reach at loopback, link-local or private addresses. @default none */
  readonly allowedGitHosts?: readonly string[];
  /** How often the reconcile sweep runs; zero: no schedule (invoke it yourself). @default 5 minutes */
  readonly reconcileInterval?: Duration;
}

/** The promotion time budget: the one given, else 90 s or 3/4 of a shorter worker timeout. */
export const promotionTimeoutSeconds = (
  workerTimeout: Duration,
  given: number | undefined,
): number => {
  const limit = workerTimeout.toSeconds();
  const seconds =
    given ?? Math.min(GIT_LIMIT_DEFAULTS.promotionTimeoutMs / 1000, Math.floor((limit * 3) / 4));
  if (seconds >= limit || seconds < 1) {
    throw new Error(
      `promotionTimeoutSeconds (${seconds}) must be at least 1 and under the worker timeout (${limit} s)`,
    );
  }
  return seconds;
};

/**
 * Invokes one function, by its unqualified ARN only: aws-scheduler-targets' `LambdaInvoke` also
 * grants `{arn}:*` (every version and alias), which the schedule never calls.
 */
class InvokeFunction extends ScheduleTargetBase implements scheduler.IScheduleTarget {
  private readonly fn: IFunction;

  constructor(fn: IFunction, props: ScheduleTargetBaseProps) {
    super(props, fn.functionArn);
    this.fn = fn;
  }

  protected addTargetActionToRole(role: iam.IRole): void {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [this.fn.functionArn],
      }),
    );
  }
}

/** A duration held within [min, max]. */
const clamp = (value: Duration, min: Duration, max: Duration): Duration =>
  Duration.seconds(
    Math.min(max.toSeconds(), Math.max(min.toSeconds(), value.toSeconds({ integral: false }))),
  );

/**
 * The four functions and, next to each, exactly the access it needs:
 * - webhook: `sqs:SendMessage` on the job queue; GetItem, PutItem and DeleteItem on the table
 *   (read the pipeline and the promotion, record the deployment and the GitHub delivery, move the
 *   promotion on, open and close incidents); `secretsmanager:GetSecretValue` on the secret
 *   prefix (the pipelines' HMAC keys, `{prefix}github-webhook`, `{prefix}gitlab-webhook`).
 * - worker: consumes the job queue (event source mapping, partial batch failures); GetItem and
 *   PutItem on the table (pipeline and promotion record); `secretsmanager:GetSecretValue` on the
 *   prefix (GitHub tokens).
 * - pipelines API: GetItem, Scan, PutItem and DeleteItem (definitions) and Query (a pipeline's
 *   deployments and promotions, for the status) on the table.
 * - reconcile: GetItem, Query, Scan and PutItem on the table (every pipeline's open promotion
 *   PRs, recorded merged or closed); `secretsmanager:GetSecretValue` on the prefix (GitHub
 *   tokens); invoked by an EventBridge Scheduler schedule whose role may invoke it and nothing
 *   else.
 */
export class PromoterFunctions extends Construct {
  public readonly webhook: NodejsFunction;
  public readonly worker: NodejsFunction;
  public readonly pipelinesApi: NodejsFunction;
  public readonly reconcile: NodejsFunction;
  public readonly webhookLogGroup: logs.LogGroup;
  public readonly workerLogGroup: logs.LogGroup;
  public readonly pipelinesApiLogGroup: logs.LogGroup;
  public readonly reconcileLogGroup: logs.LogGroup;
  public readonly workerEventSource: SqsEventSource;
  /** The reconcile sweep's schedule and the role it invokes the function with; none at interval 0. */
  public readonly reconcileSchedule?: scheduler.Schedule;
  public readonly reconcileScheduleRole?: iam.Role;
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
      ...(props.webhookReservedConcurrency === undefined
        ? {}
        : { reservedConcurrentExecutions: props.webhookReservedConcurrency }),
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
    // functions/config.ts `readWorkerConfig`: the worker's settings, which the reconcile
    // function reads too.
    const workerEnvironment = {
      // For ChangeMessageVisibility: a transient failure is retried after a backoff.
      [ENV.queueUrl]: props.queue.queue.queueUrl,
      [ENV.tableName]: tableName,
      [ENV.secretPrefix]: props.secretPrefix,
      [ENV.gitCacheDir]: WORKER_DEFAULTS.gitCacheDir,
      // A transient failure on the last receive is recorded as dead-lettered.
      [ENV.maxReceiveCount]: String(props.queue.maxReceiveCount),
      // What a hostile or broken git server may make the worker do (DESIGN.md section 14).
      [ENV.gitMaxPackMb]: String(
        props.gitMaxPackMb ?? GIT_LIMIT_DEFAULTS.maxPackBytes / (1024 * 1024),
      ),
      [ENV.gitMaxObjectMb]: String(
        props.gitMaxObjectMb ?? GIT_LIMIT_DEFAULTS.maxObjectBytes / (1024 * 1024),
      ),
      [ENV.gitMaxDeltaDepth]: String(props.gitMaxDeltaDepth ?? GIT_LIMIT_DEFAULTS.maxDeltaDepth),
      [ENV.promotionTimeoutSeconds]: String(
        promotionTimeoutSeconds(workerTimeout, props.promotionTimeoutSeconds),
      ),
      ...(props.allowedGitHosts === undefined || props.allowedGitHosts.length === 0
        ? {}
        : { [ENV.allowedGitHosts]: props.allowedGitHosts.join(',') }),
    };
    const workerReservedConcurrency =
      props.workerReservedConcurrency ?? WORKER_DEFAULTS.reservedConcurrency;
    // Lambda throttles invocations past the reserved concurrency, and each throttled batch
    // counts as a receive towards the dead-letter queue: the event source stays under it.
    const workerMaxConcurrency = props.workerMaxConcurrency ?? workerReservedConcurrency;
    if (workerMaxConcurrency > workerReservedConcurrency) {
      throw new Error(
        `workerMaxConcurrency (${workerMaxConcurrency}) must not exceed workerReservedConcurrency (${workerReservedConcurrency}): the invocations past it are throttled, and throttled jobs reach the dead-letter queue`,
      );
    }
    const worker = new PromoterFunction(this, 'Worker', {
      ...common,
      entry: entries.worker,
      description: 'Pipeline Promoter worker: promotion jobs in, pull requests out',
      serviceName: SERVICE_NAMES.worker,
      memorySize: props.workerMemorySize ?? WORKER_DEFAULTS.memorySize,
      timeout: workerTimeout,
      ephemeralStorageSize:
        props.workerEphemeralStorageSize ?? WORKER_DEFAULTS.ephemeralStorageSize,
      reservedConcurrentExecutions: workerReservedConcurrency,
      environment: workerEnvironment,
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
      // The event source's floor is 2; a reserved concurrency of 1 is left to throttling.
      ...(workerMaxConcurrency < 2 ? {} : { maxConcurrency: workerMaxConcurrency }),
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
      description:
        'Pipeline Promoter pipelines API: definitions synced from the cluster, status, approvals and freezes',
      serviceName: SERVICE_NAMES.pipelinesApi,
      memorySize: 512,
      timeout: Duration.seconds(29),
      environment: {
        [ENV.tableName]: tableName,
        [ENV.secretPrefix]: props.secretPrefix,
        // An approval or an unfreeze enqueues the promotion's job.
        [ENV.queueUrl]: props.queue.queue.queueUrl,
      },
    });
    this.pipelinesApi = pipelinesApi.function;
    props.queue.queue.grant(pipelinesApi.role, 'sqs:SendMessage');
    this.pipelinesApiLogGroup = pipelinesApi.logGroup;
    props.table.grant(pipelinesApi.role, TableAccess.pipelinesApi);
    // The sync answer warns of pipelines whose environments share one webhook key.
    pipelinesApi.role.addToPrincipalPolicy(readSecrets);
    Validations.of(pipelinesApi.role).acknowledge(secretsAcknowledgement);

    // --- Reconcile: the sweep of open promotion PRs (DESIGN.md section 10), so that a lost
    // GitHub delivery only delays the lifecycle. The worker's settings (readWorkerConfig), with
    // the promotion budget held under this function's own timeout.
    const reconcileTimeout = RECONCILE_DEFAULTS.timeout;
    const reconcile = new PromoterFunction(this, 'Reconcile', {
      ...common,
      entry: entries.reconcile,
      description:
        'Pipeline Promoter reconcile: reads open promotion PRs, records merged and closed',
      serviceName: SERVICE_NAMES.reconcile,
      memorySize: RECONCILE_DEFAULTS.memorySize,
      timeout: reconcileTimeout,
      // One sweep at a time: two would read and write the same promotions.
      reservedConcurrentExecutions: RECONCILE_DEFAULTS.reservedConcurrency,
      environment: {
        ...workerEnvironment,
        [ENV.promotionTimeoutSeconds]: String(
          Math.min(
            promotionTimeoutSeconds(workerTimeout, props.promotionTimeoutSeconds),
            promotionTimeoutSeconds(reconcileTimeout, undefined),
          ),
        ),
      },
      deadLetterQueueReason:
        'The schedule invokes the sweep asynchronously and with an empty event: a failed sweep leaves nothing to keep, the next one (minutes later) redoes its work from the table and GitHub, and failures show in the function Errors metric.',
    });
    this.reconcile = reconcile.function;
    this.reconcileLogGroup = reconcile.logGroup;
    props.table.grant(reconcile.role, TableAccess.reconcile);
    // The sweep enqueues the promotions whose soak, window or freeze ended.
    props.queue.queue.grant(reconcile.role, 'sqs:SendMessage');
    reconcile.role.addToPrincipalPolicy(readSecrets);
    Validations.of(reconcile.role).acknowledge(secretsAcknowledgement);

    const interval = props.reconcileInterval ?? RECONCILE_DEFAULTS.interval;
    // An invocation not run before the next sweep is due is dropped: the next one does its work.
    const maxEventAge = (max: Duration) => clamp(interval, Duration.minutes(1), max);
    this.reconcile.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: maxEventAge(Duration.hours(6)),
    });
    Validations.of(this.reconcile).acknowledge({
      id: 'Serverless-LambdaAsyncFailureDestination',
      reason:
        'The only asynchronous caller is the reconcile schedule, with an empty event: a failed sweep has nothing to deliver anywhere, the next scheduled sweep redoes it, and failures show in the function Errors metric.',
    });
    if (interval.toSeconds({ integral: false }) > 0) {
      // EventBridge Scheduler assumes this role for this account's schedules only (confused
      // deputy), and it may invoke the reconcile function and nothing else.
      this.reconcileScheduleRole = new iam.Role(this, 'ReconcileScheduleRole', {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: {
            StringEquals: {
              'aws:SourceAccount': Aws.ACCOUNT_ID,
              'aws:SourceArn': Stack.of(this).formatArn({
                service: 'scheduler',
                resource: 'schedule-group',
                resourceName: 'default',
              }),
            },
          },
        }),
        description: 'Pipeline Promoter reconcile schedule: invokes the reconcile function',
      });
      this.reconcileSchedule = new scheduler.Schedule(this, 'ReconcileSchedule', {
        description: 'Pipeline Promoter: the reconcile sweep of open promotion pull requests',
        schedule: scheduler.ScheduleExpression.rate(interval),
        target: new InvokeFunction(this.reconcile, {
          role: this.reconcileScheduleRole,
          maxEventAge: maxEventAge(Duration.days(1)),
        }),
      });
    }
  }
}
