import { SERVE_USAGE, serveCommand } from '../functions/cli/serve-command.ts';
import { SIGN_USAGE, signCommand } from '../functions/cli/sign-command.ts';
import { isPromoterError } from '../functions/core/errors.ts';

/** The `promoter` command line: a thin dispatcher over the commands in functions/cli. */
const USAGE = `usage: promoter <command> [options]

${SERVE_USAGE}

${SIGN_USAGE}`;

const commands: Record<string, (argv: string[]) => unknown> = {
  serve: serveCommand,
  sign: signCommand,
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
    await command(argv);
  } catch (error) {
    const code = isPromoterError(error) ? ` [${error.code}]` : '';
    console.error(
      `promoter ${name}:${code} ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exitCode = 2;
  }
}
