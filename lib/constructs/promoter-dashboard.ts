import { Aws, Duration, Stack } from 'aws-cdk-lib';
import type { HttpStage } from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Dimension, METRICS_NAMESPACE, Metric } from '../../functions/core/metric-names.ts';
import {
  BY_ENVIRONMENT_METRICS,
  DEFAULT_METRICS_DETAIL,
  type DimensionSet,
  dimensionSetsOf,
  type MetricsDetail,
  PER_APPLICATION_METRICS,
} from '../../functions/core/metrics-detail.ts';
import type { PromotionQueue } from './promotion-queue.ts';

const PERIOD = Duration.minutes(5);
const PERIOD_SECONDS = PERIOD.toSeconds();
/** The DORA row: by day, over the last 30 days (whatever the dashboard's time range). */
const DORA_PERIOD = Duration.days(1);
const DORA_RANGE = '-P30D';

/**
 * A SEARCH over the series of one metric name in exactly one dimension set (the `{namespace,
 * keys}` schema): new environments appear without a redeploy, and no other set is matched.
 */
export const searchExpression = (
  metricName: string,
  dimensionSet: DimensionSet,
  statistic: string,
  periodSeconds: number = PERIOD_SECONDS,
): string =>
  `SEARCH('{${[METRICS_NAMESPACE, ...dimensionSet].join(',')}} MetricName="${metricName}"', '${statistic}', ${periodSeconds})`;

/** A dynamic label: the value of a dimension of each series a SEARCH returns. */
const dim = (name: string): string => `\${PROP('Dim.${name}')}`;

/**
 * The dashboard's view of the custom metrics at one `metricsDetail`: every widget reads the
 * first dimension set `dimensionSetsOf` gives a name (the one all details emit), so that it
 * shows only series the functions write.
 */
export class EmittedMetrics {
  constructor(public readonly detail: MetricsDetail) {}

  setOf(metricName: string): DimensionSet {
    return dimensionSetsOf(metricName, this.detail)[0] ?? [];
  }

  /** How a widget of the name splits its lines: `, by environment`, or nothing (one line). */
  splitOf(metricName: string): string {
    const set = this.setOf(metricName);
    if (set.length === 0) return ' (all environments)';
    return `, by ${set.map((key) => key.toLowerCase()).join(' and ')}`;
  }

  /** One line per series of the set (one per environment at `standard`), named by its values. */
  series(
    metricName: string,
    statistic: string,
    label: string,
    period: Duration = PERIOD,
  ): cloudwatch.IMetric {
    const set = this.setOf(metricName);
    if (set.length === 0) {
      return new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        statistic,
        label,
        period,
      });
    }
    const values = set.map(dim).join(' ');
    return new cloudwatch.MathExpression({
      expression: searchExpression(metricName, set, statistic, period.toSeconds()),
      usingMetrics: {},
      label: `${values} ${label}`.trim(),
      period,
    });
  }

  /** The total of a metric over all its series. */
  total(metricName: string, label: string, period: Duration = PERIOD): cloudwatch.IMetric {
    const set = this.setOf(metricName);
    if (set.length === 0) {
      return new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        statistic: cloudwatch.Stats.SUM,
        label,
        period,
      });
    }
    return new cloudwatch.MathExpression({
      expression: `SUM(${searchExpression(metricName, set, 'Sum', period.toSeconds())})`,
      usingMetrics: {},
      label,
      period,
    });
  }

  /**
   * DORA's change failure rate, in percent: failed deployments over all deployments
   * (successful and failed), over every application and environment, by day.
   */
  changeFailureRate(period: Duration = DORA_PERIOD): cloudwatch.MathExpression {
    const failuresSet = this.setOf(Metric.DeploymentFailures);
    const deploymentsSet = this.setOf(Metric.Deployments);
    // FILL: a day with deployments and no failure is 0 %, not a gap.
    if (failuresSet.length === 0 || deploymentsSet.length === 0) {
      return new cloudwatch.MathExpression({
        expression: '100 * FILL(failures, 0) / (FILL(deployments, 0) + FILL(failures, 0))',
        usingMetrics: {
          failures: this.total(Metric.DeploymentFailures, 'failed deployments', period),
          deployments: this.total(Metric.Deployments, 'deployments', period),
        },
        label: 'change failure rate %',
        period,
      });
    }
    const totalOf = (metricName: string, set: DimensionSet) =>
      `FILL(SUM(${searchExpression(metricName, set, 'Sum', period.toSeconds())}), 0)`;
    const failures = totalOf(Metric.DeploymentFailures, failuresSet);
    return new cloudwatch.MathExpression({
      expression: `100 * ${failures} / (${totalOf(Metric.Deployments, deploymentsSet)} + ${failures})`,
      usingMetrics: {},
      label: 'change failure rate %',
      period,
    });
  }
}

