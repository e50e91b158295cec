import { errorMessage, isPromoterError, PromoterError } from './errors.ts';
import type { LogPort } from './logger.ts';
import { Dimension, Metric } from './metric-names.ts';
import {
  findEnvironment,
  type Pipeline,
  type PromotionStrategy,
  type PullRequestStrategy,
  pipelineId,
  promotionInto,
  promotionSettings,
} from './pipeline.ts';
import {
  type Clock,
  type ConfigRepository,
  type GitHubAppTokens,
  type MetricsSink,
  type PipelineStore,
  type PromotionNotices,
  type PromotionRecord,
  type PromotionState,
  type PromotionStateStore,
  type PromotionTimeline,
  type PullRequestLookup,
  type PullRequests,
  SETTLED_STATES,
  type SecretStore,
} from './ports.ts';
import type { PromotionJob } from './promotion-job.ts';
import { editMarkers, isPromotableFile, markerFor, needle } from './promotion-markers.ts';
import { announce, promoteNotice } from './promotion-notices.ts';
import { repositoryCredentials } from './repository-credentials.ts';

/*
 * The pull-request promotion (DESIGN.md section 7): one job in, one recorded outcome out.
 * Permanent failures are recorded and returned; transient ones are thrown for the queue to retry.
 */

export interface PromotionDependencies {
  readonly pipelines: PipelineStore;
  readonly secrets: SecretStore;
  readonly state: PromotionStateStore;
  readonly repository: ConfigRepository;
  readonly pullRequests: PullRequests;
  readonly clock: Clock;
  readonly metrics: MetricsSink;
  readonly logger: LogPort;
  readonly author?: { readonly name: string; readonly email: string };
  /** Installation tokens for secrets with GitHub App keys (DESIGN.md section 4). */
  readonly githubApps?: GitHubAppTokens;
  /**
   * Where the notification strategy hands promotions over and lifecycle changes are announced
   * (DESIGN.md section 13). Absent: a notification-strategy job fails with NOTICES_UNCONFIGURED.
   */
  readonly notices?: PromotionNotices;
}

export type PromotionOutcome =
  | {
      readonly status: 'opened' | 'updated';
      readonly pullRequest: { readonly number: number; readonly url: string };
      readonly changedFiles: readonly string[];
      /** The commit pushed as the PR's head. */
      readonly head: string;
      /** `pipeline-promoter/auto-merge.{env}`: the host's auto-merge, or the sweep's merge. */
      readonly autoMerge?: 'enabled' | 'by-sweep';
    }
  /** The notification strategy handed the promotion over (DESIGN.md section 13). */
  | { readonly status: 'notified' }
  | {
      readonly status: 'up-to-date';
      /** The env's PR at an older revision, closed as stale (DESIGN.md 7.11). */
      readonly closedPullRequest?: { readonly number: number; readonly url: string };
    }
  | { readonly status: 'superseded'; readonly by: string }
  /** This revision's promotion was already merged, notified, deployed, or closed by a person. */
  | { readonly status: 'settled'; readonly state: (typeof SETTLED_STATES)[number] }
  | { readonly status: 'dropped'; readonly reason: string }
  | { readonly status: 'failed'; readonly code: string; readonly message: string };

export const DEFAULT_AUTHOR = {
  name: 'Pipeline Promoter',
  email: 'pipeline-promoter@users.noreply.github.com',
} as const;

export const promotionBranch = (job: Pick<PromotionJob, 'pipeline' | 'to'>): string =>
  `promotion-${job.pipeline.namespace}-${job.pipeline.name}-${job.to}`;

export const promotionTitle = (job: Pick<PromotionJob, 'pipeline' | 'to' | 'revision'>): string =>
  `Promote ${job.pipeline.namespace}/${job.pipeline.name} in ${job.to} to ${job.revision}`;

/** Text safe inside a Markdown table cell: one line, no cell separator. */
const cell = (text: string): string => text.replace(/\r?\n|\r/g, ' ').replaceAll('|', '\\|');

const inlineCode = (text: string): string => `\`${cell(text).replaceAll('`', "'")}\``;

