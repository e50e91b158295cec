import { createHash } from 'node:crypto';
import type * as nodeFs from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { ProtocolError, safeUrl } from './errors.ts';
import { ObjectStore } from './object-store.ts';
import {
  DEFAULT_PACK_LIMITS,
  type GitObject,
  type IndexedObject,
  type PackLimits,
  packIsWhole,
  readIndex,
  writeIndex,
} from './pack.ts';
import type { PackParser } from './pack-parser.ts';
import { Hit, parseTree, type SummaryItem, type Tree, type TreeSummary } from './tree.ts';

/**
 * What a process keeps about one repository between promotions: packs, heads, the depth-1
 * boundary, parsed trees and needle hits, in memory and in a per-repository directory (a bare
 * repository git and isomorphic-git can read); the process's caches (16 at most) and the lock
 * that runs one promotion per directory at a time. Kept so that a warm promotion fetches only
 * what is new; isomorphic-git's own fetch + readBlob path took 7.6 s at 6,000 files against
 * 0.5 s for a git CLI clone (README.md "Benchmarks").
 */

/** A repository's directory under `cacheDir`: one per clone URL, credentials left out. */
export const cacheDirectory = (cacheDir: string, cloneUrl: string): string => {
  const url = safeUrl(cloneUrl);
  const slug = url
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\.git\/?$/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(-60);
  const hash = createHash('sha256').update(url).digest('hex').slice(0, 12);
  return join(cacheDir, `${slug}-${hash}`);
};

/** Everything a process keeps about one repository between promotions. */
export class RepositoryCache {
  store = new ObjectStore();
  /** Commits held without their parents (the depth-1 boundary), as git's `shallow` file. */
  shallow: string[] = [];
  /** Heads fetched (complete trees), oldest first: what the next fetch says it has. */
  heads: string[] = [];
  readonly trees = new Map<string, Tree>();
  /** Blob oid → a Hit when its bytes hold `needle`, else null. */
  blobs = new Map<string, Hit | null>();
  private needle: string | undefined;
  /** Bumped when the needle changes: tree summaries of older generations are rebuilt. */
  private generation = 0;
  receiveCapabilities: Set<string> | undefined;
  private pendingWrites: Promise<void>[] = [];
  private loaded = false;
  /** False when the directory cannot be written: the cache then lives in memory only. */
  private writable = true;
  private writtenShallow = '';
  private limits: PackLimits = DEFAULT_PACK_LIMITS;

  constructor(
    readonly directory: string,
    readonly fs: typeof nodeFs,
  ) {}

  /** The limits the packs are read under (the adapter's; DEFAULT_PACK_LIMITS until told). */
  useLimits(limits: PackLimits): void {
    this.limits = limits;
    this.store.limits = limits;
  }

  useNeedle(needle: string): void {
    if (this.needle === needle) return;
    this.needle = needle;
    this.blobs = new Map();
    this.generation += 1;
  }

  /** The tree `oid`, from memory or from the packs. */
  tree(oid: string): Tree {
    let tree = this.trees.get(oid);
    if (tree === undefined) {
      const object = this.store.read(oid);
      if (object === undefined || object.type !== 'tree') {
        throw new ProtocolError(`tree ${oid} is missing from the cache`);
      }
      tree = { oid, raw: object.content, entries: undefined, summary: undefined };
      this.trees.set(oid, tree);
    }
    return tree;
  }

  /** A Hit when the blob's bytes hold the needle, else null. */
  blob(oid: string): Hit | null {
    const known = this.blobs.get(oid);
    if (known !== undefined) return known;
    const object = this.store.read(oid);
    if (object === undefined) throw new ProtocolError(`blob ${oid} is missing from the cache`);
    const hit = object.content.includes(this.needle ?? '') ? new Hit(object.content) : null;
    this.blobs.set(oid, hit);
    return hit;
  }

