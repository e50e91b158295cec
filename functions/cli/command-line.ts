import { readFile } from 'node:fs/promises';
import { closestName } from '../core/pipeline-settings.ts';

/**
 * What every `promoter` command shares on its command line: `--help`, the usage errors of
 * node:util `parseArgs` told in words (with the option meant when one is misspelt), and the
 * checks of option values that say what was expected.
 */

/** A mistake on the command line: shown with a pointer to the command's `--help`, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `--help` or `-h` anywhere before a `--` (which ends the options). */
export const wantsHelp = (argv: readonly string[]): boolean => {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
};

/** The long options a usage text names (`--port`, `--max-event-age`, …). */
export const usageOptions = (usage: string): string[] => [
  ...new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? []),
];

const PARSE_ARGS_CODES = new Set([
  'ERR_PARSE_ARGS_UNKNOWN_OPTION',
  'ERR_PARSE_ARGS_INVALID_OPTION_VALUE',
  'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL',
]);

/**
 * A `parseArgs` error as a sentence that names the option and what it expected, or undefined
 * when `error` is not one. `usage` gives the options to suggest for a misspelt one.
 */
export const describeParseError = (error: unknown, usage: string): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof Error) || typeof code !== 'string' || !PARSE_ARGS_CODES.has(code)) {
    return undefined;
  }
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return `unexpected argument ${JSON.stringify(quoted)}`;
  }
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const meant = quoted.startsWith('--')
      ? closestName(
          quoted.slice(2),
          usageOptions(usage).map((option) => option.slice(2)),
        )
      : undefined;
    return `unknown option ${quoted}${meant === undefined ? '' : ` (did you mean --${meant}?)`}`;
  }
  // "Option '--port <value>' argument missing", "... argument is ambiguous" (the next argument
  // starts with a dash), "Option '--json' does not take an argument".
  const option = quoted.replace(/ <value>$/, '').replace(/^-\w, /, '');
  if (/does not take an argument/.test(error.message)) return `${option} takes no value`;
  return `${option} needs a value (${option} VALUE or ${option}=VALUE)`;
};

/**
 * A whole number option value at least `minimum` (and at most `maximum`), in `unit`.
 *
 * @example
 * wholeNumber('900', '--max-event-age', { minimum: 1, unit: 'seconds' }); // 900
 * wholeNumber('15m', '--max-event-age', { minimum: 1, unit: 'seconds' }); // throws UsageError
 */
export const wholeNumber = (
  value: string,
  flag: string,
  limits: { readonly minimum: number; readonly maximum?: number; readonly unit?: string },
): number => {
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  const { minimum, maximum, unit } = limits;
  if (
    Number.isSafeInteger(number) &&
    number >= minimum &&
    (maximum === undefined || number <= maximum)
  ) {
    return number;
  }
  const range = maximum === undefined ? `${minimum} or more` : `from ${minimum} to ${maximum}`;
  throw new UsageError(
    `${flag}: expected a whole number of ${unit ?? 'units'} ${range}, got ${JSON.stringify(value)}`,
  );
};

/** A TCP port to listen on: 0 (any free port) to 65535. */
export const portNumber = (value: string, flag = '--port'): number => {
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (Number.isInteger(number) && number >= 0 && number <= 65_535) return number;
  throw new UsageError(
    `${flag}: expected a port number from 0 to 65535 (0: any free port), got ${JSON.stringify(value)}`,
  );
};

/** `a,b, c`: the non-empty items of a comma-separated option value. */
export const commaList = (value: string): string[] =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** Why a file named on the command line could not be read, in words. */
const fileProblem = (error: unknown): string => {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EISDIR':
      return 'is a directory: expected a file';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    default:
      return `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  }
};

/** The bytes of a file an option names (`-` reads standard input when `stdin` is allowed). */
export const readOptionFile = async (path: string, what: string): Promise<Buffer> => {
  try {
    return await readFile(path);
  } catch (error) {
    throw new UsageError(`${what}: ${path} ${fileProblem(error)}`);
  }
};