export const promotionBody = (job: PromotionJob, changedFiles: readonly string[]): string => {
  const object = job.event.involvedObject;
  const pipeline = `${job.pipeline.namespace}/${job.pipeline.name}`;
  return [
    `Promotes ${inlineCode(pipeline)} into **${cell(job.to)}** at revision ${inlineCode(job.revision)}, deployed in **${cell(job.from)}**.`,
    '',
    '| | |',
    '|---|---|',
    `| Revision | ${inlineCode(job.revision)} |`,
    `| Source environment | ${cell(job.from)} |`,
    `| Event | ${cell(object.kind)} ${inlineCode(`${object.namespace}/${object.name}`)}: ${cell(job.event.reason)} at ${cell(job.event.timestamp)} |`,
    `| Message | ${inlineCode(job.event.message)} |`,
    '',
    'Changed files:',
    ...changedFiles.map((file) => `- ${inlineCode(file)}`),
    '',
    `pipeline-promoter: ${pipeline}/${job.to}`,
  ].join('\n');
};

const OUTCOME_METRIC: Readonly<Record<PromotionOutcome['status'], string>> = {
  opened: Metric.PromotionsOpened,
  updated: Metric.PromotionsUpdated,
  notified: Metric.PromotionsNotified,
  'up-to-date': Metric.PromotionsUpToDate,
  superseded: Metric.PromotionsSuperseded,
  settled: Metric.PromotionsSettled,
  dropped: Metric.PromotionsDropped,
  failed: Metric.PromotionsFailed,
};

/** What a metric point of the outcome carries beside the revision and job id. */
const outcomeMetadata = (outcome: PromotionOutcome): Record<string, string> => {
  switch (outcome.status) {
    case 'opened':
    case 'updated':
      return { pullRequest: outcome.pullRequest.url };
    case 'superseded':
      return { supersededBy: outcome.by };
    case 'settled':
      return { settledAs: outcome.state };
    case 'up-to-date':
      return outcome.closedPullRequest === undefined
        ? {}
        : { closedPullRequest: outcome.closedPullRequest.url };
    case 'dropped':
      return { reason: outcome.reason };
    case 'failed':
      return { code: outcome.code };
    default:
      return {};
  }
};

interface Promoted {
  readonly outcome: PromotionOutcome;
  /** The app's name once the pipeline is known (the event's object name before). */
  readonly application: string;
  /** Set when this run brought a new revision to the pull request. */
  readonly latencyMs?: number;
}

/**
 * Runs one job and ends it in a recorded outcome, counted and logged once. A transient failure
 * is thrown, for the queue to retry.
 */
export const runPromotion = async (
  job: PromotionJob,
  deps: PromotionDependencies,
): Promise<PromotionOutcome> => {
  const { outcome, application, latencyMs } = await promote(job, deps);
  const point = {
    dimensions: {
      [Dimension.Pipeline]: pipelineId(job.pipeline),
      [Dimension.Application]: application,
      [Dimension.Environment]: job.to,
    },
    metadata: { revision: job.revision, jobId: job.id, ...outcomeMetadata(outcome) },
  };
  deps.metrics.record({ name: OUTCOME_METRIC[outcome.status], unit: 'Count', value: 1, ...point });
  if (latencyMs !== undefined) {
    deps.metrics.record({
      name: Metric.PromotionLatency,
      unit: 'Milliseconds',
      value: latencyMs,
      ...point,
    });
  }
  const log =
    outcome.status === 'failed' ? 'error' : outcome.status === 'dropped' ? 'warn' : 'info';
  deps.logger[log]('promotion finished', {
    ...jobContext(job),
    ...outcomeFields(outcome),
    ...(latencyMs === undefined ? {} : { latencyMs }),
  });
  return outcome;
};

const jobContext = (job: PromotionJob) => ({
  pipeline: pipelineId(job.pipeline),
  environment: job.to,
  revision: job.revision,
  jobId: job.id,
});

/**
 * The outcome as log attributes. A failure's text goes under `reason`: Powertools' Logger
 * reserves `message` (the log line's own) and drops an attribute of that name.
 */
const outcomeFields = (outcome: PromotionOutcome): Record<string, unknown> => {
  if (outcome.status !== 'failed') return { ...outcome };
  return { status: outcome.status, code: outcome.code, reason: outcome.message };
};

/**
 * Records that a job's receives are spent (its queue dead-letters it): the promotion shows
 * `dead-lettered` with the last error, unless a later event holds the environment, and
 * `PromotionsDeadLettered` counts it. Called by the queue's shell, which knows the receives.
 */
