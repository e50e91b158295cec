import { errorMessage, isPromoterError, isRetryable, PromoterError } from '../../core/errors.ts';
import type { LogPort } from '../../core/logger.ts';
import type { DeadLetter, DeadLetters, JobQueue } from '../../core/ports.ts';
import {
  type PromotionJob,
  parsePromotionJob,
  promotionGroupId,
} from '../../core/promotion-job.ts';
import { MAX_RECEIVES, retryDelaySeconds } from '../../core/retry-policy.ts';
import { commitSoon, type EmbeddedDatabase, syncSoon } from './embedded-database.ts';

/*
 * The job queue of `promoter serve`, in its database: what SQS FIFO does for the Lambda
 * worker, durable. `enqueue` resolves once the job is committed to disk; the jobs of
 * concurrent requests are committed together (one transaction, one fsync off the event loop).
 * The queue's own bookkeeping (a receive, a job done, a retry time) is committed at once and
 * fsynced within moments (`syncSoon`): a `kill -9` keeps it, a power cut may cost a re-run.
 * Jobs of one group (pipeline, target env) run one at a time in order; groups run in parallel.
 * A job id seen within the deduplication window is dropped, as SQS FIFO does. Each delivery
 * counts a receive before the job runs (a crash mid-job counts too, as SQS's in-flight
 * messages do); a transient failure comes back after the shared retry schedule
 * (core/retry-policy.ts), and after `maxReceives` receives, or on a permanent failure, the job
 * is dead-lettered and `onDeadLetter` told. After a restart the queued jobs resume.
 */

export type JobProcessor = (job: PromotionJob) => Promise<void>;

export interface EmbeddedJobQueueOptions {
  readonly logger: LogPort;
  /** Told of each dead letter (the promotion records `dead-lettered`). */
  readonly onDeadLetter?: (job: PromotionJob, error: unknown) => Promise<void>;
  readonly deduplicationWindowMs?: number;
  readonly maxReceives?: number;
  /**
   * Milliseconds that one second of the retry schedule lasts. Default 1000; tests shorten the
   * schedule's 30 s × 2^n to milliseconds with it.
   */
  readonly retryUnitMs?: number;
  /**
   * How often the queue looks for jobs that another process put back (`promoter dead-letters
   * retry`) or whose retry time came, in milliseconds. Default 1000.
   */
  readonly pollIntervalMs?: number;
  readonly now?: () => number;
}

interface JobRow {
  readonly seq: number;
  readonly id: string;
  readonly group_id: string;
  readonly body: string;
  readonly receive_count: number;
  readonly available_at: number;
}

interface DeadRow extends JobRow {
  readonly failure_code: string | null;
  readonly failure_message: string | null;
  readonly dead_lettered_at: number | null;
}

/** The row's job, or undefined when its body is no job (a dead letter then shows its id). */
const jobOf = (row: JobRow): PromotionJob | undefined => {
  try {
    return parsePromotionJob(row.body);
  } catch {
    return undefined;
  }
};

export class EmbeddedJobQueue implements JobQueue, DeadLetters {
  private readonly deduplicationWindowMs: number;
  private readonly maxReceives: number;
  private readonly retryUnitMs: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => number;
  private readonly running = new Map<string, Promise<void>>();
  private forgotAt = Number.NEGATIVE_INFINITY;
  private processor: JobProcessor | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  private readonly statements;

