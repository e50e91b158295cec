import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  DynamoDbPipelineStore,
  pipelineContentHash,
} from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { definitionKey } from '../../functions/adapters/dynamodb-table.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { type Pipeline, pipelineId } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import { syncPipelineManifests } from '../../functions/core/pipeline-sync.ts';
import type { Clock } from '../../functions/core/ports.ts';
import { compareText } from '../../functions/core/text-order.ts';
import { attributeKey, createTestTable, useMotoDynamoDb } from '../support/aws-test-resources.ts';
import { readFixture } from '../support/fixtures.ts';
import { describePipelineStoreContract } from './pipeline-store.contract.ts';

const loadFixtures = async (...files: string[]): Promise<Pipeline[]> => {
  const pipelines: Pipeline[] = [];
  for (const file of files) {
    const parsed = parsePipelineManifests(readFixture(`pipelines/${file}`), file);
    expect(parsed.invalid).toEqual([]);
    pipelines.push(...parsed.pipelines);
  }
  return pipelines;
};

class ManualClock implements Clock {
  constructor(private time = Date.parse('2026-11-02T10:00:00Z')) {}
  now(): Date {
    return new Date(this.time);
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

describe('DynamoDbPipelineStore (moto)', () => {
  const moto = useMotoDynamoDb();

  /** A fresh table per test, created as the stack creates it (pk/sk, PAY_PER_REQUEST, TTL). */
  const createTable = (): Promise<string> => createTestTable(moto.client);

  describePipelineStoreContract('DynamoDbPipelineStore', async (manifests) => {
    const store = new DynamoDbPipelineStore(moto.documents, await createTable());
    const replace = async (next: string) => {
      await syncPipelineManifests(store, next, { prune: true });
    };
    await replace(manifests);
    return { store, replace };
  });

  it('puts, gets and lists the fixture pipelines unchanged by the round trip', async () => {
    // Prepare
    const tableName = await createTable();
    const store = new DynamoDbPipelineStore(moto.documents, tableName);
    const pipelines = await loadFixtures(
      'podinfo.yaml',
      'search-rfc-draft.yaml',
      'list-from-kubectl.yaml',
    );

    // Act
    const results = [];
    for (const pipeline of pipelines) results.push(await store.put(pipeline));
    const podinfo = await store.get({ namespace: 'flux-system', name: 'podinfo' });
    const listed = await store.list();

    // Assess
    expect(results).toEqual(['created', 'created', 'created']);
    expect(podinfo).toEqual(pipelines.find((pipeline) => pipeline.name === 'podinfo'));
    expect(listed.map((pipeline) => `${pipeline.namespace}/${pipeline.name}`)).toEqual([
      'flux-system/apps',
      'flux-system/podinfo',
      'shopping/search',
    ]);
    expect(listed).toEqual(
      [...pipelines].sort((a, b) => compareText(pipelineId(a), pipelineId(b))),
    );
  });

  it('round-trips GitLab and notification strategies, and reads items written before GitLab', async () => {
    // Prepare
    const tableName = await createTable();
    const store = new DynamoDbPipelineStore(moto.documents, tableName);
    const text = readFixture('pipelines/podinfo.yaml')
      .replace(
        'type: github\n            url: https://github.com/example-org/fleet-prod',
        'type: gitlab\n            url: https://gitlab.example.com/platform/gitops/fleet-prod',
      )
      .replace(
        /\n {6}pull-request:\n(?: {8}.*\n)+? {10}name: promotion-credentials\n/,
        '\n      notification: {}\n',
      );
    const [pipeline] = parsePipelineManifests(text).pipelines;
    if (pipeline === undefined) throw new Error('pipeline did not parse');
    const [legacy] = await loadFixtures('search-rfc-draft.yaml');
    if (legacy === undefined) throw new Error('fixture missing');
    // The shape stored before GitLab: the provider on the strategy, none on the repository.
    const stored = legacy.promotion?.strategy;
    if (stored?.type !== 'pull-request') throw new Error('fixture has no pull-request strategy');
    const { repository, ...strategy } = stored;
    const { provider, ...oldRepository } = repository;
    await moto.documents.send(
      new PutCommand({
        TableName: tableName,
        Item: {
          ...definitionKey(legacy),
          contentHash: pipelineContentHash(legacy),
          updatedAt: '2026-11-02T10:00:00.000Z',
          pipeline: {
            ...legacy,
            promotion: {
              manual: false,
              strategy: { ...strategy, provider, repository: oldRepository },
            },
          },
        },
      }),
    );

    // Act
    await store.put(pipeline);
    const back = await store.get(pipeline);
    const legacyBack = await store.get(legacy);

    // Assess
    expect(back).toEqual(pipeline);
    expect(back?.promotion?.strategy).toEqual({ type: 'notification' });
    expect(back?.environments[2]?.promotion?.strategy).toMatchObject({
      repository: { provider: 'gitlab', owner: 'platform/gitops', repo: 'fleet-prod' },
    });
    expect(legacyBack).toEqual(legacy);
  });

  it('stores the definition item with the shared key design, hash and update time', async () => {
    // Prepare
    const tableName = await createTable();
    const clock = new ManualClock();
    const store = new DynamoDbPipelineStore(moto.documents, tableName, { clock });
    const [pipeline] = await loadFixtures('podinfo.yaml');
    if (pipeline === undefined) throw new Error('fixture missing');

    // Act
    await store.put(pipeline);

    // Assess
    const { Item } = await moto.client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: attributeKey(definitionKey(pipeline)),
      }),
    );
    expect(Item?.contentHash).toEqual({ S: pipelineContentHash(pipeline) });
    expect(Item?.updatedAt).toEqual({ S: '2026-11-02T10:00:00.000Z' });
    expect(Item?.pipeline?.M).toBeDefined();
  });

