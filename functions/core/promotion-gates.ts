import { errorMessage, PromoterError } from './errors.ts';
import { isLaterEvent } from './event-order.ts';
import type { LogPort } from './logger.ts';
import { Dimension, Gate, Metric } from './metric-names.ts';
import {
  findEnvironment,
  type Pipeline,
  type PipelineRef,
  pipelineId,
  promotionInto,
  promotionSettings,
} from './pipeline.ts';
import {
  type Clock,
  type DeploymentRecord,
  type Freeze,
  type JobQueue,
  type MetricsSink,
  type PipelineStore,
  PROMOTION_STATES,
  type PromotionNotices,
  type PromotionRecord,
  type PromotionState,
  type PromotionStateStore,
  type WaitingFor,
} from './ports.ts';
import type { PromotionJob } from './promotion-job.ts';
import { announce } from './promotion-notices.ts';
import { isInsideWindow, nextWindowOpening } from './promotion-window.ts';
import { targetReadiness } from './targets.ts';

/**
 * The gates in front of a promotion (DESIGN.md sections 10 and 11), in this order: the source
 * environment's targets, a freeze, the soak, the window, a person's approval. A promotion that
 * does not pass is written as `waiting` (with what it waits for and, for the time gates, when
 * to look again) or `awaiting-approval`, with the job to enqueue; the gates are looked at again
 * by the inputs that can open them: a target's event, the sweep or serve's timer when a time
 * is due, `unfreeze`, an approval. The job is enqueued before the record says `queued`, so a
 * crash in between leaves a waiting record that the next look enqueues again (the queue
 * deduplicates by job id), never a promotion that is lost.
 */
export interface GateDependencies {
  readonly state: PromotionStateStore;
  readonly queue: JobQueue;
  readonly clock: Clock;
  readonly metrics: MetricsSink;
  readonly logger: LogPort;
  /**
   * Told when a time gate is due, so that it is looked at again then: serve's timer, a one-time
   * schedule of the reconcile function in AWS. The sweep looks at due gates anyway, so a timer
   * that fails only makes a promotion later.
   */
  readonly timer?: GateTimer;
  /** Where changes of state are announced (DESIGN.md section 13); absent: nowhere. */
  readonly notices?: PromotionNotices;
}

export interface GateTimer {
  wakeAt(at: Date): Promise<void> | void;
}

/** Asks the timer to look again at `at`; a timer that fails is logged, never the decision's failure. */
const wakeAt = async (deps: GateDependencies, at: string): Promise<void> => {
  try {
    await deps.timer?.wakeAt(new Date(at));
  } catch (error) {
    deps.logger.warn('gate timer not set: the reconcile sweep looks at it', {
      dueAt: at,
      reason: errorMessage(error),
    });
  }
};

/** What holds a promotion: a gate that waits, or a person's approval. */
export type Verdict =
  | { readonly kind: 'open' }
  | { readonly kind: 'waiting'; readonly waitingFor: WaitingFor; readonly dueAt?: string }
  | { readonly kind: 'approval' };

export interface GateFacts {
  readonly deployments: readonly DeploymentRecord[];
  readonly freezes: readonly Freeze[];
  readonly now: Date;
}

/** The freeze that holds promotions into `environment` of `pipeline` now, if any. */
export const activeFreeze = (
  freezes: readonly Freeze[],
  pipeline: PipelineRef,
  environment: string,
  now: Date,
): Freeze | undefined =>
  freezes.find(
    (freeze) =>
      (freeze.pipeline === undefined || freeze.pipeline === pipelineId(pipeline)) &&
      (freeze.environment === undefined || freeze.environment === environment) &&
      (freeze.until === undefined || Date.parse(freeze.until) > now.getTime()),
  );

/**
 * Whether the promotion of `job` may go now. `record` is the promotion's record at the job's
 * revision, when there is one: it knows when the targets gate opened (the soak counts from
 * there) and whether a person approved.
 *
 * @example
 * evaluateGates(pipeline, job, undefined, { deployments, freezes: [], now });
 * // { kind: 'waiting', waitingFor: { targets: { ready: 1, needed: 2 } } }
 */
