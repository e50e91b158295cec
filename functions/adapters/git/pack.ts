import { createHash } from 'node:crypto';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import { LimitError, mebibytes, ProtocolError } from './errors.ts';
import { GIT_LIMIT_DEFAULTS } from './limits.ts';

/*
 * The pack format (gitformat-pack), read and written with Node's zlib and crypto: object hashing,
 * delta application, pack entries, indexing a received pack in one pass (thin packs made whole),
 * `.idx` v2 files, and the undeltified packs a push sends. The one file to read to change how a
 * pack is read (functions/adapters/git/README.md).
 */

type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';
const TYPES: readonly (ObjectType | undefined)[] = [undefined, 'commit', 'tree', 'blob', 'tag'];
const TYPE_CODES: Readonly<Record<ObjectType, number>> = { commit: 1, tree: 2, blob: 3, tag: 4 };

/** An object, resolved: its type and its content (without the `type size\0` header). */
export interface GitObject {
  readonly type: ObjectType;
  readonly content: Buffer;
}

/** What one pack may make the process do (DESIGN.md section 14). */
export interface PackLimits {
  /** The largest object, or delta, once inflated. */
  readonly maxObjectBytes: number;
  /** The longest chain of deltas to resolve one object. */
  readonly maxDeltaDepth: number;
  /** Epoch milliseconds after which the work stops (the promotion's time budget). */
  readonly deadline?: number;
}

export const DEFAULT_PACK_LIMITS: PackLimits = {
  maxObjectBytes: GIT_LIMIT_DEFAULTS.maxObjectBytes,
  maxDeltaDepth: GIT_LIMIT_DEFAULTS.maxDeltaDepth,
};

/** Delta bases held at once while resolving a pack, as a multiple of the object limit. */
const HELD_BASES_FACTOR = 4;

const checkDeadline = (limits: PackLimits): void => {
  if (limits.deadline !== undefined && Date.now() > limits.deadline) {
    throw new LimitError(
      'promotionTimeout',
      'the promotion ran out of its time budget while reading the pack',
    );
  }
};

const checkSize = (size: number, limits: PackLimits, what: string): void => {
  if (size > limits.maxObjectBytes) {
    throw new LimitError(
      'maxObjectBytes',
      `the git server sent ${what} of ${mebibytes(size)}, over the ${mebibytes(limits.maxObjectBytes)} limit on an inflated object`,
    );
  }
};

const checkDepth = (depth: number, limits: PackLimits): void => {
  if (depth > limits.maxDeltaDepth) {
    throw new LimitError(
      'maxDeltaDepth',
      `the git server sent a delta chain deeper than ${limits.maxDeltaDepth}, the limit on delta chain depth`,
    );
  }
};

/** The object id: the SHA-1 of the header and the content. */
export const hashObject = (type: ObjectType, content: Buffer): string =>
  createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');

/** Applies a git delta to `base`. */
const applyDelta = (delta: Buffer, base: Buffer, limits: PackLimits): Buffer => {
  let position = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 1;
    let byte: number;
    do {
      byte = delta[position++] ?? 0;
      value += (byte & 0x7f) * shift;
      shift *= 128;
    } while (byte & 0x80);
    return value;
  };
  const baseSize = varint();
  if (baseSize !== base.length) throw new ProtocolError('delta base size mismatch');
  const size = varint();
  checkSize(size, limits, 'a delta that makes an object');
  const out = Buffer.allocUnsafe(size);
  let written = 0;
  while (position < delta.length) {
    const op = delta[position++] ?? 0;
    if (op & 0x80) {
      let offset = 0;
      let length = 0;
      for (let bit = 0; bit < 4; bit++) {
        if (op & (1 << bit)) offset += (delta[position++] ?? 0) * 2 ** (8 * bit);
      }
      for (let bit = 0; bit < 3; bit++) {
        if (op & (0x10 << bit)) length += (delta[position++] ?? 0) * 2 ** (8 * bit);
      }
      if (length === 0) length = 0x10000;
      if (offset + length > base.length || written + length > size) {
        throw new ProtocolError('delta copy out of range');
      }
      base.copy(out, written, offset, offset + length);
      written += length;
    } else if (op > 0) {
      if (position + op > delta.length || written + op > size) {
        throw new ProtocolError('delta insert out of range');
      }
      delta.copy(out, written, position, position + op);
      written += op;
      position += op;
    } else {
      throw new ProtocolError('delta opcode 0');
    }
  }
  if (written !== size) throw new ProtocolError('delta result size mismatch');
  return out;
};

