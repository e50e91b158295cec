import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient, tableDefinition } from '../../functions/adapters/dynamodb-table.ts';
import type {
  DeploymentRecord,
  PromotionRecord,
  PromotionState,
} from '../../functions/core/ports.ts';
import { awsClientConfig } from '../support/moto-server.ts';

const pipeline = { namespace: 'flux-system', name: 'podinfo' };

const deployment = (
  environment: string,
  revision: string,
  eventTimestamp: string,
): DeploymentRecord => ({
  pipeline,
  environment,
  revision,
  eventTimestamp,
  recordedAt: '2026-11-02T10:30:00.000Z',
});

const promotion = (
  state: PromotionState,
  revision: string,
  eventTimestamp: string,
  extra: Partial<Pick<PromotionRecord, 'pullRequest' | 'failure'>> = {},
): PromotionRecord => ({
  pipeline,
  environment: 'staging',
  revision,
  state,
  jobId: `job-${revision}`,
  from: 'dev',
  eventTimestamp,
  updatedAt: '2026-11-02T10:30:00.000Z',
  ...extra,
});

describe('DynamoDbPromotionStateStore (moto)', () => {
  let client: DynamoDBClient;
  let documents: DynamoDBDocumentClient;

  beforeAll(() => {
    client = new DynamoDBClient(awsClientConfig(inject('motoEndpoint')));
    documents = createDocumentClient(client);
  });
  afterAll(() => client.destroy());

  const createStore = async (): Promise<{ store: DynamoDbPromotionStateStore; table: string }> => {
    const table = `pipeline-promoter-${randomUUID()}`;
    await client.send(new CreateTableCommand(tableDefinition(table)));
    return { store: new DynamoDbPromotionStateStore(documents, table), table };
  };

  it('round-trips a promotion record with its pull request and failure', async () => {
    // Prepare
    const { store } = await createStore();
    const opened = promotion('opened', '6.5.4', '2026-11-02T10:00:00Z', {
      pullRequest: { number: 42, url: 'https://github.com/example-org/fleet/pull/42' },
    });
    const failed: PromotionRecord = {
      ...promotion('failed', '6.5.4', '2026-11-02T10:00:00Z', {
        failure: {
          code: 'NO_MARKER',
          message: 'no $promotion marker for flux-system:podinfo:prod',
        },
      }),
      environment: 'prod',
      from: 'staging',
    };

    // Act
    await store.putPromotion(opened);
    await store.putPromotion(failed);

    // Assess
    expect(await store.getPromotion(pipeline, 'staging')).toEqual(opened);
    expect(await store.getPromotion(pipeline, 'prod')).toEqual(failed);
    expect(await store.getPromotion(pipeline, 'qa')).toBeUndefined();
    expect(await store.listPromotions(pipeline)).toEqual([failed, opened]);
    expect(await store.listPromotions({ namespace: 'flux-system', name: 'other' })).toEqual([]);
  });

  it('replaces the whole record: fields of an earlier state do not linger', async () => {
    // Prepare
    const { store } = await createStore();
    await store.putPromotion(
      promotion('failed', '6.5.4', '2026-11-02T10:00:00Z', {
        failure: { code: 'GITHUB_UNAVAILABLE', message: '502' },
      }),
    );
    const retried = promotion('opened', '6.5.4', '2026-11-02T10:00:00Z', {
      pullRequest: { number: 7, url: 'https://github.com/example-org/fleet/pull/7' },
    });

    // Act
    await store.putPromotion(retried);

    // Assess
    expect(await store.getPromotion(pipeline, 'staging')).toEqual(retried);
  });

  it('moves one job from queued to opened (same event time)', async () => {
    // Prepare
    const { store } = await createStore();
    await store.putPromotion(promotion('queued', '6.5.4', '2026-11-02T10:00:00Z'));

    // Act
    const written = await store.tryPutPromotion(
      promotion('opened', '6.5.4', '2026-11-02T10:00:00Z'),
    );

    // Assess
    expect(written).toBe(true);
    expect((await store.getPromotion(pipeline, 'staging'))?.state).toBe('opened');
  });

  it('keeps a completed record when a late event with an older timestamp arrives', async () => {
    // Prepare
    const { store } = await createStore();
    const current = promotion('updated', '6.5.4', '2026-11-02T10:05:00Z');
    await store.putPromotion(current);

    // Act: the late event is queued, then its job ends superseded; neither may win.
    const queued = await store.tryPutPromotion(
      promotion('queued', '6.5.3', '2026-11-02T10:00:00Z'),
    );
    const superseded = await store.tryPutPromotion(
      promotion('superseded', '6.5.3', '2026-11-02T10:00:00Z'),
    );
    await store.putPromotion(promotion('opened', '6.5.2', '2026-11-02T09:00:00Z'));

    // Assess
    expect([queued, superseded]).toEqual([false, false]);
    expect(await store.getPromotion(pipeline, 'staging')).toEqual(current);
  });

  it('orders by instant, not by text, when timestamps carry different offsets', async () => {
    // Prepare: 10:30+02:00 is 08:30Z, older than 09:00Z although it sorts after it as text.
    const { store } = await createStore();
    const current = promotion('opened', '6.5.4', '2026-11-02T09:00:00Z');
    await store.putPromotion(current);

    // Act
    const written = await store.tryPutPromotion(
      promotion('opened', '6.5.3', '2026-11-02T10:30:00+02:00'),
    );

    // Assess
    expect(written).toBe(false);
    expect(await store.getPromotion(pipeline, 'staging')).toEqual(current);
  });

  it('lets a newer event replace a completed record', async () => {
    // Prepare
    const { store } = await createStore();
    await store.putPromotion(promotion('failed', '6.5.3', '2026-11-02T10:00:00Z'));
    const newer = promotion('queued', '6.5.4', '2026-11-02T10:05:00Z');

    // Act
    const written = await store.tryPutPromotion(newer);

    // Assess
    expect(written).toBe(true);
    expect(await store.getPromotion(pipeline, 'staging')).toEqual(newer);
  });

  it('lets an older job record its outcome over a newer queued record, but not a queued one', async () => {
    // Prepare: job A (10:00) is running when job B (10:05) is queued.
    const { store } = await createStore();
    await store.putPromotion(promotion('queued', '6.5.4', '2026-11-02T10:05:00Z'));

    // Act
    const lateQueued = await store.tryPutPromotion(
      promotion('queued', '6.5.2', '2026-11-02T09:00:00Z'),
    );
    const outcomeOfA = await store.tryPutPromotion(
      promotion('opened', '6.5.3', '2026-11-02T10:00:00Z'),
    );

    // Assess
    expect([lateQueued, outcomeOfA]).toEqual([false, true]);
    expect(await store.getPromotion(pipeline, 'staging')).toMatchObject({
      state: 'opened',
      revision: '6.5.3',
    });
  });

  it('keeps the latest deployment per environment by event time', async () => {
    // Prepare
    const { store } = await createStore();
    const devLatest = deployment('dev', '6.5.4', '2026-11-02T10:05:00Z');
    const prod = deployment('prod', '6.5.1', '2026-11-01T08:00:00Z');
    await store.recordDeployment(deployment('dev', '6.5.3', '2026-11-02T10:00:00Z'));
    await store.recordDeployment(devLatest);
    await store.recordDeployment(prod);

    // Act
    const late = await store.tryRecordDeployment(
      deployment('dev', '6.5.2', '2026-11-02T09:00:00Z'),
    );
    const deployments = await store.listDeployments(pipeline);

    // Assess
    expect(late).toBe(false);
    expect(deployments).toEqual([devLatest, prod]);
  });

  it('stamps expiresAt (epoch seconds) only when a record TTL is configured', async () => {
    // Prepare
    const { table } = await createStore();
    const clock = { now: () => new Date('2026-11-02T10:00:00Z') };
    const store = new DynamoDbPromotionStateStore(documents, table, { recordTtlDays: 30, clock });
    const plain = new DynamoDbPromotionStateStore(documents, table);

    // Act
    await store.recordDeployment(deployment('dev', '6.5.4', '2026-11-02T10:00:00Z'));
    await plain.recordDeployment(deployment('prod', '6.5.4', '2026-11-02T10:00:00Z'));

    // Assess
    const item = async (sk: string) =>
      (
        await client.send(
          new GetItemCommand({
            TableName: table,
            Key: { pk: { S: 'PIPELINE#flux-system/podinfo' }, sk: { S: sk } },
          }),
        )
      ).Item;
    const expected = Date.parse('2026-11-02T10:00:00Z') / 1000 + 30 * 86_400;
    expect((await item('DEPLOYMENT#dev'))?.expiresAt).toEqual({ N: String(expected) });
    expect((await item('DEPLOYMENT#prod'))?.expiresAt).toBeUndefined();
  });
});
