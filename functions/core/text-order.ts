// The one order of ids and names in lists and answers: by Unicode code point, which is how
// DynamoDB orders a string sort key (UTF-8 bytes) and SQLite's BINARY collation orders text,
// so that a list sorted here reads the same as one a store returns. Not localeCompare (it
// depends on the machine's locale) and not `<` (UTF-16 code units put U+10000 and above
// before U+E000–U+FFFF).

/**
 * Negative, zero or positive as `a` sorts before, with or after `b` by code point.
 *
 * @example
 * ['staging', 'dev', 'Prod'].sort(compareText); // ['Prod', 'dev', 'staging']
 * compareText('\u{ffff}', '\u{10000}') < 0; // true (`'\u{ffff}' < '\u{10000}'` is false)
 */
export const compareText = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index += 1) {
    if (a.charCodeAt(index) !== b.charCodeAt(index)) {
      // At the first unit that differs, a high surrogate stands for its whole code point.
      return (a.codePointAt(index) ?? 0) - (b.codePointAt(index) ?? 0);
    }
  }
  return a.length - b.length;
};
