import {
  ByteCache,
  DEFAULT_PACK_LIMITS,
  type GitObject,
  type PackLimits,
  resolveEntry,
} from './pack.ts';

/*
 * The objects of the packs a repository cache holds, read by oid straight from the pack bytes
 * (offset index in memory, deltas resolved through a bounded cache of recent objects).
 */

/** A pack held in memory, named by its checksum (as `pack-{name}.pack`). */
interface Pack {
  readonly name: string;
  readonly data: Buffer;
}

/** The objects of the cached packs, by oid. */
export class ObjectStore {
  readonly packs: Pack[] = [];
  private readonly index = new Map<string, { readonly pack: Pack; readonly offset: number }>();
  private readonly resolved = new ByteCache<string>(16 * 1024 * 1024);
  /** The limits reads are held to (the adapter's, which the packs were indexed under). */
  limits: PackLimits = DEFAULT_PACK_LIMITS;

  has(oid: string): boolean {
    return this.index.has(oid);
  }

  /** The size of the packs held. */
  bytes(): number {
    return this.packs.reduce((total, pack) => total + pack.data.length, 0);
  }

  /** Takes in a pack and where its objects start (from its index). */
  add(pack: Pack, offsets: Iterable<readonly [string, number]>): void {
    this.packs.push(pack);
    for (const [oid, offset] of offsets) this.index.set(oid, { pack, offset });
  }

  read(oid: string, depth = 0): GitObject | undefined {
    const location = this.index.get(oid);
    return location === undefined ? undefined : this.readAt(location.pack, location.offset, depth);
  }

  private readAt(pack: Pack, offset: number, depth: number): GitObject {
    const key = `${pack.name}:${offset}`;
    const cached = this.resolved.get(key);
    if (cached !== undefined) return cached;
    const object = resolveEntry(
      pack.data,
      offset,
      (baseOffset, baseDepth) => this.readAt(pack, baseOffset, baseDepth),
      (oid, baseDepth) => this.read(oid, baseDepth),
      this.limits,
      depth,
    );
    this.resolved.set(key, object);
    return object;
  }

  /** Drops the resolved objects (after a prune: the old ones are mostly unreachable). */
  clearCache(): void {
    this.resolved.clear();
  }
}
