import type { Context } from 'aws-lambda';
import { GATE_TIMER_SOURCE } from '../adapters/scheduler-gate-timer.ts';
import { readWorkerConfig } from '../config.ts';
import { releaseDuePromotions } from '../core/promotion-gates.ts';
import { reconcilePullRequests } from '../core/promotion-lifecycle.ts';
import { logger } from '../observability.ts';
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

type GatesReport = Awaited<ReturnType<typeof releaseDuePromotions>>;

export const handler = async (
  event?: unknown,
  context?: Pick<Context, 'invokedFunctionArn'>,
): Promise<
  | (Awaited<ReturnType<typeof reconcilePullRequests>> & { readonly gates: GatesReport })
  | { readonly gates: GatesReport }
> => {
  // A soak this sweep starts (its targets reported) wakes this very function: its ARN comes
  // with the invocation, since the stack cannot put it in its own environment.
  if (context !== undefined && timed === undefined) {
    timed = { ...base, ...gateScheduleTimer(config, unqualified(context.invokedFunctionArn)) };
  }
  const deps = timed ?? base;
  const gates = await releaseDuePromotions(deps);
  // A due gate's schedule (one a minute at most) releases promotions only: reading every open
  // PR is the periodic sweep's work, and its API calls are not spent again for each gate.
  if (isGateTimerEvent(event)) return { gates };
  const report = { ...(await reconcilePullRequests(deps)), gates };
  if (report.failed > 0)
    logger.warn('reconcile sweep: some pull requests were not read', { ...report });
  return report;
};
