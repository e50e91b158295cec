import type { LogPort } from '../core/logger.ts';
import { Metric } from '../core/metric-names.ts';
import type { MetricsSink, PromotionNotice, PromotionNotices } from '../core/ports.ts';
import { recordLostNotice } from '../core/promotion-notices.ts';

/*
 * serve's notices off the request path: a change of state is sent after the webhook answered,
 * one at a time in the order they came (a receiver sees waiting before notified), so a slow or
 * hung `--notify-url` never holds a Flux, GitHub or GitLab delivery past its own timeout. The
 * notification strategy's hand-off is the job's effect: sent at once (it may pass changes still
 * in line), its caller waits for it and gets its failure (retried through the queue). A change that cannot be sent, that finds too many waiting, or that is
 * still waiting when serve stops, is logged and counted like any lost notice: the record stays
 * the truth.
 */

export interface BackgroundNoticesOptions {
  readonly logger: LogPort;
  readonly metrics: MetricsSink;
  /** Changes of state waiting to be sent at most; past it, new ones are dropped (default 1000). */
  readonly maxPending?: number;
}

export class BackgroundNotices implements PromotionNotices {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  readonly #maxPending: number;

  constructor(
    private readonly inner: PromotionNotices,
    private readonly options: BackgroundNoticesOptions,
  ) {
    this.#maxPending = options.maxPending ?? 1000;
  }

  async publish(notice: PromotionNotice): Promise<void> {
    // Not behind the changes in line: those may wait on a hung receiver, the job may not.
    if (notice.type === 'Promotion') return this.inner.publish(notice);
    if (this.#pending >= this.#maxPending) {
      recordLostNotice(
        this.options,
        notice,
        new Error(`${this.#pending} notices are waiting to be sent already`),
      );
      return;
    }
    this.#pending += 1;
    this.#tail = this.#tail
      .then(() => this.inner.publish(notice))
      .catch((error: unknown) => recordLostNotice(this.options, notice, error))
      .finally(() => {
        this.#pending -= 1;
      });
  }

  /**
   * Waits until every notice handed over so far was sent (or given up on), `timeoutMs` at most;
   * what is still waiting then is counted lost.
   */
  async drain(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed-out'>((resolve) => {
      timer = setTimeout(() => resolve('timed-out'), timeoutMs);
    });
    const result = await Promise.race([this.#tail.then(() => 'drained' as const), timedOut]);
    clearTimeout(timer);
    if (result === 'timed-out' && this.#pending > 0) {
      this.options.metrics.record({
        name: Metric.NoticesFailed,
        unit: 'Count',
        value: this.#pending,
        dimensions: {},
      });
      this.options.logger.warn('promotion notices not sent before serve stopped', {
        pending: this.#pending,
      });
    }
  }
}
