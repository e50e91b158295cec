import { ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, Metric } from '../../functions/core/metric-names.ts';
import {
  DEFAULT_METRICS_DETAIL,
  type DimensionSet,
  dimensionSetsOf,
  type MetricsDetail,
} from '../../functions/core/metrics-detail.ts';
import type { PromotionQueue } from './promotion-queue.ts';

export const ALARM_DEFAULTS = {
  oldestMessageAge: Duration.minutes(30),
} as const;

/**
 * A Metrics Insights source of exactly one dimension set of the namespace: `SCHEMA(ns)` alone
 * matches the metrics without dimensions, `SCHEMA(ns, Environment)` those by `Environment` only.
 */
export const metricsInsightsSchema = (dimensionSet: DimensionSet): string =>
  `SCHEMA(${[METRICS_NAMESPACE, ...dimensionSet].join(', ')})`;

/** The dead-letter alarm's query: the sum of one emitted dimension set, all its series. */
export const deadLetteredQuery = (detail: MetricsDetail): string => {
  const [set = []] = dimensionSetsOf(Metric.PromotionsDeadLettered, detail);
  return `SELECT SUM(${Metric.PromotionsDeadLettered}) FROM ${metricsInsightsSchema(set)}`;
};

export interface PromoterAlarmsProps {
  readonly queue: PromotionQueue;
  readonly worker: IFunction;
  /** When set, an SNS topic with this e-mail subscription receives the alarms. */
  readonly alarmEmail?: string;
  /**
   * Age of the oldest job in the queue that raises the alarm. A job is retried up to
   * maxReceiveCount times, each after up to a visibility timeout, so keep it above a few of them.
   * @default 30 minutes
   */
  readonly oldestMessageAgeThreshold?: Duration;
  /** The functions' metrics detail: the alarm on dead letters reads the set it emits. */
  readonly metricsDetail?: MetricsDetail;
}

/**
 * The alarms a platform team acts on:
 * - a job in the dead-letter queue (a promotion that kept failing: inspect it, then redrive);
 * - worker errors (invocations that crashed or timed out, not jobs that failed cleanly);
 * - the oldest job's age (jobs are not being consumed: worker throttled, broken or stuck);
 * - promotions dead-lettered (`PromotionsDeadLettered`, which the worker emits with the failure
 *   recorded on the promotion), summed over all environments: every `metricsDetail` keeps it.
 * With `alarmEmail`, an SNS topic (TLS-only, publishable by CloudWatch alarms of this account)
 * and its e-mail subscription get the ALARM and OK transitions.
 */
export class PromoterAlarms extends Construct {
  public readonly deadLetterQueueDepth: cloudwatch.Alarm;
  public readonly workerErrors: cloudwatch.Alarm;
  public readonly oldestMessageAge: cloudwatch.Alarm;
  public readonly promotionsDeadLettered: cloudwatch.Alarm;
  public readonly alarms: readonly cloudwatch.Alarm[];
  public readonly topic: sns.Topic | undefined;

  constructor(scope: Construct, id: string, props: PromoterAlarmsProps) {
    super(scope, id);
    const ageThreshold = props.oldestMessageAgeThreshold ?? ALARM_DEFAULTS.oldestMessageAge;

    this.deadLetterQueueDepth = new cloudwatch.Alarm(this, 'DeadLetterQueueDepth', {
      alarmDescription:
        'A promotion job is in the dead-letter queue: it failed maxReceiveCount times. `promoter dead-letters list` shows it with its failure; fix the cause, then redrive with `promoter dead-letters retry --all`.',
      metric: props.queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    this.workerErrors = new cloudwatch.Alarm(this, 'WorkerErrors', {
      alarmDescription:
        'The worker function failed invocations (crash or timeout; jobs that fail cleanly are partial batch failures, not errors). Its jobs are retried, then dead-lettered.',
      metric: props.worker.metricErrors({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.SUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    this.oldestMessageAge = new cloudwatch.Alarm(this, 'OldestMessageAge', {
      alarmDescription: `The oldest promotion job has waited over ${ageThreshold.toHumanString()}: the worker is not keeping up, throttled or failing.`,
      metric: props.queue.queue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: ageThreshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // Alarms take no SEARCH, and the environments are not known here: a Metrics Insights
    // query sums the series of the one dimension set the functions emit (metrics-detail.ts).
    this.promotionsDeadLettered = new cloudwatch.Alarm(this, 'PromotionsDeadLettered', {
      alarmDescription:
        'A promotion was dead-lettered: its job failed on every receive. `promoter dead-letters list --queue-url <JobQueueUrl> --dead-letter-queue-url <DeadLetterQueueUrl> --table <TableName>` shows the jobs and their failures; fix the cause, then redrive with `promoter dead-letters retry --all` (same flags).',
      metric: new cloudwatch.MathExpression({
        expression: deadLetteredQuery(props.metricsDetail ?? DEFAULT_METRICS_DETAIL),
        label: 'promotions dead-lettered',
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    this.alarms = [
      this.deadLetterQueueDepth,
      this.workerErrors,
      this.oldestMessageAge,
      this.promotionsDeadLettered,
    ];

    if (props.alarmEmail === undefined) {
      this.topic = undefined;
      return;
    }
    const topic = new sns.Topic(this, 'Topic', {
      displayName: 'Pipeline Promoter alarms',
      enforceSSL: true,
    });
    this.topic = topic;
    // The topic's own policy replaces SNS's default one: let this account's alarms publish.
    const stack = Stack.of(this);
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    topic.addSubscription(new EmailSubscription(props.alarmEmail));
    // The subscription is a child of the topic: the acknowledgement covers it.
    Validations.of(topic).acknowledge({
      id: 'Serverless-SNSRedrivePolicy',
      reason:
        'The only subscription is the alarm e-mail. An undeliverable alarm e-mail has no consumer a dead-letter queue could hand it to, and the alarm state itself stays in CloudWatch (and on the dashboard).',
    });
    const action = new SnsAction(topic);
    for (const alarm of this.alarms) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
  }
}