  /** The tree's subtrees and needle hits (built once per tree and needle). */
  summary(tree: Tree): TreeSummary {
    if (tree.summary?.generation === this.generation) return tree.summary;
    tree.entries ??= parseTree(tree.raw);
    const items: SummaryItem[] = [];
    let blobs = 0;
    for (const entry of tree.entries) {
      if (entry.kind === 'tree') {
        items.push({ name: entry.name, tree: this.tree(entry.oid) });
      } else if (entry.kind === 'blob') {
        blobs += 1;
        const hit = this.blob(entry.oid);
        if (hit !== null) items.push({ name: entry.name, hit });
      }
    }
    tree.summary = { generation: this.generation, items, blobs };
    return tree.summary;
  }

  /** Keeps only the trees and blob verdicts that `rootTree` reaches. */
  prune(rootTree: string): void {
    const trees = new Map<string, Tree>();
    const blobs = new Map<string, Hit | null>();
    const walk = (tree: Tree): void => {
      if (trees.has(tree.oid)) return;
      trees.set(tree.oid, tree);
      for (const entry of tree.entries ?? parseTree(tree.raw)) {
        if (entry.kind === 'tree') walk(this.tree(entry.oid));
        else if (entry.kind === 'blob') {
          const known = this.blobs.get(entry.oid);
          if (known !== undefined) blobs.set(entry.oid, known);
        }
      }
    };
    walk(this.tree(rootTree));
    this.trees.clear();
    for (const [oid, tree] of trees) this.trees.set(oid, tree);
    this.blobs = blobs;
    this.store.clearCache();
  }

  /**
   * Takes in a received pack: has `parser` index it (within `limits`), keeps its trees and
   * needle hits, writes it to disk.
   */
  async addPack(received: Buffer, parser: PackParser, limits: PackLimits): Promise<void> {
    const held = (oid: string): GitObject | undefined => this.store.read(oid);
    const parsed = await parser.parse({ pack: received, needle: this.needle ?? '', limits }, held);
    for (const [oid, raw] of parsed.trees) {
      if (!this.trees.has(oid)) {
        this.trees.set(oid, { oid, raw, entries: undefined, summary: undefined });
      }
    }
    for (const [oid, bytes] of parsed.hits) this.blobs.set(oid, new Hit(bytes));
    for (const oid of parsed.misses) this.blobs.set(oid, null);
    const { data, objects } = parsed;
    const name = data.toString('hex', data.length - 20);
    this.store.add(
      { name, data },
      objects.map((object) => [object.oid, object.offset] as const),
    );
    this.pendingWrites.push(this.writePack(name, data, objects));
  }

  private async writePack(name: string, data: Buffer, objects: IndexedObject[]): Promise<void> {
    if (!this.writable) return;
    const packDirectory = join(this.directory, 'objects', 'pack');
    const base = join(packDirectory, `pack-${name}`);
    try {
      await this.fs.promises.mkdir(packDirectory, { recursive: true });
      const suffix = `tmp-${process.pid}`;
      await this.fs.promises.writeFile(`${base}.pack.${suffix}`, data);
      await this.fs.promises.rename(`${base}.pack.${suffix}`, `${base}.pack`);
      await this.fs.promises.writeFile(`${base}.idx.${suffix}`, writeIndex(objects, name));
      await this.fs.promises.rename(`${base}.idx.${suffix}`, `${base}.idx`);
    } catch {
      // The cache is an optimisation: a pack that could not be written is fetched again.
    }
  }

  /** Records the heads held (the `shallow` file) and the base branch's remote ref. */
  writeRefs(baseBranch: string, head: string): void {
    if (!this.writable) return;
    const directory = this.directory;
    const shallow = `${this.shallow.join('\n')}\n`;
    const files: Record<string, string> = {
      // Not a git file: the heads a later process names as `have`.
      'promoter-heads': `${this.heads.join('\n')}\n`,
    };
    if (shallow !== this.writtenShallow) files.shallow = shallow;
    this.writtenShallow = shallow;
    this.pendingWrites.push(
      (async () => {
        try {
          for (const [file, text] of Object.entries(files)) {
            const temporary = join(directory, `${file}.tmp-${process.pid}`);
            await this.fs.promises.writeFile(temporary, text);
            await this.fs.promises.rename(temporary, join(directory, file));
          }
          await git.writeRef({
            fs: this.fs,
            gitdir: directory,
            ref: `refs/remotes/origin/${baseBranch}`,
            value: head,
            force: true,
          });
        } catch {
          // As above: the next process fetches what it cannot find.
        }
      })(),
    );
  }