export const evaluateGates = (
  pipeline: Pipeline,
  job: PromotionJob,
  record: PromotionRecord | undefined,
  facts: GateFacts,
): Verdict => {
  const source = findEnvironment(pipeline, job.from);
  if (source !== undefined) {
    const targets = targetReadiness(pipeline, source, facts.deployments, job.revision);
    if (targets.ready < targets.needed) return { kind: 'waiting', waitingFor: { targets } };
  }
  const freeze = activeFreeze(facts.freezes, pipeline, job.to, facts.now);
  if (freeze !== undefined) {
    return {
      kind: 'waiting',
      waitingFor: {
        freeze: {
          reason: freeze.reason,
          by: freeze.by,
          ...(freeze.until === undefined ? {} : { until: freeze.until }),
        },
      },
      ...(freeze.until === undefined ? {} : { dueAt: freeze.until }),
    };
  }
  const settings = promotionSettings(pipeline, job.to);
  if (settings.soakMs !== undefined) {
    const opened = Date.parse(record?.timeline?.sourceDeployedAt ?? job.event.timestamp);
    const until = new Date(opened + settings.soakMs).toISOString();
    if (Date.parse(until) > facts.now.getTime()) {
      return { kind: 'waiting', waitingFor: { soak: { until } }, dueAt: until };
    }
  }
  if (settings.window !== undefined && !isInsideWindow(settings.window, facts.now)) {
    const opensAt = nextWindowOpening(settings.window, facts.now).toISOString();
    return { kind: 'waiting', waitingFor: { window: { opensAt } }, dueAt: opensAt };
  }
  const manual = promotionInto(pipeline, job.to)?.manual === true;
  if (manual && record?.approvedBy === undefined) return { kind: 'approval' };
  return { kind: 'open' };
};

/** The gate kind of a verdict that holds, for `PromotionsWaiting`. */
const gateOf = (verdict: Exclude<Verdict, { kind: 'open' }>): Gate => {
  if (verdict.kind === 'approval') return Gate.Approval;
  const [kind] = Object.keys(verdict.waitingFor) as (keyof WaitingFor & string)[];
  return (kind ?? Gate.Targets) as Gate;
};

const heldGate = (record: PromotionRecord | undefined): Gate | undefined => {
  if (record?.state === 'awaiting-approval') return Gate.Approval;
  if (record?.state !== 'waiting' || record.waitingFor === undefined) return undefined;
  return Object.keys(record.waitingFor)[0] as Gate;
};

/** States whose gates are looked at again (a cancelled soak starts again on a new success). */
const HELD: readonly PromotionState[] = ['waiting', 'awaiting-approval', 'cancelled'];

/** States past the gates: a new event at the revision enqueues its job as without gates. */
const PAST_GATES: readonly PromotionState[] = PROMOTION_STATES.filter(
  (state) => !HELD.includes(state),
);

export type Admission =
  | { readonly status: 'enqueued'; readonly job: PromotionJob }
  | {
      readonly status: 'waiting';
      /** What the webhook answers and status shows: a gate, or the approval. */
      readonly waiting: WaitingFor | { readonly approval: { readonly requestedAt: string } };
    };

const waitingAnswer = (record: PromotionRecord): Admission => ({
  status: 'waiting',
  waiting:
    record.state === 'awaiting-approval'
      ? { approval: { requestedAt: record.timeline?.approvalRequestedAt ?? record.updatedAt } }
      : (record.waitingFor ?? { approval: { requestedAt: record.updatedAt } }),
});

/**
 * A promoting event from the source environment at the job's revision (the webhook): enqueues
 * the job when the gates are open, else records what it waits for. A late event (its target
 * already reported a later one: `late`) or one older than the recorded promotion is enqueued as
 * before the gates: the worker finds it superseded.
 *
 * @example
 * await admitPromotion(pipeline, job, deps);
 * // { status: 'waiting', waiting: { targets: { ready: 1, needed: 2 } } }
 */
