import type { FileEdit } from './ports.ts';

/**
 * `$promotion` markers (RFC-0005, Flux setter style). A YAML line whose comment is the JSON
 * object `{"$promotion": "NS:NAME:ENV"}` (spaces optional) has its scalar value set to the
 * revision being promoted into ENV:
 *
 *     version: 6.4.0 # {"$promotion": "flux-system:podinfo:prod"}
 *     - "6.4.0"      # {"$promotion": "flux-system:podinfo:prod"}
 *
 * Only the scalar changes: its quote style, the indentation, the comment, the line ending
 * (LF or CRLF) and every other byte of the file stay as they are. A plain value stays plain
 * unless the revision would then read as something else (`6.5` is a number, `yes` a boolean,
 * `a: b` a mapping): such a revision is written double-quoted instead. Pure, no I/O.
 *
 * A marker may pick a part of a Flux source revision `<ref>@<algo>:<hash>` (what Kustomizations
 * and sources report, DESIGN.md 7.12), as image-automation's `$imagepolicy` suffixes do:
 * `NS:NAME:ENV:ref` the part before `@` (a tag or branch), `NS:NAME:ENV:digest` `<algo>:<hash>`,
 * `NS:NAME:ENV:hash` the hash alone. A marker with any other suffix is not this pipeline's and
 * stays as it is.
 */

/** A cheap pre-filter: a file without this string has no marker at all. */
export const needle = '$promotion';

export interface MarkerTarget {
  readonly namespace: string;
  readonly name: string;
  readonly environment: string;
}

/** The marker value for a pipeline's environment: `NS:NAME:ENV`. */
export const markerFor = (namespace: string, name: string, environment: string): string =>
  `${namespace}:${name}:${environment}`;

/** The part of a Flux source revision a marker's suffix picks. */
export type RevisionPart = 'ref' | 'digest' | 'hash';

const REVISION_PARTS: readonly string[] = ['ref', 'digest', 'hash'] satisfies RevisionPart[];

/**
 * The part of `revision` a marker picks: `ref` before the last `@`, `digest` after it, `hash`
 * the digest after its algorithm's `:`; `whole` (no suffix) the revision itself. A revision
 * without `@` (a chart version, an image tag) gives itself to every part.
 *
 * @example
 * revisionPart('v1.2.3@sha256:9f8e...', 'ref'); // 'v1.2.3'
 * revisionPart('main@sha1:6b3d5c0e...', 'digest'); // 'sha1:6b3d5c0e...'
 * revisionPart('main@sha1:6b3d5c0e...', 'hash'); // '6b3d5c0e...'
 * revisionPart('6.5.0', 'hash'); // '6.5.0'
 */
export const revisionPart = (revision: string, part: RevisionPart | 'whole'): string => {
  // The digest holds no `@`; a branch name may.
  const at = revision.lastIndexOf('@');
  if (part === 'whole' || at < 0) return revision;
  if (part === 'ref') return revision.slice(0, at);
  const digest = revision.slice(at + 1);
  if (part === 'digest') return digest;
  const colon = digest.indexOf(':');
  return colon < 0 ? digest : digest.slice(colon + 1);
};

/** Which part of the revision a marker value asks for, or undefined when it is not `marker`'s. */
const partFor = (value: string | undefined, marker: string): RevisionPart | 'whole' | undefined => {
  if (value === marker) return 'whole';
  if (value === undefined || !value.startsWith(`${marker}:`)) return undefined;
  const suffix = value.slice(marker.length + 1);
  return REVISION_PARTS.includes(suffix) ? (suffix as RevisionPart) : undefined;
};

/** Markers are honoured in `*.yaml` and `*.yml` files only. */
export const isPromotableFile = (path: string): boolean =>
  path.endsWith('.yaml') || path.endsWith('.yml');

type ScalarStyle = 'plain' | 'single' | 'double' | 'empty';

/** What a line holds: a scalar with a trailing comment, a block scalar header, or neither. */
type LineShape =
  | {
      readonly kind: 'scalar';
      readonly style: ScalarStyle;
      readonly valueStart: number;
      readonly valueEnd: number;
      readonly comment: string | undefined;
    }
  | { readonly kind: 'block'; readonly parentIndent: number }
  | { readonly kind: 'other' };

const OTHER: LineShape = { kind: 'other' };

const isBlank = (char: string | undefined): boolean =>
  char === undefined || char === ' ' || char === '\t';

const skipBlanks = (line: string, from: number): number => {
  let index = from;
  while (index < line.length && (line[index] === ' ' || line[index] === '\t')) index += 1;
  return index;
};