interface RawEntry {
  readonly kind: number; // 1-4: an object, 6: ofs-delta, 7: ref-delta
  readonly size: number;
  readonly dataStart: number;
  readonly baseOffset: number;
  readonly baseOid: string | undefined;
}

/** Reads the entry header at `offset` of a pack. */
const entryAt = (pack: Buffer, offset: number): RawEntry => {
  let position = offset;
  let byte = pack[position++] ?? 0;
  const kind = (byte >> 4) & 7;
  let size = byte & 15;
  let shift = 16;
  while (byte & 0x80) {
    byte = pack[position++] ?? 0;
    size += (byte & 0x7f) * shift;
    shift *= 128;
  }
  let baseOffset = -1;
  let baseOid: string | undefined;
  if (kind === 6) {
    byte = pack[position++] ?? 0;
    let distance = byte & 0x7f;
    while (byte & 0x80) {
      byte = pack[position++] ?? 0;
      distance = (distance + 1) * 128 + (byte & 0x7f);
    }
    baseOffset = offset - distance;
    if (baseOffset < 12) throw new ProtocolError('ofs-delta base outside the pack');
  } else if (kind === 7) {
    baseOid = pack.toString('hex', position, position + 20);
    position += 20;
  } else if (kind < 1 || kind > 4) {
    throw new ProtocolError(`unknown pack entry type ${kind}`);
  }
  return { kind, size, dataStart: position, baseOffset, baseOid };
};

/**
 * Inflates the zlib stream at `start`; returns the bytes and how much input they took. The
 * declared size is checked against the limit before inflating, and the output is cut at it: a
 * stream that inflates to more than its entry says is refused without the memory it asks for.
 */
const inflateAt = (
  pack: Buffer,
  start: number,
  size: number,
  limits: PackLimits,
): { data: Buffer; used: number } => {
  checkSize(size, limits, 'a pack entry');
  let result: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    result = inflateSync(pack.subarray(start), {
      info: true,
      // An output buffer of the exact size: small objects then share slabs instead of each
      // pinning a 16 KiB chunk.
      chunkSize: Math.max(64, size),
      maxOutputLength: Math.max(1, size),
    }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
  } catch (error) {
    throw new ProtocolError(`pack entry does not inflate: ${(error as Error).message}`);
  }
  if (result.buffer.length !== size) throw new ProtocolError('pack entry size mismatch');
  return { data: result.buffer, used: result.engine.bytesWritten };
};

/** A small cache of resolved objects by key, dropping the oldest past `maxBytes`. */
export class ByteCache<K> {
  private readonly map = new Map<K, GitObject>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}
  get(key: K): GitObject | undefined {
    return this.map.get(key);
  }
  set(key: K, value: GitObject): void {
    if (value.content.length > this.maxBytes / 8 || this.map.has(key)) return;
    this.map.set(key, value);
    this.bytes += value.content.length;
    if (this.bytes <= this.maxBytes) return;
    for (const [oldKey, old] of this.map) {
      this.map.delete(oldKey);
      this.bytes -= old.content.length;
      if (this.bytes <= this.maxBytes / 2) break;
    }
  }
  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}

/**
 * The object at `offset` of a pack, its delta resolved against a base found by offset (ofs-delta)
 * or by oid (ref-delta), each asked for at `depth + 1`: a chain deeper than the limit is refused.
 */
export const resolveEntry = (
  pack: Buffer,
  offset: number,
  byOffset: (offset: number, depth: number) => GitObject,
  byOid: (oid: string, depth: number) => GitObject | undefined,
  limits: PackLimits = DEFAULT_PACK_LIMITS,
  depth = 0,
): GitObject => {
  const entry = entryAt(pack, offset);
  const { data } = inflateAt(pack, entry.dataStart, entry.size, limits);
  if (entry.kind <= 4) return { type: TYPES[entry.kind] as ObjectType, content: data };
  checkDepth(depth + 1, limits);
  const base =
    entry.kind === 6
      ? byOffset(entry.baseOffset, depth + 1)
      : byOid(entry.baseOid ?? '', depth + 1);
  if (base === undefined) throw new ProtocolError(`delta base ${entry.baseOid} is missing`);
  return { type: base.type, content: applyDelta(data, base.content, limits) };
};

/** An object of a received pack as the `.idx` file records it. */
export interface IndexedObject {
  readonly oid: string;
  readonly offset: number;
  readonly crc: number;
}

/** A received pack, indexed: its bytes (made whole when thin) and its objects. */
export interface IndexedPack {
  readonly data: Buffer;
  readonly objects: IndexedObject[];
  /** Deltas applied to resolve the pack: one per delta entry when no base had to be rebuilt. */
  readonly deltasApplied: number;
}

