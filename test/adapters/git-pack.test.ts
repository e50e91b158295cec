import { describe, expect, it } from 'vitest';
import { LimitError } from '../../functions/adapters/git/errors.ts';
import {
  DEFAULT_PACK_LIMITS,
  type GitObject,
  indexPack,
} from '../../functions/adapters/git/pack.ts';
import { createPackParser } from '../../functions/adapters/git/pack-parser.ts';
import {
  appendDelta,
  delta,
  objectId,
  type PackEntry,
  writeTestPack,
} from '../support/pack-writer.ts';

/** A chain of `length` deltas on `base`, each appending a byte: the entries and the objects. */
const chain = (base: Buffer, length: number): { objects: Buffer[]; deltas: Buffer[] } => {
  const objects = [base];
  const deltas: Buffer[] = [];
  for (let i = 0; i < length; i++) {
    const step = appendDelta(objects[objects.length - 1] as Buffer, Buffer.from([65 + (i % 26)]));
    objects.push(step.result);
    deltas.push(step.delta);
  }
  return { objects, deltas };
};

const limitOf = (run: () => unknown): LimitError => {
  try {
    run();
  } catch (error) {
    if (error instanceof LimitError) return error;
    throw error;
  }
  throw new Error('expected a LimitError');
};

const noBases = (): GitObject | undefined => undefined;

