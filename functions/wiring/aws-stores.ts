import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CachedPipelineStore } from '../adapters/cached-pipeline-store.ts';
import { DynamoDbPipelineStore } from '../adapters/dynamodb-pipeline-store.ts';
import {
  DynamoDbDeliveryLog,
  DynamoDbPromotionStateStore,
} from '../adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../adapters/dynamodb-table.ts';
import { EventBridgeNotices } from '../adapters/eventbridge-notices.ts';
import { SchedulerGateTimer } from '../adapters/scheduler-gate-timer.ts';
import { SecretsManagerSecretStore } from '../adapters/secrets-manager-secret-store.ts';
import { ENV } from '../config.ts';
import { PromoterError } from '../core/errors.ts';
import type { PromotionNotices } from '../core/ports.ts';
import type { GateTimer } from '../core/promotion-gates.ts';

/*
 * What the Lambda functions' composition roots share: the AWS clients and the stores over them,
 * created once per execution environment at start-up and reused by every invocation.
 */

export type CommonConfig = {
  readonly [ENV.tableName]: string;
  readonly [ENV.secretPrefix]: string;
  readonly [ENV.secretTtlSeconds]: number;
  readonly [ENV.pipelineCacheSeconds]: number;
  readonly [ENV.awsEndpoint]?: string | undefined;
  readonly [ENV.eventBusName]?: string | undefined;
  readonly [ENV.gateScheduleGroup]?: string | undefined;
  readonly [ENV.gateScheduleTargetArn]?: string | undefined;
  readonly [ENV.gateScheduleRoleArn]?: string | undefined;
};

export const clientConfig = (
  config: Pick<CommonConfig, typeof ENV.awsEndpoint>,
): { endpoint?: string } => {
  const endpoint = config[ENV.awsEndpoint];
  return endpoint === undefined ? {} : { endpoint };
};

/** The table's stores, read and written directly (the pipelines API: a sync sees what is stored). */
export const createTableStores = (
  config: Pick<CommonConfig, typeof ENV.tableName | typeof ENV.awsEndpoint>,
) => {
  const documents = createDocumentClient(new DynamoDBClient(clientConfig(config)));
  return {
    registry: new DynamoDbPipelineStore(documents, config[ENV.tableName]),
    state: new DynamoDbPromotionStateStore(documents, config[ENV.tableName]),
    deliveries: new DynamoDbDeliveryLog(documents, config[ENV.tableName]),
  };
};

/**
 * What the webhook and the worker read: pipeline definitions through a short-TTL cache
 * (PROMOTER_PIPELINE_CACHE_SECONDS), the promotion state, and the secrets (cached too).
 */
export const createStores = (config: CommonConfig) => {
  const { registry, state, deliveries } = createTableStores(config);
  return {
    registry,
    deliveries,
    pipelines: new CachedPipelineStore(registry, {
      ttlMs: config[ENV.pipelineCacheSeconds] * 1000,
    }),
    state,
    secrets: new SecretsManagerSecretStore(new SecretsManagerClient(clientConfig(config)), {
      prefix: config[ENV.secretPrefix],
      ttlMs: config[ENV.secretTtlSeconds] * 1000,
    }),
  };
};

/**
 * The stack's event bus for notices (DESIGN.md section 13), as a dependency to spread in: none
 * where PROMOTER_EVENT_BUS_NAME is unset.
 */
export const eventBusNotices = (
  config: Pick<CommonConfig, typeof ENV.eventBusName | typeof ENV.awsEndpoint>,
): { notices?: PromotionNotices } => {
  const bus = config[ENV.eventBusName];
  return bus === undefined
    ? {}
    : { notices: new EventBridgeNotices(new EventBridgeClient(clientConfig(config)), bus) };
};

/**
 * One-time schedules of the reconcile function for due gates (DESIGN.md section 11), as a
 * dependency to spread in: none where PROMOTER_GATE_SCHEDULE_GROUP is unset. `ownArn`: the
 * reconcile function's own ARN, which it cannot have in its environment (a cycle in the stack).
 */
export const gateScheduleTimer = (
  config: Pick<
    CommonConfig,
    | typeof ENV.gateScheduleGroup
    | typeof ENV.gateScheduleTargetArn
    | typeof ENV.gateScheduleRoleArn
    | typeof ENV.awsEndpoint
  >,
  ownArn?: string,
): { timer?: GateTimer } => {
  const groupName = config[ENV.gateScheduleGroup];
  if (groupName === undefined) return {};
  const targetArn = config[ENV.gateScheduleTargetArn] ?? ownArn;
  const roleArn = config[ENV.gateScheduleRoleArn];
  if (targetArn === undefined || roleArn === undefined) {
    throw new PromoterError(
      'INVALID_CONFIG',
      `invalid function settings: ${ENV.gateScheduleGroup} is set, so ${ENV.gateScheduleTargetArn} and ${ENV.gateScheduleRoleArn} must be too`,
    );
  }
  return {
    // On the webhook's request path: a Scheduler that stalls costs seconds, not the Lambda's timeout.
    timer: new SchedulerGateTimer(
      new SchedulerClient({
        ...clientConfig(config),
        maxAttempts: 2,
        requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
      }),
      {
        groupName,
        targetArn,
        roleArn,
      },
    ),
  };
};
