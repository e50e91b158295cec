import { readdirSync } from 'node:fs';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { CachedPipelineStore } from '../../functions/adapters/cached-pipeline-store.ts';
import { DynamoDbPipelineStore } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { definitionKey } from '../../functions/adapters/dynamodb-table.ts';
import { syncPipelineManifests } from '../../functions/core/pipeline-sync.ts';
import type { Clock } from '../../functions/core/ports.ts';
import { createTestTable, useMotoDynamoDb } from '../support/aws-test-resources.ts';
import { FIXTURES, readFixture } from '../support/fixtures.ts';

/** The sync of every shared pipeline fixture into the DynamoDB adapter, on moto. */
const FIXTURE_FILES = readdirSync(`${FIXTURES}pipelines/`)
  .filter((file) => /\.(ya?ml|json)$/.test(file))
  .sort();
const allFixtures = (except: string[] = []): string =>
  FIXTURE_FILES.filter((file) => !except.includes(file))
    .map((file) => readFixture(`pipelines/${file}`))
    .join('\n---\n');
const VALID_IDS = ['flux-system/apps', 'flux-system/podinfo', 'shopping/search'];

class ManualClock implements Clock {
  time = Date.parse('2026-11-20T16:00:00Z');
  now(): Date {
    return new Date(this.time);
  }
}

