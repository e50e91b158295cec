import { isLaterEvent } from './event-order.ts';
import { type Environment, type PipelineRef, pipelineId } from './pipeline.ts';
import {
  type DeploymentRecord,
  type PipelineStore,
  PROMOTION_STATES,
  type PromotionRecord,
  type PromotionStateStore,
  type PromotionTimeline,
  type PullRequestState,
  type WaitingFor,
} from './ports.ts';
import { reportsByTarget, targetName } from './targets.ts';

/*
 * Where a pipeline stands (`GET /pipelines/{ns}/{name}`, `promoter status`): its environments in
 * pipeline order, the revision last deployed in each (from the webhook's deployment events),
 * and the promotion into each (the worker's record: revision, state, pull request, failure).
 *
 * `queued` is also derived: when the environment before this one has a deployment of another
 * revision that is newer (by event time) than the recorded promotion, or there is no record
 * yet, the webhook has enqueued a promotion that has not finished: it is waiting in the queue,
 * being retried, or in the dead-letter queue. Its pull request is then the environment's
 * rolling one (which the job will update), when there is one.
 */

export interface DeploymentStatus {
  readonly revision: string;
  /** The deployment event's timestamp (when Flux reported it). */
  readonly eventTimestamp: string;
  /** When the webhook recorded it. */
  readonly recordedAt: string;
}

/** The states the status shows: the stored ones and the derived `queued`. */
export const PROMOTION_STATUS_STATES = [...PROMOTION_STATES, 'queued'] as const;

export type PromotionStatusState = (typeof PROMOTION_STATUS_STATES)[number];

export interface PullRequestStatus {
  readonly number: number;
  readonly url: string;
  readonly state: PullRequestState;
  readonly mergedAt: string | null;
  readonly mergeCommit: string | null;
}

export interface ApprovalStatus {
  readonly requestedAt: string | null;
  readonly approvedAt: string | null;
  readonly approvedBy: string | null;
}

export interface PromotionStatus {
  readonly revision: string;
  readonly state: PromotionStatusState;
  /** State `waiting`: the gate that holds it (DESIGN.md section 10). */
  readonly waitingFor: WaitingFor | null;
  /** A manual promotion's approval: asked for, given, by whom. */
  readonly approval: ApprovalStatus | null;
  /** The environment the revision comes from. */
  readonly from: string;
  readonly pullRequest: PullRequestStatus | null;
  /** The times of the promotion (DESIGN.md section 10), those that happened. */
  readonly timeline: PromotionTimeline;
  /** Source deployment to target deployment, once deployed. */
  readonly leadTimeMs: number | null;
  /** Why it failed (state `failed`): an error code and a message naming what to fix. */
  readonly failure: { readonly code: string; readonly message: string } | null;
  /** The source deployment event's timestamp. */
  readonly eventTimestamp: string;
  /** When this state was recorded. */
  readonly updatedAt: string;
}

export interface TargetStatus {
  /** `cluster/namespace`, or the namespace alone (core/targets.ts). */
  readonly name: string;
  readonly cluster: string | null;
  readonly namespace: string;
  /** The revision the target last reported, when it reported. */
  readonly revision: string | null;
  readonly at: string | null;
  /** False when that report was a failed deployment. */
  readonly ok: boolean | null;
}

export interface EnvironmentStatus {
  readonly name: string;
  /** The latest successful deployment reported by any of its targets. */
  readonly deployed: DeploymentStatus | null;
  readonly targets: readonly TargetStatus[];
  /** The promotion *into* this environment (never for the first one). */
  readonly promotion: PromotionStatus | null;
}

export interface PipelineStatus {
  /** `namespace/name` */
  readonly pipeline: string;
  readonly namespace: string;
  readonly name: string;
  readonly app: { readonly apiVersion: string; readonly kind: string; readonly name: string };
  readonly environments: readonly EnvironmentStatus[];
}

/**
 * A lead time or age as a person reads it at a glance (`promoter status`, the status page).
 *
 * @example
 * shortDuration(42_000); // '42s'
 * shortDuration(3_900_000); // '1h 5m'
 */
export const shortDuration = (ms: number): string => {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
};

export interface PipelineStatusDependencies {
  readonly pipelines: PipelineStore;
  readonly state: Pick<PromotionStateStore, 'listDeployments' | 'listPromotions'>;
}

const pullRequestStatus = (record: PromotionRecord | undefined): PullRequestStatus | null =>
  record?.pullRequest === undefined
    ? null
    : {
        number: record.pullRequest.number,
        url: record.pullRequest.url,
        state: record.pullRequest.state ?? 'open',
        mergedAt:
          record.pullRequest.state === 'merged' ? (record.timeline?.mergedAt ?? null) : null,
        mergeCommit: record.pullRequest.mergeCommit ?? null,
      };