export const recordDeadLetter = async (
  job: PromotionJob,
  error: unknown,
  deps: Pick<
    PromotionDependencies,
    'pipelines' | 'state' | 'clock' | 'metrics' | 'logger' | 'notices'
  >,
): Promise<void> => {
  const failure = {
    code: isPromoterError(error) ? error.code : 'UNKNOWN',
    message: errorMessage(error),
  };
  const previous = await deps.state.getPromotion(job.pipeline, job.to);
  const deadLettered: PromotionRecord = {
    pipeline: job.pipeline,
    environment: job.to,
    revision: job.revision,
    state: 'dead-lettered',
    jobId: job.id,
    from: job.from,
    eventTimestamp: new Date(job.event.timestamp).toISOString(),
    updatedAt: deps.clock.now().toISOString(),
    ...(previous?.pullRequest === undefined ? {} : { pullRequest: previous.pullRequest }),
    failure,
  };
  const written = await deps.state.putPromotion(deadLettered);
  deps.metrics.record({
    name: Metric.PromotionsDeadLettered,
    unit: 'Count',
    value: 1,
    dimensions: {
      [Dimension.Pipeline]: pipelineId(job.pipeline),
      [Dimension.Application]: job.event.involvedObject.name,
      [Dimension.Environment]: job.to,
    },
    metadata: { revision: job.revision, jobId: job.id, code: failure.code },
  });
  deps.logger.error('promotion dead-lettered', {
    ...jobContext(job),
    code: failure.code,
    reason: failure.message,
  });
  const pipeline = written ? await deps.pipelines.get(job.pipeline) : undefined;
  if (pipeline !== undefined) await announce(deps, pipeline, deadLettered);
};

const promote = async (job: PromotionJob, deps: PromotionDependencies): Promise<Promoted> => {
  const eventTimestamp = new Date(job.event.timestamp).toISOString();
  let application = job.event.involvedObject.name;
  let claimed = false;
  const fieldsOf = (fields: Pick<PromotionRecord, 'state'> & Partial<PromotionRecord>) => ({
    pipeline: job.pipeline,
    environment: job.to,
    revision: job.revision,
    jobId: job.id,
    from: job.from,
    eventTimestamp,
    updatedAt: deps.clock.now().toISOString(),
    ...fields,
  });
  const record = (fields: Pick<PromotionRecord, 'state'> & Partial<PromotionRecord>) =>
    deps.state.putPromotion(fieldsOf(fields));
  let pipeline: Pipeline | undefined;
  let before: PromotionState | undefined;
  // The job's end is written over its own claim only: a later job's claim is never replaced.
  // A state this revision was not in before is announced (a redelivery announces nothing new).
  const finish = async (fields: Pick<PromotionRecord, 'state'> & Partial<PromotionRecord>) => {
    const next = fieldsOf(fields);
    const written = await deps.state.transitionPromotion(next, {
      revision: job.revision,
      states: ['pushing'],
    });
    if (written && pipeline !== undefined && before !== next.state) {
      await announce(deps, pipeline, next);
    }
    return written;
  };

  try {
    pipeline = await deps.pipelines.get(job.pipeline);
    if (pipeline === undefined || findEnvironment(pipeline, job.to) === undefined) {
      const reason = pipeline === undefined ? 'pipeline-deleted' : 'environment-removed';
      return { outcome: { status: 'dropped', reason }, application };
    }
    application = pipeline.app.name;

    // Claim before push (DESIGN.md 7.10): the record takes this job's revision and event time
    // before the branch moves, with the store's conditional write. A later event holds the
    // environment whatever became of its job (a newer job that pushed and then failed still
    // blocks this one), so a late older job never rolls the branch or the PR back; a settled
    // promotion of the same revision (merged, closed by a person, deployed) is not redone.
    const previous = await deps.state.getPromotion(job.pipeline, job.to);
    const sameRevision = previous?.revision === job.revision ? previous : undefined;
    before = sameRevision?.state;
    const timeline: PromotionTimeline = {
      ...sameRevision?.timeline,
      sourceDeployedAt: eventTimestamp,
      releaseStartedAt: await releaseStart(job, eventTimestamp, deps),
      // A job a gate held was queued when the gate let it go (about now), not when its event came.
      queuedAt:
        sameRevision?.timeline?.queuedAt ??
        (sameRevision?.state === 'waiting' || sameRevision?.state === 'awaiting-approval'
          ? deps.clock.now().toISOString()
          : job.receivedAt),
    };
    claimed = await record({
      state: 'pushing',
      timeline,
      ...(previous?.pullRequest === undefined ? {} : { pullRequest: previous.pullRequest }),
    });
    if (!claimed) {
      const holder = await deps.state.getPromotion(job.pipeline, job.to);
      if (holder?.revision === job.revision && isSettled(holder.state)) {
        return { outcome: { status: 'settled', state: holder.state }, application };
      }
      return {
        outcome: { status: 'superseded', by: holder?.revision ?? previous?.revision ?? 'unknown' },
        application,
      };
    }

    const strategy = promotionStrategy(pipeline, job.to);
    if (strategy.type === 'notification') {
      await handOver(job, pipeline, deps);
      await finish({
        state: 'notified',
        timeline,
        ...(sameRevision?.approvedBy === undefined ? {} : { approvedBy: sameRevision.approvedBy }),
      });
      // `notified` is settled: only the first hand-off of a revision gets here.
      const latencyMs = Math.max(0, deps.clock.now().getTime() - Date.parse(job.event.timestamp));
      return { outcome: { status: 'notified' }, application, latencyMs };
    }

    // The env's PR at another revision, still open: stale once the base holds this one.
    const stale =
      previous !== undefined &&
      previous.revision !== job.revision &&
      (previous.state === 'opened' || previous.state === 'updated') &&
      (previous.pullRequest?.state ?? 'open') === 'open'
        ? previous.pullRequest
        : undefined;
    const outcome = await promoteByPullRequest(job, pipeline, strategy, deps, stale);
    if (outcome.status === 'up-to-date') {
      await finish({
        state: 'up-to-date',
        timeline,
        ...(outcome.closedPullRequest === undefined
          ? {}
          : { pullRequest: { ...outcome.closedPullRequest, state: 'closed' } }),
      });
      return { outcome, application };
    }
    await finish({
      state: outcome.status,
      pullRequest: { ...outcome.pullRequest, state: 'open', head: outcome.head },
      ...(sameRevision?.approvedBy === undefined ? {} : { approvedBy: sameRevision.approvedBy }),
      timeline: {
        ...timeline,
        pullRequestAt: sameRevision?.timeline?.pullRequestAt ?? deps.clock.now().toISOString(),
      },
    });
    // One latency sample per revision reaching the PR: a redelivered or replayed job that finds
    // the PR already at this revision would only add an inflated duplicate.
    const latencyMs = Math.max(0, deps.clock.now().getTime() - Date.parse(job.event.timestamp));
    return outcome.status === 'opened' || sameRevision === undefined
      ? { outcome, application, latencyMs }
      : { outcome, application };
  } catch (error) {
    if (!isPromoterError(error) || error.retryable) throw error;
    const failed = {
      state: 'failed',
      failure: { code: error.code, message: error.message },
    } as const;
    await (claimed ? finish(failed) : record(failed));
    return {
      outcome: { status: 'failed', code: error.code, message: error.message },
      application,
    };
  }
};