  constructor(
    private readonly db: EmbeddedDatabase,
    private readonly options: EmbeddedJobQueueOptions,
  ) {
    this.deduplicationWindowMs = options.deduplicationWindowMs ?? 5 * 60 * 1000;
    this.maxReceives = options.maxReceives ?? MAX_RECEIVES;
    this.retryUnitMs = options.retryUnitMs ?? 1000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.statements = {
      forget: db.prepare<[number]>('DELETE FROM seen_jobs WHERE seen_at < ?'),
      see: db.prepare<[string, number]>(
        'INSERT OR IGNORE INTO seen_jobs (id, seen_at) VALUES (?, ?)',
      ),
      insert: db.prepare<[string, string, string, number, number]>(
        `INSERT INTO jobs (id, group_id, body, state, available_at, enqueued_at)
         VALUES (?, ?, ?, 'queued', ?, ?)`,
      ),
      heads: db.prepare<[], JobRow>(
        `SELECT j.seq, j.id, j.group_id, j.body, j.receive_count, j.available_at FROM jobs j
         WHERE j.state = 'queued'
           AND j.seq = (SELECT MIN(k.seq) FROM jobs k WHERE k.group_id = j.group_id AND k.state = 'queued')`,
      ),
      head: db.prepare<[string], JobRow>(
        `SELECT seq, id, group_id, body, receive_count, available_at FROM jobs
         WHERE group_id = ? AND state = 'queued' ORDER BY seq LIMIT 1`,
      ),
      receive: db.prepare<[number]>(
        'UPDATE jobs SET receive_count = receive_count + 1 WHERE seq = ?',
      ),
      done: db.prepare<[number]>('DELETE FROM jobs WHERE seq = ?'),
      later: db.prepare<[number, string, string, number]>(
        'UPDATE jobs SET available_at = ?, failure_code = ?, failure_message = ? WHERE seq = ?',
      ),
      dead: db.prepare<[string, string, number, number]>(
        `UPDATE jobs SET state = 'dead', failure_code = ?, failure_message = ?, dead_lettered_at = ?
         WHERE seq = ?`,
      ),
      queued: db.prepare<[], { count: number }>(
        "SELECT COUNT(*) AS count FROM jobs WHERE state = 'queued'",
      ),
      queuedJobs: db.prepare<[], JobRow>(
        "SELECT seq, id, group_id, body, receive_count, available_at FROM jobs WHERE state = 'queued' ORDER BY seq",
      ),
      deadJobs: db.prepare<[], DeadRow>("SELECT * FROM jobs WHERE state = 'dead' ORDER BY seq"),
      revive: db.prepare<[number, string]>(
        `UPDATE jobs SET state = 'queued', receive_count = 0, available_at = ?,
           failure_code = NULL, failure_message = NULL, dead_lettered_at = NULL,
           seq = (SELECT MAX(seq) + 1 FROM jobs)
         WHERE seq = (SELECT MIN(seq) FROM jobs WHERE state = 'dead' AND id = ?)`,
      ),
    };
  }

  /**
   * Resolves once the job is on disk (or was a duplicate), group-committed with the other
   * writes of the same moment; QUEUE_UNAVAILABLE when it cannot be written.
   */
  async enqueue(job: PromotionJob): Promise<void> {
    if (this.stopped) {
      throw new PromoterError('QUEUE_UNAVAILABLE', 'the queue is stopping', { retryable: true });
    }
    let added: boolean;
    try {
      added = await commitSoon(this.db, () => this.insert(job));
    } catch (error) {
      throw new PromoterError(
        'QUEUE_UNAVAILABLE',
        `the job could not be written to serve's database: ${errorMessage(error)}`,
        { retryable: true, cause: error },
      );
    }
    if (!added) return;
    this.options.logger.info('promotion queued', {
      jobId: job.id,
      group: promotionGroupId(job),
      revision: job.revision,
    });
    this.schedule();
  }

  /** Starts delivering jobs, those already queued (before a restart too) first. */
  process(processor: JobProcessor): void {
    this.processor = processor;
    this.pollTimer = setInterval(() => this.schedule(), this.pollIntervalMs);
    this.pollTimer.unref();
    this.schedule();
  }

  /** Jobs queued or waiting for a retry. */
  pendingCount(): number {
    return this.statements.queued.get()?.count ?? 0;
  }

  /** The jobs queued or waiting for a retry, in order. */
  pendingJobs(): PromotionJob[] {
    return this.statements.queuedJobs
      .all()
      .map(jobOf)
      .filter((job): job is PromotionJob => job !== undefined);
  }