export const admitPromotion = async (
  pipeline: Pipeline,
  job: PromotionJob,
  deps: GateDependencies,
  options: {
    /** The target the event came from (core/targets.ts). */
    readonly target?: string;
    /** The target had reported a later event already. */
    readonly late?: boolean;
  } = {},
): Promise<Admission> => {
  const record = await deps.state.getPromotion(job.pipeline, job.to);
  const { target } = options;
  if (options.late === true && target !== undefined) {
    return evaluateLate(pipeline, job, target, record, deps);
  }
  const eventTimestamp = new Date(job.event.timestamp).toISOString();
  // A cancelled promotion starts its gates again: its soak counts from this event.
  const sameRevision =
    record?.revision === job.revision && record.state !== 'cancelled' ? record : undefined;
  // A person is asked once per revision: a later event at it leaves the request as it is.
  if (sameRevision?.state === 'awaiting-approval') return waitingAnswer(sameRevision);
  if (sameRevision?.state === 'waiting') {
    // Targets report in any order: the job that goes is the latest event's, which the
    // worker's claim (event-time rule) lets through.
    const latest =
      sameRevision.job !== undefined &&
      isLaterEvent(sameRevision.job.event.timestamp, job.event.timestamp)
        ? sameRevision.job
        : job;
    return decide(pipeline, latest, sameRevision, record, deps, true, target);
  }
  const pastGates =
    (sameRevision !== undefined && PAST_GATES.includes(sameRevision.state)) ||
    (record !== undefined && isLaterEvent(record.eventTimestamp, eventTimestamp));
  if (pastGates) {
    await deps.queue.enqueue(job);
    return { status: 'enqueued', job };
  }
  return decide(pipeline, job, sameRevision, record, deps, true, target);
};

/**
 * A late event (its target reported a later one since): as before the gates, its job is
 * enqueued, for the worker to find it superseded or to push it before the later one (the branch
 * never goes back), but only through the other gates, and never after its target reported a
 * failure since (that would promote a revision whose deployment failed). It holds nothing: a
 * record written for it would stand for a report its target no longer makes.
 */
const evaluateLate = async (
  pipeline: Pipeline,
  job: PromotionJob,
  target: string,
  record: PromotionRecord | undefined,
  deps: GateDependencies,
  read?: GateFacts,
): Promise<Admission> => {
  const sameRevision = record?.revision === job.revision ? record : undefined;
  if (sameRevision !== undefined && !PAST_GATES.includes(sameRevision.state)) {
    return waitingAnswer(sameRevision);
  }
  const facts = read ?? (await readGateFacts(job, deps));
  const since = reportOf(facts.deployments, job.from, target);
  // As if the event were its target's last report, unless that target failed since.
  const verdict =
    since?.ok === false
      ? evaluateGates(pipeline, job, undefined, facts)
      : evaluateGates(pipeline, job, sameRevision, {
          ...facts,
          deployments: facts.deployments.map((report) =>
            report === since ? { ...report, revision: job.revision, ok: true } : report,
          ),
        });
  if (verdict.kind === 'open') {
    await deps.queue.enqueue(job);
    return { status: 'enqueued', job };
  }
  return {
    status: 'waiting',
    waiting:
      verdict.kind === 'approval'
        ? { approval: { requestedAt: facts.now.toISOString() } }
        : verdict.waitingFor,
  };
};

/** What the gates are evaluated on: the targets' reports, the freezes, the time. */
const readGateFacts = async (job: PromotionJob, deps: GateDependencies): Promise<GateFacts> => {
  const [deployments, freezes] = await Promise.all([
    deps.state.listDeployments(job.pipeline),
    deps.state.listFreezes(),
  ]);
  return { deployments, freezes, now: deps.clock.now() };
};

/** The last report of one target of `environment`. */
const reportOf = (
  deployments: readonly DeploymentRecord[],
  environment: string,
  target: string,
): DeploymentRecord | undefined =>
  deployments.find((report) => report.environment === environment && report.target === target);

/**
 * Looks at the gates of a held record again (a time came, a freeze ended, an approval): enqueues
 * its job when they open. Answers the record as it now is.
 */
export const reviewHeldPromotion = async (
  pipeline: Pipeline,
  record: PromotionRecord,
  deps: GateDependencies,
): Promise<Admission | undefined> => {
  if (record.job === undefined || !HELD.includes(record.state) || record.state === 'cancelled') {
    return undefined;
  }
  return decide(pipeline, record.job, record, record, deps);
};

