import { createHash, randomBytes } from 'node:crypto';
import type * as nodeFs from 'node:fs';
import { join } from 'node:path';
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
import type { PackRequest, UploadAnswer } from './smart-http.ts';
import { Hit, parseTree, type SummaryItem, type Tree, type TreeSummary } from './tree.ts';

/*
 * What a process keeps about the repositories it promotes in: per repository, packs, heads, the
 * depth-1 boundary, parsed trees and needle hits, in memory and (optionally) in a directory that
 * is a bare git repository (`git fsck` and `git cat-file` read it); and the caches of one adapter
 * instance with the lock that runs one promotion per repository at a time. Kept so that a warm
 * promotion fetches only what is new (functions/adapters/git/README.md, "The cache").
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

/** How a fetch of a head is asked: see `RepositoryCache.packRequest`. */
export type FetchMode = 'incremental' | 'depth-1' | 'fresh';

/** Everything a process keeps about one repository between promotions. */
export class RepositoryCache {
  private objects = new ObjectStore();
  /** Commits held without their parents (the depth-1 boundary), as git's `shallow` file. */
  private shallowCommits: string[] = [];
  /** Heads fetched (complete trees), oldest first: what the next fetch says it has. */
  private fetchedHeads: string[] = [];
  private readonly trees = new Map<string, Tree>();
  /** Blob oid → a Hit when its bytes hold `needle`, else null. */
  private blobs = new Map<string, Hit | null>();
  private needle: string | undefined;
  /** Bumped when the needle changes: tree summaries of older generations are rebuilt. */
  private generation = 0;
  private receive: ReadonlySet<string> | undefined;
  private pendingWrites: Promise<void>[] = [];
  private loaded = false;
  /** False when there is no directory or it cannot be written: the cache is in memory only. */
  private writable: boolean;
  private writtenShallow = '';
  private limits: PackLimits = DEFAULT_PACK_LIMITS;
  /** Temporary files are named apart from another process's (or instance's) on the same disk. */
  private readonly temporarySuffix = `tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

  /** `directory` undefined: memory only. */
  constructor(
    readonly directory: string | undefined,
    private readonly fs: typeof nodeFs,
  ) {
    this.writable = directory !== undefined;
  }

  /** The objects of the packs held. */
  get store(): ObjectStore {
    return this.objects;
  }

  /** The heads fetched, oldest first. */
  get heads(): readonly string[] {
    return this.fetchedHeads;
  }

  /** The commits held without their parents. */
  get shallow(): readonly string[] {
    return this.shallowCommits;
  }

  /** The receive-pack capabilities, once the receive-pack advertisement was read. */
  get receiveCapabilities(): ReadonlySet<string> | undefined {
    return this.receive;
  }

  rememberReceiveCapabilities(capabilities: ReadonlySet<string>): void {
    this.receive = capabilities;
  }

  /** The limits the packs are read under (the adapter's; DEFAULT_PACK_LIMITS until told). */
  useLimits(limits: PackLimits): void {
    this.limits = limits;
    this.objects.limits = limits;
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
      const object = this.objects.read(oid);
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
    const object = this.objects.read(oid);
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

  /**
   * Drops the trees and blob verdicts that `rootTree` does not reach once they are most of what
   * is kept (`reached`: what a walk of `rootTree` counted).
   */
  pruneUnreached(
    rootTree: string,
    reached: { readonly trees: number; readonly blobs: number },
  ): void {
    if (this.trees.size > 2 * reached.trees + 1024 || this.blobs.size > 2 * reached.blobs + 4096) {
      this.prune(rootTree);
    }
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
    this.objects.clearCache();
  }

  /**
   * What a fetch of `head` asks. `incremental` (and heads held): the heads held as `have` and
   * the depth-1 boundary as `shallow`, without deepening again, so that the server sends the
   * commits since those heads and skips its costly shallow computation (100 ms at 60,000 files);
   * the answer may then be up to twice the packs held (64 MiB at least) before it is dropped for
   * a `depth-1` fetch. `depth-1`: the same `have` lines and `deepen 1`. `fresh`: `deepen 1`
   * alone (a base reset to a commit older than what is held). Never more than `maxPackBytes`.
   */
  packRequest(head: string, mode: FetchMode, maxPackBytes: number): PackRequest {
    const incremental = mode === 'incremental' && this.fetchedHeads.length > 0;
    return {
      want: head,
      haves: mode === 'fresh' ? [] : this.fetchedHeads.slice(-16).reverse(),
      shallow: this.shallowCommits,
      depthOne: !incremental,
      maxBytes: incremental
        ? Math.min(maxPackBytes, Math.max(64 * 1024 * 1024, 2 * this.objects.bytes()))
        : maxPackBytes,
    };
  }

  /**
   * Takes in the answer to a fetch of `head`: has `parser` index its pack (within `limits`),
   * keeps its trees and needle hits, writes it to the directory; then records `head` and the
   * shallow boundary's changes.
   */
  async addFetched(
    head: string,
    answer: UploadAnswer,
    parser: PackParser,
    limits: PackLimits,
  ): Promise<void> {
    const shallow = new Set(this.shallowCommits);
    for (const oid of answer.shallow) shallow.add(oid);
    for (const oid of answer.unshallow) shallow.delete(oid);
    await this.addPack(answer.pack, parser, limits);
    this.shallowCommits = [...shallow];
    this.fetchedHeads = [...this.fetchedHeads.filter((oid) => oid !== head), head].slice(-16);
  }

  private async addPack(received: Buffer, parser: PackParser, limits: PackLimits): Promise<void> {
    const held = (oid: string): GitObject | undefined => this.objects.read(oid);
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
    this.objects.add(
      { name, data },
      objects.map((object) => [object.oid, object.offset] as const),
    );
    this.pendingWrites.push(this.writePack(name, data, objects));
  }

  /** Writes `data` to `path` through a temporary file (a reader never sees half a file). */
  private async writeWhole(path: string, data: Buffer | string): Promise<void> {
    const temporary = `${path}.${this.temporarySuffix}`;
    await this.fs.promises.writeFile(temporary, data);
    await this.fs.promises.rename(temporary, path);
  }

  private async writePack(name: string, data: Buffer, objects: IndexedObject[]): Promise<void> {
    if (!this.writable || this.directory === undefined) return;
    const packDirectory = join(this.directory, 'objects', 'pack');
    const base = join(packDirectory, `pack-${name}`);
    try {
      await this.fs.promises.mkdir(packDirectory, { recursive: true });
      await this.writeWhole(`${base}.pack`, data);
      await this.writeWhole(`${base}.idx`, writeIndex(objects, name));
    } catch {
      // The cache is an optimisation: a pack that could not be written is fetched again.
    }
  }

  /** Records the heads held (the `shallow` file) and the base branch's remote ref. */
  writeRefs(baseBranch: string, head: string): void {
    const directory = this.directory;
    if (!this.writable || directory === undefined) return;
    const shallow = `${this.shallowCommits.join('\n')}\n`;
    const files: Record<string, string> = {
      // Not a git file: the heads a later process names as `have`.
      'promoter-heads': `${this.fetchedHeads.join('\n')}\n`,
    };
    if (shallow !== this.writtenShallow) files.shallow = shallow;
    this.writtenShallow = shallow;
    const remoteRef = join(directory, 'refs', 'remotes', 'origin', ...baseBranch.split('/'));
    this.pendingWrites.push(
      (async () => {
        try {
          for (const [file, text] of Object.entries(files)) {
            await this.writeWhole(join(directory, file), text);
          }
          await this.fs.promises.mkdir(join(remoteRef, '..'), { recursive: true });
          await this.writeWhole(remoteRef, `${head}\n`);
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

  /** Makes the directory a bare git repository unless it is one (git init --bare's layout). */
  private async initialise(directory: string): Promise<void> {
    const fs = this.fs.promises;
    for (const folder of ['objects/pack', 'objects/info', 'refs/heads', 'refs/tags']) {
      await fs.mkdir(join(directory, folder), { recursive: true });
    }
    const exists = await fs.stat(join(directory, 'config')).then(
      () => true,
      () => false,
    );
    if (exists) return;
    await this.writeWhole(join(directory, 'HEAD'), 'ref: refs/heads/main\n');
    await this.writeWhole(
      join(directory, 'config'),
      '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n',
    );
  }

  /** Loads what an earlier process left in the directory (or starts an empty repository). */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const directory = this.directory;
    if (directory === undefined) return;
    const fs = this.fs.promises;
    try {
      await this.initialise(directory);
    } catch {
      this.writable = false;
      return;
    }
    try {
      const packDirectory = join(directory, 'objects', 'pack');
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
        this.objects.add({ name: checksum, data }, readIndex(idx));
      }
      const shallow = await fs.readFile(join(directory, 'shallow'), 'utf8').catch(() => '');
      const held = (text: string): string[] =>
        text.split('\n').filter((oid) => /^[0-9a-f]{40}$/.test(oid) && this.objects.has(oid));
      this.shallowCommits = held(shallow);
      this.writtenShallow = `${this.shallowCommits.join('\n')}\n`;
      const heads = join(directory, 'promoter-heads');
      this.fetchedHeads = held(await fs.readFile(heads, 'utf8').catch(() => shallow));
    } catch {
      await this.reset();
    }
  }

  /** Forgets everything, in memory and on disk. */
  async reset(): Promise<void> {
    await this.flush();
    this.objects = new ObjectStore();
    this.objects.limits = this.limits;
    this.shallowCommits = [];
    this.fetchedHeads = [];
    this.writtenShallow = '';
    this.trees.clear();
    this.blobs = new Map();
    this.generation += 1;
    const directory = this.directory;
    if (!this.writable || directory === undefined) return;
    const { rm } = this.fs.promises;
    await rm(join(directory, 'objects', 'pack'), { recursive: true, force: true });
    await rm(join(directory, 'shallow'), { force: true });
    await rm(join(directory, 'promoter-heads'), { force: true });
  }
}

/** Repositories kept in memory by default; the least recently used beyond it are dropped. */
export const DEFAULT_CACHED_REPOSITORIES = 16;

/**
 * The repository caches of one adapter instance, by repository (most recently used last), and
 * the lock that runs one promotion per repository at a time. With `root`, each repository has a
 * directory under it, which a repository dropped from memory (or a new process) loads again;
 * without, a dropped repository is fetched afresh.
 */
export class RepositoryCaches {
  private readonly locks = new Map<string, Promise<void>>();
  private readonly caches = new Map<string, RepositoryCache>();

  constructor(
    private readonly root: string | undefined,
    private readonly fs: typeof nodeFs,
    private readonly maxRepositories: number = DEFAULT_CACHED_REPOSITORIES,
  ) {}

  /** The directory of a repository under `root`, or undefined when the caches are memory only. */
  directoryFor(cloneUrl: string): string | undefined {
    return this.root === undefined ? undefined : cacheDirectory(this.root, cloneUrl);
  }

  /** Runs `task` on the cache of `cloneUrl` once the tasks queued before it on it have ended. */
  async withRepository<T>(
    cloneUrl: string,
    task: (cache: RepositoryCache) => Promise<T>,
  ): Promise<T> {
    const key = this.directoryFor(cloneUrl) ?? cacheDirectory('', cloneUrl);
    return this.withLock(key, () => task(this.cacheFor(key)));
  }

  /** The cache under `key`, made most recently used (created, and the least used dropped). */
  private cacheFor(key: string): RepositoryCache {
    let cache = this.caches.get(key);
    if (cache !== undefined) {
      this.caches.delete(key);
    } else {
      cache = new RepositoryCache(this.root === undefined ? undefined : key, this.fs);
      for (const other of this.caches.keys()) {
        if (this.caches.size < this.maxRepositories) break;
        if (!this.locks.has(other)) this.caches.delete(other);
      }
    }
    this.caches.set(key, cache);
    return cache;
  }

  /** Runs `task` once the tasks queued before it under `key` have ended. */
  private async withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release = (): void => undefined;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const chained = previous.then(() => current);
    this.locks.set(key, chained);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.locks.get(key) === chained) this.locks.delete(key);
    }
  }
}
