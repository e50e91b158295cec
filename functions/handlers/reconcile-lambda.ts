import { releaseDuePromotions } from '../core/promotion-gates.ts';
import { reconcilePullRequests } from '../core/promotion-lifecycle.ts';
import { logger } from '../observability.ts';
import { createReconcileDependencies } from '../wiring/aws-worker.ts';

/**
 * The reconcile sweep (DESIGN.md section 10), run by an EventBridge Scheduler schedule every
 * few minutes: reads the open promotion PRs from GitHub so that a lost webhook delivery only
 * delays the lifecycle, and enqueues the promotions whose soak, window or freeze ended (the
 * sweep's period bounds how late they go). Answers the sweep's counts (they are logged too).
 */
const deps = createReconcileDependencies();

export const handler = async (): Promise<
  Awaited<ReturnType<typeof reconcilePullRequests>> & {
    readonly gates: Awaited<ReturnType<typeof releaseDuePromotions>>;
  }
> => {
  const gates = await releaseDuePromotions(deps);
  const report = { ...(await reconcilePullRequests(deps)), gates };
  if (report.failed > 0)
    logger.warn('reconcile sweep: some pull requests were not read', { ...report });
  return report;
};
