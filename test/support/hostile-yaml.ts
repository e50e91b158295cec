/**
 * The hostile documents of issue 9 item 3, built in the test: each is one YAML document that
 * the parser must never see whole.
 */

/** 400 KB of `[`: before the depth bound it aborted the process with a fatal out-of-memory. */
export const NESTING_BOMB = '['.repeat(400_000);

/** The same through block indentation: `- - - ... x` on one line. */
export const COMPACT_NESTING_BOMB = `${'- '.repeat(200_000)}x`;

/** Billion laughs: nine levels of nine aliases, 9^9 `lol`s once expanded. */
export const BILLION_LAUGHS = [
  'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
  ...Array.from(
    { length: 9 },
    (_, index) =>
      `a${index + 1}: &a${index + 1} [${Array.from({ length: 9 }, () => `*a${index}`).join(', ')}]`,
  ),
].join('\n');

/** Invalid YAML: an unterminated flow sequence. */
export const INVALID_YAML = 'apiVersion: [1, 2';

/** Documents joined into one multi-document stream. */
export const documents = (...texts: string[]): string => texts.join('\n---\n');
