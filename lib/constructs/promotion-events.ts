import { ArnFormat, Aws, Fn, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { NOTICE_SOURCE } from '../../functions/core/promotion-notices.ts';

/*
 * The stack's event bus for promotion notices (DESIGN.md section 13): the notification
 * strategy's hand-off (`Promotion`) and the lifecycle's changes of state (`Promotion State
 * Change`), all with source `pipeline-promoter`. Users route them to chat or CI with rules of
 * their own on this bus; the example rule below is the one the README tells them to copy.
 */

/**
 * The example rule's pattern: promotions that failed or were dead-lettered. A rule on the bus
 * with this pattern and a target of one's own (an SNS topic, a chat webhook's API destination,
 * a CI trigger) is what the README shows; change `detail.state` to route other states
 * (`waiting`, `awaiting-approval`, `opened`, `merged`, `deployed`, ...), or match
 * `detail-type: ["Promotion"]` for the notification strategy's hand-offs.
 */
export const FAILED_PROMOTIONS_PATTERN = {
  source: [NOTICE_SOURCE],
  detailType: ['Promotion State Change'],
  detail: { state: ['failed', 'dead-lettered'] },
} as const satisfies events.EventPattern;

/** The pattern as EventBridge (and PutRule) spells it, for tests and the README. */
export const FAILED_PROMOTIONS_EVENT_PATTERN = {
  source: [...FAILED_PROMOTIONS_PATTERN.source],
  'detail-type': [...FAILED_PROMOTIONS_PATTERN.detailType],
  detail: { state: [...FAILED_PROMOTIONS_PATTERN.detail.state] },
};

export interface PromotionEventsProps {
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
}

/** A rule target that is a log group, with no custom resource (CDK's own adds a Lambda). */
class LogGroupTarget implements events.IRuleTarget {
  constructor(private readonly logGroup: logs.ILogGroup) {}

  bind(): events.RuleTargetConfig {
    // The group's own ARN, without the `:*` of `logGroupArn` (which names its streams).
    return {
      arn: Stack.of(this.logGroup).formatArn({
        service: 'logs',
        resource: 'log-group',
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        resourceName: this.logGroup.logGroupName,
      }),
    };
  }
}

/**
 * The bus (`bus`, its name and ARN in the stack's outputs) and the example rule: failed and
 * dead-lettered promotions written to the log group `failedPromotionsLogGroup`
 * (`/aws/events/...`, the prefix EventBridge requires of a log group target), which EventBridge
 * may write to through a CloudWatch Logs resource policy on that group only. The functions that
 * publish get `events:PutEvents` on this bus and nothing else (`grantPutEvents`).
 */
export class PromotionEvents extends Construct {
  public readonly bus: events.EventBus;
  public readonly failedPromotionsRule: events.Rule;
  public readonly failedPromotionsLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PromotionEventsProps) {
    super(scope, id);

    this.bus = new events.EventBus(this, 'Bus', {
      description:
        'Pipeline Promoter: promotion hand-offs and changes of state (source pipeline-promoter)',
    });

    // The example users copy: failed and dead-lettered promotions, kept in a log group.
    // EventBridge writes only to groups named /aws/events/...; the suffix (from the stack's id)
    // keeps a retained group of a deleted stack from blocking a new stack of the same name.
    const stackIdSuffix = Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))));
    this.failedPromotionsLogGroup = new logs.LogGroup(this, 'FailedPromotionsLogGroup', {
      logGroupName: `/aws/events/${Stack.of(this).stackName}/failed-promotions-${stackIdSuffix}`,
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.failedPromotionsRule = new events.Rule(this, 'FailedPromotionsRule', {
      eventBus: this.bus,
      description:
        'Pipeline Promoter example: failed and dead-lettered promotions to a log group (copy it with a target of your own)',
      eventPattern: FAILED_PROMOTIONS_PATTERN,
      targets: [new LogGroupTarget(this.failedPromotionsLogGroup)],
    });
    // EventBridge may write to this group and no other (what CDK's own log group target grants,
    // without the custom resource it puts the policy with).
    new logs.ResourcePolicy(this, 'FailedPromotionsLogPolicy', {
      policyStatements: [
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal('events.amazonaws.com')],
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [this.failedPromotionsLogGroup.logGroupArn],
        }),
      ],
    });
    Validations.of(this.failedPromotionsRule).acknowledge({
      id: 'Serverless-EventBusDLQ',
      reason:
        'The example rule only writes failed promotions to a log group; a delivery EventBridge gives up on (after its 24 hours of retries) loses a copy, never a fact: the promotion record in the table (the status API) is the truth, the notice its echo.',
    });
  }

  /** `events:PutEvents` on this bus, and on nothing else. */
  grantPutEvents(grantee: iam.IGrantable): iam.Grant {
    return this.bus.grantPutEventsTo(grantee);
  }
}
