import { describe, expect, it } from 'vitest';
import type { JobQueue } from '../../functions/core/ports.ts';
import { type PromotionJob, promotionGroupId } from '../../functions/core/promotion-job.ts';
import { testJob } from '../support/jobs.ts';

/*
 * The behaviour every JobQueue shares (SQS FIFO on moto, serve's SQLite queue): a job comes out
 * as it went in; a job id enqueued again (a retried delivery) is delivered once, the first
 * content kept; and the jobs of one group (pipeline and target environment) are delivered in
 * the order they were enqueued, whatever the other groups do.
 */

export interface ContractJobQueue {
  readonly queue: JobQueue;
  /**
   * Everything a consumer is handed from now until the queue is empty, in the order it is
   * handed over, each job acknowledged once handed (as the worker does when a job succeeds).
   */
  consume(): Promise<PromotionJob[]>;
}

const inGroup = (jobs: readonly PromotionJob[], to: string): string[] =>
  jobs.filter((job) => job.to === to).map((job) => job.revision);

export const describeJobQueueContract = (
  name: string,
  makeQueue: () => Promise<ContractJobQueue>,
): void => {
  describe(`${name}: the JobQueue contract`, () => {
    it('hands the consumer the job as it was enqueued', async () => {
      // Prepare
      const { queue, consume } = await makeQueue();
      const job = testJob('staging', '6.5.4');

      // Act
      await queue.enqueue(job);
      const consumed = await consume();

      // Assess
      expect(consumed).toEqual([job]);
    });

    it('delivers a job id enqueued again once, with the content it was first enqueued with', async () => {
      // Prepare
      const { queue, consume } = await makeQueue();
      const job = testJob('staging', '6.5.4');
      const again = { ...job, receivedAt: '2026-11-02T10:00:09Z' };

      // Act
      await queue.enqueue(job);
      await queue.enqueue(again);
      const consumed = await consume();

      // Assess
      expect(consumed).toEqual([job]);
    });

    it('delivers jobs of distinct ids, of one group or another, each once', async () => {
      // Prepare
      const { queue, consume } = await makeQueue();
      const jobs = [
        testJob('staging', '6.5.4'),
        testJob('staging', '6.5.5'),
        testJob('prod', '6.5.3'),
        testJob('staging', '6.5.4', { pipeline: { namespace: 'shopping', name: 'search' } }),
      ];

      // Act
      for (const job of jobs) await queue.enqueue(job);
      const consumed = await consume();

      // Assess
      expect(consumed.map((job) => job.id).sort()).toEqual(jobs.map((job) => job.id).sort());
      expect(new Set(consumed.map(promotionGroupId))).toEqual(
        new Set([
          'flux-system/podinfo/staging',
          'flux-system/podinfo/prod',
          'shopping/search/staging',
        ]),
      );
    });

    it('delivers the jobs of one group in the order they were enqueued', async () => {
      // Prepare
      const { queue, consume } = await makeQueue();
      const revisions = ['6.5.1', '6.5.2', '6.5.3', '6.5.4', '6.5.5'];

      // Act
      for (const [index, revision] of revisions.entries()) {
        await queue.enqueue(testJob('staging', revision));
        if (index % 2 === 0) await queue.enqueue(testJob('prod', `7.0.${index}`));
      }
      const consumed = await consume();

      // Assess
      expect(inGroup(consumed, 'staging')).toEqual(revisions);
      expect(inGroup(consumed, 'prod')).toEqual(['7.0.0', '7.0.2', '7.0.4']);
    });
  });
};