  it('does not write an unchanged pipeline and writes a changed one', async () => {
    // Prepare
    const tableName = await createTable();
    const clock = new ManualClock();
    const store = new DynamoDbPipelineStore(moto.documents, tableName, { clock });
    const [pipeline] = await loadFixtures('podinfo.yaml');
    if (pipeline === undefined) throw new Error('fixture missing');
    await store.put(pipeline);
    // The same content with its keys in another order is the same pipeline.
    const reordered = JSON.parse(
      JSON.stringify(Object.fromEntries(Object.entries(pipeline).reverse())),
    ) as Pipeline;
    const changed: Pipeline = {
      ...pipeline,
      environments: pipeline.environments.slice(0, 2),
    };

    // Act
    clock.advance(60_000);
    const again = await store.put(reordered);
    const afterUnchanged = await moto.client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: attributeKey(definitionKey(pipeline)),
      }),
    );
    const update = await store.put(changed);

    // Assess
    expect(again).toBe('unchanged');
    expect(afterUnchanged.Item?.updatedAt).toEqual({ S: '2026-11-02T10:00:00.000Z' });
    expect(update).toBe('updated');
    expect(await store.get(pipeline)).toEqual(changed);
  });

  it('deletes a pipeline and says whether it existed', async () => {
    // Prepare
    const tableName = await createTable();
    const store = new DynamoDbPipelineStore(moto.documents, tableName);
    const pipelines = await loadFixtures('podinfo.yaml', 'search-rfc-draft.yaml');
    for (const pipeline of pipelines) await store.put(pipeline);

    // Act
    const deleted = await store.delete({ namespace: 'flux-system', name: 'podinfo' });
    const deletedAgain = await store.delete({ namespace: 'flux-system', name: 'podinfo' });

    // Assess
    expect([deleted, deletedAgain]).toEqual([true, false]);
    expect(await store.get({ namespace: 'flux-system', name: 'podinfo' })).toBeUndefined();
    expect((await store.list()).map((pipeline) => pipeline.name)).toEqual(['search']);
  });

  it('answers an unknown pipeline with undefined and an empty table with no pipelines', async () => {
    // Prepare
    const tableName = await createTable();
    const store = new DynamoDbPipelineStore(moto.documents, tableName);

    // Act
    const missing = await store.get({ namespace: 'flux-system', name: 'nothing' });
    const listed = await store.list();

    // Assess
    expect(missing).toBeUndefined();
    expect(listed).toEqual([]);
  });

  it('answers a stored definition that does not decode with STORE_CORRUPT naming the item and field', async () => {
    // Prepare
    const tableName = await createTable();
    const store = new DynamoDbPipelineStore(moto.documents, tableName);
    const [pipeline] = await loadFixtures('podinfo.yaml');
    if (pipeline === undefined) throw new Error('fixture missing');
    await moto.documents.send(
      new PutCommand({
        TableName: tableName,
        Item: {
          ...definitionKey(pipeline),
          pipeline: { ...pipeline, environments: [{ name: 'dev' }] },
          schemaVersion: 1,
        },
      }),
    );

    // Act
    const error = await store.get(pipeline).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(PromoterError);
    expect(error).toMatchObject({ code: 'STORE_CORRUPT', retryable: false });
    const { message } = error as PromoterError;
    expect(message).toContain(`${tableName}: item PIPELINE#flux-system/podinfo DEFINITION`);
    expect(message).toContain('pipeline.environments[0].targets');
  });

  it('fails with STORE_UNAVAILABLE, retryable, when the table does not exist', async () => {
    // Prepare
    const store = new DynamoDbPipelineStore(moto.documents, `missing-${randomUUID()}`);

    // Act
    const error = await store
      .get({ namespace: 'flux-system', name: 'podinfo' })
      .catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true });
  });
});
