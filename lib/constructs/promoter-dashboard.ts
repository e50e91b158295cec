import { Aws, Duration, Stack } from 'aws-cdk-lib';
import type { HttpStage } from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { Dimension, METRICS_NAMESPACE, Metric } from '../../functions/core/metric-names.ts';
import type { PromotionQueue } from './promotion-queue.ts';

const PERIOD = Duration.minutes(5);
const PERIOD_SECONDS = PERIOD.toSeconds();
/** The DORA row: by day, over the last 30 days (whatever the dashboard's time range). */
const DORA_PERIOD = Duration.days(1);
const DORA_RANGE = '-P30D';

/**
 * A SEARCH over every series of one of the service's metrics, by namespace and metric name: new
 * pipelines and environments appear without a redeploy. Each series is one combination of the
 * dimension values of DESIGN.md section 9 (Pipeline, Application, Environment, or Outcome),
 * named by `label`.
 */
export const searchExpression = (
  metricName: string,
  statistic: string,
  periodSeconds: number = PERIOD_SECONDS,
): string =>
  `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${metricName}"', '${statistic}', ${periodSeconds})`;

/** A dynamic label: the value of a dimension of each series a SEARCH returns. */
const dim = (name: string): string => `\${PROP('Dim.${name}')}`;

const search = (
  metricName: string,
  statistic: string,
  label: string,
  period: Duration = PERIOD,
): cloudwatch.MathExpression =>
  new cloudwatch.MathExpression({
    expression: searchExpression(metricName, statistic, period.toSeconds()),
    usingMetrics: {},
    label,
    period,
  });

/** The total of a metric over all its series. */
const total = (
  metricName: string,
  label: string,
  period: Duration = PERIOD,
): cloudwatch.MathExpression =>
  new cloudwatch.MathExpression({
    expression: `SUM(${searchExpression(metricName, 'Sum', period.toSeconds())})`,
    usingMetrics: {},
    label,
    period,
  });

/**
 * DORA's change failure rate, in percent: failed deployments over all deployments (successful
 * and failed), over every application and environment, by day. One expression over two SEARCHes,
 * so that new pipelines count without a redeploy.
 */
export const changeFailureRateExpression = (period: Duration = DORA_PERIOD): string => {
  // FILL: a day with deployments and no failure is 0 %, not a gap.
  const totalOf = (metricName: string) =>
    `FILL(SUM(${searchExpression(metricName, 'Sum', period.toSeconds())}), 0)`;
  const failures = totalOf(Metric.DeploymentFailures);
  return `100 * ${failures} / (${totalOf(Metric.Deployments)} + ${failures})`;
};

/** `Promotions*` metrics, by the outcome they count. */
export const PROMOTION_OUTCOME_METRICS = [
  [Metric.PromotionsOpened, 'opened'],
  [Metric.PromotionsUpdated, 'updated'],
  [Metric.PromotionsUpToDate, 'up to date'],
  [Metric.PromotionsSuperseded, 'superseded'],
  [Metric.PromotionsSettled, 'already settled (merged, closed or deployed)'],
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
}

/**
 * The service's CloudWatch dashboard, named `{stackName}-{region}`:
 * 1. promotion latency (source deployment event to PR open and up to date) p50, p90, p99, one
 *    line per application and target environment;
 * 2. promotions by outcome, webhook requests by outcome, deployments by environment;
 * 3. the lifecycle (DESIGN.md section 10): promotion lead time (source deployed to target
 *    deployed), PR merge time, merge to deploy, p50 and p90 per application and environment;
 *    GitHub webhook requests by outcome and stale PRs closed;
 * 4. DORA, by day over 30 days: deployment frequency, release lead time p50, change failure
 *    rate (metric math), time to restore p50, per application where a SEARCH can split it;
 * 5. the job queue (oldest job's age, jobs waiting and in flight) and the dead-letter queue;
 * 6. the functions' errors, throttles and durations, the API's requests, errors and latency;
 * 7. the alarms.
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

    const appEnv = `${dim(Dimension.Application)} → ${dim(Dimension.Environment)}`;
    const latency = (statistic: 'p50' | 'p90' | 'p99') =>
      new cloudwatch.GraphWidget({
        title: `Promotion latency ${statistic} (event to PR), by application and environment`,
        left: [search(Metric.PromotionLatency, statistic, `${appEnv} ${statistic}`)],
        leftYAxis: { label: 'ms', showUnits: false, min: 0 },
        width: 8,
        height: 7,
      });

    /** A time's percentiles, one line per application and environment and percentile. */
    const percentiles = (title: string, metricName: string, row: 'lifecycle' | 'dora') => {
      const statistics = row === 'dora' ? (['p50'] as const) : (['p50', 'p90'] as const);
      const period = row === 'dora' ? DORA_PERIOD : PERIOD;
      return new cloudwatch.GraphWidget({
        title,
        left: statistics.map((statistic) =>
          search(metricName, statistic, `${appEnv} ${statistic}`, period),
        ),
        leftYAxis: { label: 'ms', showUnits: false, min: 0 },
        ...(row === 'dora' ? { period, start: DORA_RANGE } : {}),
        width: 6,
        height: 7,
      });
    };

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
          `Custom metrics: namespace \`${METRICS_NAMESPACE}\`, dimensions \`${Dimension.Pipeline}\` (ns/name), \`${Dimension.Application}\`, \`${Dimension.Environment}\` (target), \`${Dimension.Outcome}\`.`,
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
        left: PROMOTION_OUTCOME_METRICS.map(([name, label]) => total(name, label)),
        stacked: true,
        width: 8,
        height: 7,
      }),
      new cloudwatch.GraphWidget({
        title: 'Webhook requests by outcome',
        left: [search(Metric.WebhookRequests, 'Sum', dim(Dimension.Outcome))],
        stacked: true,
        width: 8,
        height: 7,
      }),
      new cloudwatch.GraphWidget({
        title: 'Deployments seen, by application and environment',
        left: [search(Metric.Deployments, 'Sum', appEnv)],
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
        title: 'GitHub webhook requests by outcome (left), stale PRs closed (right)',
        left: [search(Metric.GitHubWebhookRequests, 'Sum', dim(Dimension.Outcome))],
        right: [total(Metric.StalePullRequestsClosed, 'stale PRs closed')],
        stacked: true,
        width: 6,
        height: 7,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'DORA: deployment frequency (deployments per day)',
        left: [
          total(Metric.Deployments, 'all applications', DORA_PERIOD),
          search(Metric.Deployments, 'Sum', appEnv, DORA_PERIOD),
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
        left: [
          new cloudwatch.MathExpression({
            expression: changeFailureRateExpression(DORA_PERIOD),
            usingMetrics: {},
            label: 'change failure rate %',
            period: DORA_PERIOD,
          }),
        ],
        right: [
          total(Metric.Deployments, 'deployments', DORA_PERIOD),
          total(Metric.DeploymentFailures, 'failed deployments', DORA_PERIOD),
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