describe('indexPack', () => {
  it('resolves a chain as deep as the default limit, each object once', () => {
    // Prepare
    const { objects, deltas } = chain(
      Buffer.from('replicas: 1\n'),
      DEFAULT_PACK_LIMITS.maxDeltaDepth,
    );
    const pack = writeTestPack([
      { kind: 'whole', type: 'blob', content: objects[0] as Buffer },
      ...deltas.map((data): PackEntry => ({ kind: 'ofs-delta', back: 1, delta: data })),
    ]);
    const seen = new Map<string, Buffer>();

    // Act
    const indexed = indexPack(pack, noBases, (oid, object) => seen.set(oid, object.content));

    // Assess
    expect(indexed.deltasApplied).toBe(DEFAULT_PACK_LIMITS.maxDeltaDepth);
    expect(indexed.objects.map((object) => object.oid)).toEqual(
      objects.map((content) => objectId('blob', content)),
    );
    expect(seen.get(objectId('blob', objects.at(-1) as Buffer))).toEqual(objects.at(-1));
  });

  it('applies each delta once along a chain of objects too large for the base cache', () => {
    // Prepare: 9 MiB objects are past what the cache of recent objects keeps (8 MiB); a chain
    // of them was resolved again from its start for every step.
    const { objects, deltas } = chain(Buffer.alloc(9 * 1024 * 1024, 'a'), 20);
    const pack = writeTestPack([
      { kind: 'whole', type: 'blob', content: objects[0] as Buffer },
      ...deltas.map((data): PackEntry => ({ kind: 'ofs-delta', back: 1, delta: data })),
    ]);

    // Act
    const indexed = indexPack(pack, noBases, () => undefined, {
      ...DEFAULT_PACK_LIMITS,
      maxDeltaDepth: 100,
    });

    // Assess
    expect(indexed.deltasApplied).toBe(20);
    expect(indexed.objects.at(-1)?.oid).toBe(objectId('blob', objects.at(-1) as Buffer));
  });

  it('resolves ref-deltas that come before their bases once each, from the base down', () => {
    // Prepare: the chain in reverse, the whole object last.
    const { objects, deltas } = chain(Buffer.from('image: podinfo:6.4.0\n'), 30);
    const entries: PackEntry[] = deltas
      .map(
        (data, i): PackEntry => ({
          kind: 'ref-delta',
          base: objectId('blob', objects[i] as Buffer),
          delta: data,
        }),
      )
      .reverse();
    entries.push({ kind: 'whole', type: 'blob', content: objects[0] as Buffer });

    // Act
    const indexed = indexPack(writeTestPack(entries), noBases, () => undefined);

    // Assess
    expect(indexed.deltasApplied).toBe(30);
    expect(new Set(indexed.objects.map((object) => object.oid))).toEqual(
      new Set(objects.map((content) => objectId('blob', content))),
    );
  });

  it('makes a thin pack whole with the bases the receiver holds', () => {
    // Prepare
    const base = Buffer.from('version: 6.4.0\n');
    const step = appendDelta(base, Buffer.from('# promoted\n'));
    const baseOid = objectId('blob', base);
    const pack = writeTestPack([{ kind: 'ref-delta', base: baseOid, delta: step.delta }]);
    const asked: string[] = [];

    // Act
    const indexed = indexPack(
      pack,
      (oid) => {
        asked.push(oid);
        return oid === baseOid ? { type: 'blob', content: base } : undefined;
      },
      () => undefined,
    );

    // Assess
    expect(asked).toEqual([baseOid]);
    expect(indexed.data.readUInt32BE(8)).toBe(2);
    expect(indexed.objects.map((object) => object.oid).sort()).toEqual(
      [baseOid, objectId('blob', step.result)].sort(),
    );
  });

  it('refuses a chain one deeper than the limit, in pack order or reversed', () => {
    // Prepare
    const { objects, deltas } = chain(Buffer.from('a: 1\n'), DEFAULT_PACK_LIMITS.maxDeltaDepth + 1);
    const forward = writeTestPack([
      { kind: 'whole', type: 'blob', content: objects[0] as Buffer },
      ...deltas.map((data): PackEntry => ({ kind: 'ofs-delta', back: 1, delta: data })),
    ]);
    const reversed = writeTestPack([
      ...deltas
        .map(
          (data, i): PackEntry => ({
            kind: 'ref-delta',
            base: objectId('blob', objects[i] as Buffer),
            delta: data,
          }),
        )
        .reverse(),
      { kind: 'whole', type: 'blob', content: objects[0] as Buffer },
    ]);

    // Act
    const errors = [forward, reversed].map((pack) =>
      limitOf(() => indexPack(pack, noBases, () => undefined)),
    );

    // Assess
    for (const error of errors) {
      expect(error.limit).toBe('maxDeltaDepth');
      expect(error.detail).toMatch(/deeper than 50/);
    }
  });

  it('refuses an entry that inflates past the object limit, from a few KB', () => {
    // Prepare
    const pack = writeTestPack([
      { kind: 'whole', type: 'blob', content: Buffer.alloc(4 * 1024 * 1024) },
    ]);

    // Act
    const error = limitOf(() =>
      indexPack(pack, noBases, () => undefined, {
        ...DEFAULT_PACK_LIMITS,
        maxObjectBytes: 1024 * 1024,
      }),
    );

    // Assess
    expect(pack.length).toBeLessThan(16 * 1024);
    expect(error.limit).toBe('maxObjectBytes');
    expect(error.detail).toMatch(/4 MiB, over the 1 MiB limit/);
  });

  it('refuses a delta whose result passes the object limit before making it', () => {
    // Prepare: 1 KiB copied 4,096 times would make 4 MiB.
    const base = Buffer.alloc(1024, 'x');
    const ops = Array.from({ length: 4096 }, () => ({ copy: 0, length: 1024 }));
    const pack = writeTestPack([
      { kind: 'whole', type: 'blob', content: base },
      { kind: 'ofs-delta', back: 1, delta: delta(1024, 4 * 1024 * 1024, ops) },
    ]);

    // Act
    const error = limitOf(() =>
      indexPack(pack, noBases, () => undefined, {
        ...DEFAULT_PACK_LIMITS,
        maxObjectBytes: 1024 * 1024,
      }),
    );

    // Assess
    expect(error.limit).toBe('maxObjectBytes');
    expect(error.detail).toMatch(/delta that makes an object of 4 MiB/);
  });

  it('refuses deltas that would hold more bases at once than four times the object limit', () => {
    // Prepare: every object has two deltas on it, the one that goes on first, so that each base
    // waits for its second child while the chain below it is walked.
    const limit = 1024 * 1024;
    let base: Buffer = Buffer.alloc(900 * 1024, 'b');
    const root = base;
    const entries: PackEntry[] = [];
    for (let level = 0; level < 8; level++) {
      const onward = appendDelta(base, Buffer.from(`onward ${level}\n`));
      const leaf = appendDelta(base, Buffer.from(`leaf ${level}\n`));
      const baseOid = objectId('blob', base);
      entries.push({ kind: 'ref-delta', base: baseOid, delta: onward.delta });
      entries.push({ kind: 'ref-delta', base: baseOid, delta: leaf.delta });
      base = onward.result;
    }
    entries.push({ kind: 'whole', type: 'blob', content: root });

    // Act
    const error = limitOf(() =>
      indexPack(writeTestPack(entries), noBases, () => undefined, {
        ...DEFAULT_PACK_LIMITS,
        maxObjectBytes: limit,
      }),
    );

    // Assess
    expect(error.limit).toBe('maxObjectBytes');
    expect(error.detail).toMatch(/over 4 MiB of delta bases/);
  });

  it('refuses work past the deadline', () => {
    // Prepare
    const pack = writeTestPack([{ kind: 'whole', type: 'blob', content: Buffer.from('a') }]);

    // Act
    const error = limitOf(() =>
      indexPack(pack, noBases, () => undefined, { ...DEFAULT_PACK_LIMITS, deadline: 0 }),
    );

    // Assess
    expect(error.limit).toBe('promotionTimeout');
  });
});

