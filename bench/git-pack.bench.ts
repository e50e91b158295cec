import * as fs from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { ObjectStore } from '../functions/adapters/git/object-store.ts';
import { indexPack, writeIndex } from '../functions/adapters/git/pack.ts';
import { createBareRepository, runGit } from '../test/support/bare-repositories.ts';
import { fleetFiles } from './support/fleet-repository.ts';

/**
 * The adapter's own pack code against isomorphic-git's, on the pack a git server sends for a
 * depth-1 fetch of a 6,000-file fleet repository (`git pack-objects --revs --delta-base-offset`
 * over a repacked repository, so with deltas):
 *
 * - indexing: ours (`indexPack`, every object inflated, resolved and hashed, plus `writeIndex`)
 *   against `git.indexPack` (which writes the `.idx` next to the pack);
 * - reading every blob: ours (`ObjectStore.read` by oid from the pack in memory) against
 *   `git.readObject` with a shared `cache` (its fastest way), both from a cold start.
 *
 * These are the figures that justify writing the pack code rather than using isomorphic-git's
 * (functions/adapters/git/README.md, "Why not isomorphic-git"). Medians of a few runs, the two
 * sides alternated. Exits 1 when ours is not at most half of isomorphic-git's time.
 */

const APPS = 500;
const RUNS = 3;
const TARGET_RATIO = 0.5;

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

const timed = async (work: () => Promise<unknown> | unknown): Promise<number> => {
  const started = performance.now();
  await work();
  return performance.now() - started;
};

/** Ours: index the pack, then read every blob from a fresh object store. */
const ours = async (pack: Buffer): Promise<{ indexMs: number; readMs: number; blobs: number }> => {
  const blobs: string[] = [];
  let offsets: [string, number][] = [];
  const indexMs = await timed(() => {
    const indexed = indexPack(
      pack,
      () => undefined,
      (oid, object) => {
        if (object.type === 'blob') blobs.push(oid);
      },
    );
    writeIndex(indexed.objects, pack.toString('hex', pack.length - 20));
    offsets = indexed.objects.map((object) => [object.oid, object.offset]);
  });
  const store = new ObjectStore();
  store.add({ name: pack.toString('hex', pack.length - 20), data: pack }, offsets);
  let bytes = 0;
  const readMs = await timed(() => {
    for (const oid of blobs) bytes += store.read(oid)?.content.length ?? 0;
  });
  if (bytes === 0) throw new Error('ours read no blob bytes');
  return { indexMs, readMs, blobs: blobs.length };
};

/** isomorphic-git: index the pack in a fresh git directory, then read every blob. */
const theirs = async (
  pack: Buffer,
  scratch: string,
): Promise<{ indexMs: number; readMs: number; blobs: number }> => {
  const gitdir = await mkdtemp(join(scratch, 'isomorphic-git-'));
  await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
  const name = `pack-${pack.toString('hex', pack.length - 20)}`;
  await mkdir(join(gitdir, 'objects', 'pack'), { recursive: true });
  await writeFile(join(gitdir, 'objects', 'pack', `${name}.pack`), pack);
  let oids: string[] = [];
  const indexMs = await timed(async () => {
    ({ oids } = await git.indexPack({
      fs,
      dir: gitdir,
      gitdir,
      filepath: join('objects', 'pack', `${name}.pack`),
    }));
  });
  const cache = {};
  const blobs: string[] = [];
  let bytes = 0;
  const readMs = await timed(async () => {
    for (const oid of oids) {
      const object = await git.readObject({ fs, gitdir, oid, format: 'content', cache });
      if (object.type !== 'blob') continue;
      blobs.push(oid);
      bytes += (object.object as Uint8Array).length;
    }
  });
  await rm(gitdir, { recursive: true, force: true });
  if (bytes === 0) throw new Error('isomorphic-git read no blob bytes');
  return { indexMs, readMs, blobs: blobs.length };
};

const main = async (): Promise<void> => {
  const scratch = await mkdtemp(join(tmpdir(), 'bench-git-pack-'));
  try {
    const repository = join(scratch, 'fleet.git');
    const files = fleetFiles(APPS);
    await createBareRepository(repository, files, { repack: true });
    const packed = await runGit(
      repository,
      ['pack-objects', '--revs', '--stdout', '--delta-base-offset', '-q'],
      'refs/heads/main\n',
    );
    if (packed.code !== 0) throw new Error(`git pack-objects: ${packed.stderr}`);
    const pack = packed.stdout;
    console.log(
      `${Object.keys(files).length.toLocaleString('en')} files, a pack of ${(pack.length / 1024).toFixed(0)} KiB`,
    );

    const mine = { index: [] as number[], read: [] as number[] };
    const other = { index: [] as number[], read: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      const a = await ours(pack);
      const b = await theirs(pack, scratch);
      if (a.blobs !== b.blobs) throw new Error(`blobs read: ours ${a.blobs}, theirs ${b.blobs}`);
      mine.index.push(a.indexMs);
      mine.read.push(a.readMs);
      other.index.push(b.indexMs);
      other.read.push(b.readMs);
    }
    const list = (values: readonly number[]): string => values.map((ms) => ms.toFixed(0)).join('/');
    console.log(`  index: ours ${list(mine.index)} ms, isomorphic-git ${list(other.index)} ms`);
    console.log(`  read: ours ${list(mine.read)} ms, isomorphic-git ${list(other.read)} ms`);
    const rows = [
      { figure: 'index the pack', ours: median(mine.index), baseline: median(other.index) },
      {
        figure: `read all ${Object.keys(files).length.toLocaleString('en')} blobs`,
        ours: median(mine.read),
        baseline: median(other.read),
      },
    ];
    console.log('');
    console.log('| figure | ours | isomorphic-git | ratio | target | met |');
    console.log('|---|---:|---:|---:|---|---|');
    let missed = false;
    for (const row of rows) {
      const ratio = row.ours / row.baseline;
      const met = ratio <= TARGET_RATIO;
      missed ||= !met;
      console.log(
        `| ${row.figure} | ${row.ours.toFixed(0)} ms | ${row.baseline.toFixed(0)} ms | ${ratio.toFixed(2)}x | ≤ ${TARGET_RATIO}x | ${met ? 'yes' : 'NO'} |`,
      );
    }
    if (missed) process.exitCode = 1;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
};

await main();
