import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  databaseFile,
  type EmbeddedDatabase,
  IN_MEMORY,
  openEmbeddedDatabase,
} from '../../functions/adapters/embedded/embedded-database.ts';
import {
  EmbeddedJobQueue,
  type EmbeddedJobQueueOptions,
  type JobProcessor,
} from '../../functions/adapters/embedded/embedded-job-queue.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { type LogPort, silentLogger } from '../../functions/core/logger.ts';
import { type PromotionJob, promotionGroupId } from '../../functions/core/promotion-job.ts';
import { testJob } from '../support/jobs.ts';
import { describeJobQueueContract } from './job-queue.contract.ts';

const T0 = Date.parse('2026-11-02T10:00:00Z');

const transient = (data: Record<string, unknown> = {}): PromoterError =>
  new PromoterError('GITHUB_UNAVAILABLE', 'GitHub answered 502', { retryable: true, data });

const permanent = (): PromoterError =>
  new PromoterError('NO_MARKER', 'no $promotion marker for flux-system:podinfo:staging');

const tick = (ms = 1): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every millisecond; fails after about five seconds rather than hanging. */
const until = async (condition: () => boolean): Promise<void> => {
  for (let polls = 0; !condition(); polls += 1) {
    if (polls > 5_000) throw new Error('condition not met');
    await tick();
  }
};

/** A promise the test opens when it chooses. */
const gate = (): { readonly opened: Promise<void>; readonly open: () => void } => {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
};

/** The queue's `now`, moved by hand: retry times are compared with it, not with the wall. */
const manualClock = (): { time: number; readonly now: () => number } => {
  const clock = { time: T0, now: () => clock.time };
  return clock;
};

interface Row {
  readonly id: string;
  readonly state: string;
  readonly receive_count: number;
  readonly available_at: number;
  readonly failure_code: string | null;
}

const rows = (db: EmbeddedDatabase): Row[] =>
  db
    .prepare<[], Row>(
      'SELECT id, state, receive_count, available_at, failure_code FROM jobs ORDER BY seq',
    )
    .all();

/**
 * Counts the transactions of `db` that commit: those begun outside any other (what nests in
 * one is a savepoint, committed with it).
 */
const countCommits = (db: EmbeddedDatabase): { readonly count: number } => {
  const counter = { count: 0 };
  const transaction = db.transaction.bind(db);
  vi.spyOn(db, 'transaction').mockImplementation(
    (fn) =>
      new Proxy(transaction(fn), {
        apply: (run, self, args) => {
          if (!db.inTransaction) counter.count += 1;
          return Reflect.apply(run, self, args);
        },
      }),
  );
  return counter;
};

const label = (job: PromotionJob): string => `${job.to}@${job.revision}`;

const databases: EmbeddedDatabase[] = [];
const queues: EmbeddedJobQueue[] = [];

const openDatabase = (path: string = IN_MEMORY): EmbeddedDatabase => {
  const db = openEmbeddedDatabase(path);
  databases.push(db);
  return db;
};

const tempDatabaseFile = async (): Promise<string> =>
  databaseFile(await mkdtemp(join(tmpdir(), 'job-queue-')));

const newQueue = (
  db: EmbeddedDatabase,
  options: Partial<EmbeddedJobQueueOptions> = {},
): EmbeddedJobQueue => {
  const queue = new EmbeddedJobQueue(db, { logger: silentLogger, ...options });
  queues.push(queue);
  return queue;
};

/** A processor that records the jobs it gets, in order, and then runs `then`. */
const recording = (processed: string[], then: JobProcessor = async () => {}): JobProcessor => {
  return async (job) => {
    processed.push(label(job));
    await then(job);
  };
};

const spyLogger = () => ({
  ...silentLogger,
  warn: vi.fn<LogPort['warn']>(),
  error: vi.fn<LogPort['error']>(),
});

afterEach(() => {
  // A queue whose job never finishes never stops: its timers are cleared all the same.
  for (const queue of queues.splice(0)) void queue.stop();
  for (const db of databases.splice(0)) if (db.open) db.close();
});

