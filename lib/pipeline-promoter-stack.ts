import { Aws, CfnOutput, Duration, RemovalPolicy, Size, Stack, type StackProps } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct, Node } from 'constructs';
import * as z from 'zod';
import { GIT_LIMIT_DEFAULTS } from '../functions/adapters/git/limits.ts';
import { DEFAULT_SECRET_PREFIX, ENV } from '../functions/config.ts';
import {
  DEFAULT_METRICS_DETAIL,
  METRICS_DETAILS,
  type MetricsDetail,
} from '../functions/core/metrics-detail.ts';
import { GateSchedules } from './constructs/gate-schedules.ts';
import { ALARM_DEFAULTS, PromoterAlarms } from './constructs/promoter-alarms.ts';
import { API_DEFAULTS, PromoterApi, ROUTES } from './constructs/promoter-api.ts';
import { PromoterDashboard } from './constructs/promoter-dashboard.ts';
import {
  type HandlerEntries,
  PromoterFunctions,
  RECONCILE_DEFAULTS,
  WORKER_DEFAULTS,
} from './constructs/promoter-functions.ts';
import { PromoterTable } from './constructs/promoter-table.ts';
import { PromotionEvents } from './constructs/promotion-events.ts';
import { PromotionQueue } from './constructs/promotion-queue.ts';

/**
 * What a platform team sets, in `cdk.json` `context` (or `-c key=value`) or as stack props.
 * Every one has a default; `DEFAULT_SETTINGS` lists them.
 */
export interface PipelinePromoterSettings {
  /** Secrets Manager name prefix of the pipelines' secrets (`{prefix}{ns}/{secretRef}`). */
  readonly secretPrefix?: string;
  /** API stage default: steady-state requests per second of a route without limits of its own. */
  readonly throttlingRateLimit?: number;
  /** API stage default burst, requests, of a route without limits of its own. */
  readonly throttlingBurstLimit?: number;
  /** Each webhook route (`POST /promotion/...`, `$default`): steady-state requests per second. */
  readonly webhookThrottlingRateLimit?: number;
  /** Each webhook route's burst, requests. */
  readonly webhookThrottlingBurstLimit?: number;
  /** Each IAM route (sync, status, approvals): steady-state requests per second. */
  readonly iamRoutesThrottlingRateLimit?: number;
  /** Each IAM route's burst, requests. */
  readonly iamRoutesThrottlingBurstLimit?: number;
  /** E-mail address that receives the alarms (SNS); none: the alarms notify nobody. */
  readonly alarmEmail?: string;
  /** Retention of the functions' and the API's log groups, in days (a CloudWatch value). */
  readonly logRetentionDays?: number;
  /** The table's and the log groups' fate when they leave the stack: `retain` or `destroy`. */
  readonly removalPolicy?: RemovalPolicy;
  /** The webhook's replay window: events older than this are refused (422). */
  readonly maxEventAgeSeconds?: number;
  /** Flux event reasons that promote; none: the webhook's default list. */
  readonly promotingReasons?: readonly string[];
  /** X-Ray active tracing of the functions. */
  readonly tracing?: boolean;
  readonly workerMemoryMb?: number;
  readonly workerTimeoutSeconds?: number;
  readonly workerEphemeralStorageMib?: number;
  /** Jobs per worker invocation, 1 to 10. */
  readonly workerBatchSize?: number;
  /** Cap on concurrent worker invocations (2 to 1000); none: the reserved concurrency. */
  readonly workerMaxConcurrency?: number;
  /** Concurrent executions reserved for the worker (2 to 1000), and the most it runs. */
  readonly workerReservedConcurrency?: number;
  /** Concurrent executions reserved for the webhook (1 to 1000); none: no reservation. */
  readonly webhookReservedConcurrency?: number;
  /** The oldest job's age, in minutes, that raises the alarm. */
  readonly oldestMessageAgeAlarmMinutes?: number;
  /** Bytes one git fetch may receive, in MiB. */
  readonly gitMaxPackMb?: number;
  /** An object's or delta's inflated size, in MiB. */
  readonly gitMaxObjectMb?: number;
  /** A delta chain's depth. */
  readonly gitMaxDeltaDepth?: number;
  /** One promotion's git work, in seconds (under the worker timeout); none: 90 or 3/4 of it. */
  readonly promotionTimeoutSeconds?: number;
  /** Hosts the worker may reach at loopback, link-local or private addresses. */
  readonly allowedGitHosts?: readonly string[];
  /** Minutes between two reconcile sweeps of the open promotion PRs; 0: no schedule. */
  readonly reconcileIntervalMinutes?: number;
  /** Which metric facts are CloudWatch dimensions: `minimal`, `standard` or `per-application`. */
  readonly metricsDetail?: MetricsDetail;
}

