import { errorMessage, isRetryable } from '../core/errors.ts';
import type { LogPort } from '../core/logger.ts';
import type { JobQueue } from '../core/ports.ts';
import { type PromotionJob, promotionGroupId } from '../core/promotion-job.ts';

/**
 * The queue twin for `promoter serve`: what SQS FIFO does for the Lambda worker, in one process.
 * Jobs of one group (pipeline, target env) run one at a time in order; groups run in parallel.
 * A job id seen within the deduplication window is dropped, as SQS FIFO does. A job that fails
 * with a retryable error is tried again with backoff, up to `maxAttempts`, then dead-lettered.
 */
export type JobProcessor = (job: PromotionJob) => Promise<void>;

export interface MemoryJobQueueOptions {
  readonly logger: LogPort;
  readonly deduplicationWindowMs?: number;
  readonly maxAttempts?: number;
  readonly retryDelayMs?: (attempt: number) => number;
}

interface DeadLetter {
  readonly job: PromotionJob;
  readonly error: string;
}

export class MemoryJobQueue implements JobQueue {
  private readonly seen = new Map<string, number>();
  private readonly groups = new Map<string, PromotionJob[]>();
  private readonly running = new Map<string, Promise<void>>();
  private processor: JobProcessor | undefined;
  private readonly deadLetters: DeadLetter[] = [];
  private readonly deduplicationWindowMs: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: (attempt: number) => number;

  constructor(private readonly options: MemoryJobQueueOptions) {
    this.deduplicationWindowMs = options.deduplicationWindowMs ?? 5 * 60 * 1000;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? ((attempt) => Math.min(30_000, 500 * 2 ** attempt));
  }

  async enqueue(job: PromotionJob): Promise<void> {
    const now = Date.now();
    // Ids are kept in the order they were seen: the expired ones are at the front.
    for (const [id, at] of this.seen) {
      if (now - at <= this.deduplicationWindowMs) break;
      this.seen.delete(id);
    }
    if (this.seen.has(job.id)) return;
    this.seen.set(job.id, now);
    const group = promotionGroupId(job);
    const jobs = this.groups.get(group) ?? [];
    jobs.push(job);
    this.groups.set(group, jobs);
    this.options.logger.info('promotion queued', { jobId: job.id, group, revision: job.revision });
    this.kick(group);
  }

  /** Starts delivering jobs, those already queued first. */
  process(processor: JobProcessor): void {
    this.processor = processor;
    for (const group of this.groups.keys()) this.kick(group);
  }

  /** Jobs not yet finished, by group. */
  pending(): PromotionJob[] {
    return [...this.groups.values()].flat();
  }

  failed(): readonly DeadLetter[] {
    return this.deadLetters;
  }

  /** Resolves when every job queued so far has finished (or dead-lettered). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  private kick(group: string): void {
    if (this.processor === undefined || this.running.has(group)) return;
    this.running.set(group, this.runGroup(group, this.processor));
  }

  private async runGroup(group: string, processor: JobProcessor): Promise<void> {
    const jobs = this.groups.get(group);
    while (jobs !== undefined && jobs.length > 0) {
      const job = jobs[0] as PromotionJob;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await processor(job);
          break;
        } catch (error) {
          if (!isRetryable(error) || attempt >= this.maxAttempts) {
            this.deadLetters.push({ job, error: errorMessage(error) });
            this.options.logger.error('promotion dead-lettered', {
              jobId: job.id,
              group,
              attempts: attempt,
              error: errorMessage(error),
            });
            break;
          }
          const delay = this.retryDelayMs(attempt);
          this.options.logger.warn('promotion will be retried', {
            jobId: job.id,
            attempt,
            delayMs: delay,
            error: errorMessage(error),
          });
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
      jobs.shift();
    }
    // Both in the same turn as the emptiness check, so that no enqueue can fall in between.
    this.groups.delete(group);
    this.running.delete(group);
  }
}