describe('EmbeddedJobQueue', () => {
  describeJobQueueContract('EmbeddedJobQueue', async () => {
    const queue = newQueue(openDatabase());
    return {
      queue,
      consume: async () => {
        const jobs: PromotionJob[] = [];
        queue.process(async (job) => {
          jobs.push(job);
        });
        await queue.drain();
        return jobs;
      },
    };
  });

  it('drops a job id seen within the deduplication window, and takes it again after it', async () => {
    // Prepare
    const clock = manualClock();
    const queue = newQueue(openDatabase(), { deduplicationWindowMs: 60_000, now: clock.now });
    const job = testJob('staging', '6.5.4');
    const processed: string[] = [];

    // Act: twice in one batch, once more later in the window, once after it.
    await Promise.all([queue.enqueue(job), queue.enqueue(job)]);
    clock.time = T0 + 59_000;
    await queue.enqueue(job);
    const pendingWithinWindow = queue.pendingCount();
    clock.time = T0 + 60_001;
    await queue.enqueue(job);
    queue.process(recording(processed));
    await queue.drain();

    // Assess
    expect(pendingWithinWindow).toBe(1);
    expect(processed).toEqual(['staging@6.5.4', 'staging@6.5.4']);
  });

  it('runs the jobs of one group one at a time, in order', async () => {
    // Prepare
    const queue = newQueue(openDatabase());
    const processed: string[] = [];
    let running = 0;
    let mostAtOnce = 0;

    // Act
    queue.process(async (job) => {
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      await tick();
      processed.push(job.revision);
      running -= 1;
    });
    for (const revision of ['6.5.1', '6.5.2', '6.5.3', '6.5.4']) {
      await queue.enqueue(testJob('staging', revision));
    }
    await queue.drain();

    // Assess
    expect(processed).toEqual(['6.5.1', '6.5.2', '6.5.3', '6.5.4']);
    expect(mostAtOnce).toBe(1);
  });

  it('runs different groups in parallel', async () => {
    // Prepare: the staging job waits for the prod job to start; run one after the other, it
    // would wait for ever (and the race says so).
    const queue = newQueue(openDatabase());
    const prodStarted = gate();
    let stagingSaw = '';

    // Act
    queue.process(async (job) => {
      if (job.to === 'prod') {
        prodStarted.open();
        return;
      }
      stagingSaw = await Promise.race([
        prodStarted.opened.then(() => 'prod started'),
        tick(5_000).then(() => 'prod never started'),
      ]);
    });
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.enqueue(testJob('prod', '6.5.3'));
    await queue.drain();

    // Assess
    expect(stagingSaw).toBe('prod started');
    expect(await queue.list()).toEqual([]);
  });

  it('retries a retryable failure after the backoff of the retry schedule, then succeeds', async () => {
    // Prepare: a unit of 1/8 ms makes the schedule's 30 s and 60 s 3.75 ms and 7.5 ms.
    const logger = spyLogger();
    const queue = newQueue(openDatabase(), { logger, retryUnitMs: 0.125 });
    let attempts = 0;

    // Act: fails twice, then succeeds.
    queue.process(async () => {
      attempts += 1;
      if (attempts < 3) throw transient();
    });
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.drain();

    // Assess
    expect(attempts).toBe(3);
    expect(logger.warn.mock.calls.map(([, attributes]) => attributes?.delayMs)).toEqual([
      3.75, 7.5,
    ]);
    expect(await queue.list()).toEqual([]);
    expect(queue.pendingCount()).toBe(0);
  });

  it('dead-letters a job that still fails after maxReceives, unknown errors counting as retryable', async () => {
    // Prepare
    const onDeadLetter = vi.fn(async () => {});
    const queue = newQueue(openDatabase(), { maxReceives: 3, retryUnitMs: 0.125, onDeadLetter });
    const job = testJob('staging', '6.5.4');
    const lastError = new Error('socket hang up');
    let attempts = 0;

    // Act
    queue.process(async () => {
      attempts += 1;
      throw attempts === 1 ? transient() : lastError;
    });
    await queue.enqueue(job);
    await queue.drain();

    // Assess
    expect(attempts).toBe(3);
    expect(await queue.list()).toEqual([
      {
        id: job.id,
        job,
        failure: { code: 'UNKNOWN', message: 'socket hang up' },
        receiveCount: 3,
        deadLetteredAt: expect.any(String),
      },
    ]);
    expect(onDeadLetter.mock.calls).toEqual([[job, lastError]]);
    expect(queue.pendingCount()).toBe(0);
  });

  it('dead-letters a permanent failure at once, and goes on with the group', async () => {
    // Prepare
    const logger = spyLogger();
    const queue = newQueue(openDatabase(), { logger, retryUnitMs: 0 });
    const broken = testJob('staging', '6.5.3');
    const processed: string[] = [];

    // Act
    queue.process(
      recording(processed, async (job) => {
        if (job.id === broken.id) throw permanent();
      }),
    );
    await queue.enqueue(broken);
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.drain();

    // Assess
    expect(processed).toEqual(['staging@6.5.3', 'staging@6.5.4']);
    expect(logger.warn).not.toHaveBeenCalled();
    expect(await queue.list()).toEqual([
      {
        id: broken.id,
        job: broken,
        failure: {
          code: 'NO_MARKER',
          message: 'no $promotion marker for flux-system:podinfo:staging',
        },
        receiveCount: 1,
        deadLetteredAt: expect.any(String),
      },
    ]);
  });

  it('runs the jobs queued before process in order, and drain() waits for jobs queued meanwhile', async () => {
    // Prepare: jobs queued before processing starts, one of which queues another.
    const queue = newQueue(openDatabase());
    const processed: string[] = [];
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.enqueue(testJob('staging', '6.5.5'));
    await queue.enqueue(testJob('qa', '6.5.4'));
    const queuedBeforeProcessing = queue.pendingJobs().map(label);

    // Act
    queue.process(
      recording(processed, async (job) => {
        await tick(5);
        if (job.to === 'qa') await queue.enqueue(testJob('prod', job.revision));
      }),
    );
    await queue.drain();

    // Assess
    expect(queuedBeforeProcessing).toEqual(['staging@6.5.4', 'staging@6.5.5', 'qa@6.5.4']);
    expect(processed.filter((job) => job.startsWith('staging'))).toEqual([
      'staging@6.5.4',
      'staging@6.5.5',
    ]);
    expect([...processed].sort()).toEqual([
      'prod@6.5.4',
      'qa@6.5.4',
      'staging@6.5.4',
      'staging@6.5.5',
    ]);
    expect(queue.pendingCount()).toBe(0);
  });
});

