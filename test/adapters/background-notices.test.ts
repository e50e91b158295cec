import { describe, expect, it } from 'vitest';
import { BackgroundNotices } from '../../functions/adapters/background-notices.ts';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { NoticeType, PromotionNotice, PromotionNotices } from '../../functions/core/ports.ts';

/** serve's notices off the request path: changes of state in order, after the answer. */

const notice = (type: NoticeType, state: string): PromotionNotice => ({
  type,
  pipeline: { namespace: 'flux-system', name: 'podinfo' },
  signingSecret: { namespace: 'flux-system', name: 'promotion-credentials' },
  body: { to: 'prod', revision: '6.5.0', ...(type === 'Promotion' ? {} : { state }) },
});

/** A receiver held until `open()`: what it got, in order. */
const heldReceiver = () => {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const got: string[] = [];
  const inner: PromotionNotices = {
    publish: async (sent) => {
      await gate;
      if (sent.body.state === 'failed') {
        throw new PromoterError('NOTICE_UNAVAILABLE', 'receiver down', { retryable: true });
      }
      got.push(String(sent.body.state ?? sent.type));
    },
  };
  return { inner, got, open: () => open() };
};

describe('BackgroundNotices', () => {
  it('answers before a change of state is sent, and sends the changes in order', async () => {
    // Prepare
    const receiver = heldReceiver();
    const metrics = new MemoryMetricsSink();
    const notices = new BackgroundNotices(receiver.inner, { logger: silentLogger, metrics });

    // Act
    await notices.publish(notice('Promotion State Change', 'waiting'));
    await notices.publish(notice('Promotion State Change', 'failed'));
    await notices.publish(notice('Promotion State Change', 'notified'));
    const beforeOpen = [...receiver.got];
    receiver.open();
    await notices.drain();

    // Assess
    expect(beforeOpen).toEqual([]);
    expect(receiver.got).toEqual(['waiting', 'notified']);
    expect(metrics.sum('NoticesFailed')).toBe(1);
  });

  it('waits for a hand-off, and hands its failure to the caller', async () => {
    // Prepare
    const failing = new BackgroundNotices(
      {
        publish: async () => {
          throw new PromoterError('NOTICE_REJECTED', 'receiver answered 400');
        },
      },
      { logger: silentLogger, metrics: new MemoryMetricsSink() },
    );

    // Act
    const error = await failing.publish(notice('Promotion', '')).catch((caught) => caught);

    // Assess
    expect(error).toMatchObject({ code: 'NOTICE_REJECTED' });
  });

  it('drops and counts what finds too many changes waiting', async () => {
    // Prepare
    const receiver = heldReceiver();
    const metrics = new MemoryMetricsSink();
    const notices = new BackgroundNotices(receiver.inner, {
      logger: silentLogger,
      metrics,
      maxPending: 2,
    });

    // Act
    for (const state of ['waiting', 'opened', 'merged']) {
      await notices.publish(notice('Promotion State Change', state));
    }
    receiver.open();
    await notices.drain();

    // Assess
    expect(receiver.got).toEqual(['waiting', 'opened']);
    expect(metrics.sum('NoticesFailed')).toBe(1);
  });

  it('stops waiting for a hung receiver when serve stops, and counts what was not sent', async () => {
    // Prepare: a receiver that never answers.
    const receiver = heldReceiver();
    const metrics = new MemoryMetricsSink();
    const notices = new BackgroundNotices(receiver.inner, { logger: silentLogger, metrics });
    for (const state of ['waiting', 'opened']) {
      await notices.publish(notice('Promotion State Change', state));
    }

    // Act
    await notices.drain(20);

    // Assess
    expect(receiver.got).toEqual([]);
    expect(metrics.sum('NoticesFailed')).toBe(2);
  });
});