/**
 * The per-application views (DESIGN.md section 9): Logs Insights queries over the functions'
 * EMF records, where `Pipeline` and `Application` are properties at every `metricsDetail`.
 * They cost the data they scan when the dashboard is viewed, not a custom metric each.
 */
export const PER_APPLICATION_QUERIES = {
  latency: [
    `filter ispresent(${Metric.PromotionLatency})`,
    `stats pct(${Metric.PromotionLatency}, 50) as p50Ms, pct(${Metric.PromotionLatency}, 90) as p90Ms, count(*) as promotions by ${Dimension.Application}, ${Dimension.Environment}`,
    'sort p90Ms desc',
    'limit 100',
  ],
  leadTime: [
    `filter ispresent(${Metric.PromotionLeadTime})`,
    `stats pct(${Metric.PromotionLeadTime}, 50) as p50Ms, pct(${Metric.PromotionLeadTime}, 90) as p90Ms, count(*) as deployed by ${Dimension.Application}, ${Dimension.Environment}`,
    'sort p90Ms desc',
    'limit 100',
  ],
  dora: [
    `filter ispresent(${Metric.Deployments}) or ispresent(${Metric.DeploymentFailures}) or ispresent(${Metric.ReleaseLeadTime}) or ispresent(${Metric.TimeToRestore})`,
    `stats sum(${Metric.Deployments}) as deployments, sum(${Metric.DeploymentFailures}) as failures, 100 * sum(${Metric.DeploymentFailures}) / (sum(${Metric.Deployments}) + sum(${Metric.DeploymentFailures})) as changeFailurePct, pct(${Metric.ReleaseLeadTime}, 50) as leadTimeP50Ms, pct(${Metric.TimeToRestore}, 50) as restoreP50Ms by ${Dimension.Application}, ${Dimension.Environment}`,
    'sort deployments desc',
    'limit 100',
  ],
} as const;

const describeDetail = (detail: MetricsDetail): string => {
  if (detail === 'minimal') return 'none (one series per metric name)';
  const base = `\`${Dimension.Environment}\` (target) on ${BY_ENVIRONMENT_METRICS.join(' and ')}, \`${Dimension.Outcome}\` (webhook requests), \`${Dimension.Gate}\` (promotions waiting); none on the other names (one series each, all environments)`;
  if (detail === 'standard') return base;
  return `${base}, and \`${Dimension.Application}\` × \`${Dimension.Environment}\` on ${PER_APPLICATION_METRICS.join(' and ')}`;
};

/** `Promotions*` metrics, by the outcome they count. */
export const PROMOTION_OUTCOME_METRICS = [
  [Metric.PromotionsOpened, 'opened'],
  [Metric.PromotionsUpdated, 'updated'],
  [Metric.PromotionsNotified, 'handed over (notification strategy)'],
  [Metric.PromotionsUpToDate, 'up to date'],
  [Metric.PromotionsSuperseded, 'superseded'],
  [Metric.PromotionsSettled, 'already settled (merged, closed, handed over or deployed)'],
  [Metric.PromotionsFailed, 'failed'],
  [Metric.PromotionsDropped, 'dropped (pipeline deleted)'],
  [Metric.PromotionsDeadLettered, 'dead-lettered'],
] as const;