describe('pipeline sync on the DynamoDB adapter (moto)', () => {
  const moto = useMotoDynamoDb();

  const freshStore = async (clock: Clock = new ManualClock()) => {
    const tableName = await createTestTable(moto.client, 'pipeline-sync');
    return { tableName, store: new DynamoDbPipelineStore(moto.documents, tableName, { clock }) };
  };

  const updatedAt = async (tableName: string, name: string): Promise<string | undefined> => {
    const response = await moto.client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: {
          pk: { S: definitionKey({ namespace: 'flux-system', name }).pk },
          sk: { S: 'DEFINITION' },
        },
        ConsistentRead: true,
      }),
    );
    return response.Item?.updatedAt?.S;
  };

  it('every fixture: the invalid one reported, the others stored as parsed', async () => {
    // Prepare
    const { store } = await freshStore();
    expect(FIXTURE_FILES).toEqual([
      'invalid-no-hmac.yaml',
      'list-from-kubectl.yaml',
      'podinfo.yaml',
      'search-rfc-draft.yaml',
    ]);

    // Act
    const result = await syncPipelineManifests(store, allFixtures());

    // Assess
    expect(result.counts).toEqual({ created: 3, updated: 0, unchanged: 0, deleted: 0, invalid: 1 });
    expect(result.created).toEqual(VALID_IDS);
    expect(result.invalid).toHaveLength(1);
    expect(result.invalid[0]?.id).toBe('flux-system/nohmac');
    expect(result.invalid[0]?.errors.join('\n')).toMatch(
      /spec\.promotion\.strategy\.secretRef: expected the secret holding the webhook HMAC key/,
    );
    expect(
      (await store.list()).map((pipeline) => `${pipeline.namespace}/${pipeline.name}`),
    ).toEqual(VALID_IDS);
    expect(await store.get({ namespace: 'shopping', name: 'search' })).toMatchObject({
      hmacSecret: 'my-hmac-shared-secret',
      environments: [{ name: 'dev' }, { name: 'prod' }],
    });
  });

  it('a second identical sync reports everything unchanged and rewrites nothing', async () => {
    // Prepare
    const clock = new ManualClock();
    const { tableName, store } = await freshStore(clock);
    await syncPipelineManifests(store, allFixtures());
    const before = await updatedAt(tableName, 'podinfo');
    clock.time += 60_000;

    // Act
    const result = await syncPipelineManifests(store, allFixtures());

    // Assess
    expect(result.counts).toEqual({ created: 0, updated: 0, unchanged: 3, deleted: 0, invalid: 1 });
    expect(result.unchanged).toEqual(VALID_IDS);
    expect(await updatedAt(tableName, 'podinfo')).toBe(before);
  });

  it('a changed definition is updated, with a new updatedAt', async () => {
    // Prepare
    const clock = new ManualClock();
    const { tableName, store } = await freshStore(clock);
    await syncPipelineManifests(store, allFixtures());
    clock.time += 60_000;
    const changed = allFixtures().replace(
      'github.example.com/platform/fleet',
      'github.example.com/platform/fleet-v2',
    );

    // Act
    const result = await syncPipelineManifests(store, changed);

    // Assess
    expect(result.counts).toMatchObject({ updated: 1, unchanged: 2 });
    expect(result.updated).toEqual(['flux-system/apps']);
    expect(await updatedAt(tableName, 'apps')).toBe('2026-11-20T16:01:00.000Z');
    expect(await updatedAt(tableName, 'podinfo')).toBe('2026-11-20T16:00:00.000Z');
  });

  it('prune deletes the stored pipelines absent from the input', async () => {
    // Prepare
    const { store } = await freshStore();
    await syncPipelineManifests(store, allFixtures());

    // Act
    const result = await syncPipelineManifests(
      store,
      allFixtures(['search-rfc-draft.yaml', 'list-from-kubectl.yaml']),
      { prune: true },
    );

    // Assess
    expect(result.counts).toEqual({ created: 0, updated: 0, unchanged: 1, deleted: 2, invalid: 1 });
    expect(result.deleted).toEqual(['flux-system/apps', 'shopping/search']);
    expect(result.prune).toEqual({ requested: true, performed: true, kept: [] });
    expect((await store.list()).map((pipeline) => pipeline.name)).toEqual(['podinfo']);
    expect(await store.get({ namespace: 'shopping', name: 'search' })).toBeUndefined();
  });

  it('prune keeps a pipeline invalid in the input, and skips when an invalid item names none', async () => {
    // Prepare
    const { store } = await freshStore();
    await syncPipelineManifests(store, allFixtures());
    const podinfoBroken = allFixtures(['search-rfc-draft.yaml']).replace(
      'namespace: podinfo-dev',
      'namespace: ""',
    );
    const unreadable = `${allFixtures(['search-rfc-draft.yaml'])}\n---\n{ "kind": "Pipeline", "metadata": `;

    // Act
    const kept = await syncPipelineManifests(store, podinfoBroken, { prune: true });
    const skipped = await syncPipelineManifests(store, unreadable, { prune: true });

    // Assess
    expect(kept.invalid.map((entry) => entry.id)).toEqual([
      'flux-system/nohmac',
      'flux-system/podinfo',
    ]);
    expect(kept.prune).toEqual({ requested: true, performed: true, kept: ['flux-system/podinfo'] });
    expect(kept.deleted).toEqual(['shopping/search']);
    expect(skipped.prune).toMatchObject({
      performed: false,
      reason: expect.stringContaining('name no pipeline'),
    });
    expect(skipped.deleted).toEqual([]);
    expect((await store.list()).map((pipeline) => pipeline.name)).toEqual(['apps', 'podinfo']);
  });

  it('what the webhook and the worker read (through the cache): synced, then pruned after the TTL', async () => {
    // Prepare
    const clock = new ManualClock();
    const { store } = await freshStore(clock);
    const served = new CachedPipelineStore(store, { clock, ttlMs: 30_000 });
    const search = { namespace: 'shopping', name: 'search' };
    const before = await served.get(search);
    clock.time += 5_000;

    // Act
    await syncPipelineManifests(store, allFixtures());
    const synced = await served.get(search);
    await syncPipelineManifests(store, allFixtures(['search-rfc-draft.yaml']), { prune: true });
    const cached = await served.get(search);
    clock.time += 30_000;
    const pruned = await served.get(search);

    // Assess
    expect(before).toBeUndefined();
    expect(synced).toMatchObject({ ...search, app: { name: 'search' } });
    expect(cached).toEqual(synced);
    expect(pruned).toBeUndefined();
  });
});
