import * as z from 'zod';
import { Dimension, Gate, Metric, WebhookOutcome } from '../functions/core/metric-names.ts';
import {
  DEFAULT_METRICS_DETAIL,
  dimensionSetsOf,
  METRICS_DETAILS,
  type MetricsDetail,
} from '../functions/core/metrics-detail.ts';

/**
 * The monthly bill of a deployed Pipeline Promoter (issue 15): what the synthesised template
 * holds (functions and their memory, the queue, the table, the API, schedules, alarms, the
 * dashboard, log retention, the metrics detail), a workload, and a price table
 * (bench/prices/*.json). Request counts and durations that no template states are the
 * `ASSUMPTIONS` below, printed with the bill. Custom metrics are counted from a scripted month
 * run through the same dimension policy the functions apply (core/metrics-detail.ts), and billed
 * as CloudWatch does: per metric and hour in which it received a point.
 */

export const DAYS_PER_MONTH = 30;
export const HOURS_PER_MONTH = DAYS_PER_MONTH * 24;
const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
const GB = 1024 ** 3;

const price = z.number({ error: 'expected a price in USD' }).nonnegative();
export const priceTableSchema = z.object({
  region: z.string().min(1, 'expected the region of the prices'),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected the date of the prices, YYYY-MM-DD'),
  currency: z.literal('USD'),
  lambda: z.object({
    requestsPerMillion: price,
    gbSecond: z.object({ arm64: price, x86_64: price }),
  }),
  sqs: z.object({ fifoRequestsPerMillion: price, standardRequestsPerMillion: price }),
  dynamodb: z.object({
    onDemandWriteRequestUnitsPerMillion: price,
    onDemandReadRequestUnitsPerMillion: price,
    storageGbMonth: price,
  }),
  apiGateway: z.object({ httpApiRequestsPerMillion: price }),
  cloudwatch: z.object({
    customMetricsMonthTiers: z
      .array(z.object({ upTo: z.number().positive().nullable(), price }))
      .min(1, 'expected at least one custom metric tier'),
    logsIngestionGb: price,
    logsStorageGbMonth: price,
    logsInsightsScannedGb: price,
    dashboardMonth: price,
    standardAlarmMetricMonth: price,
    metricsInsightsAlarmMetricAnalyzedMonth: price,
  }),
  secretsManager: z.object({ secretMonth: price, apiCallsPer10k: price }),
  eventBridgeScheduler: z.object({ invocationsPerMillion: price }),
  eventBridge: z.object({ customEventsPerMillion: price }),
  xray: z.object({ tracesRecordedPerMillion: price }),
});
export type PriceTable = z.infer<typeof priceTableSchema>;

export const parsePriceTable = (raw: unknown, source: string): PriceTable => {
  const result = priceTableSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(table)'}: ${issue.message}`,
    );
    throw new Error(`invalid price table ${source}: ${problems.join('; ')}`);
  }
  return result.data;
};

const workloadSchema = z.object({
  pipelines: z
    .number()
    .int('pipelines: expected a whole number')
    .min(1, 'pipelines: expected >= 1'),
  environments: z
    .number()
    .int('environments: expected a whole number')
    .min(2, 'environments: expected >= 2 (a source and a target)'),
  promotionsPerDay: z.number().nonnegative('promotions-per-day: expected >= 0'),
  secrets: z.number().int('secrets: expected a whole number').nonnegative('secrets: expected >= 0'),
});

/** What the platform runs. `promotionsPerDay` is per pipeline (jobs into its target envs). */
export type Workload = z.infer<typeof workloadSchema>;

export const parseWorkload = (raw: Record<string, unknown>): Workload => {
  const result = workloadSchema.safeParse(raw);
  if (!result.success) {
    throw new Error(`invalid workload: ${result.error.issues.map((i) => i.message).join('; ')}`);
  }
  return result.data;
};

/**
 * What no template says: requests per promotion, durations, log sizes. Rough on purpose and
 * printed with every bill; change them here.
 */