/** Index just past a quoted scalar starting at `start`, or -1 when it does not end on this line. */
const quotedEnd = (line: string, start: number): number => {
  const quote = line[start];
  let index = start + 1;
  while (index < line.length) {
    const char = line[index];
    if (quote === '"' && char === '\\') {
      index += 2;
      continue;
    }
    if (char === quote) {
      if (quote === "'" && line[index + 1] === "'") {
        index += 2;
        continue;
      }
      return index + 1;
    }
    index += 1;
  }
  return -1;
};

/** Where a plain scalar starting at `start` ends: before ` #` or the end of the line. */
const plainEnd = (line: string, start: number): { end: number; comment: number } => {
  let comment = -1;
  for (let index = start; index < line.length; index += 1) {
    if (line[index] === '#' && isBlank(line[index - 1])) {
      comment = index;
      break;
    }
  }
  let end = comment < 0 ? line.length : comment;
  while (end > start && isBlank(line[end - 1])) end -= 1;
  return { end, comment };
};

/**
 * The position just after a mapping key that starts at `start` (past its `:`), or -1 when the
 * text at `start` is not `key:` followed by a blank or the end of the line.
 */
const keyEnd = (line: string, start: number): number => {
  const first = line[start];
  if (first === '"' || first === "'") {
    const end = quotedEnd(line, start);
    if (end < 0) return -1;
    const colon = skipBlanks(line, end);
    return line[colon] === ':' && isBlank(line[colon + 1]) ? colon + 1 : -1;
  }
  if (first === undefined || '[{#&*!|>%@`,]}'.includes(first)) return -1;
  for (let index = start; index < line.length; index += 1) {
    const char = line[index];
    if (char === '#' && isBlank(line[index - 1])) return -1;
    if (char === ':' && isBlank(line[index + 1])) return index + 1;
  }
  return -1;
};