const decide = async (
  pipeline: Pipeline,
  job: PromotionJob,
  sameRevision: PromotionRecord | undefined,
  stored: PromotionRecord | undefined,
  deps: GateDependencies,
  recheck = true,
  target?: string,
): Promise<Admission> => {
  const facts = await readGateFacts(job, deps);
  const { now } = facts;
  const verdict = evaluateGates(pipeline, job, sameRevision, facts);
  if (verdict.kind === 'waiting' && 'targets' in verdict.waitingFor && target !== undefined) {
    // The event's own target reported a later one while this request ran: it is late now.
    const report = reportOf(facts.deployments, job.from, target);
    if (report !== undefined && isLaterEvent(report.eventTimestamp, job.event.timestamp)) {
      return evaluateLate(pipeline, job, target, stored, deps, facts);
    }
  }
  const at = now.toISOString();
  const eventTimestamp = new Date(job.event.timestamp).toISOString();
  const heldBefore = heldGate(sameRevision);
  // The targets gate opened with this job's event unless it had opened before.
  const sourceDeployedAt =
    sameRevision?.state === 'waiting' && !('targets' in (sameRevision.waitingFor ?? {}))
      ? (sameRevision.timeline?.sourceDeployedAt ?? eventTimestamp)
      : eventTimestamp;
  const base: PromotionRecord = {
    pipeline: job.pipeline,
    environment: job.to,
    revision: job.revision,
    state: 'waiting',
    jobId: job.id,
    from: job.from,
    eventTimestamp,
    updatedAt: at,
    ...(stored?.pullRequest === undefined ? {} : { pullRequest: stored.pullRequest }),
    ...(sameRevision?.approvedBy === undefined ? {} : { approvedBy: sameRevision.approvedBy }),
    timeline: {
      ...sameRevision?.timeline,
      ...(verdict.kind === 'waiting' && 'targets' in verdict.waitingFor
        ? {}
        : { sourceDeployedAt }),
    },
    job,
  };
  const expected =
    sameRevision !== undefined && HELD.includes(sameRevision.state)
      ? { revision: job.revision, states: [sameRevision.state] }
      : undefined;
  const write = (next: PromotionRecord) =>
    expected === undefined
      ? deps.state.putPromotion(next)
      : deps.state.transitionPromotion(next, expected);

  if (verdict.kind === 'open') {
    await deps.queue.enqueue(job);
    // Nothing held it (no record to move on): as before the gates, status derives `queued`.
    if (expected !== undefined) {
      const { job: _enqueued, waitingFor: _gate, dueAt: _due, ...rest } = base;
      await deps.state.transitionPromotion(
        { ...rest, state: 'queued', timeline: { ...base.timeline, queuedAt: at } },
        expected,
      );
    }
    if (sameRevision?.state === 'awaiting-approval' && sameRevision.approvedBy !== undefined) {
      recordApprovalWait(pipeline, job, sameRevision, at, deps);
    }
    return { status: 'enqueued', job };
  }
  if (
    verdict.kind === 'waiting' &&
    sameRevision?.state === 'waiting' &&
    sameRevision.jobId === job.id &&
    sameRevision.dueAt === verdict.dueAt &&
    JSON.stringify(sameRevision.waitingFor) === JSON.stringify(verdict.waitingFor)
  ) {
    // Nothing changed (a repeated delivery, a sweep during a freeze): no write.
    if (verdict.dueAt !== undefined) await wakeAt(deps, verdict.dueAt);
    return waitingAnswer(sameRevision);
  }
  const next: PromotionRecord =
    verdict.kind === 'approval'
      ? {
          ...base,
          state: 'awaiting-approval',
          timeline: {
            ...base.timeline,
            approvalRequestedAt: sameRevision?.timeline?.approvalRequestedAt ?? at,
          },
        }
      : {
          ...base,
          waitingFor: verdict.waitingFor,
          ...(verdict.dueAt === undefined ? {} : { dueAt: verdict.dueAt }),
        };
  if (!(await write(next))) {
    // Another input moved the record first: what it wrote stands.
    const current = await deps.state.getPromotion(job.pipeline, job.to);
    return current !== undefined && HELD.includes(current.state) && current.state !== 'cancelled'
      ? waitingAnswer(current)
      : { status: 'enqueued', job };
  }
  const gate = gateOf(verdict);
  if (gate !== heldBefore) {
    deps.metrics.record({
      name: Metric.PromotionsWaiting,
      unit: 'Count',
      value: 1,
      dimensions: {
        [Dimension.Pipeline]: pipelineId(pipeline),
        [Dimension.Application]: pipeline.app.name,
        [Dimension.Environment]: job.to,
        [Dimension.Gate]: gate,
      },
      metadata: { revision: job.revision, jobId: job.id },
    });
    deps.logger.info('promotion waiting', {
      pipeline: pipelineId(pipeline),
      environment: job.to,
      revision: job.revision,
      gate,
      ...(next.waitingFor === undefined ? {} : { waitingFor: next.waitingFor }),
    });
    await announce(deps, pipeline, next);
  }
  if (verdict.kind === 'waiting' && verdict.dueAt !== undefined) {
    await wakeAt(deps, verdict.dueAt);
  }
  if (verdict.kind === 'waiting' && 'targets' in verdict.waitingFor && recheck) {
    // Two targets reporting at once may each have read the other's report as missing: the one
    // whose wait is written looks again, so that one of them sees both and lets it go.
    return decide(pipeline, job, next, next, deps, false, target);
  }
  return waitingAnswer(next);
};