describe('EmbeddedJobQueue on a database file', () => {
  it('keeps the queued jobs across a close and a reopen, and runs them in order', async () => {
    // Prepare
    const file = await tempDatabaseFile();
    const first = openDatabase(file);
    const before = newQueue(first);
    for (const revision of ['6.5.1', '6.5.2', '6.5.3']) {
      await before.enqueue(testJob('staging', revision));
    }
    await before.enqueue(testJob('prod', '6.5.0'));
    first.close();
    const processed: string[] = [];

    // Act
    const after = newQueue(openDatabase(file));
    const pendingAfterReopen = after.pendingJobs().map(label);
    after.process(recording(processed));
    await after.drain();

    // Assess
    expect(pendingAfterReopen).toEqual([
      'staging@6.5.1',
      'staging@6.5.2',
      'staging@6.5.3',
      'prod@6.5.0',
    ]);
    expect(processed.filter((job) => job.startsWith('staging'))).toEqual([
      'staging@6.5.1',
      'staging@6.5.2',
      'staging@6.5.3',
    ]);
    expect(processed).toContain('prod@6.5.0');
    expect(after.pendingCount()).toBe(0);
  });

  it('delivers again, its receive counted, a job whose processor never finished', async () => {
    // Prepare: serve dies in the middle of the first job (its processor never resolves).
    const file = await tempDatabaseFile();
    const first = openDatabase(file);
    const crashed = newQueue(first);
    await crashed.enqueue(testJob('staging', '6.5.4'));
    await crashed.enqueue(testJob('staging', '6.5.5'));
    const started = gate();
    crashed.process(() => {
      started.open();
      return new Promise<void>(() => {});
    });
    await started.opened;
    void crashed.stop();
    first.close();
    const second = openDatabase(file);
    const receives = second.prepare<[string], { receive_count: number }>(
      'SELECT receive_count FROM jobs WHERE id = ?',
    );
    const processed: string[] = [];
    const receivesSeen: (number | undefined)[] = [];

    // Act
    const restarted = newQueue(second);
    restarted.process(
      recording(processed, async (job) => {
        receivesSeen.push(receives.get(job.id)?.receive_count);
      }),
    );
    await restarted.drain();

    // Assess
    expect(processed).toEqual(['staging@6.5.4', 'staging@6.5.5']);
    expect(receivesSeen).toEqual([2, 1]);
  });

  it('dead-letters, without running it again, a job whose receives were all spent by crashes', async () => {
    // Prepare: maxReceives 2, and serve dies twice in the middle of the same job.
    const file = await tempDatabaseFile();
    const job = testJob('staging', '6.5.4');
    const seeding = newQueue(openDatabase(file));
    await seeding.enqueue(job);
    await seeding.enqueue(testJob('staging', '6.5.5'));
    for (let crash = 0; crash < 2; crash += 1) {
      const db = openDatabase(file);
      const crashing = newQueue(db, { maxReceives: 2 });
      const started = gate();
      crashing.process(() => {
        started.open();
        return new Promise<void>(() => {});
      });
      await started.opened;
      void crashing.stop();
      db.close();
    }
    const onDeadLetter = vi.fn(async () => {});
    const processed: string[] = [];

    // Act
    const restarted = newQueue(openDatabase(file), { maxReceives: 2, onDeadLetter });
    restarted.process(recording(processed));
    await restarted.drain();

    // Assess
    expect(processed).toEqual(['staging@6.5.5']);
    expect(await restarted.list()).toEqual([
      {
        id: job.id,
        job,
        failure: { code: 'UNKNOWN', message: expect.stringContaining('2 times') },
        receiveCount: 2,
        deadLetteredAt: expect.any(String),
      },
    ]);
    expect(onDeadLetter).toHaveBeenCalledWith(job, expect.any(Error));
  });

  it('resolves enqueue only once the job is in the database, as another connection sees', async () => {
    // Prepare
    const file = await tempDatabaseFile();
    const queue = newQueue(openDatabase(file));
    const reader = new Database(file, { readonly: true });
    databases.push(reader);
    const job = testJob('staging', '6.5.4');
    const stored = () =>
      reader.prepare<[], { id: string; state: string }>('SELECT id, state FROM jobs').all();

    // Act: read at the very moment the promise resolves.
    const seenOnResolve = await queue.enqueue(job).then(stored);

    // Assess
    expect(seenOnResolve).toEqual([{ id: job.id, state: 'queued' }]);
  });

  it('commits the jobs enqueued in one event-loop turn in one transaction (group commit)', async () => {
    // Prepare
    const db = openDatabase(await tempDatabaseFile());
    const queue = newQueue(db);
    const commits = countCommits(db);
    const burst = Array.from({ length: 20 }, (_, index) => testJob('staging', `6.5.${index}`));

    // Act
    await Promise.all(burst.map((job) => queue.enqueue(job)));
    const commitsForBurst = commits.count;
    await queue.enqueue(testJob('prod', '6.5.0'));

    // Assess
    expect(commitsForBurst).toBe(1);
    expect(commits.count).toBe(2);
    expect(queue.pendingJobs().map((job) => job.id)).toEqual([
      ...burst.map((job) => job.id),
      testJob('prod', '6.5.0').id,
    ]);
  });

  it('picks up a dead letter that another connection put back, within its poll interval', async () => {
    // Prepare: serve runs; `promoter dead-letters retry` opens the same file.
    const file = await tempDatabaseFile();
    const serve = newQueue(openDatabase(file), { pollIntervalMs: 5 });
    const broken = testJob('staging', '6.5.4');
    const processed: string[] = [];
    let failures = 0;
    serve.process(
      recording(processed, async () => {
        failures += 1;
        if (failures === 1) throw permanent();
      }),
    );
    await serve.enqueue(broken);
    await serve.drain();
    const cli = newQueue(openDatabase(file));

    // Act
    const retried = await cli.retry(broken.id);
    await until(() => processed.length === 2);
    await serve.drain();

    // Assess
    expect(retried).toBe(true);
    expect(processed).toEqual(['staging@6.5.4', 'staging@6.5.4']);
    expect(await serve.list()).toEqual([]);
  });
});