export interface PipelinePromoterStackProps extends StackProps, PipelinePromoterSettings {
  /** The handler files (tests); default: functions/handlers/*-lambda.ts. */
  readonly entries?: Partial<HandlerEntries>;
}

/** The settings that have a default value (the others are unset by default). */
export type DefaultedSetting =
  | 'secretPrefix'
  | 'throttlingRateLimit'
  | 'throttlingBurstLimit'
  | 'webhookThrottlingRateLimit'
  | 'webhookThrottlingBurstLimit'
  | 'iamRoutesThrottlingRateLimit'
  | 'iamRoutesThrottlingBurstLimit'
  | 'workerReservedConcurrency'
  | 'logRetentionDays'
  | 'removalPolicy'
  | 'tracing'
  | 'workerMemoryMb'
  | 'workerTimeoutSeconds'
  | 'workerEphemeralStorageMib'
  | 'workerBatchSize'
  | 'oldestMessageAgeAlarmMinutes'
  | 'gitMaxPackMb'
  | 'gitMaxObjectMb'
  | 'gitMaxDeltaDepth'
  | 'reconcileIntervalMinutes'
  | 'metricsDetail';

export type ResolvedSettings = PipelinePromoterSettings &
  Required<Pick<PipelinePromoterSettings, DefaultedSetting>>;

export const DEFAULT_SETTINGS: Required<Pick<PipelinePromoterSettings, DefaultedSetting>> = {
  secretPrefix: DEFAULT_SECRET_PREFIX,
  throttlingRateLimit: API_DEFAULTS.throttlingRateLimit,
  throttlingBurstLimit: API_DEFAULTS.throttlingBurstLimit,
  webhookThrottlingRateLimit: API_DEFAULTS.webhookThrottlingRateLimit,
  webhookThrottlingBurstLimit: API_DEFAULTS.webhookThrottlingBurstLimit,
  iamRoutesThrottlingRateLimit: API_DEFAULTS.iamRoutesThrottlingRateLimit,
  iamRoutesThrottlingBurstLimit: API_DEFAULTS.iamRoutesThrottlingBurstLimit,
  workerReservedConcurrency: WORKER_DEFAULTS.reservedConcurrency,
  logRetentionDays: 30,
  removalPolicy: RemovalPolicy.RETAIN,
  tracing: false,
  workerMemoryMb: WORKER_DEFAULTS.memorySize,
  workerTimeoutSeconds: WORKER_DEFAULTS.timeout.toSeconds(),
  workerEphemeralStorageMib: WORKER_DEFAULTS.ephemeralStorageSize.toMebibytes(),
  workerBatchSize: WORKER_DEFAULTS.batchSize,
  oldestMessageAgeAlarmMinutes: ALARM_DEFAULTS.oldestMessageAge.toMinutes(),
  gitMaxPackMb: GIT_LIMIT_DEFAULTS.maxPackBytes / (1024 * 1024),
  gitMaxObjectMb: GIT_LIMIT_DEFAULTS.maxObjectBytes / (1024 * 1024),
  gitMaxDeltaDepth: GIT_LIMIT_DEFAULTS.maxDeltaDepth,
  reconcileIntervalMinutes: RECONCILE_DEFAULTS.interval.toMinutes(),
  metricsDetail: DEFAULT_METRICS_DETAIL,
};

