import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDbPromotionStateStore } from '../adapters/dynamodb-promotion-state-store.ts';
import { createDocumentClient } from '../adapters/dynamodb-table.ts';
import { SqsDeadLetters } from '../adapters/sqs-dead-letters.ts';
import { pipelineId } from '../core/pipeline.ts';
import type { DeadLetter, DeadLetters } from '../core/ports.ts';
import { textTable } from './text-table.ts';

export const DEAD_LETTERS_USAGE = `promoter dead-letters list|retry [ID|--all] [--json]
    [--data DIR | --queue-url URL --dead-letter-queue-url URL [--table TABLE] [--region REGION]]
  Shows the promotion jobs whose receives are spent (list: job id, pipeline, target environment,
  revision, receives, failure code and message), or puts them back on the job queue with their
  receives reset (retry ID, the job id list shows; retry --all).
  --data DIR  promoter serve's database (default .promoter).
  --queue-url, --dead-letter-queue-url  the stack's JobQueueUrl and DeadLetterQueueUrl outputs;
              AWS credentials from the default chain, REGION from --region, else the queue URL,
              else AWS_REGION. --table TABLE (the stack's TableName) adds each failure from its
              promotion record; without it the failure is UNKNOWN. --endpoint-url URL: another
              SQS and DynamoDB endpoint (LocalStack, moto).
  --json      print JSON.
  Exit status: 0 done, 1 no dead letter with that ID, 2 failed.`;

const DEFAULT_DATA_DIR = '.promoter';
const AWS_ONLY_FLAGS = ['table', 'region', 'endpoint-url'] as const;

interface Target {
  readonly deadLetters: DeadLetters;
  /** What the output names: the DLQ's URL or serve's directory. */
  readonly where: string;
  close(): void;
}

const checkedUrl = (value: string, flag: string): string => {
  try {
    return new URL(value).href;
  } catch {
    throw new Error(`${flag}: expected a URL, got ${JSON.stringify(value)}`);
  }
};

/** `https://sqs.eu-west-1.amazonaws.com/…` (or the legacy `eu-west-1.queue.amazonaws.com`). */
const queueUrlRegion = (queueUrl: string): string | undefined => {
  const host = new URL(queueUrl).hostname;
  return (
    /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ??
    /^([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?$/.exec(host)?.[1]
  );
};

interface TargetFlags {
  readonly data?: string | undefined;
  readonly 'queue-url'?: string | undefined;
  readonly 'dead-letter-queue-url'?: string | undefined;
  readonly table?: string | undefined;
  readonly region?: string | undefined;
  readonly 'endpoint-url'?: string | undefined;
}

const openTarget = async (flags: TargetFlags): Promise<Target> => {
  const queueFlag = flags['queue-url'] ?? flags['dead-letter-queue-url'];
  if (queueFlag === undefined) {
    const awsOnly = AWS_ONLY_FLAGS.find((flag) => flags[flag] !== undefined);
    if (awsOnly !== undefined) throw new Error(`--${awsOnly} is for the AWS target (--queue-url)`);
    const dataDir = flags.data ?? DEFAULT_DATA_DIR;
    // Loaded on this path only: serve's wiring is not needed for the AWS target.
    const { openEmbeddedDeadLetters } = await import('../wiring/serve.ts');
    const opened = openEmbeddedDeadLetters(dataDir);
    return { deadLetters: opened.deadLetters, where: dataDir, close: () => opened.close() };
  }
  if (flags.data !== undefined) {
    throw new Error('--data and --queue-url name two targets: give one of them');
  }
  if (flags['queue-url'] === undefined) {
    throw new Error('--queue-url URL (the job queue) is required with --dead-letter-queue-url');
  }
  if (flags['dead-letter-queue-url'] === undefined) {
    throw new Error('--dead-letter-queue-url URL is required with --queue-url');
  }
  const jobQueueUrl = checkedUrl(flags['queue-url'], '--queue-url');
  const deadLetterQueueUrl = checkedUrl(flags['dead-letter-queue-url'], '--dead-letter-queue-url');
  const endpoint =
    flags['endpoint-url'] === undefined
      ? undefined
      : checkedUrl(flags['endpoint-url'], '--endpoint-url');
  const region = flags.region ?? queueUrlRegion(jobQueueUrl);
  const config = {
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint }),
  };
  const sqs = new SQSClient(config);
  const dynamodb = flags.table === undefined ? undefined : new DynamoDBClient(config);
  const deadLetters = new SqsDeadLetters(
    sqs,
    { jobQueueUrl, deadLetterQueueUrl },
    dynamodb === undefined || flags.table === undefined
      ? {}
      : {
          promotions: new DynamoDbPromotionStateStore(createDocumentClient(dynamodb), flags.table),
        },
  );
  return {
    deadLetters,
    where: deadLetterQueueUrl,
    close: () => {
      sqs.destroy();
      dynamodb?.destroy();
    },
  };
};