describe('EmbeddedJobQueue retry schedule', () => {
  it('puts a failed job back 30 units after its first receive and 60 after its second', async () => {
    // Prepare
    const clock = manualClock();
    const db = openDatabase();
    const queue = newQueue(db, { now: clock.now, retryUnitMs: 1 });
    let attempts = 0;
    queue.process(async () => {
      attempts += 1;
      if (attempts < 3) throw transient();
    });

    // Act
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.idle();
    const afterFirst = rows(db);
    clock.time = T0 + 29;
    await queue.idle();
    const attemptsBeforeBackoff = attempts;
    clock.time = T0 + 30;
    await queue.idle();
    const afterSecond = rows(db);
    clock.time = T0 + 90;
    await queue.idle();

    // Assess
    expect(afterFirst).toEqual([
      expect.objectContaining({
        state: 'queued',
        receive_count: 1,
        available_at: T0 + 30,
        failure_code: 'GITHUB_UNAVAILABLE',
      }),
    ]);
    expect(attemptsBeforeBackoff).toBe(1);
    expect(afterSecond).toEqual([
      expect.objectContaining({ receive_count: 2, available_at: T0 + 30 + 60 }),
    ]);
    expect(attempts).toBe(3);
    expect(rows(db)).toEqual([]);
  });

  it.each([
    ['a Retry-After of 100 s', transient({ retryAfterSeconds: 100 }), 100],
    [
      'a secondary rate limit without Retry-After',
      new PromoterError('GITHUB_UNAVAILABLE', 'You have exceeded a secondary rate limit', {
        retryable: true,
        data: { rateLimit: 'secondary' },
      }),
      60,
    ],
  ])('waits as long as %s asks, in units of the schedule', async (_, error, units) => {
    // Prepare
    const clock = manualClock();
    const db = openDatabase();
    const queue = newQueue(db, { now: clock.now, retryUnitMs: 10 });
    let attempts = 0;
    queue.process(async () => {
      attempts += 1;
      if (attempts === 1) throw error;
    });

    // Act
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.idle();
    const afterFailure = rows(db);
    clock.time = T0 + units * 10 - 1;
    await queue.idle();
    const attemptsJustBefore = attempts;
    clock.time = T0 + units * 10;
    await queue.drain();

    // Assess
    expect(afterFailure).toEqual([
      expect.objectContaining({ receive_count: 1, available_at: T0 + units * 10 }),
    ]);
    expect(attemptsJustBefore).toBe(1);
    expect(attempts).toBe(2);
  });

  it('keeps the next job of a group behind its head while the head waits for a retry; other groups go on', async () => {
    // Prepare
    const clock = manualClock();
    const queue = newQueue(openDatabase(), { now: clock.now, retryUnitMs: 1 });
    const head = testJob('staging', '6.5.4');
    const processed: string[] = [];
    let headFailed = false;
    queue.process(
      recording(processed, async (job) => {
        if (job.id === head.id && !headFailed) {
          headFailed = true;
          throw transient();
        }
      }),
    );
    await queue.enqueue(head);
    await queue.idle();

    // Act
    await queue.enqueue(testJob('staging', '6.5.5'));
    await queue.enqueue(testJob('prod', '6.5.3'));
    await queue.idle();
    const beforeRetry = [...processed];
    clock.time = T0 + 30;
    await queue.drain();

    // Assess
    expect(beforeRetry).toEqual(['staging@6.5.4', 'prod@6.5.3']);
    expect(processed).toEqual(['staging@6.5.4', 'prod@6.5.3', 'staging@6.5.4', 'staging@6.5.5']);
  });
});