/** A delta entry whose base was not at hand when it was read: resolved in the second pass. */
interface Deferred {
  readonly offset: number;
  readonly end: number;
  readonly entry: RawEntry;
}

/** An object being resolved in the second pass, with the deltas that still wait on it. */
interface Frame {
  readonly object: GitObject;
  readonly depth: number;
  readonly children: Deferred[];
  next: number;
}

/**
 * Reads a whole pack: every object is inflated, resolved against its delta base, hashed and
 * handed to `visit`. Returns the index entries (oid, offset, CRC-32) of every object.
 *
 * The first pass reads the entries in order, resolving a delta at once when its base is at hand
 * (the last object, or a bounded cache of recent ones); the others wait for the second pass, which
 * resolves them from their bases down (git index-pack's way), holding only the chain being walked.
 * Each object is so resolved once: the cost is linear in the pack, whatever its chains (a cache
 * that dropped large bases made long chains of them quadratic).
 *
 * A thin pack's ref-deltas name bases the receiver already holds: the generator yields their
 * oids once, and takes them back as objects (so that `held` may live in another thread); they
 * are appended to the pack (`index-pack --fix-thin`) so that it stands on its own.
 */
export function* indexPackSteps(
  data: Buffer,
  visit: (oid: string, object: GitObject) => void,
  limits: PackLimits = DEFAULT_PACK_LIMITS,
): Generator<readonly string[], IndexedPack, ReadonlyMap<string, GitObject>> {
  if (data.length < 32 || data.toString('latin1', 0, 4) !== 'PACK') {
    throw new ProtocolError('the git server sent no pack');
  }
  const version = data.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new ProtocolError(`pack version ${version}`);
  const count = data.readUInt32BE(8);
  const trailer = data.toString('hex', data.length - 20);
  if (
    createHash('sha1')
      .update(data.subarray(0, data.length - 20))
      .digest('hex') !== trailer
  ) {
    throw new ProtocolError('pack checksum mismatch');
  }
  const bases = new ByteCache<number>(64 * 1024 * 1024);
  let last: { offset: number; object: GitObject } | undefined;
  const offsetsByOid = new Map<string, number>();
  const oidsByOffset = new Map<number, string>();
  const depths = new Map<number, number>();
  const indexed: IndexedObject[] = [];
  const deferred: Deferred[] = [];
  let deltasApplied = 0;

  const cached = (offset: number): GitObject | undefined =>
    last?.offset === offset ? last.object : bases.get(offset);
  const apply = (delta: Buffer, base: GitObject): GitObject => {
    deltasApplied += 1;
    return { type: base.type, content: applyDelta(delta, base.content, limits) };
  };
  const record = (offset: number, end: number, object: GitObject, depth: number): string => {
    const oid = hashObject(object.type, object.content);
    offsetsByOid.set(oid, offset);
    oidsByOffset.set(offset, oid);
    depths.set(offset, depth);
    indexed.push({ oid, offset, crc: crc32(data.subarray(offset, end)) });
    bases.set(offset, object);
    last = { offset, object };
    visit(oid, object);
    return oid;
  };

  let position = 12;
  for (let n = 0; n < count; n++) {
    if ((n & 63) === 0) checkDeadline(limits);
    const offset = position;
    const entry = entryAt(data, offset);
    const { data: inflated, used } = inflateAt(data, entry.dataStart, entry.size, limits);
    position = entry.dataStart + used;
    if (entry.kind <= 4) {
      record(offset, position, { type: TYPES[entry.kind] as ObjectType, content: inflated }, 0);
      continue;
    }
    const baseOffset = entry.kind === 6 ? entry.baseOffset : offsetsByOid.get(entry.baseOid ?? '');
    const base = baseOffset === undefined ? undefined : cached(baseOffset);
    const baseDepth = baseOffset === undefined ? undefined : depths.get(baseOffset);
    if (base === undefined || baseDepth === undefined) {
      deferred.push({ offset, end: position, entry });
      continue;
    }
    checkDepth(baseDepth + 1, limits);
    record(offset, position, apply(inflated, base), baseDepth + 1);
  }
  if (position !== data.length - 20) throw new ProtocolError('pack has trailing data');

  const external = new Map<string, GitObject>();
  if (deferred.length > 0) {
    // The waiting deltas by what they wait on: an offset (ofs-delta) or an oid (ref-delta).
    const byBaseOffset = new Map<number, Deferred[]>();
    const byBaseOid = new Map<string, Deferred[]>();
    for (const item of deferred) {
      const { entry } = item;
      const [map, key] =
        entry.kind === 6
          ? [byBaseOffset as Map<number | string, Deferred[]>, entry.baseOffset]
          : [byBaseOid as Map<number | string, Deferred[]>, entry.baseOid ?? ''];
      const list = map.get(key);
      if (list === undefined) map.set(key, [item]);
      else list.push(item);
    }
    let waiting = deferred.length;
    const takeChildren = (offset: number | undefined, oid: string): Deferred[] => {
      const children: Deferred[] = [];
      if (offset !== undefined) {
        children.push(...(byBaseOffset.get(offset) ?? []));
        byBaseOffset.delete(offset);
      }
      children.push(...(byBaseOid.get(oid) ?? []));
      byBaseOid.delete(oid);
      waiting -= children.length;
      return children;
    };
    /** An object of the first pass again, from the cache or rebuilt from its base. */
    const rebuild = (offset: number, depth: number): GitObject =>
      cached(offset) ??
      resolveEntry(
        data,
        offset,
        (baseOffset, baseDepth) => rebuild(baseOffset, baseDepth),
        (oid, baseDepth) => {
          const at = offsetsByOid.get(oid);
          return at === undefined ? external.get(oid) : rebuild(at, baseDepth);
        },
        { ...limits, maxDeltaDepth: Number.POSITIVE_INFINITY },
        depth,
      );
    const heldLimit = HELD_BASES_FACTOR * limits.maxObjectBytes;
    /** Resolves every delta that waits, directly or down a chain, on `root`. */
    const resolveFrom = (root: GitObject, depth: number, children: Deferred[]): void => {
      if (children.length === 0) return;
      const stack: Frame[] = [{ object: root, depth, children, next: 0 }];
      let held = root.content.length;
      while (stack.length > 0) {
        const frame = stack[stack.length - 1] as Frame;
        const child = frame.children[frame.next++];
        if (frame.next >= frame.children.length) {
          // The last child: its base is no longer needed once it is resolved.
          stack.pop();
          held -= frame.object.content.length;
        }
        if (child === undefined) continue;
        checkDeadline(limits);
        checkDepth(frame.depth + 1, limits);
        const { data: delta } = inflateAt(data, child.entry.dataStart, child.entry.size, limits);
        const object = apply(delta, frame.object);
        const oid = record(child.offset, child.end, object, frame.depth + 1);
        const next = takeChildren(child.offset, oid);
        if (next.length === 0) continue;
        held += object.content.length;
        if (held > heldLimit) {
          throw new LimitError(
            'maxObjectBytes',
            `resolving the pack's deltas would hold over ${mebibytes(heldLimit)} of delta bases at once (${HELD_BASES_FACTOR} times the limit on an inflated object)`,
          );
        }
        stack.push({ object, depth: frame.depth + 1, children: next, next: 0 });
      }
    };
    // Deltas on bases the first pass resolved (their oids are known by now).
    for (const [offset, depth] of [...depths]) {
      if (byBaseOffset.size === 0 && byBaseOid.size === 0) break;
      const oid = oidsByOffset.get(offset);
      if (!byBaseOffset.has(offset) && (oid === undefined || !byBaseOid.has(oid))) continue;
      const children = takeChildren(offset, oid ?? '');
      resolveFrom(rebuild(offset, depth), depth, children);
    }
    if (byBaseOid.size > 0) {
      // What is left waits on objects outside the pack: a thin pack's bases.
      const given = yield [...byBaseOid.keys()];
      for (const [oid, object] of given) {
        if (!byBaseOid.has(oid)) continue;
        external.set(oid, object);
        resolveFrom(object, 0, takeChildren(undefined, oid));
      }
    }
    if (waiting > 0) throw new ProtocolError('pack has unresolved deltas');
  }
  if (external.size === 0) return { data, objects: indexed, deltasApplied };
  // Like `git index-pack --fix-thin`: append the bases so that the pack stands on its own.
  const appended: Buffer[] = [];
  let end = data.length - 20;
  for (const [oid, object] of external) {
    const entry = Buffer.concat([
      entryHeader(object.type, object.content.length),
      deflateSync(object.content, { level: 1 }),
    ]);
    indexed.push({ oid, offset: end, crc: crc32(entry) });
    appended.push(entry);
    end += entry.length;
  }
  const body = Buffer.concat([data.subarray(0, data.length - 20), ...appended]);
  body.writeUInt32BE(count + external.size, 8);
  const fixed = Buffer.concat([body, createHash('sha1').update(body).digest()]);
  return { data: fixed, objects: indexed, deltasApplied };
}

