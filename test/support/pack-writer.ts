import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

/**
 * A tiny git pack writer for tests, hostile packs included: whole objects (with a declared size
 * that may lie, or raw zlib bytes of the test's own), ofs-deltas and ref-deltas, and the delta
 * instructions (copy, insert) to fill them with.
 */
type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';
const TYPE_CODES: Readonly<Record<ObjectType, number>> = { commit: 1, tree: 2, blob: 3, tag: 4 };

export type PackEntry =
  | {
      readonly kind: 'whole';
      readonly type: ObjectType;
      readonly content: Buffer;
      /** The size the entry header says (default: the content's). */
      readonly declaredSize?: number;
    }
  | {
      /** An ofs-delta on the entry `base` places before it (1: the one just before). */
      readonly kind: 'ofs-delta';
      readonly back: number;
      readonly delta: Buffer;
      readonly declaredSize?: number;
    }
  | { readonly kind: 'ref-delta'; readonly base: string; readonly delta: Buffer };

export const objectId = (type: ObjectType, content: Buffer): string =>
  createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');

const header = (code: number, size: number): Buffer => {
  const bytes: number[] = [];
  let rest = size;
  let byte = (code << 4) | (rest & 15);
  rest = Math.floor(rest / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
};

const ofsDistance = (distance: number): Buffer => {
  let rest = distance;
  const bytes = [rest & 0x7f];
  rest = Math.floor(rest / 128);
  while (rest > 0) {
    rest -= 1;
    bytes.unshift(0x80 | (rest & 0x7f));
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
};

/** A pack (version 2) of `entries`, with its trailer. */
export const writeTestPack = (entries: readonly PackEntry[]): Buffer => {
  const start = Buffer.alloc(12);
  start.write('PACK', 0, 'latin1');
  start.writeUInt32BE(2, 4);
  start.writeUInt32BE(entries.length, 8);
  const parts: Buffer[] = [start];
  const offsets: number[] = [];
  let position = 12;
  entries.forEach((entry, index) => {
    offsets.push(position);
    let part: Buffer;
    if (entry.kind === 'whole') {
      part = Buffer.concat([
        header(TYPE_CODES[entry.type], entry.declaredSize ?? entry.content.length),
        deflateSync(entry.content),
      ]);
    } else if (entry.kind === 'ofs-delta') {
      const base = offsets[index - entry.back];
      if (base === undefined) throw new Error(`no entry ${entry.back} before entry ${index}`);
      part = Buffer.concat([
        header(6, entry.declaredSize ?? entry.delta.length),
        ofsDistance(position - base),
        deflateSync(entry.delta),
      ]);
    } else {
      part = Buffer.concat([
        header(7, entry.delta.length),
        Buffer.from(entry.base, 'hex'),
        deflateSync(entry.delta),
      ]);
    }
    parts.push(part);
    position += part.length;
  });
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
};

const varint = (value: number): number[] => {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return bytes;
};

export type DeltaOp =
  | { readonly copy: number; readonly length: number }
  | { readonly insert: Buffer };

/** A git delta from a base of `baseSize` bytes to a result of `resultSize` bytes. */
export const delta = (baseSize: number, resultSize: number, ops: readonly DeltaOp[]): Buffer => {
  const bytes: number[] = [...varint(baseSize), ...varint(resultSize)];
  for (const op of ops) {
    if ('insert' in op) {
      for (let at = 0; at < op.insert.length; at += 127) {
        const chunk = op.insert.subarray(at, at + 127);
        bytes.push(chunk.length, ...chunk);
      }
      continue;
    }
    let command = 0x80;
    const args: number[] = [];
    for (let i = 0; i < 4; i++) {
      const byte = Math.floor(op.copy / 256 ** i) & 255;
      if (byte !== 0) {
        command |= 1 << i;
        args.push(byte);
      }
    }
    for (let i = 0; i < 3; i++) {
      const byte = Math.floor(op.length / 256 ** i) & 255;
      if (byte !== 0) {
        command |= 0x10 << i;
        args.push(byte);
      }
    }
    bytes.push(command, ...args);
  }
  return Buffer.from(bytes);
};

/** The object a delta chain step makes: the base copied whole, then `suffix`. */
export const appendDelta = (base: Buffer, suffix: Buffer): { delta: Buffer; result: Buffer } => {
  const ops: DeltaOp[] = [];
  for (let at = 0; at < base.length; at += 0xffffff) {
    ops.push({ copy: at, length: Math.min(0xffffff, base.length - at) });
  }
  ops.push({ insert: suffix });
  const result = Buffer.concat([base, suffix]);
  return { delta: delta(base.length, result.length, ops), result };
};