const RETENTION_DAYS = new Set<number>(
  Object.values(RetentionDays).filter((value): value is number => typeof value === 'number'),
);

/** Context values are strings on the command line (`-c key=value`), JSON values in cdk.json. */
const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const flag = z.union([
  z.boolean(),
  z.enum(['true', 'false']).transform((value) => value === 'true'),
]);
const settingsSchema = z
  .object({
    secretPrefix: z
      .string()
      .regex(
        /^[A-Za-z0-9/_+=.@-]+$/,
        'expected a Secrets Manager name prefix like pipeline-promoter/',
      ),
    throttlingRateLimit: z.coerce.number().positive(),
    throttlingBurstLimit: integer(0, 5000),
    webhookThrottlingRateLimit: z.coerce.number().positive().max(10_000),
    webhookThrottlingBurstLimit: integer(0, 5000),
    iamRoutesThrottlingRateLimit: z.coerce.number().positive().max(10_000),
    iamRoutesThrottlingBurstLimit: integer(0, 5000),
    alarmEmail: z.email(),
    logRetentionDays: z.coerce.number().refine((days) => RETENTION_DAYS.has(days), {
      message: `expected one of CloudWatch's retention values: ${[...RETENTION_DAYS].join(', ')}`,
    }),
    removalPolicy: z
      .string()
      .transform((value) => value.toLowerCase())
      .pipe(z.enum([RemovalPolicy.RETAIN, RemovalPolicy.DESTROY])),
    maxEventAgeSeconds: integer(1, 7 * 24 * 3600),
    promotingReasons: z
      .union([z.array(z.string()), z.string().transform((value) => value.split(','))])
      .transform((reasons) => reasons.map((reason) => reason.trim()).filter(Boolean))
      .refine((reasons) => reasons.length > 0, 'expected at least one reason'),
    tracing: flag,
    workerMemoryMb: integer(128, 10240),
    workerTimeoutSeconds: integer(1, 900),
    workerEphemeralStorageMib: integer(512, 10240),
    workerBatchSize: integer(1, 10),
    workerMaxConcurrency: integer(2, 1000),
    workerReservedConcurrency: integer(2, 1000),
    webhookReservedConcurrency: integer(1, 1000),
    oldestMessageAgeAlarmMinutes: integer(1, 14 * 24 * 60),
    gitMaxPackMb: integer(1, 4096),
    gitMaxObjectMb: integer(1, 1024),
    gitMaxDeltaDepth: integer(1, 10_000),
    promotionTimeoutSeconds: integer(1, 899),
    allowedGitHosts: z
      .union([z.array(z.string()), z.string().transform((value) => value.split(','))])
      .transform((hosts) => hosts.map((host) => host.trim()).filter(Boolean))
      .refine(
        (hosts) => hosts.every((host) => /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/.test(host)),
        'expected host names or IP addresses (IPv6 in brackets), comma-separated',
      ),
    reconcileIntervalMinutes: integer(0, 24 * 60),
    metricsDetail: z.enum(METRICS_DETAILS, `expected one of ${METRICS_DETAILS.join(', ')}`),
  })
  .partial();

export const SETTING_NAMES = Object.keys(
  settingsSchema.shape,
) as (keyof PipelinePromoterSettings)[];

/**
 * Checks settings (from context or props) and returns them without the unset ones. Throws one
 * error that names every bad setting and what was expected.
 */
export const parseSettings = (raw: Readonly<Record<string, unknown>>): PipelinePromoterSettings => {
  const present = Object.fromEntries(
    Object.entries(raw).filter(
      ([, value]) => value !== undefined && value !== null && value !== '',
    ),
  );
  const result = settingsSchema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(settings)'}: ${issue.message}`,
    );
    throw new Error(`invalid Pipeline Promoter settings: ${problems.join('; ')}`);
  }
  return Object.fromEntries(
    Object.entries(result.data).filter(([, value]) => value !== undefined),
  ) as PipelinePromoterSettings;
};

