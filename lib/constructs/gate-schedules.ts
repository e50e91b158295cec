import { Aws, Names, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import { ENV } from '../../functions/config.ts';

/*
 * One-time schedules for due gates (DESIGN.md section 11): the functions that hold a promotion
 * at a soak, a window or a freeze with an end (webhook, pipelines API) put a schedule for its
 * due second in this group (adapters/scheduler-gate-timer.ts), which invokes the reconcile
 * function then and deletes itself. The periodic sweep still looks at every due gate, so a
 * schedule that is lost or throttled only makes a promotion as late as before.
 */

export interface GateSchedulesProps {
  /** What the schedules invoke: the reconcile function. */
  readonly reconcile: IFunction;
}

/**
 * The schedule group (`group`), the role EventBridge Scheduler invokes the reconcile function
 * with (`role`: this group's schedules only, and that function only), and `allowScheduling`,
 * which lets a function create schedules in the group and pass the role, with the three
 * settings it reads.
 */
export class GateSchedules extends Construct {
  public readonly group: scheduler.ScheduleGroup;
  public readonly role: iam.Role;
  readonly #reconcile: IFunction;
  readonly #groupName: string;

  constructor(scope: Construct, id: string, props: GateSchedulesProps) {
    super(scope, id);
    this.#reconcile = props.reconcile;
    // Named, so that the one wildcard (the schedules in it) has a name the acknowledgement says.
    // Unique to this stack and construct (a hash of its path): two stacks never share a group.
    this.#groupName = Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    this.group = new scheduler.ScheduleGroup(this, 'Group', { scheduleGroupName: this.#groupName });
    this.role = new iam.Role(this, 'Role', {
      // For this account's schedules of this group only (confused deputy).
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': Aws.ACCOUNT_ID,
            'aws:SourceArn': this.group.scheduleGroupArn,
          },
        },
      }),
      description:
        'Pipeline Promoter gate schedules: invoke the reconcile function when a gate is due',
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [props.reconcile.functionArn],
      }),
    );
  }

  /**
   * Lets `fn` put one-time schedules in the group (and nothing else), and tells it where. The
   * reconcile function is told no target: its own ARN in its environment would be a cycle, and
   * it has it from each invocation.
   */
  allowScheduling(fn: IFunction & { addEnvironment(key: string, value: string): unknown }): void {
    fn.addEnvironment(ENV.gateScheduleGroup, this.#groupName);
    // The name is known before the group exists: the function waits for it.
    fn.node.addDependency(this.group);
    if (fn !== this.#reconcile) {
      fn.addEnvironment(ENV.gateScheduleTargetArn, this.#reconcile.functionArn);
    }
    fn.addEnvironment(ENV.gateScheduleRoleArn, this.role.roleArn);
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['scheduler:CreateSchedule'],
        resources: [
          Stack.of(this).formatArn({
            service: 'scheduler',
            resource: 'schedule',
            resourceName: `${this.#groupName}/*`,
          }),
        ],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.role.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    if (fn.role !== undefined) {
      Validations.of(fn.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.#groupName}/*]`,
        reason:
          'scheduler:CreateSchedule on schedule/{gate group}/*: the schedules are named after the second a gate is due, created at run time; the group holds nothing else.',
      });
    }
  }
}
