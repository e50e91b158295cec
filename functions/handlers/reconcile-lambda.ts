import type { Context } from 'aws-lambda';
import { GATE_TIMER_SOURCE } from '../adapters/scheduler-gate-timer.ts';
import { readWorkerConfig } from '../config.ts';
import {
  type ReconcileReport,
  type ReconcileSweepReport,
  runReconcileSweep,
} from '../core/promotion-lifecycle.ts';
import { gateScheduleTimer } from '../wiring/aws-stores.ts';
import { createReconcileDependencies } from '../wiring/aws-worker.ts';

/**
 * The reconcile sweep (DESIGN.md section 10), run by an EventBridge Scheduler schedule every
 * few minutes and by the one-time schedules of due gates: reads the open promotion PRs from
 * their hosts so that a lost webhook delivery only delays the lifecycle, and enqueues the
 * promotions whose soak, window or freeze ended. Answers the sweep's counts (logged too).
 */
const config = readWorkerConfig();
const base = createReconcileDependencies(config);
let timed: typeof base | undefined;

const isGateTimerEvent = (event: unknown): boolean =>
  typeof event === 'object' &&
  event !== null &&
  (event as { source?: unknown }).source === GATE_TIMER_SOURCE;

/** `arn:aws:lambda:{region}:{account}:function:{name}`, without a version or alias. */
const unqualified = (arn: string): string => arn.split(':').slice(0, 7).join(':');

export const handler = async (
  event?: unknown,
  context?: Pick<Context, 'invokedFunctionArn'>,
): Promise<Partial<ReconcileReport> & Pick<ReconcileSweepReport, 'gates'>> => {
  // A soak this sweep starts (its targets reported) wakes this very function: its ARN comes
  // with the invocation, since the stack cannot put it in its own environment.
  if (context !== undefined && timed === undefined) {
    timed = { ...base, ...gateScheduleTimer(config, unqualified(context.invokedFunctionArn)) };
  }
  const { gates, pullRequests } = await runReconcileSweep(timed ?? base, {
    gatesOnly: isGateTimerEvent(event),
  });
  return { ...pullRequests, gates };
};
