import { Lexer } from 'yaml';

/**
 * The documents of a YAML (or JSON) stream, found and measured without parsing them, so that one
 * hostile document can be refused by itself before the YAML parser sees it: the parser recurses
 * once per nesting level, and a few hundred kilobytes of `[` exhaust its stack and then the heap.
 *
 * Documents are split at `---` and `...` lines, which YAML reserves at the start of a line (no
 * scalar or collection may hold one there), and each is measured by a pass over its tokens that
 * stops as soon as it passes the limit.
 */

/** One document's text and where it starts in the stream. */
export interface SourceDocument {
  readonly text: string;
  /** Zero-based line of the stream where the document's text starts. */
  readonly firstLine: number;
  /** False when it holds only comments, directives, blank lines and markers. */
  readonly hasContent: boolean;
}

const DOCUMENT_START = /^---(?:\s|$)/;
const DOCUMENT_END = /^\.\.\.(?:\s|$)/;
const NO_CONTENT = /^\s*(?:#.*)?$/;

const isContent = (line: string): boolean => !NO_CONTENT.test(line) && !line.startsWith('%');

/**
 * Splits a stream into its documents: comments and directives before a `---` belong to the
 * document it starts; an implicit document (no `---`) counts only when it has content.
 */
export const splitYamlDocuments = (stream: string): SourceDocument[] => {
  const text = stream.startsWith('\uFEFF') ? stream.slice(1) : stream;
  const documents: SourceDocument[] = [];
  let lines: string[] = [];
  let firstLine = 0;
  let explicit = false;
  let hasContent = false;
  const finish = (nextLine: number): void => {
    if (explicit || hasContent) documents.push({ text: lines.join('\n'), firstLine, hasContent });
    lines = [];
    firstLine = nextLine;
    explicit = false;
    hasContent = false;
  };
  const all = text.split('\n');
  all.forEach((line, index) => {
    if (DOCUMENT_START.test(line)) {
      if (explicit || hasContent) finish(index);
      else if (lines.length === 0) firstLine = index;
      explicit = true;
      lines.push(line);
      if (isContent(line.slice(3))) hasContent = true;
      return;
    }
    lines.push(line);
    if (DOCUMENT_END.test(line)) {
      if (explicit || hasContent) finish(index + 1);
      return;
    }
    if (isContent(line)) hasContent = true;
  });
  finish(all.length);
  return documents;
};

/** True when the stream holds no document with content (empty, blank, comments, markers). */
export const hasNoDocuments = (stream: string): boolean =>
  splitYamlDocuments(stream).every((document) => !document.hasContent);

/** The lexer's zero-width markers (document, scalar, flow end, byte order mark). */
const MARKERS = new Set(['\u0002', '\u001f', '\u0018', '\uFEFF']);
const BLANK = /^[\t ]+$/;

export interface DocumentMeasure {
  /** How deeply it nests; `maxDepth + 1` when it goes deeper. */
  readonly depth: number;
  /** Its tokens other than blanks, line breaks and comments; past `maxTokens`, `maxTokens + 1`. */
  readonly tokens: number;
}

/**
 * How deeply a document nests and how many tokens it has, read with the yaml library's own
 * lexer (iterative: no recursion, no tree), so that quotes, comments and block scalars are told
 * apart exactly as the parser will. Stops as soon as either passes its limit.
 *
 * Depth counts flow collections (`[`, `{`) plus block collections (each deeper indentation, and
 * each compact `- `, `? `, `: ` on one line). It may count a scalar as one more level and a block
 * sequence that shares its parent key's column as none, so it stays within a factor of two of
 * the parser's depth. Tokens are what the parser's time and memory grow with: 4 MiB of
 * `kubectl get pipelines -o yaml` has about 390,000, 4 MiB of `[1,1,1,...` four million.
 */
export const measureYamlDocument = (
  text: string,
  maxDepth: number,
  maxTokens: number,
): DocumentMeasure => {
  const blocks: number[] = [];
  let flow = 0;
  let column = 0;
  let lineStart = true;
  let afterIndicator = false;
  let depth = 0;
  let tokens = 0;
  for (const token of new Lexer().lex(text)) {
    if (MARKERS.has(token)) continue;
    if (token === '\n' || token === '\r\n') {
      column = 0;
      lineStart = true;
      afterIndicator = false;
      continue;
    }
    const tokenColumn = column;
    const newline = token.lastIndexOf('\n');
    column = newline === -1 ? column + token.length : token.length - newline - 1;
    if (BLANK.test(token) || token.startsWith('#')) continue;
    tokens += 1;
    if (flow === 0 && (lineStart || afterIndicator)) {
      if (lineStart) {
        while (blocks.length > 0 && (blocks.at(-1) as number) > tokenColumn) blocks.pop();
      }
      if (blocks.length === 0 || (blocks.at(-1) as number) < tokenColumn) blocks.push(tokenColumn);
    }
    lineStart = newline !== -1 && newline === token.length - 1;
    afterIndicator = flow === 0 && (token === '-' || token === '?' || token === ':');
    if (token === '[' || token === '{') flow += 1;
    else if ((token === ']' || token === '}') && flow > 0) flow -= 1;
    depth = Math.max(depth, blocks.length + flow);
    if (depth > maxDepth || tokens > maxTokens) break;
  }
  return { depth: Math.min(depth, maxDepth + 1), tokens: Math.min(tokens, maxTokens + 1) };
};