export const ASSUMPTIONS = {
  /** Flux events per deployment: the promoting one and one ignored (Progressing, info). */
  fluxEventsPerDeployment: 2,
  /** GitHub `pull_request` deliveries per promotion (opened or synchronize, closed, other). */
  githubDeliveriesPerPromotion: 3,
  /** `promoter sync` calls per pipeline and day (CI on the pipelines' repository). */
  syncCallsPerPipelinePerDay: 1,
  webhookMs: 50,
  /**
   * One job per invocation: FIFO batches rarely fill at these rates (an upper bound). Lambda
   * bills the wall time, and the worker's is mostly waiting on GitHub: `workerJobMs` adds these
   * allowances to the measured promotion (`MEASURED_PROMOTION`).
   */
  /** Per job, beside the git work: the state reads and writes, the job's SQS calls (in region). */
  workerAwsCallsMs: 50,
  /**
   * Per job, the promotion's requests to GitHub: four git requests (refs, fetch, push, the check
   * that the base did not move) and two API calls (find the open PR, open or update it). The
   * measured figures are over loopback; this allowance for each request to github.com (or a
   * GitHub Enterprise Server) from the region is not measured here (this machine has no network).
   */
  remoteRequestsPerJob: 6,
  remoteRequestMs: 150,
  /** Share of jobs a worker container runs without the repository in its cache (cold). */
  workerColdShare: 0.1,
  pipelinesApiMs: 150,
  reconcileBaseMs: 300,
  reconcileMsPerOpenPullRequest: 10,
  /** Minutes a promotion PR stays open (up to date to merged). */
  pullRequestOpenMinutes: 60,
  /** Lambda's SQS pollers on an idle queue: long polls of 20 s each. */
  sqsIdlePollers: 5,
  sqsLongPollSeconds: 20,
  /** Per job: receive and delete, beside its send. */
  sqsRequestsPerJob: 3,
  dynamoWritesPerFluxEvent: 1,
  dynamoWritesPerDeployment: 2,
  dynamoWritesPerJob: 3,
  dynamoWritesPerGithubDelivery: 1,
  dynamoReadsPerFluxEvent: 1,
  dynamoReadsPerJob: 2,
  dynamoReadsPerGithubDelivery: 1,
  dynamoItemBytesPerPipelineEnvironment: 4096,
  /** Lambda's START, END and REPORT lines (JSON). */
  platformLogBytesPerInvocation: 750,
  webhookLogBytesPerInvocation: 500,
  workerLogBytesPerJob: 1800,
  reconcileLogBytesPerSweep: 600,
  emfBytesPerPoint: 450,
  apiAccessLogBytesPerRequest: 400,
  /** CloudWatch Logs bills storage compressed. */
  logsCompressionRatio: 0.15,
  /** Dashboard views a day; each runs its Logs Insights widgets over the default range (1 day). */
  dashboardViewsPerDay: 10,
  /** Secrets are cached 60 s per container (PROMOTER_SECRET_TTL_SECONDS). */
  secretCacheSeconds: 60,
  /**
   * Lambda's sampling with active tracing: one request a second, then 5 %. Lambda applies no
   * X-Ray sampling rule of the account (the rate "cannot be configured for Lambda functions"),
   * and the HTTP API passes no sampled header: the stack's `tracing` setting is the only lever.
   */
  /**
   * Promotion notices put on the stack's event bus per promotion (DESIGN.md section 13): its PR
   * opened or updated (or the hand-off), merged, deployed, and a gate's waiting now and then.
   */
  noticesPerPromotion: 4,
  xrayReservoirPerSecond: 1,
  xrayFixedRate: 0.05,
} as const;

/**
 * Measured, not assumed: `npm run bench -- promotion` (bench/promotion.bench.ts) runs the real
 * promotion path (SmartHttpConfigRepository, then the PR call) on the 6,000-file fleet repository
 * against a loopback `git http-backend`: medians of 9 warm runs (the repository in the worker's
 * cache, one new upstream commit) and 3 cold runs (empty cache), with the part of each spent
 * waiting on the four git requests. Update them from a new run.
 */
export const MEASURED_PROMOTION = {
  command: 'npm run bench -- promotion',
  date: '2026-12-01',
  machine: '2-core development machine, shared',
  repository: '6,000-file fleet repository',
  warmMs: 138,
  warmGitRequestsMs: 126,
  coldMs: 879,
  coldGitRequestsMs: 389,
} as const;

/**
 * The worker's billed milliseconds per job: the measured promotion without its loopback git
 * requests (the local server's time), plus the allowance for each request to GitHub and the AWS
 * calls, cold for `workerColdShare` of the jobs.
 *
 * @example
 * workerJobMs(); // 0.9 × (12 + 6 × 150 + 50) + 0.1 × (490 + 6 × 150 + 50) = 1010
 */
