import { errorMessage } from './errors.ts';
import type { FluxEvent } from './flux-event.ts';
import type { LogPort } from './logger.ts';
import { Dimension, Metric } from './metric-names.ts';
import {
  findEnvironment,
  nextEnvironment,
  type Pipeline,
  type PipelineRef,
  pipelineId,
  promotionInto,
  promotionSettings,
} from './pipeline.ts';
import type {
  Clock,
  GitHubAppTokens,
  MetricsSink,
  PipelineStore,
  PromotionNotices,
  PromotionRecord,
  PromotionState,
  PromotionStateStore,
  PullRequests,
  PullRequestView,
  SecretStore,
} from './ports.ts';
import {
  type GateSweepDependencies,
  type GateSweepReport,
  releaseDuePromotions,
} from './promotion-gates.ts';
import { announce } from './promotion-notices.ts';
import { repositoryCredentials } from './repository-credentials.ts';
import { targetReadiness } from './targets.ts';

/*
 * The promotion lifecycle after the pull request (DESIGN.md section 10): merged or closed (from
 * the git host's webhook or the reconcile sweep), deployed (from the target environment's own Flux
 * event), and the DORA figures of the Flux events every environment sends. Every transition
 * comes from one of those inputs and is a conditional write on the record it read
 * (`transitionPromotion`), so two inputs racing cannot move a promotion back.
 */

export interface LifecycleDependencies {
  readonly state: PromotionStateStore;
  readonly clock: Clock;
  readonly metrics: MetricsSink;
  readonly logger: LogPort;
  /** Where changes of state are announced (DESIGN.md section 13); absent: nowhere. */
  readonly notices?: PromotionNotices;
}

/**
 * States a deployment of the promoted revision completes: it reached the env's base, or (the
 * notification strategy) was handed to the system that deploys it.
 */
const DEPLOYABLE: readonly PromotionState[] = [
  'opened',
  'updated',
  'notified',
  'up-to-date',
  'merged',
];
/** States whose PR the git host can report merged or closed. */
const PULL_REQUEST_OPEN: readonly PromotionState[] = ['pushing', 'opened', 'updated'];

/** Flux reasons of a failed deployment (helm-controller, kustomize-controller). */
const FAILURE_REASONS = new Set([
  'InstallFailed',
  'UpgradeFailed',
  'TestFailed',
  'RollbackSucceeded',
  'RollbackFailed',
  'UninstallFailed',
  'ReconciliationFailed',
  'HealthCheckFailed',
  'BuildFailed',
  'ArtifactFailed',
]);

/** A failed install, upgrade or test, or a rollback: what DORA's change failure rate counts. */
export const isDeploymentFailure = (event: Pick<FluxEvent, 'severity' | 'reason'>): boolean =>
  event.severity === 'error' || FAILURE_REASONS.has(event.reason);

const elapsed = (from: string | undefined, to: string | undefined): number | undefined => {
  if (from === undefined || to === undefined) return undefined;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isNaN(ms) ? undefined : Math.max(0, ms);
};

const point = (
  pipeline: Pick<Pipeline, 'namespace' | 'name'> & { readonly app?: { readonly name: string } },
  environment: string,
  application: string,
) => ({
  dimensions: {
    [Dimension.Pipeline]: pipelineId(pipeline),
    [Dimension.Application]: application,
    [Dimension.Environment]: environment,
  },
});

const timing = (
  deps: Pick<LifecycleDependencies, 'metrics'>,
  name: string,
  value: number | undefined,
  dimensions: ReturnType<typeof point>,
  revision: string,
): void => {
  if (value === undefined) return;
  deps.metrics.record({ name, unit: 'Milliseconds', value, ...dimensions, metadata: { revision } });
};

/**
 * A promoting event from `environment` at `revision`: completes the promotion into it
 * (`deployed`, `deployedAt`, `leadTimeMs`) when that promotion is at this revision and reached
 * the base and enough of the environment's targets run it (its gate rule, core/targets.ts),
 * and counts the lifecycle and DORA times. Answers the deployed record, if any.
 *
 * @example
 * await recordTargetDeployment(pipeline, 'prod', '6.5.0', '2026-11-02T10:30:00Z', deps);
 */