const HEADERS = ['JOB ID', 'PIPELINE', 'TO', 'REVISION', 'RECEIVES', 'FAILURE', 'MESSAGE'];

const orDash = (text: string): string => (text === '' ? '-' : text);

/** One row per dead letter; a body that was no job shows dashes where its job would be. */
export const formatDeadLettersTable = (deadLetters: readonly DeadLetter[]): string => {
  const rows = deadLetters.map(({ id, job, failure, receiveCount }) => [
    id,
    job === undefined ? '-' : pipelineId(job.pipeline),
    orDash(job?.to ?? ''),
    orDash(job?.revision ?? ''),
    String(receiveCount),
    failure.code,
    failure.message.replace(/\s+/g, ' '),
  ]);
  return textTable(HEADERS, rows).join('\n');
};

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

const plural = (count: number): string => `${count} dead letter${count === 1 ? '' : 's'}`;

/** `promoter dead-letters`: resolves to the exit status (0 done, 1 no such dead letter). */
export const deadLettersCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      'queue-url': { type: 'string' },
      'dead-letter-queue-url': { type: 'string' },
      table: { type: 'string' },
      region: { type: 'string' },
      'endpoint-url': { type: 'string' },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    print(DEAD_LETTERS_USAGE);
    return 0;
  }
  const [action, id, ...extra] = positionals;
  if (action !== 'list' && action !== 'retry') {
    throw new Error(
      action === undefined
        ? 'expected list or retry'
        : `unknown action ${JSON.stringify(action)}: expected list or retry`,
    );
  }
  const unexpected = action === 'list' ? id : extra[0];
  if (unexpected !== undefined)
    throw new Error(`unexpected argument ${JSON.stringify(unexpected)}`);
  if (action === 'list' && values.all) throw new Error('--all is for retry');
  if (action === 'retry' && (id === undefined) === !values.all) {
    throw new Error(
      values.all ? 'retry takes a job ID or --all, not both' : 'retry needs a job ID or --all',
    );
  }

  const target = await openTarget(values);
  try {
    if (action === 'list') {
      const deadLetters = await target.deadLetters.list();
      if (values.json) print(JSON.stringify(deadLetters, null, 2));
      else if (deadLetters.length === 0) print(`no dead letters in ${target.where}`);
      else print(formatDeadLettersTable(deadLetters));
      return 0;
    }
    if (id !== undefined) {
      if (!(await target.deadLetters.retry(id))) {
        process.stderr.write(
          `promoter dead-letters: no dead letter with id ${JSON.stringify(id)} in ${target.where} (promoter dead-letters list shows them)\n`,
        );
        return 1;
      }
      print(values.json ? JSON.stringify({ retried: [id] }) : `retried ${id}`);
      return 0;
    }
    // Listed first, to say which jobs went back; the count is what the retry moved.
    const before = await target.deadLetters.list();
    const retried = await target.deadLetters.retryAll();
    if (values.json) {
      print(JSON.stringify({ retried, deadLetters: before }, null, 2));
    } else {
      print(`retried ${plural(retried)} from ${target.where}`);
      for (const { id, job } of before) {
        print(
          job === undefined
            ? `  ${id}  (not a promotion job)`
            : `  ${id}  ${pipelineId(job.pipeline)} -> ${job.to} ${job.revision}`,
        );
      }
    }
    return 0;
  } finally {
    target.close();
  }
};