const isSettled = (state: PromotionState): state is (typeof SETTLED_STATES)[number] =>
  (SETTLED_STATES as readonly PromotionState[]).includes(state);

/**
 * Where the release of this revision started: the source environment's own promotion at the
 * revision knows; a source with none (the first environment) started it.
 */
const releaseStart = async (
  job: PromotionJob,
  eventTimestamp: string,
  deps: PromotionDependencies,
): Promise<string> => {
  const source = await deps.state.getPromotion(job.pipeline, job.from);
  return source?.revision === job.revision
    ? (source.timeline?.releaseStartedAt ?? eventTimestamp)
    : eventTimestamp;
};

export const stalePullRequestComment = (
  job: Pick<PromotionJob, 'pipeline' | 'to' | 'revision'>,
  baseBranch: string,
): string =>
  `Closed by Pipeline Promoter: \`${baseBranch}\` already holds ${job.pipeline.namespace}/${job.pipeline.name} in ${job.to} at \`${job.revision}\`, so merging this pull request would roll ${job.to} back. A newer revision opens a new pull request.`;

const promotionStrategy = (pipeline: Pipeline, environment: string): PromotionStrategy => {
  const strategy = promotionInto(pipeline, environment)?.strategy;
  if (strategy !== undefined) return strategy;
  // The model refuses such a pipeline; a stored definition from elsewhere might not.
  throw new PromoterError(
    'INVALID_PIPELINE',
    `pipeline ${pipelineId(pipeline)} has no promotion strategy for ${environment}`,
  );
};

/**
 * The notification strategy (DESIGN.md section 13): the `Promotion` notice is the job's effect,
 * so a receiver or bus that fails makes the job fail (retried through the queue) like a git
 * host that fails.
 */