const recordApprovalWait = (
  pipeline: Pipeline,
  job: PromotionJob,
  record: PromotionRecord,
  at: string,
  deps: GateDependencies,
): void => {
  const requested = record.timeline?.approvalRequestedAt;
  const approved = record.timeline?.approvedAt ?? at;
  if (requested === undefined) return;
  deps.metrics.record({
    name: Metric.ApprovalWaitTime,
    unit: 'Milliseconds',
    value: Math.max(0, Date.parse(approved) - Date.parse(requested)),
    dimensions: {
      [Dimension.Pipeline]: pipelineId(pipeline),
      [Dimension.Application]: pipeline.app.name,
      [Dimension.Environment]: job.to,
    },
    metadata: { revision: job.revision, approvedBy: record.approvedBy ?? 'unknown' },
  });
};

export interface ApprovalRequest {
  readonly pipeline: Pipeline;
  readonly environment: string;
  /** The revision the approver saw; absent: the one that waits. */
  readonly revision?: string;
  /** An IAM ARN, `hmac` (Weave's signed route), or serve's local user. */
  readonly by: string;
}

/**
 * A person approves the promotion into an environment (`POST /approval/...`, `promoter
 * approve`). NOTHING_TO_APPROVE (permanent, a 422) when nothing waits for approval there, or
 * when what waits is another revision than the one approved (a newer one replaced it).
 *
 * @example
 * await approvePromotion({ pipeline, environment: 'prod', revision: '6.5.0', by: arn }, deps);
 */
export const approvePromotion = async (
  request: ApprovalRequest,
  deps: GateDependencies,
): Promise<{ readonly approved: PromotionRecord; readonly admission: Admission }> => {
  const { pipeline, environment } = request;
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  const record = await deps.state.getPromotion(ref, environment);
  const into = `${pipelineId(pipeline)} into ${environment}`;
  if (record?.state !== 'awaiting-approval' || record.job === undefined) {
    const standing =
      record === undefined ? 'no promotion yet' : `${record.state} at ${record.revision}`;
    throw new PromoterError(
      'NOTHING_TO_APPROVE',
      `nothing waits for approval in the promotion of ${into} (${standing})`,
      { data: { pipeline: pipelineId(pipeline), environment } },
    );
  }
  if (request.revision !== undefined && request.revision !== record.revision) {
    throw new PromoterError(
      'NOTHING_TO_APPROVE',
      `the promotion of ${into} waits for approval at ${record.revision}, not ${request.revision}: a newer revision replaced it`,
      { data: { pipeline: pipelineId(pipeline), environment, waiting: record.revision } },
    );
  }
  const approved: PromotionRecord = {
    ...record,
    approvedBy: request.by,
    updatedAt: deps.clock.now().toISOString(),
    timeline: { ...record.timeline, approvedAt: deps.clock.now().toISOString() },
  };
  const expected = { revision: record.revision, states: ['awaiting-approval'] as const };
  if (!(await deps.state.transitionPromotion(approved, expected))) {
    throw new PromoterError(
      'NOTHING_TO_APPROVE',
      `the promotion of ${into} moved on while it was approved: look at its status`,
      { retryable: false },
    );
  }
  deps.logger.info('promotion approved', {
    pipeline: pipelineId(pipeline),
    environment,
    revision: record.revision,
    approvedBy: request.by,
  });
  const admission = await decide(pipeline, record.job, approved, approved, deps);
  return { approved, admission };
};

