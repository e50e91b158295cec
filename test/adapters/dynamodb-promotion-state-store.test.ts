import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  DynamoDbDeliveryLog,
  DynamoDbPromotionStateStore,
} from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { deploymentKey, TTL_ATTRIBUTE } from '../../functions/adapters/dynamodb-table.ts';
import type { DeploymentRecord } from '../../functions/core/ports.ts';
import { attributeKey, createTestTable, useMotoDynamoDb } from '../support/aws-test-resources.ts';
import { describeClaimBeforePushContract } from './claim-before-push.contract.ts';
import { describeDeliveryLogContract } from './delivery-log.contract.ts';
import { describePromotionStateStoreContract } from './promotion-state-store.contract.ts';

const pipeline = { namespace: 'flux-system', name: 'podinfo' };

const deployment = (environment: string, eventTimestamp: string): DeploymentRecord => ({
  pipeline,
  environment,
  revision: '6.5.4',
  eventTimestamp,
  recordedAt: '2026-11-02T10:30:00.000Z',
});

describe('DynamoDbPromotionStateStore (moto)', () => {
  const moto = useMotoDynamoDb();

  const makeStore = async () =>
    new DynamoDbPromotionStateStore(moto.documents, await createTestTable(moto.client));
  describePromotionStateStoreContract('DynamoDbPromotionStateStore', makeStore);
  describeClaimBeforePushContract('DynamoDbPromotionStateStore', makeStore);
  describeDeliveryLogContract(
    'DynamoDbDeliveryLog',
    async () => new DynamoDbDeliveryLog(moto.documents, await createTestTable(moto.client)),
  );

  it('stamps expiresAt (epoch seconds) only when a record TTL is configured', async () => {
    // Prepare
    const table = await createTestTable(moto.client);
    const clock = { now: () => new Date('2026-11-02T10:00:00Z') };
    const store = new DynamoDbPromotionStateStore(moto.documents, table, {
      recordTtlDays: 30,
      clock,
    });
    const plain = new DynamoDbPromotionStateStore(moto.documents, table);

    // Act
    await store.recordDeployment(deployment('dev', '2026-11-02T10:00:00Z'));
    await plain.recordDeployment(deployment('prod', '2026-11-02T10:00:00Z'));

    // Assess
    const item = async (environment: string) =>
      (
        await moto.client.send(
          new GetItemCommand({
            TableName: table,
            Key: attributeKey(deploymentKey(pipeline, environment)),
          }),
        )
      ).Item;
    const expected = Date.parse('2026-11-02T10:00:00Z') / 1000 + 30 * 86_400;
    expect((await item('dev'))?.[TTL_ATTRIBUTE]).toEqual({ N: String(expected) });
    expect((await item('prod'))?.[TTL_ATTRIBUTE]).toBeUndefined();
  });

  it('stores the event time as epoch milliseconds next to the timestamp', async () => {
    // Prepare
    const table = await createTestTable(moto.client);
    const store = new DynamoDbPromotionStateStore(moto.documents, table);

    // Act
    await store.recordDeployment(deployment('dev', '2026-11-02T12:00:00+02:00'));

    // Assess
    const { Item } = await moto.client.send(
      new GetItemCommand({
        TableName: table,
        Key: attributeKey(deploymentKey(pipeline, 'dev')),
      }),
    );
    expect(Item?.eventTime).toEqual({ N: String(Date.parse('2026-11-02T10:00:00Z')) });
    expect(Item?.eventTimestamp).toEqual({ S: '2026-11-02T12:00:00+02:00' });
  });
});
