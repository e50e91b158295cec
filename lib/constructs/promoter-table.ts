import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE } from '../../functions/adapters/dynamodb-table.ts';

export interface PromoterTableProps {
  /**
   * What happens to the table when it leaves the stack. With `RETAIN` the table also gets
   * deletion protection, so that it survives a `cdk destroy` and an accidental console delete.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The DynamoDB actions each function needs, and no more (see the adapters' commands):
 * DynamoDbPipelineStore `get` is GetItem, `list` Scan, `put` PutItem, `delete` DeleteItem;
 * DynamoDbPromotionStateStore `getPromotion` is GetItem, `putPromotion`, `transitionPromotion`,
 * `recordDeployment` and `openIncident` PutItem (conditional), `closeIncident` DeleteItem,
 * `listDeployments` and `listPromotions` Query; DynamoDbDeliveryLog `firstSeen` PutItem.
 * Nothing uses UpdateItem or BatchWriteItem.
 */
export const TableAccess = {
  /**
   * Webhook: reads the pipeline and the promotion (GetItem); records the deployment, the GitHub
   * delivery (`DELIVERY#{id}`), an incident and the promotion's transitions (PutItem); closes
   * an incident when the environment deploys again (DeleteItem); reads the targets' reports
   * and the freezes for the gates (Query).
   */
  webhook: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
  /** Worker: reads the pipeline and the promotion record (GetItem), records the outcome (PutItem). */
  worker: ['dynamodb:GetItem', 'dynamodb:PutItem'],
  /**
   * Reconcile sweep: lists the pipelines (Scan) and their promotions (Query), reads a pipeline
   * and a promotion (GetItem), records a merged or closed PR and a gate that opened (PutItem).
   */
  reconcile: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:PutItem'],
  /**
   * Pipelines API: sync reads, lists (Scan), writes and deletes definitions; the status lists a
   * pipeline's deployments and promotions (Query); approvals and freezes (PutItem, DeleteItem).
   */
  pipelinesApi: [
    'dynamodb:GetItem',
    'dynamodb:Query',
    'dynamodb:Scan',
    'dynamodb:PutItem',
    'dynamodb:DeleteItem',
  ],
} as const;

/**
 * The service's one DynamoDB table: pipeline definitions and promotion state. Its key design
 * (single table, no GSI), its attribute names and its items are those of
 * `functions/adapters/dynamodb-table.ts`, which the functions use. On-demand billing,
 * point-in-time recovery, encryption at rest with the AWS owned key (DynamoDB's default).
 */
export class PromoterTable extends Construct {
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: PromoterTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TTL_ATTRIBUTE,
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
  }

  /** Grants exactly `actions` on the table (it has no index, so on the table ARN only). */
  grant(grantee: iam.IGrantable, actions: readonly string[]): iam.Grant {
    return this.table.grant(grantee, ...actions);
  }
}
