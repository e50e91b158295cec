import { errorMessage, isPromoterError } from './errors.ts';
import type { LogPort } from './logger.ts';
import { Metric } from './metric-names.ts';
import {
  hmacSecretInto,
  PIPELINE_API_VERSION,
  type Pipeline,
  type PipelineRef,
  pipelineId,
} from './pipeline.ts';
import type {
  MetricsSink,
  PromotionNotice,
  PromotionNotices,
  PromotionRecord,
  PromotionState,
} from './ports.ts';
import type { PromotionJob } from './promotion-job.ts';

/*
 * Notices for systems outside (DESIGN.md section 13): the notification strategy's hand-off
 * (`Promotion`) and the lifecycle's changes of state (`Promotion State Change`), one body shape
 * wherever they go (an EventBridge event's detail in AWS, a signed POST in serve). Weave's
 * pipeline-controller recorded its hand-off as a Kubernetes event on the Pipeline, which Flux's
 * notification-controller forwarded as a Flux event: the body keeps that event's fields
 * (`involvedObject`, `severity`, `reason` `Promote`, `message`, `metadata` with
 * `pipelineNamespace`, `pipelineName`, `environment`, `version`), so a receiver written for
 * Weave reads it, and adds the promotion's own (`pipeline`, `from`, `to`, `revision`,
 * `sourceEvent`).
 */

/** The EventBridge `source` of every notice, and the body's `reportingController`. */
export const NOTICE_SOURCE = 'pipeline-promoter';

/** Lifecycle states that are announced (DESIGN.md section 13) when a promotion enters them. */
export const ANNOUNCED_STATES = [
  'waiting',
  'awaiting-approval',
  'opened',
  'updated',
  'notified',
  'merged',
  'closed',
  'deployed',
  'cancelled',
  'failed',
  'dead-lettered',
] as const satisfies readonly PromotionState[];

const ERROR_STATES: ReadonlySet<PromotionState> = new Set(['failed', 'dead-lettered', 'cancelled']);

/** `awaiting-approval` → `PromotionAwaitingApproval`: the Flux-style `reason` of a change. */
const reasonOf = (state: PromotionState): string =>
  `Promotion${state
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('')}`;

const weaveFields = (pipeline: PipelineRef, environment: string, revision: string, at: Date) => ({
  involvedObject: {
    kind: 'Pipeline',
    apiVersion: PIPELINE_API_VERSION,
    namespace: pipeline.namespace,
    name: pipeline.name,
  },
  timestamp: at.toISOString(),
  metadata: {
    pipelineNamespace: pipeline.namespace,
    pipelineName: pipeline.name,
    environment,
    version: revision,
  },
  reportingController: NOTICE_SOURCE,
});

/** The key that approves promotions into `environment` signs their notices (DESIGN.md 13). */
const signingSecret = (pipeline: Pipeline, environment: string) => ({
  namespace: pipeline.namespace,
  name: hmacSecretInto(pipeline, environment),
});

/**
 * The notification strategy's hand-off of `job` (Weave's `Promote`).
 *
 * @example
 * promoteNotice(pipeline, job, new Date()).body.message;
 * // 'Promote pipeline flux-system/podinfo to prod with version 6.5.0'
 */
export const promoteNotice = (pipeline: Pipeline, job: PromotionJob, at: Date): PromotionNotice => {
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  return {
    type: 'Promotion',
    pipeline: ref,
    signingSecret: signingSecret(pipeline, job.to),
    body: {
      ...weaveFields(ref, job.to, job.revision, at),
      severity: 'info',
      reason: 'Promote',
      message: `Promote pipeline ${pipelineId(ref)} to ${job.to} with version ${job.revision}`,
      pipeline: ref,
      application: pipeline.app,
      from: job.from,
      to: job.to,
      revision: job.revision,
      promotionId: job.id,
      sourceEvent: job.event,
    },
  };
};

