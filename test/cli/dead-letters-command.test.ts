import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbPromotionStateStore } from '../../functions/adapters/dynamodb-promotion-state-store.ts';
import {
  databaseFile,
  openEmbeddedDatabase,
} from '../../functions/adapters/embedded/embedded-database.ts';
import { EmbeddedJobQueue } from '../../functions/adapters/embedded/embedded-job-queue.ts';
import { deadLettersCommand } from '../../functions/cli/dead-letters-command.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { parsePromotionJob } from '../../functions/core/promotion-job.ts';
import { createTestTable, useMotoDynamoDb } from '../support/aws-test-resources.ts';
import {
  createQueuePair,
  drainQueue,
  type QueuePair,
  sendJob,
} from '../support/dead-letter-queues.ts';
import { testJob } from '../support/jobs.ts';
import { awsClientConfig } from '../support/moto-server.ts';
import { type PromoterRun, runPromoter } from '../support/promoter-cli.ts';

/**
 * `promoter dead-letters` as a user runs it (a child process): on AWS against moto's SQS (and
 * DynamoDB for the failures), with static credentials from the environment, and on a serve
 * database.
 */

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'promoter-dead-letters-cli-'));
});

const promoter = (args: string[]): Promise<PromoterRun> =>
  runPromoter(args, {
    env: {
      HOME: home,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(home, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    },
  });

/** The SDK's warning about Node 20, which is not the command's output. */
const withoutNodeWarning = (stderr: string): string =>
  stderr.includes('NodeVersionSupportWarning') ? '' : stderr;

describe('promoter dead-letters on AWS (moto)', () => {
  const moto = useMotoDynamoDb();
  let client: SQSClient;
  let endpoint: string;

  beforeAll(() => {
    endpoint = inject('motoEndpoint');
    client = new SQSClient(awsClientConfig(endpoint));
  });
  afterAll(() => client.destroy());

  const target = (queues: QueuePair): string[] => [
    '--queue-url',
    queues.jobQueueUrl,
    '--dead-letter-queue-url',
    queues.deadLetterQueueUrl,
    '--endpoint-url',
    endpoint,
  ];

  it('lists the dead letters as a table, failures from the table, and as JSON', async () => {
    // Prepare
    const queues = await createQueuePair(client);
    const table = await createTestTable(moto.client);
    const failed = testJob('staging', '6.5.4');
    const unknown = testJob('prod', '6.5.3');
    await new DynamoDbPromotionStateStore(moto.documents, table).putPromotion({
      pipeline: failed.pipeline,
      environment: 'staging',
      revision: '6.5.4',
      state: 'dead-lettered',
      jobId: failed.id,
      from: 'dev',
      eventTimestamp: failed.event.timestamp,
      updatedAt: '2026-11-02T10:20:00.000Z',
      failure: { code: 'GITHUB_UNAVAILABLE', message: 'GitHub answered 503\nthree times' },
    });
    await sendJob(client, queues.deadLetterQueueUrl, failed);
    await sendJob(client, queues.deadLetterQueueUrl, unknown);

    // Act
    const run = await promoter(['dead-letters', 'list', ...target(queues), '--table', table]);
    const json = await promoter(['dead-letters', 'list', ...target(queues), '--json']);

    // Assess
    expect(withoutNodeWarning(run.stderr)).toBe('');
    expect(run.code).toBe(0);
    const [header, ...rows] = run.stdout.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'JOB ID',
      'PIPELINE',
      'TO',
      'REVISION',
      'RECEIVES',
      'FAILURE',
      'MESSAGE',
    ]);
    expect(rows.map((row) => row.split(/\s{2,}/)).sort()).toEqual(
      [
        [
          failed.id,
          'flux-system/podinfo',
          'staging',
          '6.5.4',
          '0',
          'GITHUB_UNAVAILABLE',
          'GitHub answered 503 three times',
        ],
        [
          unknown.id,
          'flux-system/podinfo',
          'prod',
          '6.5.3',
          '0',
          'UNKNOWN',
          `see the worker logs for job ${unknown.id}`,
        ],
      ].sort(),
    );
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout) as { job: { id: string }; failure: { code: string } }[];
    expect(listed.map((deadLetter) => deadLetter.job.id).sort()).toEqual(
      [failed.id, unknown.id].sort(),
    );
  });

  it('retries one job by id, and exits 1 naming an id it does not find', async () => {
    // Prepare
    const queues = await createQueuePair(client);
    const job = testJob('staging', '6.5.4');
    await sendJob(client, queues.deadLetterQueueUrl, job);

    // Act
    const retried = await promoter(['dead-letters', 'retry', job.id, ...target(queues)]);
    const missing = await promoter(['dead-letters', 'retry', 'no-such-job', ...target(queues)]);

    // Assess
    expect(retried.code).toBe(0);
    expect(retried.stdout).toBe(`retried ${job.id}\n`);
    const back = await drainQueue(client, queues.jobQueueUrl);
    expect(back.map((message) => parsePromotionJob(message.Body ?? '').id)).toEqual([job.id]);
    expect(back[0]?.Attributes?.MessageGroupId).toBe('flux-system/podinfo/staging');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no dead letter with id "no-such-job"');
  });

  it('retries all and prints what went back', async () => {
    // Prepare
    const queues = await createQueuePair(client);
    const jobs = [testJob('staging', '6.5.4'), testJob('prod', '6.5.3')];
    for (const job of jobs) await sendJob(client, queues.deadLetterQueueUrl, job);

    // Act
    const run = await promoter(['dead-letters', 'retry', '--all', ...target(queues)]);
    const after = await promoter(['dead-letters', 'list', ...target(queues)]);

    // Assess
    expect(run.code).toBe(0);
    const [summary, ...lines] = run.stdout.trimEnd().split('\n');
    expect(summary).toBe(`retried 2 dead letters from ${queues.deadLetterQueueUrl}`);
    expect(lines.sort()).toEqual(
      [
        `  ${jobs[0]?.id}  flux-system/podinfo -> staging 6.5.4`,
        `  ${jobs[1]?.id}  flux-system/podinfo -> prod 6.5.3`,
      ].sort(),
    );
    expect(after.stdout).toBe(`no dead letters in ${queues.deadLetterQueueUrl}\n`);
    expect(await drainQueue(client, queues.jobQueueUrl)).toHaveLength(2);
  });
});

