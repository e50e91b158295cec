import type { PromotionBranchRequest } from '../../core/ports.ts';
import { ProtocolError } from './errors.ts';
import { type GitObject, hashObject } from './pack.ts';

/*
 * Trees and commits as a promotion uses them: tree objects parsed lazily and patched in place,
 * the needle hits they hold (a blob's text decoded once), a commit's root tree, and the new
 * blobs, trees and commit of a promotion.
 */

interface TreeEntry {
  readonly name: string;
  readonly oid: string;
  /** Where the entry's 20-byte oid sits in the tree object (to patch it in place). */
  readonly oidAt: number;
  readonly kind: 'tree' | 'blob' | 'other';
}

/** A tree object as the cache keeps it: raw bytes, parsed and summarised on first use. */
export interface Tree {
  readonly oid: string;
  readonly raw: Buffer;
  entries: readonly TreeEntry[] | undefined;
  /** The tree's subtrees and needle hits, for the cache's needle `generation`. */
  summary: TreeSummary | undefined;
}

export type SummaryItem =
  | { readonly name: string; readonly tree: Tree; readonly hit?: undefined }
  | { readonly name: string; readonly tree?: undefined; readonly hit: Hit };

export interface TreeSummary {
  readonly generation: number;
  /** Subtrees and files with the needle, in tree order. */
  readonly items: readonly SummaryItem[];
  readonly blobs: number;
}

/** A blob whose bytes hold the needle; its text is decoded once, when first needed. */
export class Hit {
  private decoded: { readonly text: string; readonly encoding: 'utf8' | 'latin1' } | undefined;
  constructor(readonly bytes: Buffer) {}
  get text(): { readonly text: string; readonly encoding: 'utf8' | 'latin1' } {
    this.decoded ??= decode(this.bytes);
    return this.decoded;
  }
}

/** The entries of a tree object, in order. */
export const parseTree = (raw: Buffer): TreeEntry[] => {
  const entries: TreeEntry[] = [];
  let position = 0;
  while (position < raw.length) {
    const space = raw.indexOf(0x20, position);
    const nul = raw.indexOf(0, space + 1);
    if (space < 0 || nul < 0 || nul + 21 > raw.length) {
      throw new ProtocolError('malformed tree object');
    }
    const mode = raw.toString('latin1', position, space);
    entries.push({
      name: raw.toString('utf8', space + 1, nul),
      oid: raw.toString('hex', nul + 1, nul + 21),
      oidAt: nul + 1,
      // 40000: directory; 100644/100755 (and the old 100664): file; 120000 symlink and
      // 160000 submodule are left alone.
      kind:
        mode === '40000' || mode === '040000' ? 'tree' : mode.startsWith('100') ? 'blob' : 'other',
    });
    position = nul + 21;
  }
  return entries;
};

/** The root tree of a commit object. */
export const commitTree = (content: Buffer): string => {
  const text = content.toString('latin1', 0, 46);
  if (!text.startsWith('tree ')) throw new ProtocolError('malformed commit object');
  return text.slice(5, 45);
};

/** A name or e-mail address made safe for a commit's author line. */
const identity = (value: string): string => value.replace(/[<>\n\r\0]/g, '').trim();

// ignoreBOM: a byte order mark stays in the text (and so in the file written back).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text handed to `edit`: UTF-8, or Latin-1 for bytes that are not (each byte kept). */
const decode = (bytes: Buffer): { text: string; encoding: 'utf8' | 'latin1' } => {
  try {
    return { text: utf8.decode(bytes), encoding: 'utf8' };
  } catch {
    return { text: bytes.toString('latin1'), encoding: 'latin1' };
  }
};

/**
 * The objects of one commit on top of `base` whose tree is `rootTree` with `changes` (new file
 * contents by path): the new blobs, the trees above them (patched in place: same entries, new
 * oids) and the commit, in that order, with the commit's oid.
 */
export const buildCommit = (
  treeOf: (oid: string) => Tree,
  base: string,
  rootTree: string,
  changes: ReadonlyMap<string, Buffer>,
  commit: PromotionBranchRequest['commit'],
  now: () => Date,
): { oid: string; objects: GitObject[] } => {
  const objects: GitObject[] = [];
  const directories = new Set<string>();
  for (const path of changes.keys()) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) directories.add(`${parts.slice(0, i).join('/')}/`);
  }
  const rewrite = (oid: string, prefix: string): string => {
    const tree = treeOf(oid);
    const entries = tree.entries ?? parseTree(tree.raw);
    const raw = Buffer.from(tree.raw);
    for (const entry of entries) {
      const path = `${prefix}${entry.name}`;
      let replacement: string | undefined;
      if (entry.kind === 'tree' && directories.has(`${path}/`)) {
        replacement = rewrite(entry.oid, `${path}/`);
      } else if (entry.kind === 'blob') {
        const content = changes.get(path);
        if (content !== undefined) {
          objects.push({ type: 'blob', content });
          replacement = hashObject('blob', content);
        }
      }
      if (replacement !== undefined) raw.write(replacement, entry.oidAt, 'hex');
    }
    objects.push({ type: 'tree', content: raw });
    return hashObject('tree', raw);
  };
  const tree = rewrite(rootTree, '');
  const { author, message } = commit;
  const seconds = Math.floor((commit.time ?? now()).getTime() / 1000);
  const person = `${identity(author.name)} <${identity(author.email)}> ${seconds} +0000`;
  const text = `tree ${tree}\nparent ${base}\nauthor ${person}\ncommitter ${person}\n\n${
    message.endsWith('\n') ? message : `${message}\n`
  }`;
  const content = Buffer.from(text, 'utf8');
  objects.push({ type: 'commit', content });
  return { oid: hashObject('commit', content), objects };
};