/**
 * Runs `indexPackSteps` to its end, answering each request for a thin pack's bases from `held`
 * (those it does not hold stay missing, for the generator to refuse).
 */
export const answerSteps = <T>(
  steps: Generator<readonly string[], T, ReadonlyMap<string, GitObject>>,
  held: (oid: string) => GitObject | undefined,
): T => {
  let step = steps.next();
  while (step.done !== true) {
    const given = new Map<string, GitObject>();
    for (const oid of step.value) {
      const object = held(oid);
      if (object !== undefined) given.set(oid, object);
    }
    step = steps.next(given);
  }
  return step.value;
};

/** `indexPackSteps` in one go, the thin pack's bases taken from `held`. */
export const indexPack = (
  data: Buffer,
  held: (oid: string) => GitObject | undefined,
  visit: (oid: string, object: GitObject) => void,
  limits: PackLimits = DEFAULT_PACK_LIMITS,
): IndexedPack => {
  return answerSteps(indexPackSteps(data, visit, limits), held);
};

/** A pack entry header: the type and the inflated size. */
const entryHeader = (type: ObjectType, length: number): Buffer => {
  const header: number[] = [];
  let size = length;
  let byte = (TYPE_CODES[type] << 4) | (size & 15);
  size = Math.floor(size / 16);
  while (size > 0) {
    header.push(byte | 0x80);
    byte = size & 0x7f;
    size = Math.floor(size / 128);
  }
  header.push(byte);
  return Buffer.from(header);
};