describe('EmbeddedJobQueue dead letters', () => {
  it('lists a dead letter with its job, failure, receive count and time', async () => {
    // Prepare
    const clock = manualClock();
    const queue = newQueue(openDatabase(), { now: clock.now });
    const job = testJob('staging', '6.5.4');
    queue.process(async () => {
      throw new PromoterError('GITHUB_REJECTED', 'GitHub answered 422: Validation Failed');
    });

    // Act
    await queue.enqueue(job);
    await queue.drain();
    const deadLetters = await queue.list();

    // Assess
    expect(deadLetters).toEqual([
      {
        id: job.id,
        job,
        failure: { code: 'GITHUB_REJECTED', message: 'GitHub answered 422: Validation Failed' },
        receiveCount: 1,
        deadLetteredAt: '2026-11-02T10:00:00.000Z',
      },
    ]);
  });

  it('puts a dead letter back behind the newer jobs of its group with retry(id), and runs it', async () => {
    // Prepare: the broken job fails once; the next one holds the group while it is retried.
    const db = openDatabase();
    const queue = newQueue(db);
    const broken = testJob('staging', '6.5.3');
    const holding = gate();
    const processed: string[] = [];
    let brokenFailed = false;
    queue.process(
      recording(processed, async (job) => {
        if (job.id === broken.id && !brokenFailed) {
          brokenFailed = true;
          throw permanent();
        }
        if (job.revision === '6.5.4') await holding.opened;
      }),
    );
    await queue.enqueue(broken);
    await queue.idle();
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.enqueue(testJob('staging', '6.5.5'));
    await until(() => processed.length === 2);

    // Act
    const retried = await queue.retry(broken.id);
    const revived = rows(db).find((row) => row.id === broken.id);
    const unknown = await queue.retry('unknown');
    holding.open();
    await queue.drain();

    // Assess
    expect(retried).toBe(true);
    expect(revived).toMatchObject({ state: 'queued', receive_count: 0, failure_code: null });
    expect(unknown).toBe(false);
    expect(processed).toEqual(['staging@6.5.3', 'staging@6.5.4', 'staging@6.5.5', 'staging@6.5.3']);
    expect(await queue.list()).toEqual([]);
  });

  it('puts every dead letter back with retryAll(), answering how many', async () => {
    // Prepare: three jobs in two groups, each failing once for good.
    const queue = newQueue(openDatabase());
    const processed: string[] = [];
    const failed = new Set<string>();
    queue.process(
      recording(processed, async (job) => {
        if (failed.has(job.id)) return;
        failed.add(job.id);
        throw permanent();
      }),
    );
    for (const job of [testJob('staging', '6.5.4'), testJob('staging', '6.5.5')]) {
      await queue.enqueue(job);
    }
    await queue.enqueue(testJob('prod', '6.5.3'));
    await queue.drain();
    const deadBefore = (await queue.list()).length;

    // Act
    const count = await queue.retryAll();
    await queue.drain();
    const countWhenNone = await queue.retryAll();

    // Assess
    expect(deadBefore).toBe(3);
    expect(count).toBe(3);
    expect(countWhenNone).toBe(0);
    expect(processed.filter((job) => job.startsWith('staging'))).toEqual([
      'staging@6.5.4',
      'staging@6.5.5',
      'staging@6.5.4',
      'staging@6.5.5',
    ]);
    expect(processed.filter((job) => job === 'prod@6.5.3')).toHaveLength(2);
    expect(await queue.list()).toEqual([]);
  });

  it('tells onDeadLetter of the job and its error, and goes on when onDeadLetter throws', async () => {
    // Prepare
    const logger = spyLogger();
    const onDeadLetter = vi.fn(async () => {
      throw new Error('state store down');
    });
    const queue = newQueue(openDatabase(), { logger, onDeadLetter });
    const broken = testJob('staging', '6.5.3');
    const error = permanent();
    const processed: string[] = [];
    queue.process(
      recording(processed, async (job) => {
        if (job.id === broken.id) throw error;
      }),
    );

    // Act
    await queue.enqueue(broken);
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.drain();

    // Assess
    expect(onDeadLetter.mock.calls).toEqual([[broken, error]]);
    expect(logger.error).toHaveBeenCalledWith(
      'dead letter could not be recorded',
      expect.objectContaining({ jobId: broken.id, reason: 'state store down' }),
    );
    expect(processed).toEqual(['staging@6.5.3', 'staging@6.5.4']);
    expect((await queue.list()).map((deadLetter) => deadLetter.job?.id)).toEqual([broken.id]);
  });

  it.each([
    ['is not JSON', '{"version": 1, "id": '],
    ['is JSON but no job', '{"version": 2, "id": "corrupt-1"}'],
  ])(
    'dead-letters a stored job that %s as INVALID_JOB, and goes on with its group',
    async (_, body) => {
      // Prepare: the row is written as an older or broken version might have left it.
      const logger = spyLogger();
      const onDeadLetter = vi.fn(async () => {});
      const db = openDatabase();
      const queue = newQueue(db, { logger, onDeadLetter });
      const next = testJob('staging', '6.5.5');
      db.prepare<[string, string]>(
        `INSERT INTO jobs (id, group_id, body, state, available_at, enqueued_at)
       VALUES ('corrupt-1', ?, ?, 'queued', 0, 0)`,
      ).run(promotionGroupId(next), body);
      await queue.enqueue(next);
      const processed: string[] = [];

      // Act
      queue.process(recording(processed));
      await queue.drain();
      const deadLetters = await queue.list();

      // Assess
      expect(processed).toEqual(['staging@6.5.5']);
      expect(deadLetters).toEqual([
        {
          id: 'corrupt-1',
          failure: { code: 'INVALID_JOB', message: expect.stringContaining('promotion job is') },
          receiveCount: 1,
          deadLetteredAt: expect.any(String),
        },
      ]);
      expect(onDeadLetter).not.toHaveBeenCalled();
      expect(logger.error).toHaveBeenCalledWith(
        'job dead-lettered',
        expect.objectContaining({ jobId: 'corrupt-1', code: 'INVALID_JOB' }),
      );
    },
  );
});