export const recordTargetDeployment = async (
  pipeline: Pipeline,
  environment: string,
  revision: string,
  eventTimestamp: string,
  deps: LifecycleDependencies,
): Promise<PromotionRecord | undefined> => {
  const dimensions = point(pipeline, environment, pipeline.app.name);
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  const restoredFrom = await deps.state.closeIncident(ref, environment);
  timing(deps, Metric.TimeToRestore, elapsed(restoredFrom, eventTimestamp), dimensions, revision);

  const record = await deps.state.getPromotion(ref, environment);
  if (record === undefined || record.revision !== revision || !DEPLOYABLE.includes(record.state)) {
    return undefined;
  }
  // Deployed once as many of its targets run the revision as its gate rule needs.
  const target = findEnvironment(pipeline, environment);
  if (target !== undefined && target.targets.length > 1) {
    const deployments = await deps.state.listDeployments(ref);
    const { ready, needed } = targetReadiness(pipeline, target, deployments, revision);
    if (ready < needed) return undefined;
  }
  const deployedAt = new Date(eventTimestamp).toISOString();
  const timeline = { ...record.timeline, deployedAt };
  const leadTimeMs = elapsed(timeline.sourceDeployedAt ?? record.eventTimestamp, deployedAt);
  const deployed: PromotionRecord = {
    ...record,
    state: 'deployed',
    updatedAt: deps.clock.now().toISOString(),
    timeline,
    ...(leadTimeMs === undefined ? {} : { leadTimeMs }),
  };
  if (!(await deps.state.transitionPromotion(deployed, { revision, states: DEPLOYABLE }))) {
    return undefined;
  }
  timing(deps, Metric.PromotionLeadTime, leadTimeMs, dimensions, revision);
  timing(
    deps,
    Metric.MergeToDeployTime,
    elapsed(timeline.mergedAt, deployedAt),
    dimensions,
    revision,
  );
  if (nextEnvironment(pipeline, environment) === undefined) {
    timing(
      deps,
      Metric.ReleaseLeadTime,
      elapsed(timeline.releaseStartedAt, deployedAt),
      dimensions,
      revision,
    );
  }
  deps.logger.info('promotion deployed', {
    pipeline: pipelineId(pipeline),
    environment,
    revision,
    ...(leadTimeMs === undefined ? {} : { leadTimeMs }),
  });
  await announce(deps, pipeline, deployed);
  return deployed;
};

/**
 * A failed deployment event from `environment`: counted in `DeploymentFailures`, and the start
 * of an incident (the first failure since the last success) for `TimeToRestore`.
 */
export const recordDeploymentFailure = async (
  pipeline: Pipeline,
  environment: string,
  event: Pick<FluxEvent, 'timestamp' | 'reason'> & { readonly revision?: string },
  deps: LifecycleDependencies,
): Promise<void> => {
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  await deps.state.openIncident(ref, environment, new Date(event.timestamp).toISOString());
  deps.metrics.record({
    name: Metric.DeploymentFailures,
    unit: 'Count',
    value: 1,
    ...point(pipeline, environment, pipeline.app.name),
    metadata: {
      reason: event.reason,
      ...(event.revision === undefined ? {} : { revision: event.revision }),
    },
  });
};

/** The revision a promotion PR's title names (`Promote ns/name in env to R`). */
const titleRevision = (title: string): string | undefined => {
  const at = title.lastIndexOf(' to ');
  return at === -1 ? undefined : title.slice(at + 4);
};

export type PullRequestOutcome =
  | { readonly status: 'merged' | 'closed'; readonly record: PromotionRecord }
  | { readonly status: 'ignored'; readonly reason: string };

