import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { signBody } from '../core/signature.ts';

export const SIGN_USAGE = `promoter sign [--key KEY | --key-file FILE] [--algorithm sha256|sha384|sha512] BODY_FILE|-
  Prints the X-Signature header Flux's generic-hmac Provider would send with this body.
  The key may also come from PROMOTER_HMAC_KEY (safer than a command-line argument).`;

const ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const;

export const signCommand = (argv: string[]): void => {
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
  if (algorithm === undefined)
    throw new Error(`--algorithm: expected one of ${ALGORITHMS.join(', ')}`);
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0)
    throw new Error('expected exactly one body file (or - for standard input)');
  const key =
    values.key ??
    (values['key-file'] === undefined
      ? undefined
      : readFileSync(values['key-file'], 'utf8').replace(/\r?\n$/, '')) ??
    process.env.PROMOTER_HMAC_KEY;
  if (key === undefined || key === '')
    throw new Error('no key: pass --key, --key-file or set PROMOTER_HMAC_KEY');
  const body = readFileSync(file === '-' ? 0 : file);
  process.stdout.write(`X-Signature: ${signBody(body, key, algorithm)}\n`);
};