const handOver = async (
  job: PromotionJob,
  pipeline: Pipeline,
  deps: PromotionDependencies,
): Promise<void> => {
  if (deps.notices === undefined) {
    throw new PromoterError(
      'NOTICES_UNCONFIGURED',
      `pipeline ${pipelineId(pipeline)} promotes into ${job.to} by notification, and this deployment has nowhere to send notices: promoter serve needs --notify-url, the Lambda functions PROMOTER_EVENT_BUS_NAME (the stack sets it)`,
    );
  }
  await deps.notices.publish(promoteNotice(pipeline, job, deps.clock.now()));
};

const promoteByPullRequest = async (
  job: PromotionJob,
  pipeline: Pipeline,
  strategy: PullRequestStrategy,
  deps: PromotionDependencies,
  stale: { readonly number: number; readonly url: string } | undefined,
): Promise<
  Exclude<
    PromotionOutcome,
    { status: 'superseded' | 'settled' | 'dropped' | 'failed' | 'notified' }
  >
> => {
  const secretRef = { namespace: pipeline.namespace, name: strategy.credentialsSecret };
  const { apiToken, gitCredentials } = await repositoryCredentials(
    deps,
    secretRef,
    strategy.repository,
  );
  const target = {
    namespace: job.pipeline.namespace,
    name: job.pipeline.name,
    environment: job.to,
  };
  const branch = promotionBranch(job);
  const title = promotionTitle(job);
  const result = await deps.repository.preparePromotionBranch({
    repository: strategy.repository,
    credentials: gitCredentials,
    baseBranch: strategy.baseBranch,
    branch,
    includePath: isPromotableFile,
    needle,
    edit: (_path, content) => editMarkers(content, target, job.revision),
    // Dated by the source deployment: a redelivered or replayed job makes the same commit.
    commit: {
      message: title,
      author: deps.author ?? DEFAULT_AUTHOR,
      time: new Date(job.event.timestamp),
    },
  });
  if (result.status === 'unchanged') {
    if (result.markedFiles > 0) {
      if (stale === undefined) return { status: 'up-to-date' };
      await deps.pullRequests.close(
        { repository: strategy.repository, token: apiToken, number: stale.number },
        stalePullRequestComment(job, strategy.baseBranch),
      );
      deps.metrics.record({
        name: Metric.StalePullRequestsClosed,
        unit: 'Count',
        value: 1,
        dimensions: { [Dimension.Environment]: job.to },
        metadata: { pipeline: pipelineId(job.pipeline), pullRequest: stale.url },
      });
      return { status: 'up-to-date', closedPullRequest: { number: stale.number, url: stale.url } };
    }
    throw new PromoterError(
      'NO_MARKER',
      `no marker # {"$promotion": "${markerFor(target.namespace, target.name, target.environment)}"} in the *.yaml/*.yml files of ${strategy.repository.cloneUrl} branch ${strategy.baseBranch}`,
      { data: { repository: strategy.repository.cloneUrl, branch: strategy.baseBranch } },
    );
  }
  const pullRequest = await deps.pullRequests.upsert({
    repository: strategy.repository,
    token: apiToken,
    head: branch,
    base: strategy.baseBranch,
    title,
    body: promotionBody(job, result.changedFiles),
  });
  const autoMerge = promotionSettings(pipeline, job.to).autoMerge
    ? await enableAutoMerge(
        {
          repository: strategy.repository,
          token: apiToken,
          number: pullRequest.number,
          expectedHead: result.commit,
        },
        job,
        deps,
      )
    : undefined;
  return {
    status: pullRequest.action,
    pullRequest: { number: pullRequest.number, url: pullRequest.url },
    changedFiles: result.changedFiles,
    head: result.commit,
    ...(autoMerge === undefined ? {} : { autoMerge }),
  };
};

/**
 * The host's own auto-merge where it can be had (GitHub's, GitLab's merge when pipeline
 * succeeds); else (or when turning it on fails) the reconcile sweep merges once the PR is
 * mergeable and its checks pass. The PR is open either way, so a failure here never fails the
 * promotion.
 */
const enableAutoMerge = async (
  lookup: PullRequestLookup & { readonly expectedHead: string },
  job: PromotionJob,
  deps: PromotionDependencies,
): Promise<'enabled' | 'by-sweep'> => {
  try {
    return (await deps.pullRequests.enableAutoMerge(lookup)) === 'enabled' ? 'enabled' : 'by-sweep';
  } catch (error) {
    deps.logger.warn('auto-merge not turned on: the sweep merges', {
      ...jobContext(job),
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      reason: errorMessage(error),
    });
    return 'by-sweep';
  }
};