const approvalStatus = (record: PromotionRecord): ApprovalStatus | null => {
  const { approvalRequestedAt, approvedAt } = record.timeline ?? {};
  if (approvalRequestedAt === undefined && record.approvedBy === undefined) return null;
  return {
    requestedAt: approvalRequestedAt ?? null,
    approvedAt: approvedAt ?? null,
    approvedBy: record.approvedBy ?? null,
  };
};

const recorded = (record: PromotionRecord): PromotionStatus => ({
  revision: record.revision,
  state: record.state,
  waitingFor: record.state === 'waiting' ? (record.waitingFor ?? null) : null,
  approval: approvalStatus(record),
  from: record.from,
  pullRequest: pullRequestStatus(record),
  timeline: record.timeline ?? {},
  leadTimeMs: record.leadTimeMs ?? null,
  failure:
    record.failure === undefined
      ? null
      : { code: record.failure.code, message: record.failure.message },
  eventTimestamp: record.eventTimestamp,
  updatedAt: record.updatedAt,
});

/** The promotion into an environment, from its record and the previous environment's deployment. */
export const promotionStatus = (
  record: PromotionRecord | undefined,
  source: DeploymentRecord | undefined,
): PromotionStatus | null => {
  const pending =
    source !== undefined &&
    (record === undefined ||
      (record.revision !== source.revision &&
        isLaterEvent(source.eventTimestamp, record.eventTimestamp)));
  if (!pending) return record === undefined ? null : recorded(record);
  return {
    revision: source.revision,
    state: 'queued',
    waitingFor: null,
    approval: null,
    from: source.environment,
    // The env's rolling PR, which the queued job will update, while it is open.
    pullRequest:
      (record?.pullRequest?.state ?? 'open') === 'open' ? pullRequestStatus(record) : null,
    timeline: { sourceDeployedAt: source.eventTimestamp },
    leadTimeMs: null,
    failure: null,
    eventTimestamp: source.eventTimestamp,
    updatedAt: source.recordedAt,
  };
};

/** The pipeline's status, or undefined when the pipeline is unknown. */
export const pipelineStatus = async (
  ref: PipelineRef,
  deps: PipelineStatusDependencies,
): Promise<PipelineStatus | undefined> => {
  const pipeline = await deps.pipelines.get(ref);
  if (pipeline === undefined) return undefined;
  const [deployments, promotions] = await Promise.all([
    deps.state.listDeployments(ref),
    deps.state.listPromotions(ref),
  ]);
  const deployedIn = latestDeployments(deployments);
  const promotedInto = new Map(promotions.map((record) => [record.environment, record]));
  const environments = pipeline.environments.map((environment, index): EnvironmentStatus => {
    const deployment = deployedIn.get(environment.name);
    const previous = index === 0 ? undefined : pipeline.environments[index - 1];
    return {
      name: environment.name,
      deployed:
        deployment === undefined
          ? null
          : {
              revision: deployment.revision,
              eventTimestamp: deployment.eventTimestamp,
              recordedAt: deployment.recordedAt,
            },
      targets: targetStatuses(environment, deployments),
      promotion:
        previous === undefined
          ? null
          : promotionStatus(promotedInto.get(environment.name), deployedIn.get(previous.name)),
    };
  });
  return {
    pipeline: pipelineId(pipeline),
    namespace: pipeline.namespace,
    name: pipeline.name,
    app: { apiVersion: pipeline.app.apiVersion, kind: pipeline.app.kind, name: pipeline.app.name },
    environments,
  };
};

/** Each environment's latest successful deployment, whichever target reported it. */
const latestDeployments = (
  deployments: readonly DeploymentRecord[],
): Map<string, DeploymentRecord> => {
  const latest = new Map<string, DeploymentRecord>();
  for (const record of deployments) {
    if (record.ok === false) continue;
    const known = latest.get(record.environment);
    if (known === undefined || isLaterEvent(record.eventTimestamp, known.eventTimestamp)) {
      latest.set(record.environment, record);
    }
  }
  return latest;
};

const targetStatuses = (
  environment: Environment,
  deployments: readonly DeploymentRecord[],
): TargetStatus[] => {
  const reports = reportsByTarget(environment, deployments);
  return environment.targets.map((target) => {
    const report = reports.get(targetName(target));
    return {
      name: targetName(target),
      cluster: target.clusterRef?.name ?? null,
      namespace: target.namespace,
      revision: report?.revision ?? null,
      at: report?.eventTimestamp ?? null,
      ok: report === undefined ? null : report.ok !== false,
    };
  });
};