/**
 * The git host says the promotion PR into `environment` was merged or closed unmerged (its webhook, or
 * the sweep's read). The record moves to `merged` (merge commit, `mergedAt`) or `closed` when it
 * is this PR at the revision its title names; a late report of an older revision's PR, or of a
 * PR the record does not know, changes nothing.
 */
export const recordPullRequestOutcome = async (
  pipeline: Pipeline,
  environment: string,
  pullRequest: PullRequestView,
  deps: LifecycleDependencies,
): Promise<PullRequestOutcome> => {
  if (pullRequest.state === 'open') return { status: 'ignored', reason: 'still-open' };
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  const record = await deps.state.getPromotion(ref, environment);
  if (record?.pullRequest?.number !== pullRequest.number) {
    return { status: 'ignored', reason: 'not-the-promotion-pull-request' };
  }
  if (titleRevision(pullRequest.title) !== record.revision) {
    return { status: 'ignored', reason: 'older-revision' };
  }
  if (record.pullRequest.state === pullRequest.state) {
    return { status: 'ignored', reason: 'already-recorded' };
  }
  const merged = pullRequest.state === 'merged';
  const mergedAt = merged ? (pullRequest.mergedAt ?? deps.clock.now().toISOString()) : undefined;
  // A deployment seen before the merge report (a lost webhook) keeps its state; the PR's
  // facts are added.
  const state: PromotionState =
    record.state === 'deployed' ? 'deployed' : merged ? 'merged' : 'closed';
  const next: PromotionRecord = {
    ...record,
    state,
    updatedAt: deps.clock.now().toISOString(),
    pullRequest: {
      ...record.pullRequest,
      state: merged ? 'merged' : 'closed',
      ...(pullRequest.mergeCommit === undefined ? {} : { mergeCommit: pullRequest.mergeCommit }),
    },
    ...(mergedAt === undefined ? {} : { timeline: { ...record.timeline, mergedAt } }),
  };
  const from = record.state === 'deployed' ? (['deployed'] as const) : PULL_REQUEST_OPEN;
  if (!(await deps.state.transitionPromotion(next, { revision: record.revision, states: from }))) {
    return { status: 'ignored', reason: 'record-moved-on' };
  }
  const dimensions = point(pipeline, environment, pipeline.app.name);
  if (merged) {
    timing(
      deps,
      Metric.PullRequestMergeTime,
      elapsed(record.timeline?.pullRequestAt, mergedAt),
      dimensions,
      record.revision,
    );
  }
  deps.logger.info(merged ? 'promotion pull request merged' : 'promotion pull request closed', {
    pipeline: pipelineId(pipeline),
    environment,
    revision: record.revision,
    pullRequest: record.pullRequest.url,
  });
  if (state !== record.state) await announce(deps, pipeline, next);
  return { status: merged ? 'merged' : 'closed', record: next };
};

export interface ReconcileDependencies extends LifecycleDependencies {
  readonly pipelines: PipelineStore & {
    list(): Promise<readonly Pipeline[]> | readonly Pipeline[];
  };
  readonly secrets: SecretStore;
  readonly pullRequests: PullRequests;
  /** Installation tokens for secrets with GitHub App keys: the worker's, shared. */
  readonly githubApps?: GitHubAppTokens;
}

export interface ReconcileReport {
  /** Open promotion PRs read. */
  readonly read: number;
  /** Of those, unchanged since the last read (a 304: no rate limit spent). */
  readonly notModified: number;
  readonly merged: number;
  readonly closed: number;
  readonly failed: number;
  /** Of the merged, merged by the sweep itself (`auto-merge` without the host's own). */
  readonly autoMerged: number;
}

/**
 * The reconcile sweep: reads every open promotion PR from its host (GitHub conditionally: a 304
 * costs no rate limit), so that a lost webhook delivery only delays the lifecycle. One PR that
 * cannot be read is logged and counted; the sweep goes on.
 */