  async flush(): Promise<void> {
    const writes = this.pendingWrites;
    this.pendingWrites = [];
    await Promise.all(writes);
  }

  /** Loads what an earlier process left in the directory (or starts an empty repository). */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const fs = this.fs.promises;
    try {
      await git.init({ fs: this.fs, dir: this.directory, bare: true, defaultBranch: 'main' });
    } catch {
      this.writable = false;
      return;
    }
    try {
      const packDirectory = join(this.directory, 'objects', 'pack');
      const names = (await fs.readdir(packDirectory).catch(() => [] as string[]))
        .filter((file) => file.endsWith('.idx'))
        .map((file) => file.slice(0, -4));
      for (const name of names) {
        const [idx, data] = await Promise.all([
          fs.readFile(join(packDirectory, `${name}.idx`)),
          fs.readFile(join(packDirectory, `${name}.pack`)),
        ]);
        const checksum = name.replace(/^pack-/, '');
        if (!packIsWhole(data, checksum)) throw new ProtocolError(`damaged cached ${name}`);
        this.store.add({ name: checksum, data }, readIndex(idx));
      }
      const shallow = await fs.readFile(join(this.directory, 'shallow'), 'utf8').catch(() => '');
      const held = (text: string): string[] =>
        text.split('\n').filter((oid) => /^[0-9a-f]{40}$/.test(oid) && this.store.has(oid));
      this.shallow = held(shallow);
      this.writtenShallow = `${this.shallow.join('\n')}\n`;
      const heads = join(this.directory, 'promoter-heads');
      this.heads = held(await fs.readFile(heads, 'utf8').catch(() => shallow));
    } catch {
      await this.reset();
    }
  }

  /** Forgets everything, in memory and on disk. */
  async reset(): Promise<void> {
    await this.flush();
    this.store = new ObjectStore();
    this.store.limits = this.limits;
    this.shallow = [];
    this.heads = [];
    this.writtenShallow = '';
    this.trees.clear();
    this.blobs = new Map();
    this.generation += 1;
    if (!this.writable) return;
    const { rm } = this.fs.promises;
    await rm(join(this.directory, 'objects', 'pack'), { recursive: true, force: true });
    await rm(join(this.directory, 'shallow'), { force: true });
    await rm(join(this.directory, 'promoter-heads'), { force: true });
  }
}

/** One promotion at a time per cache directory in this process. */
const locks = new Map<string, Promise<void>>();
/** The caches of this process, by directory, least recently used first. */
const caches = new Map<string, RepositoryCache>();
/** Repositories kept in memory; the least recently used beyond it keep their directory only. */
const MAX_CACHED_REPOSITORIES = 16;

/** The cache of `directory`, made most recently used (created, and the least used dropped). */
export const cacheFor = (directory: string, fs: typeof nodeFs): RepositoryCache => {
  let cache = caches.get(directory);
  if (cache !== undefined) {
    caches.delete(directory);
  } else {
    cache = new RepositoryCache(directory, fs);
    for (const key of caches.keys()) {
      if (caches.size < MAX_CACHED_REPOSITORIES) break;
      if (!locks.has(key)) caches.delete(key);
    }
  }
  caches.set(directory, cache);
  return cache;
};

/** Runs `task` once the tasks queued before it under `key` have ended. */
export const withLock = async <T>(key: string, task: () => Promise<T>): Promise<T> => {
  const previous = locks.get(key) ?? Promise.resolve();
  let release = (): void => undefined;
  const current = new Promise<void>((resolve) => {
    release = resolve;
  });
  const chained = previous.then(() => current);
  locks.set(key, chained);
  await previous;
  try {
    return await task();
  } finally {
    release();
    if (locks.get(key) === chained) locks.delete(key);
  }
};
