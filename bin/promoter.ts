import { readFileSync } from 'node:fs';
import { describeParseError, UsageError, wantsHelp } from '../functions/cli/command-line.ts';
import { DEAD_LETTERS_USAGE, deadLettersCommand } from '../functions/cli/dead-letters-command.ts';
import {
  APPROVE_USAGE,
  approveCommand,
  FREEZE_USAGE,
  freezeCommand,
  UNFREEZE_USAGE,
  unfreezeCommand,
} from '../functions/cli/gate-commands.ts';
import { KEYS_USAGE, keysCommand } from '../functions/cli/keys-command.ts';
import { SERVE_USAGE, serveCommand } from '../functions/cli/serve-command.ts';
import { SIGN_USAGE, signCommand } from '../functions/cli/sign-command.ts';
import { STATUS_USAGE, statusCommand } from '../functions/cli/status-command.ts';
import { SYNC_USAGE, syncCommand } from '../functions/cli/sync-command.ts';
import { UI_USAGE, uiCommand } from '../functions/cli/ui-command.ts';
import { isPromoterError } from '../functions/core/errors.ts';

/**
 * The `promoter` command line: a thin dispatcher over the commands in functions/cli. A command
 * that resolves to a number sets the exit status; one that throws exits with 2. `--help` (or
 * `-h`) after any command or subcommand prints that command's usage; a mistake on the command
 * line is told in words, with the command's usage a `--help` away.
 */
interface Command {
  readonly run: (argv: string[]) => unknown;
  readonly usage: string;
}

const commands: Record<string, Command> = {
  serve: { run: serveCommand, usage: SERVE_USAGE },
  sync: { run: syncCommand, usage: SYNC_USAGE },
  status: { run: statusCommand, usage: STATUS_USAGE },
  ui: { run: uiCommand, usage: UI_USAGE },
  approve: { run: approveCommand, usage: APPROVE_USAGE },
  freeze: { run: freezeCommand, usage: FREEZE_USAGE },
  unfreeze: { run: unfreezeCommand, usage: UNFREEZE_USAGE },
  'dead-letters': { run: deadLettersCommand, usage: DEAD_LETTERS_USAGE },
  sign: { run: signCommand, usage: SIGN_USAGE },
  keys: { run: keysCommand, usage: KEYS_USAGE },
};

/** package.json's version: one directory up from bin/promoter.ts and from dist/promoter.mjs. */
const version = (): string =>
  (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

const USAGE = `usage: promoter <command> [options]     (promoter <command> --help: one command)
       promoter --version

${Object.values(commands)
  .map((command) => command.usage)
  .join('\n\n')}`;

const [name, ...argv] = process.argv.slice(2);
const command = name === undefined ? undefined : commands[name];
if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
  const topic = name === 'help' && argv[0] !== undefined ? commands[argv[0]] : undefined;
  console.log(topic?.usage ?? USAGE);
} else if (name === '--version' || name === '-V' || name === 'version') {
  console.log(`promoter ${version()}`);
} else if (command === undefined) {
  console.error(
    `promoter: unknown command ${JSON.stringify(name)}: expected one of ${Object.keys(commands).join(', ')} (promoter --help shows them)`,
  );
  process.exitCode = 2;
} else if (wantsHelp(argv)) {
  console.log(command.usage);
} else {
  try {
    const status = await command.run(argv);
    if (typeof status === 'number') process.exitCode = status;
  } catch (error) {
    const usageMistake =
      describeParseError(error, command.usage) ??
      (error instanceof UsageError ? error.message : undefined);
    const code = isPromoterError(error) ? ` [${error.code}]` : '';
    console.error(
      usageMistake === undefined
        ? `promoter ${name}:${code} ${error instanceof Error ? error.message : String(error)}`
        : `promoter ${name}: ${usageMistake}\n(promoter ${name} --help shows the usage)`,
    );
    process.exitCode = 2;
  }
}