/** The settings found in the app's context (`cdk.json` `context`, `-c key=value`). */
export const settingsFromContext = (node: Node): PipelinePromoterSettings =>
  parseSettings(Object.fromEntries(SETTING_NAMES.map((name) => [name, node.tryGetContext(name)])));

/**
 * Pipeline Promoter: the HTTP API (Flux webhook, GitHub webhook, pipeline sync), the webhook,
 * worker, pipelines and reconcile functions (and the reconcile schedule), the FIFO job queue and
 * its DLQ, the table, the event bus of promotion notices, the alarms and the dashboard.
 */
export class PipelinePromoterStack extends Stack {
  public readonly settings: ResolvedSettings;
  public readonly table: PromoterTable;
  public readonly jobQueue: PromotionQueue;
  public readonly functions: PromoterFunctions;
  public readonly api: PromoterApi;
  public readonly alarms: PromoterAlarms;
  public readonly dashboard: PromoterDashboard;
  /** The event bus of promotion notices (DESIGN.md section 13) and its example rule. */
  public readonly events: PromotionEvents;
  /** One-time schedules of the reconcile function for due gates (soak, window, freeze end). */
  public readonly gateSchedules: GateSchedules;

  constructor(scope: Construct, id: string, props: PipelinePromoterStackProps = {}) {
    super(scope, id, {
      description:
        'Pipeline Promoter: promotes Flux applications with one rolling GitHub PR per environment',
      ...props,
    });
    const { entries, ...rest } = props;
    const settingValues = Object.fromEntries(
      SETTING_NAMES.map((name) => [name, (rest as Record<string, unknown>)[name]]),
    );
    const settings: ResolvedSettings = { ...DEFAULT_SETTINGS, ...parseSettings(settingValues) };
    this.settings = settings;
    const logRetention = settings.logRetentionDays as RetentionDays;
    const removalPolicy = settings.removalPolicy;
    const workerTimeout = Duration.seconds(settings.workerTimeoutSeconds);

    this.table = new PromoterTable(this, 'Table', { removalPolicy });

    this.jobQueue = new PromotionQueue(this, 'JobQueue', { consumerTimeout: workerTimeout });

    this.functions = new PromoterFunctions(this, 'Functions', {
      table: this.table,
      queue: this.jobQueue,
      secretPrefix: settings.secretPrefix,
      logRetention,
      logRemovalPolicy: removalPolicy,
      tracing: settings.tracing,
      ...(entries === undefined ? {} : { entries }),
      ...(settings.maxEventAgeSeconds === undefined
        ? {}
        : { maxEventAgeSeconds: settings.maxEventAgeSeconds }),
      ...(settings.promotingReasons === undefined
        ? {}
        : { promotingReasons: settings.promotingReasons }),
      workerMemorySize: settings.workerMemoryMb,
      workerTimeout,
      workerEphemeralStorageSize: Size.mebibytes(settings.workerEphemeralStorageMib),
      workerBatchSize: settings.workerBatchSize,
      ...(settings.workerMaxConcurrency === undefined
        ? {}
        : { workerMaxConcurrency: settings.workerMaxConcurrency }),
      workerReservedConcurrency: settings.workerReservedConcurrency,
      ...(settings.webhookReservedConcurrency === undefined
        ? {}
        : { webhookReservedConcurrency: settings.webhookReservedConcurrency }),
      gitMaxPackMb: settings.gitMaxPackMb,
      gitMaxObjectMb: settings.gitMaxObjectMb,
      gitMaxDeltaDepth: settings.gitMaxDeltaDepth,
      ...(settings.promotionTimeoutSeconds === undefined
        ? {}
        : { promotionTimeoutSeconds: settings.promotionTimeoutSeconds }),
      ...(settings.allowedGitHosts === undefined
        ? {}
        : { allowedGitHosts: settings.allowedGitHosts }),
      reconcileInterval: Duration.minutes(settings.reconcileIntervalMinutes),
    });
    this.events = new PromotionEvents(this, 'Events', {
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    const { webhook, worker, pipelinesApi, reconcile } = this.functions;
    for (const fn of [webhook, worker, pipelinesApi, reconcile]) {
      fn.addEnvironment(ENV.metricsDetail, settings.metricsDetail);
      // Each of them moves promotions along the lifecycle, and announces the changes.
      fn.addEnvironment(ENV.eventBusName, this.events.bus.eventBusName);
      this.events.grantPutEvents(fn);
    }
    // The functions that hold promotions at time gates wake the reconcile function when due.
    this.gateSchedules = new GateSchedules(this, 'GateSchedules', { reconcile });
    for (const fn of [webhook, pipelinesApi, reconcile]) this.gateSchedules.allowScheduling(fn);

    this.api = new PromoterApi(this, 'Api', {
      webhook: this.functions.webhook,
      pipelinesApi: this.functions.pipelinesApi,
      throttlingRateLimit: settings.throttlingRateLimit,
      throttlingBurstLimit: settings.throttlingBurstLimit,
      webhookThrottle: {
        rateLimit: settings.webhookThrottlingRateLimit,
        burstLimit: settings.webhookThrottlingBurstLimit,
      },
      iamRoutesThrottle: {
        rateLimit: settings.iamRoutesThrottlingRateLimit,
        burstLimit: settings.iamRoutesThrottlingBurstLimit,
      },
      logRetention,
      logRemovalPolicy: removalPolicy,
    });

    this.alarms = new PromoterAlarms(this, 'Alarms', {
      queue: this.jobQueue,
      worker: this.functions.worker,
      oldestMessageAgeThreshold: Duration.minutes(settings.oldestMessageAgeAlarmMinutes),
      metricsDetail: settings.metricsDetail,
      ...(settings.alarmEmail === undefined ? {} : { alarmEmail: settings.alarmEmail }),
    });

    this.dashboard = new PromoterDashboard(this, 'Dashboard', {
      queue: this.jobQueue,
      functions: this.functions,
      stage: this.api.stage,
      alarms: this.alarms.alarms,
      metricsDetail: settings.metricsDetail,
      logGroups: [
        this.functions.webhookLogGroup,
        this.functions.workerLogGroup,
        this.functions.reconcileLogGroup,
      ],
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'The HTTP API base URL',
      value: this.api.url,
    });
    new CfnOutput(this, 'WebhookUrl', {
      description: "The leaf clusters' Flux Provider address (fill in the pipeline and env)",
      value: `${this.api.url}${ROUTES.promotion.slice(1)}`,
    });
    new CfnOutput(this, 'PipelinesUrl', {
      description: 'Where `promoter sync` PUTs the pipeline definitions (IAM/SigV4)',
      value: `${this.api.url}${ROUTES.pipelines.slice(1)}`,
    });
    new CfnOutput(this, 'GitHubWebhookUrl', {
      description:
        "The GitHub webhook's payload URL (pull_request events, secret: {secretPrefix}github-webhook)",
      value: `${this.api.url}${ROUTES.githubWebhook.slice(1)}`,
    });
    new CfnOutput(this, 'GitLabWebhookUrl', {
      description:
        "The GitLab webhook's URL (merge request events, secret token: {secretPrefix}gitlab-webhook)",
      value: `${this.api.url}${ROUTES.gitlabWebhook.slice(1)}`,
    });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${this.dashboard.dashboardName}`,
    });
    new CfnOutput(this, 'EventBusName', {
      description:
        'The bus of promotion notices (source pipeline-promoter): put your rules for chat or CI on it',
      value: this.events.bus.eventBusName,
    });
    new CfnOutput(this, 'EventBusArn', { value: this.events.bus.eventBusArn });
    new CfnOutput(this, 'TableName', { value: this.table.table.tableName });
    new CfnOutput(this, 'JobQueueUrl', { value: this.jobQueue.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.jobQueue.deadLetterQueue.queueUrl });
    if (this.alarms.topic !== undefined) {
      new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
    }
  }
}