export interface PromoterDashboardProps {
  readonly queue: PromotionQueue;
  readonly functions: Readonly<
    Record<'webhook' | 'worker' | 'pipelinesApi' | 'reconcile', IFunction>
  >;
  readonly stage: HttpStage;
  readonly alarms: readonly cloudwatch.IAlarm[];
  /** The functions' metrics detail: the metric widgets read the dimension sets it emits. */
  readonly metricsDetail?: MetricsDetail;
  /** The log groups of the functions that write EMF, for the per-application queries. */
  readonly logGroups?: readonly ILogGroup[];
}

/**
 * The service's CloudWatch dashboard, named `{stackName}-{region}`:
 * 1. promotion latency (source deployment event to PR open and up to date) p50, p90, p99, by
 *    target environment;
 * 2. promotions by outcome, webhook requests by outcome, deployments (all environments at
 *    `standard`: by environment and application in row 5);
 * 3. the lifecycle (DESIGN.md section 10): promotion lead time (source deployed to target
 *    deployed) p50 and p90 by environment, PR merge time, merge to deploy; GitHub and GitLab
 *    webhook requests and stale PRs closed; promotions waiting by gate, approval wait;
 * 4. DORA, by day over 30 days: deployment frequency, release lead time p50, change failure
 *    rate (metric math), time to restore p50;
 * 5. by application (Logs Insights over the EMF records, DESIGN.md section 9): latency and
 *    lead time p50 and p90, and the DORA figures;
 * 6. the job queue (oldest job's age, jobs waiting and in flight) and the dead-letter queue;
 * 7. the functions' errors, throttles and durations, the API's requests, errors and latency;
 * 8. the alarms.
 * At `minimal` detail the metric widgets show one line per name (all environments).
 */