export const workerJobMs = (measured: typeof MEASURED_PROMOTION = MEASURED_PROMOTION): number => {
  const a = ASSUMPTIONS;
  const waiting = a.remoteRequestsPerJob * a.remoteRequestMs + a.workerAwsCallsMs;
  const warm = measured.warmMs - measured.warmGitRequestsMs + waiting;
  const cold = measured.coldMs - measured.coldGitRequestsMs + waiting;
  return (1 - a.workerColdShare) * warm + a.workerColdShare * cold;
};

/**
 * The scripted month's mix: shares of a promotion's outcome and of the gates that held it. The
 * default is a busy, healthy platform; the test uses a degenerate one it can count by hand.
 */
export interface PromotionMix {
  readonly outcomes: Readonly<Partial<Record<OutcomeName, number>>>;
  /** Share of promotions held by each gate (into the last environment for soak and approval). */
  readonly gates: Readonly<Partial<Record<Gate, number>>>;
  /** Share of promotions that end merged and deployed (of opened, updated, up to date). */
  readonly deployed: number;
  readonly deploymentFailure: number;
  readonly staleClosed: number;
  /** Non-promoting Flux events (ignored) per deployment. */
  readonly ignoredPerDeployment: number;
}

type OutcomeName =
  | 'opened'
  | 'updated'
  | 'up-to-date'
  | 'superseded'
  | 'settled'
  | 'failed'
  | 'dropped'
  | 'dead-lettered';

const OUTCOME_METRIC: Readonly<Record<OutcomeName, string>> = {
  opened: Metric.PromotionsOpened,
  updated: Metric.PromotionsUpdated,
  'up-to-date': Metric.PromotionsUpToDate,
  superseded: Metric.PromotionsSuperseded,
  settled: Metric.PromotionsSettled,
  failed: Metric.PromotionsFailed,
  dropped: Metric.PromotionsDropped,
  'dead-lettered': Metric.PromotionsDeadLettered,
};

export const DEFAULT_MIX: PromotionMix = {
  outcomes: {
    opened: 0.15,
    updated: 0.55,
    'up-to-date': 0.25,
    superseded: 0.03,
    settled: 0.01,
    failed: 0.009,
    dropped: 0.0005,
    'dead-lettered': 0.0005,
  },
  gates: { targets: 0.2, soak: 0.3, window: 0.05, freeze: 0.01, approval: 0.3 },
  deployed: 0.95,
  deploymentFailure: 0.02,
  staleClosed: 0.02,
  ignoredPerDeployment: 1,
};

/** `today`: the design before issue 15, every fact of a point a dimension. */
export type MetricsPolicy = MetricsDetail | 'today';

interface SetShape {
  readonly pipeline: boolean;
  readonly environment: boolean;
  readonly extra: boolean;
}

const TODAY_SHAPE = (name: string): readonly SetShape[] => {
  if (name === Metric.WebhookRequests || name === Metric.GitHubWebhookRequests) {
    return [{ pipeline: false, environment: false, extra: true }];
  }
  if (name === Metric.StalePullRequestsClosed) {
    return [{ pipeline: false, environment: true, extra: false }];
  }
  return [{ pipeline: true, environment: true, extra: name === Metric.PromotionsWaiting }];
};

const shapesOf = (name: string, policy: MetricsPolicy): readonly SetShape[] =>
  policy === 'today'
    ? TODAY_SHAPE(name)
    : dimensionSetsOf(name, policy).map((set) => ({
        pipeline: set.includes(Dimension.Application) || set.includes(Dimension.Pipeline),
        environment: set.includes(Dimension.Environment),
        extra: set.includes(Dimension.Outcome) || set.includes(Dimension.Gate),
      }));

const METRIC_NAMES: readonly string[] = Object.values(Metric);
const GATES: readonly Gate[] = Object.values(Gate);
const WEBHOOK_OUTCOMES: readonly string[] = Object.values(WebhookOutcome);
const GITHUB_OUTCOMES = ['merged', 'updated', 'ignored'] as const;
const EXTRA_VALUES = Math.max(WEBHOOK_OUTCOMES.length, GATES.length, GITHUB_OUTCOMES.length);

export interface ScriptedMonth {
  readonly policy: MetricsPolicy;
  /** Distinct (name, dimension values): CloudWatch's custom metrics. */
  readonly distinctMetrics: number;
  /** Σ hours in which each metric got a point / hours of the month: what CloudWatch bills. */
  readonly metricMonths: number;
  readonly points: number;
  readonly promotions: number;
  /** Distinct metrics per name. */
  readonly byName: Readonly<Record<string, number>>;
}

