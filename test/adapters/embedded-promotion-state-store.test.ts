import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  databaseFile,
  IN_MEMORY,
  openEmbeddedDatabase,
} from '../../functions/adapters/embedded/embedded-database.ts';
import { EmbeddedPromotionStateStore } from '../../functions/adapters/embedded/embedded-promotion-state-store.ts';
import { describeClaimBeforePushContract } from './claim-before-push.contract.ts';
import { describeDeliveryLogContract } from './delivery-log.contract.ts';
import { describePromotionStateStoreContract } from './promotion-state-store.contract.ts';

const makeStore = async () => new EmbeddedPromotionStateStore(openEmbeddedDatabase(IN_MEMORY));
describePromotionStateStoreContract('EmbeddedPromotionStateStore', makeStore);
describeClaimBeforePushContract('EmbeddedPromotionStateStore', makeStore);
describeDeliveryLogContract('EmbeddedPromotionStateStore', makeStore);

describe('EmbeddedPromotionStateStore on a database file', () => {
  it('keeps its records across a close and a reopen', async () => {
    // Prepare
    const file = databaseFile(await mkdtemp(join(tmpdir(), 'state-')));
    const first = openEmbeddedDatabase(file);
    const record = {
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      environment: 'staging',
      revision: '6.5.4',
      state: 'opened' as const,
      jobId: 'job-1',
      from: 'dev',
      eventTimestamp: '2026-11-02T10:00:00.000Z',
      updatedAt: '2026-11-02T10:00:05.000Z',
      pullRequest: { number: 7, url: 'https://github.com/example-org/fleet/pull/7' },
    };
    await new EmbeddedPromotionStateStore(first).putPromotion(record);
    first.close();

    // Act
    const reopened = new EmbeddedPromotionStateStore(openEmbeddedDatabase(file));
    const stored = await reopened.getPromotion(record.pipeline, 'staging');

    // Assess
    expect(stored).toEqual(record);
  });

  it('reports a stored row that does not decode as STORE_CORRUPT naming it', async () => {
    // Prepare
    const db = openEmbeddedDatabase(IN_MEMORY);
    db.prepare(
      "INSERT INTO promotions (pipeline, environment, event_time, record) VALUES ('flux-system/podinfo', 'staging', 0, ?)",
    ).run(JSON.stringify({ revision: 7 }));
    const store = new EmbeddedPromotionStateStore(db);

    // Act
    const read = store.getPromotion({ namespace: 'flux-system', name: 'podinfo' }, 'staging');

    // Assess
    await expect(read).rejects.toMatchObject({
      code: 'STORE_CORRUPT',
      message: expect.stringContaining('promotion of flux-system/podinfo into staging'),
    });
  });
});