export const reconcilePullRequests = async (
  deps: ReconcileDependencies,
): Promise<ReconcileReport> => {
  const counts = { read: 0, notModified: 0, merged: 0, closed: 0, failed: 0, autoMerged: 0 };
  for (const pipeline of await deps.pipelines.list()) {
    const ref: PipelineRef = { namespace: pipeline.namespace, name: pipeline.name };
    for (const record of await deps.state.listPromotions(ref)) {
      const pull = record.pullRequest;
      if (pull === undefined || (pull.state ?? 'open') !== 'open') continue;
      // A deployed one too: its merge webhook may have been lost before the deployment came.
      if (!['opened', 'updated', 'deployed'].includes(record.state)) continue;
      const strategy = promotionInto(pipeline, record.environment)?.strategy;
      if (strategy?.type !== 'pull-request') continue;
      counts.read += 1;
      try {
        const { apiToken } = await repositoryCredentials(
          deps,
          { namespace: pipeline.namespace, name: strategy.credentialsSecret },
          strategy.repository,
        );
        const lookup = { repository: strategy.repository, token: apiToken, number: pull.number };
        let view = await deps.pullRequests.get(lookup);
        if (view === 'not-modified') counts.notModified += 1;
        // A PR's checks change without the PR changing: an auto-merge PR is tried every sweep.
        if (
          (view === 'not-modified' || view.state === 'open') &&
          record.state !== 'deployed' &&
          pull.head !== undefined &&
          promotionSettings(pipeline, record.environment).autoMerge
        ) {
          const attempt = await deps.pullRequests.mergeWhenReady({
            ...lookup,
            expectedHead: pull.head,
          });
          if (attempt.status === 'merged') {
            counts.autoMerged += 1;
            view = await deps.pullRequests.get(lookup);
          } else if (attempt.status === 'blocked') {
            deps.logger.warn('auto-merge blocked', {
              pipeline: pipelineId(pipeline),
              environment: record.environment,
              pullRequest: pull.url,
              reason: attempt.reason,
            });
          }
        }
        if (view === 'not-modified') continue;
        const outcome = await recordPullRequestOutcome(pipeline, record.environment, view, deps);
        if (outcome.status === 'merged') counts.merged += 1;
        if (outcome.status === 'closed') counts.closed += 1;
      } catch (error) {
        counts.failed += 1;
        deps.logger.warn('reconcile: pull request not read', {
          pipeline: pipelineId(pipeline),
          environment: record.environment,
          pullRequest: pull.url,
          reason: errorMessage(error),
        });
      }
    }
  }
  deps.logger.info('reconcile sweep finished', counts);
  return counts;
};

export interface ReconcileSweepReport {
  readonly gates: GateSweepReport;
  /** Absent for a sweep of the gates only. */
  readonly pullRequests?: ReconcileReport;
}

/**
 * One reconcile sweep (DESIGN.md section 10), as serve's timer and the reconcile function run it:
 * the held promotions whose time came first, then the open promotion PRs (unless `gatesOnly`:
 * a due gate's own wake-up, which need not spend the hosts' API calls again).
 *
 * @example
 * const { gates, pullRequests } = await runReconcileSweep(deps);
 */
export function runReconcileSweep(
  deps: ReconcileDependencies & GateSweepDependencies,
): Promise<ReconcileSweepReport & { readonly pullRequests: ReconcileReport }>;
export function runReconcileSweep(
  deps: ReconcileDependencies & GateSweepDependencies,
  options: { readonly gatesOnly: boolean },
): Promise<ReconcileSweepReport>;
export async function runReconcileSweep(
  deps: ReconcileDependencies & GateSweepDependencies,
  options: { readonly gatesOnly?: boolean } = {},
): Promise<ReconcileSweepReport> {
  const gates = await releaseDuePromotions(deps);
  if (options.gatesOnly === true) return { gates };
  const pullRequests = await reconcilePullRequests(deps);
  if (pullRequests.failed > 0) {
    deps.logger.warn('reconcile sweep: some pull requests were not read', { ...pullRequests });
  }
  return { gates, pullRequests };
}