/** What a change of state tells beyond the state: the gate, the PR, the failure, the times. */
const stateDetails = (record: PromotionRecord) => ({
  ...(record.waitingFor === undefined ? {} : { waitingFor: record.waitingFor }),
  ...(record.pullRequest === undefined ? {} : { pullRequest: record.pullRequest }),
  ...(record.failure === undefined ? {} : { failure: record.failure }),
  ...(record.approvedBy === undefined ? {} : { approvedBy: record.approvedBy }),
  ...(record.timeline === undefined ? {} : { timeline: record.timeline }),
  ...(record.leadTimeMs === undefined ? {} : { leadTimeMs: record.leadTimeMs }),
});

const stateMessage = (record: PromotionRecord): string => {
  const into = `${pipelineId(record.pipeline)} into ${record.environment} at ${record.revision}`;
  const url = record.pullRequest?.url;
  switch (record.state) {
    case 'waiting': {
      const gate = record.waitingFor === undefined ? 'a gate' : Object.keys(record.waitingFor)[0];
      return `Promotion of ${into} waits for ${gate}`;
    }
    case 'awaiting-approval':
      return `Promotion of ${into} awaits approval`;
    case 'opened':
    case 'updated':
      return `Promotion of ${into}: pull request ${record.state}${url === undefined ? '' : ` ${url}`}`;
    case 'merged':
      return `Promotion of ${into}: pull request merged${url === undefined ? '' : ` ${url}`}`;
    case 'closed':
      return `Promotion of ${into}: pull request closed unmerged${url === undefined ? '' : ` ${url}`}`;
    case 'notified':
      return `Promotion of ${into} handed over by notification`;
    case 'deployed':
      return `Promotion of ${into} deployed`;
    default:
      return `Promotion of ${into} ${record.state}${record.failure === undefined ? '' : `: ${record.failure.message}`}`;
  }
};

/** A promotion's change of state, for chat or CI rules. */
export const stateChangeNotice = (
  pipeline: Pipeline,
  record: PromotionRecord,
  at: Date,
): PromotionNotice => ({
  type: 'Promotion State Change',
  pipeline: record.pipeline,
  signingSecret: signingSecret(pipeline, record.environment),
  body: {
    ...weaveFields(record.pipeline, record.environment, record.revision, at),
    severity: ERROR_STATES.has(record.state) ? 'error' : 'info',
    reason: reasonOf(record.state),
    message: stateMessage(record),
    pipeline: record.pipeline,
    application: pipeline.app,
    from: record.from,
    to: record.environment,
    revision: record.revision,
    state: record.state,
    ...stateDetails(record),
  },
});

export interface AnnounceDependencies {
  /** Absent: nothing is announced (a deployment without a notice target). */
  readonly notices?: PromotionNotices;
  readonly clock: { now(): Date };
  readonly metrics: MetricsSink;
  readonly logger: LogPort;
}

/**
 * Announces that `record` entered its state, when that state is announced. The record is the
 * truth (the status API shows it) and the notice its echo: a notice that cannot be delivered is
 * logged and counted in `NoticesFailed`, and never undoes or fails the transition.
 */
export const announce = async (
  deps: AnnounceDependencies,
  pipeline: Pipeline,
  record: PromotionRecord,
): Promise<void> => {
  if (deps.notices === undefined) return;
  if (!(ANNOUNCED_STATES as readonly PromotionState[]).includes(record.state)) return;
  const notice = stateChangeNotice(pipeline, record, deps.clock.now());
  try {
    await deps.notices.publish(notice);
  } catch (error) {
    recordLostNotice(deps, notice, error);
  }
};

/** A notice that was not delivered: logged and counted in `NoticesFailed`. */
export const recordLostNotice = (
  deps: Pick<AnnounceDependencies, 'metrics' | 'logger'>,
  notice: PromotionNotice,
  error: unknown,
): void => {
  const about = {
    pipeline: pipelineId(notice.pipeline),
    environment: String(notice.body.to),
    revision: String(notice.body.revision),
    state: typeof notice.body.state === 'string' ? notice.body.state : notice.type,
  };
  deps.metrics.record({
    name: Metric.NoticesFailed,
    unit: 'Count',
    value: 1,
    dimensions: {},
    metadata: { pipeline: about.pipeline, environment: about.environment, state: about.state },
  });
  deps.logger.warn('promotion notice not delivered', {
    ...about,
    code: isPromoterError(error) ? error.code : 'UNKNOWN',
    reason: errorMessage(error),
  });
};
