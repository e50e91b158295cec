import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  describeParseError,
  portNumber,
  UsageError,
  wantsHelp,
  wholeNumber,
} from '../../functions/cli/command-line.ts';
import {
  DEFAULT_SECRETS_FILE,
  parsePromotingReasons,
  SECRETS_TEMPLATE_FILE,
  serveSettingsFrom,
} from '../../functions/cli/serve-command.ts';

/** The command line's shared parts: parse errors in words, option values, serve's settings. */
const USAGE = 'promoter serve [--port 8080] [--host 127.0.0.1] [-f FILE] [--json]';

const parseError = (args: string[]): unknown => {
  try {
    parseArgs({
      args,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        file: { type: 'string', short: 'f' },
        json: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (error) {
    return error;
  }
  throw new Error(`expected ${args.join(' ')} to be refused`);
};

const usageMessage = (act: () => unknown): string => {
  try {
    act();
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error('expected a UsageError');
};

describe('describeParseError', () => {
  it('tells each parseArgs mistake in words, with the option a misspelt one likely means', () => {
    // Act
    const messages = [
      ['--prot', '8080'],
      ['--port'],
      ['--port', '--host', 'x'],
      ['-f'],
      ['--json=yes'],
      ['extra'],
      ['-z'],
    ].map((args) => describeParseError(parseError(args), USAGE));

    // Assess
    expect(messages).toEqual([
      'unknown option --prot (did you mean --port?)',
      '--port needs a value (--port VALUE or --port=VALUE)',
      '--port needs a value (--port VALUE or --port=VALUE)',
      '--file needs a value (--file VALUE or --file=VALUE)',
      '--json takes no value',
      'unexpected argument "extra"',
      'unknown option -z',
    ]);
  });

  it('leaves other errors alone', () => {
    // Act
    const described = describeParseError(new Error('ENOENT'), USAGE);

    // Assess
    expect(described).toBeUndefined();
  });
});

describe('option values', () => {
  it('says what a number or a port should have been', () => {
    // Act
    const messages = [
      () => wholeNumber('15m', '--max-event-age', { minimum: 1, unit: 'seconds' }),
      () => wholeNumber('0', '--max-event-age', { minimum: 1, unit: 'seconds' }),
      () => wholeNumber('-3', '--git-max-pack-mb', { minimum: 1, unit: 'MiB' }),
      () => portNumber('99999'),
      () => portNumber('http'),
    ].map(usageMessage);

    // Assess
    expect(messages).toEqual([
      '--max-event-age: expected a whole number of seconds 1 or more, got "15m"',
      '--max-event-age: expected a whole number of seconds 1 or more, got "0"',
      '--git-max-pack-mb: expected a whole number of MiB 1 or more, got "-3"',
      '--port: expected a port number from 0 to 65535 (0: any free port), got "99999"',
      '--port: expected a port number from 0 to 65535 (0: any free port), got "http"',
    ]);
    expect([wholeNumber('900', '--max-event-age', { minimum: 1 }), portNumber('0')]).toEqual([
      900, 0,
    ]);
  });

  it('finds --help and -h before the end of the options only', () => {
    // Act
    const found = [['list', '--help'], ['-h'], ['--', '--help'], ['list']].map(wantsHelp);

    // Assess
    expect(found).toEqual([true, true, false, false]);
  });
});

describe('serve settings', () => {
  it('takes promoting reasons, comma-separated, and refuses those that never promote', () => {
    // Act
    const reasons = parsePromotingReasons('UpgradeSucceeded, InstallSucceeded,,UpgradeSucceeded');
    const refused = [
      () => parsePromotingReasons('UpgradeSucceeded,RollbackSucceeded'),
      () => parsePromotingReasons('UninstallSucceeded'),
      () => parsePromotingReasons(' , '),
      () => parsePromotingReasons('Upgrade Succeeded'),
    ].map(usageMessage);

    // Assess
    expect(reasons).toEqual(['UpgradeSucceeded', 'InstallSucceeded']);
    expect(refused).toEqual([
      '--promoting-reasons: RollbackSucceeded reports a release going back or away, which is never promoted: leave it out',
      '--promoting-reasons: UninstallSucceeded reports a release going back or away, which is never promoted: leave it out',
      '--promoting-reasons: expected one or more Flux event reasons, comma-separated (e.g. UpgradeSucceeded,InstallSucceeded)',
      '--promoting-reasons: "Upgrade Succeeded" is not a Flux event reason (a word such as UpgradeSucceeded)',
    ]);
  });

  it('reads the template secrets file only while there is no real one, and checks every value first', () => {
    // Prepare
    const only = (files: string[]) => (path: string) => files.includes(path);

    // Act
    const withTemplate = serveSettingsFrom([], only([SECRETS_TEMPLATE_FILE]));
    const withReal = serveSettingsFrom([], only([SECRETS_TEMPLATE_FILE, DEFAULT_SECRETS_FILE]));
    const given = serveSettingsFrom(
      ['--secrets', 's.json', '--port', '0', '--promoting-reasons', 'UpgradeSucceeded'],
      only([]),
    );

    // Assess
    expect(withTemplate.settings.secretsPath).toBe(SECRETS_TEMPLATE_FILE);
    expect(withReal.settings.secretsPath).toBe(DEFAULT_SECRETS_FILE);
    expect(given).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      settings: { secretsPath: 's.json', promotingReasons: ['UpgradeSucceeded'] },
    });
  });
});