/** A small deterministic generator (mulberry32): the same month for the same seed. */
const random = (seed: number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/**
 * Scripts a month of points, hour by hour: each pipeline's promotions spread evenly over the
 * day into its target environments in turn, each with the points the cores record (source
 * deployment and webhook request, gate, outcome, latency, GitHub deliveries, merge, target
 * deployment, lead times, failures), and counts the custom metrics the policy makes of them.
 *
 * @example
 * scriptMonth({ pipelines: 200, environments: 3, promotionsPerDay: 50, secrets: 0 }, 'standard');
 */
export const scriptMonth = (
  workload: Workload,
  policy: MetricsPolicy,
  mix: PromotionMix = DEFAULT_MIX,
  seed = 15,
): ScriptedMonth => {
  const { pipelines, environments } = workload;
  const shapes = METRIC_NAMES.map((name) => shapesOf(name, policy));
  const maxSets = Math.max(...shapes.map((sets) => sets.length));
  // One integer per (name, set, pipeline, environment, extra value) identifies a metric.
  const lastHour = new Map<number, number>();
  const distinctByName = new Array<number>(METRIC_NAMES.length).fill(0);
  let metricHours = 0;
  let points = 0;
  let promotions = 0;
  let hour = 0;
  const emit = (metric: string, pipeline: number, environment: number, extra = -1) => {
    const nameIndex = METRIC_NAMES.indexOf(metric);
    points += 1;
    const sets = shapes[nameIndex] ?? [];
    for (let setIndex = 0; setIndex < sets.length; setIndex += 1) {
      const shape = sets[setIndex] as SetShape;
      let id = nameIndex * maxSets + setIndex;
      id = id * (pipelines + 1) + (shape.pipeline ? pipeline + 1 : 0);
      id = id * (environments + 1) + (shape.environment ? environment + 1 : 0);
      id = id * (EXTRA_VALUES + 1) + (shape.extra ? extra + 1 : 0);
      const seen = lastHour.get(id);
      if (seen === hour) continue;
      if (seen === undefined) distinctByName[nameIndex] = (distinctByName[nameIndex] ?? 0) + 1;
      lastHour.set(id, hour);
      metricHours += 1;
    }
  };
  const next = random(seed);
  const chance = (share: number | undefined) => share !== undefined && share > 0 && next() < share;
  const outcomeEntries = Object.entries(mix.outcomes) as [OutcomeName, number][];
  const pickOutcome = (): OutcomeName => {
    let draw = next() * outcomeEntries.reduce((sum, [, share]) => sum + share, 0);
    for (const [outcome, share] of outcomeEntries) {
      draw -= share;
      if (draw < 0) return outcome;
    }
    return outcomeEntries[outcomeEntries.length - 1]?.[0] ?? 'updated';
  };
  const targets = environments - 1;
  const last = environments - 1;
  const perHour = workload.promotionsPerDay / 24;
  const webhook = (outcome: string) =>
    emit(Metric.WebhookRequests, -1, -1, WEBHOOK_OUTCOMES.indexOf(outcome));
  const github = (outcome: (typeof GITHUB_OUTCOMES)[number]) =>
    emit(Metric.GitHubWebhookRequests, -1, -1, GITHUB_OUTCOMES.indexOf(outcome));
  const deployment = (pipeline: number, environment: number) => {
    emit(Metric.Deployments, pipeline, environment);
    for (let ignored = 0; ignored < mix.ignoredPerDeployment; ignored += 1) {
      webhook(WebhookOutcome.Ignored);
    }
    if (chance(mix.deploymentFailure)) {
      emit(Metric.DeploymentFailures, pipeline, environment);
      emit(Metric.TimeToRestore, pipeline, environment);
    }
  };

  for (hour = 0; hour < HOURS_PER_MONTH; hour += 1) {
    for (let pipeline = 0; pipeline < pipelines; pipeline += 1) {
      // Even spread with a per-pipeline phase: exactly promotionsPerDay a day.
      const phase = (pipeline * 0.618_033_988_75) % 1;
      const dayHour = hour % 24;
      const count =
        Math.floor((dayHour + 1) * perHour + phase) - Math.floor(dayHour * perHour + phase);
      for (let index = 0; index < count; index += 1) {
        const target = 1 + ((promotions + pipeline) % targets);
        promotions += 1;
        // The source environment's deployment, reported by Flux, accepted by the webhook.
        deployment(pipeline, target - 1);
        webhook(WebhookOutcome.Accepted);
        for (const gate of GATES) {
          const lastOnly = gate === Gate.Soak || gate === Gate.Approval;
          if ((!lastOnly || target === last) && chance(mix.gates[gate])) {
            emit(Metric.PromotionsWaiting, pipeline, target, GATES.indexOf(gate));
            if (gate === Gate.Approval) emit(Metric.ApprovalWaitTime, pipeline, target);
          }
        }
        const outcome = pickOutcome();
        emit(OUTCOME_METRIC[outcome], pipeline, target);
        if (outcome === 'opened' || outcome === 'updated') {
          emit(Metric.PromotionLatency, pipeline, target);
          github('updated');
        }
        if (chance(mix.staleClosed)) emit(Metric.StalePullRequestsClosed, pipeline, target);
        const reachesBase =
          outcome === 'opened' || outcome === 'updated' || outcome === 'up-to-date';
        if (!reachesBase || !chance(mix.deployed)) continue;
        if (outcome !== 'up-to-date') {
          github('merged');
          github('ignored');
          emit(Metric.PullRequestMergeTime, pipeline, target);
        }
        emit(Metric.MergeToDeployTime, pipeline, target);
        emit(Metric.PromotionLeadTime, pipeline, target);
        if (target === last) {
          deployment(pipeline, last);
          webhook(WebhookOutcome.FinalEnvironment);
          emit(Metric.ReleaseLeadTime, pipeline, last);
        }
      }
    }
  }
  return {
    policy,
    distinctMetrics: distinctByName.reduce((sum, count) => sum + count, 0),
    metricMonths: metricHours / HOURS_PER_MONTH,
    points,
    promotions,
    byName: Object.fromEntries(
      METRIC_NAMES.map((name, index) => [name, distinctByName[index] ?? 0]).filter(
        ([, count]) => count !== 0,
      ),
    ),
  };
};

// ---------------------------------------------------------------- the template

type CfnResource = { Type: string; Properties?: Record<string, unknown> };
export interface CfnTemplate {
  readonly Resources: Readonly<Record<string, CfnResource>>;
}

export interface StackFacts {
  readonly functions: readonly {
    readonly service: string;
    readonly memoryMb: number;
    readonly architecture: 'arm64' | 'x86_64';
    readonly tracing: boolean;
  }[];
  readonly fifoQueues: number;
  readonly standardQueues: number;
  readonly tableOnDemand: boolean;
  readonly httpApis: number;
  /** Minutes between the scheduler's invocations, per schedule. */
  readonly scheduleMinutes: readonly number[];
  readonly dashboards: number;
  readonly logQueryWidgets: number;
  readonly standardAlarms: number;
  /** The metric names that Metrics Insights alarms sum. */
  readonly metricsInsightsAlarms: readonly string[];
  readonly logRetentionDays: number;
  readonly metricsDetail: MetricsDetail;
  /** Event buses of promotion notices (custom events are billed per event put). */
  readonly eventBuses: number;
}

const variablesOf = (resource: CfnResource): Record<string, unknown> =>
  ((resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
    ?.Variables ?? {}) as Record<string, unknown>;

/** What the bill depends on, read from a synthesised CloudFormation template. */
export const stackFactsOf = (template: CfnTemplate, metricsDetailVariable: string): StackFacts => {
  const resources = Object.values(template.Resources);
  const ofType = (type: string) => resources.filter((resource) => resource.Type === type);
  const functions = ofType('AWS::Lambda::Function').map((fn) => {
    const variables = variablesOf(fn);
    const architectures = (fn.Properties?.Architectures as string[] | undefined) ?? ['x86_64'];
    return {
      service: String(variables.POWERTOOLS_SERVICE_NAME ?? 'unknown'),
      memoryMb: Number(fn.Properties?.MemorySize ?? 128),
      architecture: architectures.includes('arm64') ? ('arm64' as const) : ('x86_64' as const),
      tracing: (fn.Properties?.TracingConfig as { Mode?: string } | undefined)?.Mode === 'Active',
    };
  });
  const details = new Set(
    ofType('AWS::Lambda::Function').map((fn) => variablesOf(fn)[metricsDetailVariable]),
  );
  const [detail] = [...details];
  const metricsDetail = METRICS_DETAILS.includes(detail as MetricsDetail)
    ? (detail as MetricsDetail)
    : DEFAULT_METRICS_DETAIL;
  const queues = ofType('AWS::SQS::Queue');
  const alarms = ofType('AWS::CloudWatch::Alarm');
  const insights = alarms.flatMap((alarm) =>
    ((alarm.Properties?.Metrics ?? []) as { Expression?: string }[]).flatMap((metric) => {
      const match = /SELECT \w+\((\w+)\)/.exec(metric.Expression ?? '');
      return match?.[1] === undefined ? [] : [match[1]];
    }),
  );
  const dashboards = ofType('AWS::CloudWatch::Dashboard');
  const logQueryWidgets = dashboards.reduce((sum, dashboard) => {
    const body = JSON.stringify(dashboard.Properties?.DashboardBody ?? '');
    return sum + (body.match(/\\"type\\":\\"log\\"/g) ?? []).length;
  }, 0);
  const retention = ofType('AWS::Logs::LogGroup').map((group) =>
    Number(group.Properties?.RetentionInDays ?? 3653),
  );
  return {
    functions,
    fifoQueues: queues.filter((queue) => queue.Properties?.FifoQueue === true).length,
    standardQueues: queues.filter((queue) => queue.Properties?.FifoQueue !== true).length,
    tableOnDemand: ofType('AWS::DynamoDB::Table').every(
      (table) => table.Properties?.BillingMode === 'PAY_PER_REQUEST',
    ),
    httpApis: ofType('AWS::ApiGatewayV2::Api').length,
    scheduleMinutes: ofType('AWS::Scheduler::Schedule').map((schedule) =>
      rateMinutes(String(schedule.Properties?.ScheduleExpression ?? '')),
    ),
    dashboards: dashboards.length,
    logQueryWidgets,
    standardAlarms: alarms.length - insights.length,
    metricsInsightsAlarms: insights,
    logRetentionDays: Math.max(1, ...retention),
    metricsDetail,
    eventBuses: ofType('AWS::Events::EventBus').length,
  };
};

const rateMinutes = (expression: string): number => {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (match === null) throw new Error(`a schedule the cost model cannot read: ${expression}`);
  const [, amount = '0', unit = 'minutes'] = match;
  const factor = unit.startsWith('minute') ? 1 : unit.startsWith('hour') ? 60 : 1440;
  return Number(amount) * factor;
};

// ---------------------------------------------------------------- the bill

export type Service =
  | 'Lambda'
  | 'X-Ray'
  | 'SQS'
  | 'DynamoDB'
  | 'API Gateway'
  | 'CloudWatch metrics'
  | 'CloudWatch Logs'
  | 'CloudWatch dashboard'
  | 'CloudWatch alarms'
  | 'EventBridge Scheduler'
  | 'EventBridge'
  | 'Secrets Manager';

export interface CostLine {
  readonly service: Service;
  readonly usage: string;
  readonly monthly: number;
}

export interface Bill {
  readonly lines: readonly CostLine[];
  readonly totalExcludingSecrets: number;
  readonly total: number;
  readonly metrics: ScriptedMonth;
  readonly promotionsPerMonth: number;
}

const perMillion = (count: number, unitPrice: number) => (count / 1e6) * unitPrice;

/** CloudWatch's tiers: the first 10,000 metric-months at one price, the next at another... */
export const customMetricsCost = (metricMonths: number, prices: PriceTable): number => {
  let cost = 0;
  let below = 0;
  for (const tier of prices.cloudwatch.customMetricsMonthTiers) {
    const top = tier.upTo ?? Number.POSITIVE_INFINITY;
    const inTier = Math.max(0, Math.min(metricMonths, top) - below);
    cost += inTier * tier.price;
    below = top;
    if (metricMonths <= top) break;
  }
  return cost;
};

/**
 * Traces X-Ray records of `invocations` a month arriving at random (Poisson): the default rule's
 * reservoir takes the first request of each second (account-wide), 5 % of the others.
 */
export const sampledTraces = (invocations: number): number => {
  const rate = invocations / SECONDS_PER_MONTH;
  const reservoir = ASSUMPTIONS.xrayReservoirPerSecond * (1 - Math.exp(-rate));
  const perSecond = reservoir + ASSUMPTIONS.xrayFixedRate * Math.max(0, rate - reservoir);
  return perSecond * SECONDS_PER_MONTH;
};

const count = (value: number): string =>
  value >= 1e6
    ? `${(value / 1e6).toFixed(2)}M`
    : value >= 1e4
      ? `${(value / 1e3).toFixed(0)}k`
      : value.toFixed(value < 10 ? 1 : 0);

/**
 * The monthly bill of a workload on a stack, per service, with the usage it priced.
 *
 * @example
 * monthlyBill(stackFactsOf(template, 'PROMOTER_METRICS_DETAIL'), workload, prices);
 */
export const monthlyBill = (
  facts: StackFacts,
  workload: Workload,
  prices: PriceTable,
  mix: PromotionMix = DEFAULT_MIX,
  metrics: ScriptedMonth = scriptMonth(workload, facts.metricsDetail, mix),
): Bill => {
  const a = ASSUMPTIONS;
  const { pipelines, environments } = workload;
  const promotions = pipelines * workload.promotionsPerDay * DAYS_PER_MONTH;
  const deployments = (promotions * environments) / (environments - 1);
  const fluxEvents = deployments * a.fluxEventsPerDeployment;
  const githubDeliveries = promotions * a.githubDeliveriesPerPromotion;
  const syncCalls = pipelines * a.syncCallsPerPipelinePerDay * DAYS_PER_MONTH;
  const sweeps = facts.scheduleMinutes.reduce(
    (sum, minutes) => sum + (HOURS_PER_MONTH * 60) / minutes,
    0,
  );
  const openPullRequests = (promotions / (HOURS_PER_MONTH * 60)) * a.pullRequestOpenMinutes;

  // Lambda: each function's invocations and duration, at its memory from the template.
  const usageOf = (service: string): { invocations: number; ms: number } => {
    if (service.includes('webhook'))
      return { invocations: fluxEvents + githubDeliveries, ms: a.webhookMs };
    if (service.includes('worker')) return { invocations: promotions, ms: workerJobMs() };
    if (service.includes('reconcile')) {
      return {
        invocations: sweeps,
        ms: a.reconcileBaseMs + a.reconcileMsPerOpenPullRequest * openPullRequests,
      };
    }
    return { invocations: syncCalls, ms: a.pipelinesApiMs };
  };
  let invocations = 0;
  let lambdaCost = 0;
  let gbSeconds = 0;
  let tracedInvocations = 0;
  for (const fn of facts.functions) {
    const use = usageOf(fn.service);
    const fnGbSeconds = use.invocations * (use.ms / 1000) * (fn.memoryMb / 1024);
    invocations += use.invocations;
    gbSeconds += fnGbSeconds;
    lambdaCost +=
      perMillion(use.invocations, prices.lambda.requestsPerMillion) +
      fnGbSeconds * prices.lambda.gbSecond[fn.architecture];
    if (fn.tracing) tracedInvocations += use.invocations;
  }
  const traces = sampledTraces(tracedInvocations);

  const sqsRequests =
    promotions * a.sqsRequestsPerJob +
    a.sqsIdlePollers * (SECONDS_PER_MONTH / a.sqsLongPollSeconds);
  const sqsPrice =
    facts.fifoQueues > 0
      ? prices.sqs.fifoRequestsPerMillion
      : prices.sqs.standardRequestsPerMillion;

  const writes =
    fluxEvents * a.dynamoWritesPerFluxEvent +
    deployments * a.dynamoWritesPerDeployment +
    promotions * a.dynamoWritesPerJob +
    githubDeliveries * a.dynamoWritesPerGithubDelivery;
  const reads =
    fluxEvents * a.dynamoReadsPerFluxEvent +
    promotions * a.dynamoReadsPerJob +
    githubDeliveries * a.dynamoReadsPerGithubDelivery +
    sweeps * Math.max(1, Math.ceil((openPullRequests * 1024) / 4096));
  const storedGb = (pipelines * environments * a.dynamoItemBytesPerPipelineEnvironment) / GB;

  const apiRequests = fluxEvents + githubDeliveries + syncCalls;

  const logBytes =
    invocations * a.platformLogBytesPerInvocation +
    (fluxEvents + githubDeliveries) * a.webhookLogBytesPerInvocation +
    promotions * a.workerLogBytesPerJob +
    sweeps * a.reconcileLogBytesPerSweep +
    metrics.points * a.emfBytesPerPoint +
    apiRequests * a.apiAccessLogBytesPerRequest;
  const logGb = logBytes / GB;
  // Steady state: the retention's worth of logs, compressed (a year at most).
  const storedLogGb =
    logGb * a.logsCompressionRatio * (Math.min(facts.logRetentionDays, 365) / DAYS_PER_MONTH);
  const scannedGb =
    facts.logQueryWidgets * a.dashboardViewsPerDay * DAYS_PER_MONTH * (logGb / DAYS_PER_MONTH);

  const insightsMetrics = facts.metricsInsightsAlarms.reduce(
    (sum, name) => sum + Math.max(1, metrics.byName[name] ?? 0),
    0,
  );

  const secretCalls = Math.min(
    invocations,
    facts.functions.length *
      (SECONDS_PER_MONTH / a.secretCacheSeconds) *
      Math.max(1, workload.secrets),
  );

  const notices = facts.eventBuses > 0 ? promotions * a.noticesPerPromotion : 0;

  const lines: CostLine[] = [
    {
      service: 'Lambda',
      usage: `${count(invocations)} invocations, ${count(gbSeconds)} GB-s`,
      monthly: lambdaCost,
    },
    {
      service: 'X-Ray',
      usage: `${count(traces)} traces`,
      monthly: perMillion(traces, prices.xray.tracesRecordedPerMillion),
    },
    {
      service: 'SQS',
      usage: `${count(sqsRequests)} ${facts.fifoQueues > 0 ? 'FIFO ' : ''}requests`,
      monthly: perMillion(sqsRequests, sqsPrice),
    },
    {
      service: 'DynamoDB',
      usage: `${count(writes)} WRU, ${count(reads)} RRU (on-demand)`,
      monthly:
        perMillion(writes, prices.dynamodb.onDemandWriteRequestUnitsPerMillion) +
        perMillion(reads, prices.dynamodb.onDemandReadRequestUnitsPerMillion) +
        storedGb * prices.dynamodb.storageGbMonth,
    },
    {
      service: 'API Gateway',
      usage: `${count(apiRequests)} HTTP API requests`,
      monthly: perMillion(apiRequests, prices.apiGateway.httpApiRequestsPerMillion),
    },
    {
      service: 'CloudWatch metrics',
      usage: `${metrics.distinctMetrics} custom metrics, ${metrics.metricMonths.toFixed(1)} metric-months`,
      monthly: customMetricsCost(metrics.metricMonths, prices),
    },
    {
      service: 'CloudWatch Logs',
      usage: `${logGb.toFixed(2)} GB in, ${storedLogGb.toFixed(2)} GB kept, ${scannedGb.toFixed(1)} GB scanned`,
      monthly:
        logGb * prices.cloudwatch.logsIngestionGb +
        storedLogGb * prices.cloudwatch.logsStorageGbMonth +
        scannedGb * prices.cloudwatch.logsInsightsScannedGb,
    },
    {
      service: 'CloudWatch dashboard',
      usage: `${facts.dashboards} dashboard`,
      monthly: facts.dashboards * prices.cloudwatch.dashboardMonth,
    },
    {
      service: 'CloudWatch alarms',
      usage: `${facts.standardAlarms} alarms, ${facts.metricsInsightsAlarms.length} Metrics Insights (${insightsMetrics} metrics)`,
      monthly:
        facts.standardAlarms * prices.cloudwatch.standardAlarmMetricMonth +
        insightsMetrics * prices.cloudwatch.metricsInsightsAlarmMetricAnalyzedMonth,
    },
    {
      service: 'EventBridge Scheduler',
      usage: `${count(sweeps)} invocations`,
      monthly: perMillion(sweeps, prices.eventBridgeScheduler.invocationsPerMillion),
    },
    {
      service: 'EventBridge',
      usage: `${count(notices)} custom events (promotion notices)`,
      monthly: perMillion(notices, prices.eventBridge.customEventsPerMillion),
    },
    {
      service: 'Secrets Manager',
      usage: `${workload.secrets} secrets, ${count(secretCalls)} calls`,
      monthly:
        workload.secrets * prices.secretsManager.secretMonth +
        (workload.secrets === 0 ? 0 : (secretCalls / 1e4) * prices.secretsManager.apiCallsPer10k),
    },
  ];
  const total = lines.reduce((sum, line) => sum + line.monthly, 0);
  const secrets = lines.find((line) => line.service === 'Secrets Manager')?.monthly ?? 0;
  return {
    lines,
    total,
    totalExcludingSecrets: total - secrets,
    metrics,
    promotionsPerMonth: promotions,
  };
};