  /**
   * Resolves when no job is running and none is ready to run: jobs waiting for a retry later
   * stay queued on disk (and resume at the next start). What a shutdown waits for.
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.running.size > 0) {
        await Promise.all(this.running.values());
        continue;
      }
      const now = this.now();
      if (!this.statements.heads.all().some((row) => row.available_at <= now)) return;
      this.schedule();
      if (this.running.size === 0) return;
    }
  }

  /** Resolves when every queued job has finished or been dead-lettered, retries included. */
  async drain(): Promise<void> {
    while (this.pendingCount() > 0) {
      await this.idle();
      if (this.pendingCount() > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Stops taking and starting jobs; resolves when the running ones have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.processor = undefined;
    clearTimeout(this.wakeTimer);
    clearInterval(this.pollTimer);
    await Promise.all(this.running.values());
  }

  async list(): Promise<DeadLetter[]> {
    return this.statements.deadJobs.all().map((row) => {
      const job = jobOf(row);
      return {
        id: row.id,
        ...(job === undefined ? {} : { job }),
        failure: { code: row.failure_code ?? 'UNKNOWN', message: row.failure_message ?? '' },
        receiveCount: row.receive_count,
        ...(row.dead_lettered_at === null
          ? {}
          : { deadLetteredAt: new Date(row.dead_lettered_at).toISOString() }),
      };
    });
  }

  async retry(id: string): Promise<boolean> {
    const revived = this.statements.revive.run(this.now(), id).changes === 1;
    syncSoon(this.db);
    if (revived) this.schedule();
    return revived;
  }

  async retryAll(): Promise<number> {
    const ids = this.statements.deadJobs.all().map((row) => row.id);
    const revive = this.db.transaction(() =>
      ids.reduce((count, id) => count + this.statements.revive.run(this.now(), id).changes, 0),
    );
    const count = revive();
    syncSoon(this.db);
    if (count > 0) this.schedule();
    return count;
  }

  /** False when the id was seen within the deduplication window. */
  private insert(job: PromotionJob): boolean {
    const now = this.now();
    // Forgetting is cheap (an index range) but needs doing only now and then.
    if (now - this.forgotAt > 1000) {
      this.statements.forget.run(now - this.deduplicationWindowMs);
      this.forgotAt = now;
    }
    if (this.statements.see.run(job.id, now).changes === 0) return false;
    this.statements.insert.run(job.id, promotionGroupId(job), JSON.stringify(job), now, now);
    return true;
  }

  /** Starts every group whose head job is ready, and wakes up for the next one that will be. */
  private schedule(): void {
    if (this.processor === undefined) return;
    const now = this.now();
    let next = Number.POSITIVE_INFINITY;
    for (const row of this.statements.heads.all()) {
      if (this.running.has(row.group_id)) continue;
      if (row.available_at <= now) this.start(row.group_id, this.processor);
      else next = Math.min(next, row.available_at);
    }
    clearTimeout(this.wakeTimer);
    if (next !== Number.POSITIVE_INFINITY) {
      this.wakeTimer = setTimeout(() => this.schedule(), Math.max(0, next - now));
      this.wakeTimer.unref();
    }
  }

  private start(group: string, processor: JobProcessor): void {
    const run = this.runGroup(group, processor).finally(() => {
      this.running.delete(group);
      this.schedule();
    });
    this.running.set(group, run);
  }

  /** Runs the group's jobs in order until it is empty or its head must wait for a retry. */
  private async runGroup(group: string, processor: JobProcessor): Promise<void> {
    for (;;) {
      if (this.processor === undefined) return;
      const row = this.statements.head.get(group);
      if (row === undefined || row.available_at > this.now()) return;
      // Receives all spent by deliveries that never ended (serve stopped mid-job): dead-letter
      // it rather than deliver it again, as SQS does once a message's receives are spent.
      const spent = row.receive_count >= this.maxReceives;
      if (!spent) {
        this.statements.receive.run(row.seq);
        syncSoon(this.db);
      }
      const receiveCount = spent ? row.receive_count : row.receive_count + 1;
      let job: PromotionJob | undefined;
      try {
        job = parsePromotionJob(row.body);
        if (spent) {
          throw new Error(
            `delivered ${receiveCount} times without an outcome (serve stopped during the job)`,
          );
        }
        await processor(job);
        this.statements.done.run(row.seq);
        syncSoon(this.db);
      } catch (error) {
        const failure = {
          code: isPromoterError(error) ? error.code : 'UNKNOWN',
          message: errorMessage(error),
        };
        if (job !== undefined && isRetryable(error) && receiveCount < this.maxReceives) {
          const delayMs = retryDelaySeconds(receiveCount, error) * this.retryUnitMs;
          this.statements.later.run(this.now() + delayMs, failure.code, failure.message, row.seq);
          syncSoon(this.db);
          this.options.logger.warn('promotion will be retried', {
            jobId: row.id,
            group,
            receiveCount,
            delayMs,
            code: failure.code,
            reason: failure.message,
          });
          return;
        }
        this.statements.dead.run(failure.code, failure.message, this.now(), row.seq);
        syncSoon(this.db);
        // A job that parses is logged, counted and recorded by `onDeadLetter`.
        if (job === undefined) {
          this.options.logger.error('job dead-lettered', {
            jobId: row.id,
            group,
            receiveCount,
            code: failure.code,
            reason: failure.message,
          });
        }
        if (job !== undefined) await this.tellDeadLetter(job, error);
      }
    }
  }

  private async tellDeadLetter(job: PromotionJob, error: unknown): Promise<void> {
    try {
      await this.options.onDeadLetter?.(job, error);
    } catch (failure) {
      this.options.logger.error('dead letter could not be recorded', {
        jobId: job.id,
        reason: errorMessage(failure),
      });
    }
  }
}