export class PromoterDashboard extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly dashboardName: string;

  constructor(scope: Construct, id: string, props: PromoterDashboardProps) {
    super(scope, id);
    this.dashboardName = `${Stack.of(this).stackName}-${Aws.REGION}`;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: this.dashboardName,
      defaultInterval: Duration.days(1),
    });
    const emitted = new EmittedMetrics(props.metricsDetail ?? DEFAULT_METRICS_DETAIL);

    const latency = (statistic: 'p50' | 'p90' | 'p99') =>
      new cloudwatch.GraphWidget({
        title: `Promotion latency ${statistic} (event to PR)${emitted.splitOf(Metric.PromotionLatency)}`,
        left: [emitted.series(Metric.PromotionLatency, statistic, statistic)],
        leftYAxis: { label: 'ms', showUnits: false, min: 0 },
        width: 8,
        height: 7,
      });

    /** A time's percentiles, one line per environment and percentile. */
    const percentiles = (title: string, metricName: string, row: 'lifecycle' | 'dora') => {
      const statistics = row === 'dora' ? (['p50'] as const) : (['p50', 'p90'] as const);
      const period = row === 'dora' ? DORA_PERIOD : PERIOD;
      return new cloudwatch.GraphWidget({
        title: `${title}${emitted.splitOf(metricName)}`,
        left: statistics.map((statistic) =>
          emitted.series(metricName, statistic, statistic, period),
        ),
        leftYAxis: { label: 'ms', showUnits: false, min: 0 },
        ...(row === 'dora' ? { period, start: DORA_RANGE } : {}),
        width: 6,
        height: 7,
      });
    };

    const logGroupNames = (props.logGroups ?? []).map((group) => group.logGroupName);
    const byApplication = (title: string, queryLines: readonly string[], width: number) =>
      new cloudwatch.LogQueryWidget({
        title,
        logGroupNames,
        queryLines: [...queryLines],
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width,
        height: 7,
      });

    const fns = [
      ['webhook', props.functions.webhook],
      ['worker', props.functions.worker],
      ['pipelines API', props.functions.pipelinesApi],
      ['reconcile', props.functions.reconcile],
    ] as const;
    const { queue, deadLetterQueue } = props.queue;

    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: [
          '# Pipeline Promoter',
          `Custom metrics: namespace \`${METRICS_NAMESPACE}\`, \`metricsDetail: ${emitted.detail}\`: dimensions ${describeDetail(emitted.detail)}. \`${Dimension.Pipeline}\` (ns/name), \`${Dimension.Application}\` and the revision are properties of every EMF record: the **by application** row queries them with Logs Insights.`,
          '**Latency** is the time from the Flux deployment event in the source environment to the promotion PR being open and up to date. **Failed** promotions are recorded and not retried; jobs that keep failing transiently land in the **DLQ** (alarm).',
          "**Lifecycle**: lead time is the source environment deployed at a revision to the target environment deployed at it; the PR is merged (GitHub webhook, or the reconcile sweep every few minutes) in between. **DORA** (by day, last 30 days): release lead time is the first environment deployed to the last; the change failure rate is failed deployments over all deployments; time to restore is an environment's first failure to its next success.",
        ].join('\n\n'),
        width: 24,
        height: 4,
      }),
    );
    this.dashboard.addWidgets(latency('p50'), latency('p90'), latency('p99'));
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Promotions by outcome',
        left: PROMOTION_OUTCOME_METRICS.map(([name, label]) => emitted.total(name, label)),
        stacked: true,
        width: 8,
        height: 7,
      }),
      new cloudwatch.GraphWidget({
        title: 'Webhook requests by outcome',
        left: [emitted.series(Metric.WebhookRequests, 'Sum', 'requests')],
        stacked: true,
        width: 8,
        height: 7,
      }),
      new cloudwatch.GraphWidget({
        title: `Deployments seen${emitted.splitOf(Metric.Deployments)}`,
        left: [emitted.series(Metric.Deployments, 'Sum', 'deployments')],
        width: 8,
        height: 7,
      }),
    );
    this.dashboard.addWidgets(
      percentiles(
        'Promotion lead time p50, p90 (source deployed to target deployed)',
        Metric.PromotionLeadTime,
        'lifecycle',
      ),
      percentiles(
        'Pull request merge time p50, p90 (PR up to date to merged)',
        Metric.PullRequestMergeTime,
        'lifecycle',
      ),
      percentiles(
        'Merge to deploy p50, p90 (merged to target deployed)',
        Metric.MergeToDeployTime,
        'lifecycle',
      ),
      new cloudwatch.GraphWidget({
        title:
          'GitHub and GitLab webhook requests (left), stale PRs closed and notices lost (right)',
        left: [
          emitted.series(Metric.GitHubWebhookRequests, 'Sum', 'GitHub requests'),
          emitted.series(Metric.GitLabWebhookRequests, 'Sum', 'GitLab requests'),
        ],
        right: [
          emitted.total(Metric.StalePullRequestsClosed, 'stale PRs closed'),
          emitted.total(Metric.NoticesFailed, 'notices not delivered'),
        ],
        stacked: true,
        width: 6,
        height: 7,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: `Promotions waiting${emitted.splitOf(Metric.PromotionsWaiting)} (targets, soak, window, freeze, approval)`,
        left: [emitted.series(Metric.PromotionsWaiting, 'Sum', 'waiting')],
        stacked: true,
        width: 12,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: `Approval wait p50, p90 (approval requested to approved)${emitted.splitOf(Metric.ApprovalWaitTime)}`,
        left: (['p50', 'p90'] as const).map((statistic) =>
          emitted.series(Metric.ApprovalWaitTime, statistic, statistic),
        ),
        leftYAxis: { label: 'ms', showUnits: false, min: 0 },
        width: 12,
        height: 6,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'DORA: deployment frequency (deployments per day)',
        left: [
          emitted.total(Metric.Deployments, 'all environments', DORA_PERIOD),
          // By environment too, when the detail emits it (not at `standard`: row 5 has it).
          ...(emitted.setOf(Metric.Deployments).length === 0
            ? []
            : [emitted.series(Metric.Deployments, 'Sum', 'deployments', DORA_PERIOD)]),
        ],
        period: DORA_PERIOD,
        start: DORA_RANGE,
        width: 6,
        height: 7,
      }),
      percentiles(
        'DORA: lead time p50 (first environment to last), per day',
        Metric.ReleaseLeadTime,
        'dora',
      ),
      new cloudwatch.GraphWidget({
        title: 'DORA: change failure rate % (left), deployments and failures (right)',
        left: [emitted.changeFailureRate(DORA_PERIOD)],
        right: [
          emitted.total(Metric.Deployments, 'deployments', DORA_PERIOD),
          emitted.total(Metric.DeploymentFailures, 'failed deployments', DORA_PERIOD),
        ],
        leftYAxis: { label: '%', showUnits: false, min: 0, max: 100 },
        period: DORA_PERIOD,
        start: DORA_RANGE,
        width: 6,
        height: 7,
      }),
      percentiles(
        'DORA: time to restore p50 (first failure to next success), per day',
        Metric.TimeToRestore,
        'dora',
      ),
    );
    if (logGroupNames.length > 0) {
      this.dashboard.addWidgets(
        byApplication(
          'By application: promotion latency p50, p90 (event to PR)',
          PER_APPLICATION_QUERIES.latency,
          8,
        ),
        byApplication(
          'By application: promotion lead time p50, p90 (source deployed to target deployed)',
          PER_APPLICATION_QUERIES.leadTime,
          8,
        ),
        byApplication(
          "By application and environment: DORA over the dashboard's range (deployments, change failure %, lead time, time to restore)",
          PER_APPLICATION_QUERIES.dora,
          8,
        ),
      );
    }
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Job queue: age of the oldest job',
        left: [
          queue.metricApproximateAgeOfOldestMessage({
            period: PERIOD,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'oldest job (s)',
          }),
        ],
        width: 8,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Job queue: jobs waiting and in flight',
        left: [
          queue.metricApproximateNumberOfMessagesVisible({
            period: PERIOD,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'waiting',
          }),
          queue.metricApproximateNumberOfMessagesNotVisible({
            period: PERIOD,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'in flight',
          }),
        ],
        width: 8,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queue depth',
        left: [
          deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: PERIOD,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'dead-lettered jobs',
          }),
        ],
        leftAnnotations: [{ value: 1, label: 'alarm', color: cloudwatch.Color.RED }],
        width: 8,
        height: 6,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Function errors and throttles',
        left: fns.flatMap(([label, fn]) => [
          fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM, label }),
        ]),
        right: fns.map(([label, fn]) =>
          fn.metricThrottles({
            period: PERIOD,
            statistic: cloudwatch.Stats.SUM,
            label: `${label} throttles`,
          }),
        ),
        width: 8,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Function duration p50 and p99',
        left: fns.flatMap(([label, fn]) =>
          (['p50', 'p99'] as const).map((statistic) =>
            fn.metricDuration({ period: PERIOD, statistic, label: `${label} ${statistic}` }),
          ),
        ),
        leftYAxis: { label: 'ms', showUnits: false, min: 0 },
        width: 8,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'API requests, 4xx, 5xx (left) and latency p99 (right)',
        left: [
          props.stage.metricCount({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
          props.stage.metricClientError({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
          props.stage.metricServerError({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
        ],
        right: [props.stage.metricLatency({ period: PERIOD, statistic: 'p99' })],
        width: 8,
        height: 6,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: [...props.alarms],
        width: 24,
        height: 3,
      }),
    );
  }
}
