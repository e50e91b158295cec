import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { signBody } from '../core/signature.ts';
import { readOptionFile, UsageError } from './command-line.ts';

export const SIGN_USAGE = `promoter sign [--key KEY | --key-file FILE] [--algorithm sha256|sha384|sha512] BODY_FILE|-
  Prints the X-Signature header Flux's generic-hmac Provider would send with this body.
  The key may also come from PROMOTER_HMAC_KEY (safer than a command-line argument).`;

const ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const;

export const signCommand = async (argv: string[]): Promise<void> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      key: { type: 'string' },
      'key-file': { type: 'string' },
      algorithm: { type: 'string', default: 'sha256' },
    },
    allowPositionals: true,
    strict: true,
  });
  const algorithm = ALGORITHMS.find((name) => name === values.algorithm);
  if (algorithm === undefined) {
    throw new UsageError(
      `--algorithm: expected one of ${ALGORITHMS.join(', ')}, got ${JSON.stringify(values.algorithm)}`,
    );
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) {
    throw new UsageError('expected exactly one body file (or - for standard input)');
  }
  const key =
    values.key ??
    (values['key-file'] === undefined
      ? undefined
      : (await readOptionFile(values['key-file'], '--key-file'))
          .toString('utf8')
          .replace(/\r?\n$/, '')) ??
    process.env.PROMOTER_HMAC_KEY;
  if (key === undefined || key === '') {
    throw new UsageError('no key: pass --key, --key-file or set PROMOTER_HMAC_KEY');
  }
  const body = file === '-' ? readFileSync(0) : await readOptionFile(file, 'body file');
  process.stdout.write(`X-Signature: ${signBody(body, key, algorithm)}\n`);
};