describe('promoter dead-letters on a serve database', () => {
  it('lists a dead letter with its failure and retries it', async () => {
    // Prepare: a job dead-lettered by serve's queue on its first, permanent, failure.
    const dataDir = await mkdtemp(join(tmpdir(), 'promoter-dead-letters-data-'));
    const db = openEmbeddedDatabase(databaseFile(dataDir));
    const queue = new EmbeddedJobQueue(db, { logger: silentLogger, maxReceives: 1 });
    const job = testJob('staging', '6.5.4');
    await queue.enqueue(job);
    queue.process(async () => {
      throw new PromoterError('NO_MARKER', 'no $promotion marker for staging');
    });
    await queue.drain();
    await queue.stop();
    db.close();

    // Act
    const listed = await promoter(['dead-letters', 'list', '--data', dataDir, '--json']);
    const retried = await promoter(['dead-letters', 'retry', '--all', '--data', dataDir]);

    // Assess
    expect(withoutNodeWarning(listed.stderr)).toBe('');
    expect(JSON.parse(listed.stdout)).toMatchObject([
      { id: job.id, job: { id: job.id }, failure: { code: 'NO_MARKER' } },
    ]);
    expect(retried.stdout).toBe(
      `retried 1 dead letter from ${dataDir}\n  ${job.id}  flux-system/podinfo -> staging 6.5.4\n`,
    );
  });

  it('refuses a directory with no serve database', async () => {
    // Prepare
    const dataDir = await mkdtemp(join(tmpdir(), 'promoter-dead-letters-empty-'));

    // Act
    const run = await promoter(['dead-letters', 'list', '--data', dataDir]);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no serve database');
  });
});

describe('promoter dead-letters usage', () => {
  it('prints its usage with --help and exits 0', async () => {
    // Act
    const run = await promoter(['dead-letters', '--help']);

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('promoter dead-letters list|retry [ID|--all]');
  });

  it('exits 2 with the message of a bad flag', async () => {
    // Act
    const run = await promoter(['dead-letters', 'list', '--queue', 'x']);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      'promoter dead-letters: unknown option --queue\n(promoter dead-letters --help shows the usage)\n',
    );
  });

  it.each([
    [
      ['list', '--queue-url', 'https://sqs.eu-west-1.amazonaws.com/1/q.fifo'],
      '--dead-letter-queue-url',
    ],
    [['list', '--data', 'd', '--queue-url', 'u'], '--data and --queue-url'],
    [['list', '--table', 't'], '--table is for the AWS target'],
    [['retry'], 'retry needs a job ID or --all'],
    [['retry', 'id', '--all'], 'not both'],
    [['list', '--all'], '--all is for retry'],
    [['list', 'extra'], 'unexpected argument "extra"'],
    [['purge'], 'unknown action "purge"'],
    [
      ['list', '--queue-url', 'not a url', '--dead-letter-queue-url', 'x'],
      '--queue-url: expected a URL',
    ],
  ])('refuses %j, naming %s', async (args, named) => {
    // Act
    const refused = deadLettersCommand(args);

    // Assess
    await expect(refused).rejects.toThrow(named);
  });
});