/**
 * A failed deployment from `environment` at `revision`: a promotion out of it that is held at
 * its gates at that revision (waiting for targets or a soak, or for approval) is cancelled; a
 * new successful event at the revision starts its gates again.
 */
export const cancelHeldPromotion = async (
  pipeline: Pipeline,
  environment: string,
  revision: string,
  reason: string,
  deps: Pick<GateDependencies, 'state' | 'clock' | 'logger' | 'metrics' | 'notices'>,
): Promise<boolean> => {
  const index = pipeline.environments.findIndex((candidate) => candidate.name === environment);
  const next = pipeline.environments[index + 1];
  if (index < 0 || next === undefined) return false;
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  const record = await deps.state.getPromotion(ref, next.name);
  if (record === undefined || record.revision !== revision) return false;
  if (record.state !== 'waiting' && record.state !== 'awaiting-approval') return false;
  const { waitingFor: _gate, dueAt: _due, ...rest } = record;
  const cancelledRecord: PromotionRecord = {
    ...rest,
    state: 'cancelled',
    updatedAt: deps.clock.now().toISOString(),
    failure: {
      code: 'SOURCE_FAILED',
      message: `${environment} reported ${reason} at ${revision} before the promotion into ${next.name} went ahead`,
    },
  };
  const cancelled = await deps.state.transitionPromotion(cancelledRecord, {
    revision,
    states: [record.state],
  });
  if (cancelled) {
    await announce(deps, pipeline, cancelledRecord);
    deps.logger.warn('held promotion cancelled', {
      pipeline: pipelineId(pipeline),
      environment: next.name,
      revision,
      reason,
    });
  }
  return cancelled;
};

export interface GateSweepDependencies extends GateDependencies {
  readonly pipelines: PipelineStore & {
    list(): Promise<readonly Pipeline[]> | readonly Pipeline[];
  };
}

export interface GateSweepReport {
  /** Held promotions looked at. */
  readonly reviewed: number;
  /** Of those, enqueued now. */
  readonly released: number;
  readonly failed: number;
  /** The earliest time a promotion still held is due to be looked at again. */
  readonly nextDueAt?: string;
}

/**
 * Looks again at every promotion held by a time gate that is due, by a freeze (which may have
 * ended) or by its targets: the sweep in AWS, serve's timer, and `unfreeze`. One that cannot be looked at is
 * logged and counted; the sweep goes on.
 */
export const releaseDuePromotions = async (
  deps: GateSweepDependencies,
): Promise<GateSweepReport> => {
  const counts = { reviewed: 0, released: 0, failed: 0 };
  let nextDueAt: number | undefined;
  const later = (at: string | undefined) => {
    const time = at === undefined ? Number.NaN : Date.parse(at);
    if (!Number.isNaN(time) && (nextDueAt === undefined || time < nextDueAt)) nextDueAt = time;
  };
  const now = deps.clock.now().getTime();
  for (const pipeline of await deps.pipelines.list()) {
    const ref = { namespace: pipeline.namespace, name: pipeline.name };
    for (const record of await deps.state.listPromotions(ref)) {
      if (record.state !== 'waiting' || record.waitingFor === undefined) continue;
      const due = record.dueAt !== undefined && Date.parse(record.dueAt) <= now;
      // A freeze may have ended, and targets may have reported (or the gate been lowered)
      // without an event that looked: those are looked at on every sweep.
      const recheck = 'freeze' in record.waitingFor || 'targets' in record.waitingFor;
      if (!due && !recheck) {
        later(record.dueAt);
        continue;
      }
      counts.reviewed += 1;
      try {
        const admission = await reviewHeldPromotion(pipeline, record, deps);
        if (admission?.status === 'enqueued') counts.released += 1;
        else if (admission !== undefined) {
          later((await deps.state.getPromotion(ref, record.environment))?.dueAt);
        }
      } catch (error) {
        counts.failed += 1;
        later(record.dueAt);
        deps.logger.warn('gate sweep: promotion not looked at', {
          pipeline: pipelineId(pipeline),
          environment: record.environment,
          reason: errorMessage(error),
        });
      }
    }
  }
  if (counts.reviewed > 0) deps.logger.info('gate sweep finished', counts);
  return nextDueAt === undefined
    ? counts
    : { ...counts, nextDueAt: new Date(nextDueAt).toISOString() };
};