describe('EmbeddedJobQueue lifecycle', () => {
  it('idle() returns while a job waits for a later retry; drain() waits for it', async () => {
    // Prepare
    const clock = manualClock();
    const queue = newQueue(openDatabase(), { now: clock.now, retryUnitMs: 1 });
    let attempts = 0;
    queue.process(async () => {
      attempts += 1;
      if (attempts === 1) throw transient();
    });
    await queue.enqueue(testJob('staging', '6.5.4'));

    // Act
    await queue.idle();
    const afterIdle = { attempts, pending: queue.pendingCount() };
    let drained = false;
    const draining = queue.drain().then(() => {
      drained = true;
    });
    await tick(10);
    const drainedBeforeRetryTime = drained;
    clock.time = T0 + 30;
    await draining;

    // Assess
    expect(afterIdle).toEqual({ attempts: 1, pending: 1 });
    expect(drainedBeforeRetryTime).toBe(false);
    expect(attempts).toBe(2);
    expect(queue.pendingCount()).toBe(0);
  });

  it('stop() starts no more jobs and resolves once the running one has finished', async () => {
    // Prepare
    const queue = newQueue(openDatabase());
    const running = gate();
    const processed: string[] = [];
    queue.process(
      recording(processed, async (job) => {
        if (job.revision === '6.5.4') await running.opened;
      }),
    );
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.enqueue(testJob('staging', '6.5.5'));
    await until(() => processed.length === 1);

    // Act
    let stopped = false;
    const stopping = queue.stop().then(() => {
      stopped = true;
    });
    await tick(10);
    const stoppedWhileRunning = stopped;
    running.open();
    await stopping;

    // Assess
    expect(stoppedWhileRunning).toBe(false);
    expect(processed).toEqual(['staging@6.5.4']);
    expect(queue.pendingJobs().map(label)).toEqual(['staging@6.5.5']);
  });

  it('rejects an enqueue after stop() as QUEUE_UNAVAILABLE, retryable', async () => {
    // Prepare
    const queue = newQueue(openDatabase());
    await queue.stop();

    // Act
    const enqueued = queue.enqueue(testJob('staging', '6.5.4'));

    // Assess
    await expect(enqueued).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE', retryable: true });
    expect(queue.pendingCount()).toBe(0);
  });

  it.each([
    ['is closed', (db: EmbeddedDatabase) => db.close()],
    ['takes no writes', (db: EmbeddedDatabase) => db.pragma('query_only = 1')],
  ])(
    'rejects every enqueue of the batch as QUEUE_UNAVAILABLE, retryable, when the database %s',
    async (_, breakDatabase) => {
      // Prepare
      const db = openDatabase(await tempDatabaseFile());
      const queue = newQueue(db);
      breakDatabase(db);

      // Act
      const results = await Promise.allSettled(
        ['6.5.1', '6.5.2', '6.5.3'].map((revision) => queue.enqueue(testJob('staging', revision))),
      );

      // Assess
      expect(results).toEqual(
        Array.from({ length: 3 }, () => ({
          status: 'rejected',
          reason: expect.objectContaining({
            code: 'QUEUE_UNAVAILABLE',
            retryable: true,
            message: expect.stringContaining("could not be written to serve's database"),
          }),
        })),
      );
    },
  );

  it('takes jobs again once the database takes writes again', async () => {
    // Prepare
    const db = openDatabase();
    const queue = newQueue(db);
    db.pragma('query_only = 1');
    const refused = queue.enqueue(testJob('staging', '6.5.4'));
    await expect(refused).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });

    // Act
    db.pragma('query_only = 0');
    await queue.enqueue(testJob('staging', '6.5.4'));

    // Assess
    expect(queue.pendingJobs().map(label)).toEqual(['staging@6.5.4']);
  });
});
