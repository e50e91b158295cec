import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

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
   * an incident when the environment deploys again (DeleteItem).
   */
  webhook: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
  /** Worker: reads the pipeline and the promotion record (GetItem), records the outcome (PutItem). */
  worker: ['dynamodb:GetItem', 'dynamodb:PutItem'],
  /**
   * Reconcile sweep: lists the pipelines (Scan) and their promotions (Query), reads a pipeline
   * and a promotion (GetItem), records a merged or closed PR (PutItem).
   */
  reconcile: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:PutItem'],
  /**
   * Pipelines API: sync reads, lists (Scan), writes and deletes definitions; the status lists a
   * pipeline's deployments and promotions (Query).
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
 * The service's one DynamoDB table: pipeline definitions and promotion state. The names below are
 * those of `functions/adapters/dynamodb-table.ts`, which the functions use.
 *
 * Key design (single table, no GSI):
 *
 * | attribute   | type | role                                                      |
 * |-------------|------|-----------------------------------------------------------|
 * | `pk`        | S    | partition key: `PIPELINE#{ns}/{name}`                     |
 * | `sk`        | S    | sort key: what the item is (below)                        |
 * | `expiresAt` | N    | TTL, epoch seconds; items without it never expire         |
 *
 * Items of one pipeline's partition, `pk = PIPELINE#{ns}/{name}`:
 * - `sk = DEFINITION`: the normalised pipeline definition (written by `PUT /pipelines`).
 * - `sk = DEPLOYMENT#{env}`: the latest deployment seen in `{env}` (written by the webhook).
 * - `sk = PROMOTION#{env}`: the latest promotion into `{env}` and its lifecycle (written by the
 *   worker when a job ends, moved on by the webhook and the reconcile sweep: merged, closed,
 *   deployed; `queued` is never stored, the status API derives it).
 * - `sk = INCIDENT#{env}`: the environment's open run of failures (the webhook), if any.
 *
 * And one partition per GitHub delivery handled: `pk = DELIVERY#{id}`, `sk = DELIVERY`, with
 * `expiresAt` (the webhook).
 *
 * Everything about one pipeline is one Query away; listing pipelines is a Scan filtered on
 * `sk = DEFINITION` (a few items per pipeline). On-demand billing, point-in-time recovery,
 * encryption at rest with the AWS owned key (DynamoDB's default).
 */
export class PromoterTable extends Construct {
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: PromoterTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expiresAt',
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
  }

  /** Grants exactly `actions` on the table (it has no index, so on the table ARN only). */
  grant(grantee: iam.IGrantable, actions: readonly string[]): iam.Grant {
    return this.table.grant(grantee, ...actions);
  }
}
