import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CachedPipelineStore,
  DEFAULT_PIPELINE_CACHE_TTL_MS,
} from '../../functions/adapters/cached-pipeline-store.ts';
import { FilePipelineStore } from '../../functions/adapters/file-pipeline-store.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { type Pipeline, type PipelineRef, pipelineId } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { Clock, PipelineStore } from '../../functions/core/ports.ts';
import { readFixture } from '../support/fixtures.ts';
import { describePipelineStoreContract } from './pipeline-store.contract.ts';

const [podinfo] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines as [
  Pipeline,
];
const PODINFO = { namespace: 'flux-system', name: 'podinfo' };
const UNKNOWN = { namespace: 'flux-system', name: 'unknown' };

class ManualClock implements Clock {
  time = Date.parse('2026-11-20T16:00:00Z');
  now(): Date {
    return new Date(this.time);
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

/** A store that counts reads, with a settable content and failure. */
class CountingStore implements PipelineStore {
  reads = 0;
  failing = false;
  readonly pipelines = new Map<string, Pipeline>([[pipelineId(podinfo), podinfo]]);
  release: (() => void) | undefined;
  gate: Promise<void> | undefined;

  async get(ref: PipelineRef): Promise<Pipeline | undefined> {
    this.reads += 1;
    if (this.gate !== undefined) await this.gate;
    if (this.failing) throw new PromoterError('STORE_UNAVAILABLE', 'down', { retryable: true });
    return this.pipelines.get(pipelineId(ref));
  }
}

const setup = (options: { ttlMs?: number; notFoundTtlMs?: number; maxEntries?: number } = {}) => {
  const clock = new ManualClock();
  const inner = new CountingStore();
  const store = new CachedPipelineStore(inner, { clock, ...options });
  return { clock, inner, store };
};

describePipelineStoreContract('CachedPipelineStore', async (manifests) => {
  const file = join(await mkdtemp(join(tmpdir(), 'cached-pipeline-store-')), 'pipelines.yaml');
  await writeFile(file, manifests);
  const inner = await FilePipelineStore.load(file, silentLogger);
  const clock = new ManualClock();
  return {
    store: new CachedPipelineStore(inner, { clock }),
    // Its owner never tells it: a changed definition is read once the TTL has passed.
    replace: async (next) => {
      await writeFile(file, next);
      await inner.reload();
      clock.advance(DEFAULT_PIPELINE_CACHE_TTL_MS);
    },
  };
});

describe('CachedPipelineStore', () => {
  it('serves a found pipeline from memory for 30 s by default, then reads again', async () => {
    // Prepare
    const { clock, inner, store } = setup();

    // Act
    const first = await store.get(PODINFO);
    clock.advance(29_999);
    const cached = await store.get(PODINFO);
    const changed = { ...podinfo, hmacSecret: 'rotated' };
    inner.pipelines.set(pipelineId(podinfo), changed);
    clock.advance(1);
    const reread = await store.get(PODINFO);

    // Assess
    expect(first).toEqual(podinfo);
    expect(cached).toBe(first);
    expect(reread).toEqual(changed);
    expect(inner.reads).toBe(2);
  });

  it('remembers "not found" briefly (5 s by default), so a newly synced pipeline is found soon', async () => {
    // Prepare
    const { clock, inner, store } = setup();

    // Act
    const missing = await store.get(UNKNOWN);
    await store.get(UNKNOWN);
    inner.pipelines.set(pipelineId(UNKNOWN), { ...podinfo, ...UNKNOWN });
    clock.advance(4_999);
    const stillMissing = await store.get(UNKNOWN);
    clock.advance(1);
    const found = await store.get(UNKNOWN);

    // Assess
    expect(missing).toBeUndefined();
    expect(stillMissing).toBeUndefined();
    expect(found).toMatchObject(UNKNOWN);
    expect(inner.reads).toBe(2);
  });

  it('does not cache failures', async () => {
    // Prepare
    const { inner, store } = setup();
    inner.failing = true;

    // Act
    const failed = store.get(PODINFO);
    await expect(failed).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    inner.failing = false;
    const recovered = await store.get(PODINFO);

    // Assess
    expect(recovered).toEqual(podinfo);
    expect(inner.reads).toBe(2);
  });

  it('concurrent gets of one pipeline share one read', async () => {
    // Prepare
    const { inner, store } = setup();
    inner.gate = new Promise((resolve) => {
      inner.release = resolve;
    });

    // Act
    const gets = Array.from({ length: 10 }, () => store.get(PODINFO));
    inner.release?.();
    const results = await Promise.all(gets);

    // Assess
    expect(results.every((result) => result === results[0])).toBe(true);
    expect(inner.reads).toBe(1);
  });

  it('ttlMs 0 turns the cache off; invalidate forgets', async () => {
    // Prepare
    const off = setup({ ttlMs: 0 });
    const on = setup();

    // Act
    await off.store.get(PODINFO);
    await off.store.get(UNKNOWN);
    await off.store.get(PODINFO);
    await on.store.get(PODINFO);
    on.store.invalidate(PODINFO);
    await on.store.get(PODINFO);

    // Assess
    expect(off.inner.reads).toBe(3);
    expect(on.inner.reads).toBe(2);
  });

  it('keeps at most maxEntries pipelines, the oldest leaving first', async () => {
    // Prepare
    const { inner, store } = setup({ maxEntries: 2 });
    const refs = ['a', 'b', 'c'].map((name) => ({ namespace: 'team', name }));

    // Act
    for (const ref of refs) await store.get(ref);
    await store.get(refs[2] as PipelineRef);
    await store.get(refs[1] as PipelineRef);
    await store.get(refs[0] as PipelineRef);

    // Assess
    expect(inner.reads).toBe(4);
  });
});