/** Whether a pack's bytes match its trailer checksum (and name). */
export const packIsWhole = (data: Buffer, checksum: string): boolean =>
  data.length >= 32 &&
  data.toString('hex', data.length - 20) === checksum &&
  createHash('sha1')
    .update(data.subarray(0, data.length - 20))
    .digest('hex') === checksum;

/** A pack index, version 2 (what `git index-pack` writes). */
export const writeIndex = (objects: readonly IndexedObject[], packChecksum: string): Buffer => {
  const sorted = [...objects].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const large = sorted.filter((object) => object.offset >= 0x80000000);
  const size = 8 + 1024 + sorted.length * 28 + large.length * 8 + 40;
  const out = Buffer.alloc(size);
  out.writeUInt32BE(0xff744f63, 0);
  out.writeUInt32BE(2, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const object of sorted) {
    const first = Number.parseInt(object.oid.slice(0, 2), 16);
    fanout[first] = (fanout[first] ?? 0) + 1;
  }
  let total = 0;
  for (let i = 0; i < 256; i++) {
    total += fanout[i] ?? 0;
    out.writeUInt32BE(total, 8 + i * 4);
  }
  let position = 8 + 1024;
  for (const object of sorted) {
    out.write(object.oid, position, 'hex');
    position += 20;
  }
  for (const object of sorted) {
    out.writeUInt32BE(object.crc >>> 0, position);
    position += 4;
  }
  let largeIndex = 0;
  for (const object of sorted) {
    if (object.offset >= 0x80000000) {
      out.writeUInt32BE((0x80000000 | largeIndex++) >>> 0, position);
    } else {
      out.writeUInt32BE(object.offset, position);
    }
    position += 4;
  }
  for (const object of large) {
    out.writeBigUInt64BE(BigInt(object.offset), position);
    position += 8;
  }
  out.write(packChecksum, position, 'hex');
  position += 20;
  createHash('sha1').update(out.subarray(0, position)).digest().copy(out, position);
  return out;
};

/** The (oid, offset) pairs of a version 2 pack index. */
export const readIndex = (idx: Buffer): [string, number][] => {
  if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) {
    throw new ProtocolError('unsupported pack index');
  }
  const count = idx.readUInt32BE(8 + 255 * 4);
  const names = 8 + 1024;
  const offsets = names + count * 24;
  const large = offsets + count * 4;
  const result: [string, number][] = [];
  for (let i = 0; i < count; i++) {
    let offset = idx.readUInt32BE(offsets + i * 4);
    if (offset & 0x80000000) {
      offset = Number(idx.readBigUInt64BE(large + (offset & 0x7fffffff) * 8));
    }
    result.push([idx.toString('hex', names + i * 20, names + i * 20 + 20), offset]);
  }
  return result;
};

/** A pack of whole (undeltified) objects, as a push sends them. */
export const writePack = (objects: readonly GitObject[]): Buffer => {
  const parts: Buffer[] = [Buffer.alloc(12)];
  parts[0]?.write('PACK', 0, 'latin1');
  parts[0]?.writeUInt32BE(2, 4);
  parts[0]?.writeUInt32BE(objects.length, 8);
  for (const object of objects) {
    parts.push(
      entryHeader(object.type, object.content.length),
      deflateSync(object.content, { level: 1 }),
    );
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
};
