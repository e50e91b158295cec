import { DEAD_LETTERS_USAGE, deadLettersCommand } from '../functions/cli/dead-letters-command.ts';
import { KEYS_USAGE, keysCommand } from '../functions/cli/keys-command.ts';
import { SERVE_USAGE, serveCommand } from '../functions/cli/serve-command.ts';
import { SIGN_USAGE, signCommand } from '../functions/cli/sign-command.ts';
import { STATUS_USAGE, statusCommand } from '../functions/cli/status-command.ts';
import { SYNC_USAGE, syncCommand } from '../functions/cli/sync-command.ts';
import { isPromoterError } from '../functions/core/errors.ts';

/**
 * The `promoter` command line: a thin dispatcher over the commands in functions/cli. A command
 * that resolves to a number sets the exit status; one that throws exits with 2.
 */
const USAGE = `usage: promoter <command> [options]

${SERVE_USAGE}

${SYNC_USAGE}

${STATUS_USAGE}

${DEAD_LETTERS_USAGE}

${SIGN_USAGE}

${KEYS_USAGE}`;

const commands: Record<string, (argv: string[]) => unknown> = {
  serve: serveCommand,
  sync: syncCommand,
  status: statusCommand,
  'dead-letters': deadLettersCommand,
  sign: signCommand,
  keys: keysCommand,
};

const [name, ...argv] = process.argv.slice(2);
const command = name === undefined ? undefined : commands[name];
if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
  console.log(USAGE);
} else if (command === undefined) {
  console.error(`promoter: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
  process.exitCode = 2;
} else {
  try {
    const status = await command(argv);
    if (typeof status === 'number') process.exitCode = status;
  } catch (error) {
    const code = isPromoterError(error) ? ` [${error.code}]` : '';
    console.error(
      `promoter ${name}:${code} ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exitCode = 2;
  }
}
