import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryJobQueue } from '../../functions/adapters/memory-job-queue.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { testJob } from '../support/jobs.ts';

const transient = () =>
  new PromoterError('GITHUB_UNAVAILABLE', 'GitHub answered 502', { retryable: true });

const tick = (ms = 1): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryJobQueue', () => {
  it('drops a job id seen within the deduplication window, and takes it again after it', async () => {
    // Prepare: only Date is faked, so that the window can pass without waiting.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-11-02T10:00:00Z'));
    const queue = new MemoryJobQueue({ logger: silentLogger, deduplicationWindowMs: 60_000 });
    const job = testJob('staging', '6.5.4');
    const processed: string[] = [];

    // Act
    await queue.enqueue(job);
    await queue.enqueue(job);
    vi.setSystemTime(Date.parse('2026-11-02T10:00:59Z'));
    await queue.enqueue(job);
    const pendingWithinWindow = queue.pending().length;
    vi.setSystemTime(Date.parse('2026-11-02T10:01:00.001Z'));
    await queue.enqueue(job);
    queue.process(async (delivered) => {
      processed.push(delivered.revision);
    });
    await queue.drain();

    // Assess
    expect(pendingWithinWindow).toBe(1);
    expect(processed).toEqual(['6.5.4', '6.5.4']);
  });

  it('runs the jobs of one group one at a time, in order', async () => {
    // Prepare
    const queue = new MemoryJobQueue({ logger: silentLogger });
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
    // would time out.
    const queue = new MemoryJobQueue({ logger: silentLogger });
    let prodStarted: () => void = () => {};
    const prodStart = new Promise<string>((resolve) => {
      prodStarted = () => resolve('prod started');
    });
    let stagingSaw = '';

    // Act
    queue.process(async (job) => {
      if (job.to === 'prod') {
        prodStarted();
        return;
      }
      stagingSaw = await Promise.race([prodStart, tick(2_000).then(() => 'timed out')]);
    });
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.enqueue(testJob('prod', '6.5.3'));
    await queue.drain();

    // Assess
    expect(stagingSaw).toBe('prod started');
    expect(queue.failed()).toEqual([]);
  });

  it('retries a retryable failure after the injected delay, then succeeds', async () => {
    // Prepare
    vi.useFakeTimers();
    const retryDelayMs = vi.fn((attempt: number) => attempt * 1_000);
    const queue = new MemoryJobQueue({ logger: silentLogger, retryDelayMs });
    let attempts = 0;
    const attemptsSeen: number[] = [];

    // Act: fails twice, then succeeds.
    queue.process(async () => {
      attempts += 1;
      if (attempts < 3) throw transient();
    });
    await queue.enqueue(testJob('staging', '6.5.4'));
    await vi.advanceTimersByTimeAsync(0);
    attemptsSeen.push(attempts);
    await vi.advanceTimersByTimeAsync(999);
    attemptsSeen.push(attempts);
    await vi.advanceTimersByTimeAsync(1);
    attemptsSeen.push(attempts);
    await vi.advanceTimersByTimeAsync(1_999);
    attemptsSeen.push(attempts);
    await vi.advanceTimersByTimeAsync(1);
    attemptsSeen.push(attempts);
    await queue.drain();

    // Assess
    expect(attemptsSeen).toEqual([1, 1, 2, 2, 3]);
    expect(retryDelayMs.mock.calls).toEqual([[1], [2]]);
    expect(queue.failed()).toEqual([]);
    expect(queue.pending()).toEqual([]);
  });

  it('dead-letters a permanent failure without retrying it, and goes on with the group', async () => {
    // Prepare
    const retryDelayMs = vi.fn(() => 0);
    const queue = new MemoryJobQueue({ logger: silentLogger, retryDelayMs });
    const broken = testJob('staging', '6.5.3');
    const processed: string[] = [];

    // Act
    queue.process(async (job) => {
      processed.push(job.revision);
      if (job.id === broken.id) {
        throw new PromoterError(
          'NO_MARKER',
          'no $promotion marker for flux-system:podinfo:staging',
        );
      }
    });
    await queue.enqueue(broken);
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.drain();

    // Assess
    expect(processed).toEqual(['6.5.3', '6.5.4']);
    expect(retryDelayMs).not.toHaveBeenCalled();
    expect(queue.failed()).toEqual([
      { job: broken, error: 'no $promotion marker for flux-system:podinfo:staging' },
    ]);
  });

  it('dead-letters a job that still fails after maxAttempts, unknown errors counting as retryable', async () => {
    // Prepare
    const queue = new MemoryJobQueue({
      logger: silentLogger,
      maxAttempts: 3,
      retryDelayMs: () => 0,
    });
    const job = testJob('staging', '6.5.4');
    let attempts = 0;

    // Act
    queue.process(async () => {
      attempts += 1;
      throw attempts === 1 ? transient() : new Error('socket hang up');
    });
    await queue.enqueue(job);
    await queue.drain();

    // Assess
    expect(attempts).toBe(3);
    expect(queue.failed()).toEqual([{ job, error: 'socket hang up' }]);
    expect(queue.pending()).toEqual([]);
  });

  it('drain() waits for every group, jobs queued while it waits included', async () => {
    // Prepare: jobs queued before processing starts, one of which queues another.
    const queue = new MemoryJobQueue({ logger: silentLogger });
    const processed: string[] = [];
    await queue.enqueue(testJob('staging', '6.5.4'));
    await queue.enqueue(testJob('staging', '6.5.5'));
    await queue.enqueue(testJob('qa', '6.5.4'));
    const queuedBeforeProcessing = queue.pending().length;
    const idle = new MemoryJobQueue({ logger: silentLogger });

    // Act
    queue.process(async (job) => {
      await tick(5);
      processed.push(`${job.to}@${job.revision}`);
      if (job.to === 'qa') await queue.enqueue(testJob('prod', job.revision));
    });
    await queue.drain();
    await idle.drain();

    // Assess
    expect(queuedBeforeProcessing).toBe(3);
    expect(processed.sort()).toEqual(['prod@6.5.4', 'qa@6.5.4', 'staging@6.5.4', 'staging@6.5.5']);
    expect(queue.pending()).toEqual([]);
  });
});