describe('the worker-thread pack parser', () => {
  it('gives what the inline parser gives, a thin pack base asked of this thread', async () => {
    // Prepare
    const tree = Buffer.concat([
      Buffer.from('100644 values.yaml\0'),
      Buffer.from(objectId('blob', Buffer.from('version: 6.4.0\n')), 'hex'),
    ]);
    const base = Buffer.from('version: 6.4.0 # {"$promotion": "flux-system:podinfo:prod"}\n');
    const step = appendDelta(base, Buffer.from('other: 1\n'));
    const entries: PackEntry[] = [
      { kind: 'whole', type: 'tree', content: tree },
      { kind: 'whole', type: 'blob', content: Buffer.from('no marker here\n') },
      { kind: 'ref-delta', base: objectId('blob', base), delta: step.delta },
    ];
    const held = (oid: string): GitObject | undefined =>
      oid === objectId('blob', base) ? { type: 'blob', content: base } : undefined;
    const inline = createPackParser('inline');
    const threaded = createPackParser('worker-thread');
    const request = { needle: '$promotion', limits: DEFAULT_PACK_LIMITS };

    // Act
    const expected = await inline.parse({ ...request, pack: writeTestPack(entries) }, held);
    const parsed = await threaded.parse({ ...request, pack: writeTestPack(entries) }, held);
    await threaded.close();

    // Assess
    expect(parsed.objects).toEqual(expected.objects);
    expect(parsed.data.equals(expected.data)).toBe(true);
    expect(parsed.trees).toEqual([[objectId('tree', tree), tree]]);
    expect(parsed.hits).toEqual([[objectId('blob', step.result), step.result]]);
    expect(parsed.misses).toEqual([objectId('blob', Buffer.from('no marker here\n'))]);
    expect(threaded.running).toBe(0);
  });

  it('refuses a hostile pack with the same limit, and parses the next one', async () => {
    // Prepare
    const parser = createPackParser('worker-thread', { maxThreads: 1 });
    const limits = { ...DEFAULT_PACK_LIMITS, maxObjectBytes: 1024 * 1024 };
    const bomb = writeTestPack([
      { kind: 'whole', type: 'blob', content: Buffer.alloc(8 * 1024 * 1024) },
    ]);
    const fine = writeTestPack([{ kind: 'whole', type: 'blob', content: Buffer.from('ok\n') }]);

    // Act
    const refused = await parser.parse({ pack: bomb, needle: 'x', limits }, noBases).then(
      () => undefined,
      (error: unknown) => error,
    );
    const next = await parser.parse({ pack: fine, needle: 'x', limits }, noBases);
    await parser.close();

    // Assess
    expect(refused).toBeInstanceOf(LimitError);
    expect((refused as LimitError).limit).toBe('maxObjectBytes');
    expect(next.misses).toEqual([objectId('blob', Buffer.from('ok\n'))]);
  });
});