const shapeOf = (line: string): LineShape => {
  let index = skipBlanks(line, 0);
  let parentIndent = index;
  // Sequence entries: `- value`, `- - value`, `- key: value`.
  let dashes = 0;
  while (line[index] === '-' && isBlank(line[index + 1])) {
    parentIndent = index;
    dashes += 1;
    index = skipBlanks(line, index + 1);
  }
  const afterKey = keyEnd(line, index);
  if (afterKey >= 0) {
    parentIndent = index;
    index = afterKey;
  } else if (dashes === 0) {
    return OTHER;
  }
  const afterSeparator = skipBlanks(line, index);
  const separated = afterSeparator > index || afterKey < 0;
  index = afterSeparator;
  // Node properties: a tag (`!!str`) and/or an anchor (`&version`).
  while (line[index] === '!' || line[index] === '&') {
    let end = index;
    while (end < line.length && !isBlank(line[end])) end += 1;
    const next = skipBlanks(line, end);
    if (next === end || next >= line.length) return OTHER;
    index = next;
  }
  const first = line[index];
  if (first === undefined) return OTHER;
  if (first === '#') {
    if (!separated) return OTHER;
    return {
      kind: 'scalar',
      style: 'empty',
      valueStart: index,
      valueEnd: index,
      comment: line.slice(index + 1),
    };
  }
  if (first === '|' || first === '>') {
    return /^[|>][-+1-9]{0,2}(?:[ \t]+#.*)?[ \t]*$/.test(line.slice(index))
      ? { kind: 'block', parentIndent }
      : OTHER;
  }
  if ('[{*'.includes(first)) return OTHER;
  if (first === '"' || first === "'") {
    const end = quotedEnd(line, index);
    if (end < 0) return OTHER;
    const hash = skipBlanks(line, end);
    if (hash === line.length) {
      return {
        kind: 'scalar',
        style: first === '"' ? 'double' : 'single',
        valueStart: index,
        valueEnd: end,
        comment: undefined,
      };
    }
    if (line[hash] !== '#' || hash === end) return OTHER;
    return {
      kind: 'scalar',
      style: first === '"' ? 'double' : 'single',
      valueStart: index,
      valueEnd: end,
      comment: line.slice(hash + 1),
    };
  }
  const { end, comment } = plainEnd(line, index);
  return {
    kind: 'scalar',
    style: 'plain',
    valueStart: index,
    valueEnd: end,
    comment: comment < 0 ? undefined : line.slice(comment + 1),
  };
};

/** The marker a comment carries (`{"$promotion": "NS:NAME:ENV"}`), if any. */
const markerIn = (comment: string): string | undefined => {
  const text = comment.trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    const value = (parsed as Record<string, unknown>)[needle];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
};

// YAML 1.1 and 1.2 core-schema forms that do not read as strings (Kubernetes tooling still
// reads YAML 1.1: `yes`, `on`, `0777`, `1_000`, `1:30`, dates).
const NON_STRING = [
  /^(?:~|null|Null|NULL)$/,
  /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^[-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$/,
  /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?$/,
  /^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$/,
  /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/,
  /^[-+]?\.(?:inf|Inf|INF)$/,
  /^\.(?:nan|NaN|NAN)$/,
  /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$/,
  /^(?:<<|=)$/,
];

const readsAsString = (plain: string): boolean =>
  plain !== '' && !NON_STRING.some((pattern) => pattern.test(plain));

// Characters YAML does not allow raw in a scalar (besides tab), and the line breaks.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters.
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/;

/** Whether `text` reads back as the same characters when written as a plain scalar. */
const plainIsSafe = (text: string): boolean => {
  if (text === '' || text.trim() !== text || text.includes('\t')) return false;
  if (UNPRINTABLE.test(text)) return false;
  const first = text[0] ?? '';
  if ('[]{},#&*!|>\'"%@`'.includes(first)) return false;
  if ('-?:'.includes(first) && isBlank(text[1])) return false;
  if (text.startsWith('---') || text.startsWith('...')) return false;
  return !text.includes(': ') && !text.includes(' #') && !text.endsWith(':');
};

const doubleQuoted = (text: string): string =>
  JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/** The revision written in the style of the value it replaces. */
const render = (revision: string, style: ScalarStyle, original: string): string => {
  switch (style) {
    case 'double':
      return doubleQuoted(revision);
    case 'single':
      return UNPRINTABLE.test(revision)
        ? doubleQuoted(revision)
        : `'${revision.replaceAll("'", "''")}'`;
    default: {
      // A plain value stays plain, unless the revision would not read back as itself or a
      // string would become a number, a boolean, a date or null.
      const keepsType = readsAsString(revision) || (style === 'plain' && !readsAsString(original));
      return plainIsSafe(revision) && keepsType ? revision : doubleQuoted(revision);
    }
  }
};

/**
 * Sets every `$promotion` marker for `target` in `content` to `revision` (or the part of it
 * the marker's suffix picks). `markers` counts the target's markers; `content` is the input
 * itself when nothing changed (already at the revision, or no marker).
 *
 * @example
 * editMarkers('ref: main # {"$promotion": "flux-system:apps:prod:hash"}\n', target, 'main@sha1:6b3d5c0e');
 * // { markers: 1, content: 'ref: 6b3d5c0e # {"$promotion": "flux-system:apps:prod:hash"}\n' }
 */
export const editMarkers = (content: string, target: MarkerTarget, revision: string): FileEdit => {
  const marker = markerFor(target.namespace, target.name, target.environment);
  // The marker text appears verbatim (a suffixed one starts with it) unless the JSON escapes
  // characters (`\u003a`).
  if (!content.includes(needle) || (!content.includes(marker) && !content.includes('\\'))) {
    return { markers: 0, content };
  }
  const parts: string[] = [];
  let markers = 0;
  let changed = false;
  let blockIndent = -1;
  let start = 0;
  while (start <= content.length) {
    const newline = content.indexOf('\n', start);
    const end = newline < 0 ? content.length : newline;
    let lineEnd = end;
    if (lineEnd > start && content[lineEnd - 1] === '\r') lineEnd -= 1;
    const line = content.slice(start, lineEnd);
    let replaced = line;

    const indent = skipBlanks(line, 0);
    const inBlock = blockIndent >= 0 && (indent === line.length || indent > blockIndent);
    if (!inBlock) {
      blockIndent = -1;
      const shape = shapeOf(line);
      if (shape.kind === 'block') {
        blockIndent = shape.parentIndent;
      } else if (shape.kind === 'scalar' && shape.comment !== undefined && line.includes(needle)) {
        const part = partFor(markerIn(shape.comment), marker);
        if (part !== undefined) {
          markers += 1;
          const original = line.slice(shape.valueStart, shape.valueEnd);
          const value = render(revisionPart(revision, part), shape.style, original);
          const suffix = line.slice(shape.valueEnd);
          const spaced = shape.style === 'empty' ? ` ${suffix}` : suffix;
          replaced = `${line.slice(0, shape.valueStart)}${value}${spaced}`;
          if (replaced !== line) changed = true;
        }
      }
    }
    parts.push(replaced, content.slice(lineEnd, newline < 0 ? end : end + 1));
    if (newline < 0) break;
    start = newline + 1;
  }
  return { markers, content: changed ? parts.join('') : content };
};
