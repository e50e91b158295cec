import type { LogPort } from '../core/logger.ts';
import type { MetricsSink, PromotionNotice, PromotionNotices } from '../core/ports.ts';
import { recordLostNotice } from '../core/promotion-notices.ts';

/*
 * serve's notices off the request path: a change of state is sent after the webhook answered,
 * one at a time in the order they came (a receiver sees waiting before notified), so a slow or
 * hung `--notify-url` never holds a Flux, GitHub or GitLab delivery past its own timeout. The
 * notification strategy's hand-off is the job's effect, so it is still awaited (and retried
 * through the queue when it fails). A change that cannot be sent, or that finds too many
 * waiting, is logged and counted like any lost notice: the record stays the truth.
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

  /** Waits until every change handed over so far was sent (or given up on). */
  drain(): Promise<void> {
    return this.#tail;
  }
}
