import type { GitHubRepository, Pipeline, PipelineRef } from './pipeline.ts';
import type { PipelineSecret, SecretRef } from './pipeline-secret.ts';
import type { PromotionJob } from './promotion-job.ts';

/**
 * The ports the core talks through. Each has an adapter per real component (functions/adapters)
 * and a small in-memory or file twin for `promoter serve` and tests. Adapters throw PromoterError
 * with a `code` and `retryable` so that the core never inspects an SDK's error types.
 */

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A job whose receives are spent, with the failure that spent the last one. */
export interface DeadLetter {
  /** The job's id (what `retry` takes); a message whose body is no job: the message's id. */
  readonly id: string;
  /** Absent when the body is no promotion job (failure INVALID_JOB). */
  readonly job?: PromotionJob;
  readonly failure: { readonly code: string; readonly message: string };
  readonly receiveCount: number;
  /** When it was dead-lettered (ISO 8601), when the queue knows. */
  readonly deadLetteredAt?: string;
}

/**
 * The dead letters of a queue (`promoter dead-letters`): serve's database or the SQS DLQ. A
 * retried job goes back to its queue with its receives reset; its promotion runs as any job.
 */
export interface DeadLetters {
  list(): Promise<DeadLetter[]>;
  /** Puts the dead letter of job `id` back on the queue; false when there is none. */
  retry(id: string): Promise<boolean>;
  /** Puts every dead letter back; answers how many. */
  retryAll(): Promise<number>;
}

export interface JobQueue {
  /**
   * Durably enqueues the job. Enqueueing a job with an id already seen (within the queue's
   * deduplication window) has no second effect.
   */
  enqueue(job: PromotionJob): Promise<void>;
}

export interface PipelineStore {
  get(ref: PipelineRef): Promise<Pipeline | undefined>;
}

/** What `put` did: `unchanged` when the stored definition has the same content (no write). */
export type PipelinePutResult = 'created' | 'updated' | 'unchanged';

/** The writable pipeline store behind `promoter sync` (PUT /pipelines). */
export interface PipelineRegistry extends PipelineStore {
  list(): Promise<Pipeline[]>;
  put(pipeline: Pipeline): Promise<PipelinePutResult>;
  /** True when the pipeline existed. */
  delete(ref: PipelineRef): Promise<boolean>;
}

export interface SecretStore {
  /**
   * Throws PromoterError SECRET_NOT_FOUND, SECRET_INACCESSIBLE, INVALID_SECRET (permanent) or
   * SECRET_UNAVAILABLE (retryable).
   */
  get(ref: SecretRef): Promise<PipelineSecret>;
}

/** A deployment seen by the webhook: the revision an environment now runs. */
export interface DeploymentRecord {
  readonly pipeline: PipelineRef;
  readonly environment: string;
  readonly revision: string;
  readonly eventTimestamp: string;
  readonly recordedAt: string;
}

/**
 * The states a stored promotion record can have (the lifecycle of DESIGN.md section 10).
 * `pushing` is the claim a job takes before it pushes the branch (DESIGN.md 7.10); `opened`,
 * `updated`, `up-to-date`, `superseded` and `failed` are written when a job ends,
 * `dead-lettered` by the queue's shell when its receives are spent; `merged` and `closed` come
 * from GitHub (its webhook or the reconcile sweep), `deployed` from the target environment's
 * own deployment event. (The status API also shows `queued`, which it derives and nothing
 * stores: pipeline-status.ts.)
 */
export const PROMOTION_STATES = [
  'pushing',
  'opened',
  'updated',
  'up-to-date',
  'merged',
  'closed',
  'deployed',
  'superseded',
  'failed',
  'dead-lettered',
] as const;

export type PromotionState = (typeof PROMOTION_STATES)[number];

/**
 * States after which a revision's promotion is settled: a later job of the same revision does
 * not claim the environment again (a PR a person closed is not reopened for that revision, a
 * merged or deployed one has nothing left to do).
 */
export const SETTLED_STATES = [
  'merged',
  'closed',
  'deployed',
] as const satisfies readonly PromotionState[];

/** The times of a promotion (DESIGN.md section 10), ISO 8601. */
export interface PromotionTimeline {
  /** The source environment's deployment event at the revision. */
  readonly sourceDeployedAt?: string;
  /** When the first environment deployed the revision: where the release started. */
  readonly releaseStartedAt?: string;
  readonly queuedAt?: string;
  /** When the PR first described this revision. */
  readonly pullRequestAt?: string;
  readonly mergedAt?: string;
  /** The target environment's deployment event at the revision. */
  readonly deployedAt?: string;
}

export type PullRequestState = 'open' | 'merged' | 'closed';

export interface PromotionPullRequest {
  readonly number: number;
  readonly url: string;
  /** Absent on records written before the lifecycle: open. */
  readonly state?: PullRequestState;
  readonly mergeCommit?: string;
}

/** The latest promotion into one environment of one pipeline. */
export interface PromotionRecord {
  readonly pipeline: PipelineRef;
  readonly environment: string;
  readonly revision: string;
  readonly state: PromotionState;
  readonly jobId: string;
  readonly from: string;
  /** The source deployment event's timestamp: what orders promotions (a late event loses). */
  readonly eventTimestamp: string;
  readonly updatedAt: string;
  readonly pullRequest?: PromotionPullRequest;
  readonly failure?: { readonly code: string; readonly message: string };
  readonly timeline?: PromotionTimeline;
  /** Source deployment to target deployment, once deployed. */
  readonly leadTimeMs?: number;
}

/** What a transition expects of the stored record: its revision, and one of these states. */
export interface PromotionExpectation {
  readonly revision: string;
  readonly states: readonly PromotionState[];
}

/**
 * Deployments and promotions are kept per (pipeline, environment) with conditional writes:
 *
 * - `recordDeployment` and `putPromotion` write only when no record is stored or the stored
 *   one's event is not newer (equal instants: the last write wins), so a late event never
 *   overwrites a later one; `putPromotion` also leaves a record of the same revision in a
 *   settled state (SETTLED_STATES) alone. A `pushing` claim that is not written means a later
 *   event, or a settled promotion of that revision, holds the environment.
 * - `transitionPromotion` moves a record along the lifecycle: it writes only when the stored
 *   record is at `expected.revision` in one of `expected.states` (compare and set).
 * - An incident is an environment's run of failures: `openIncident` keeps the first failure's
 *   time, `closeIncident` ends it and answers when it began (time to restore).
 *
 * The writes answer whether they wrote.
 */
export interface PromotionStateStore {
  recordDeployment(record: DeploymentRecord): Promise<boolean>;
  listDeployments(ref: PipelineRef): Promise<DeploymentRecord[]>;
  getPromotion(ref: PipelineRef, environment: string): Promise<PromotionRecord | undefined>;
  putPromotion(record: PromotionRecord): Promise<boolean>;
  transitionPromotion(record: PromotionRecord, expected: PromotionExpectation): Promise<boolean>;
  listPromotions(ref: PipelineRef): Promise<PromotionRecord[]>;
  /** True when this failure opened the incident (none was open). */
  openIncident(ref: PipelineRef, environment: string, at: string): Promise<boolean>;
  /** The open incident's start, which it removes; undefined when none was open. */
  closeIncident(ref: PipelineRef, environment: string): Promise<string | undefined>;
}

/**
 * Deliveries already handled, by id (GitHub's `X-GitHub-Delivery`), for `ttlSeconds` at least.
 */
export interface DeliveryLog {
  /** True the first time `id` is seen; false for a repeated delivery. */
  firstSeen(id: string, ttlSeconds: number): Promise<boolean>;
}

export interface GitCredentials {
  readonly username: string;
  readonly password: string;
}

export interface FileEdit {
  /** How many `$promotion` markers for the target were found in the file. */
  readonly markers: number;
  /** The file's new text (equal to the input when nothing changed). */
  readonly content: string;
}

export interface PromotionBranchRequest {
  readonly repository: GitHubRepository;
  readonly credentials: GitCredentials;
  readonly baseBranch: string;
  readonly branch: string;
  /** Only files whose path passes and whose raw text contains `needle` are handed to `edit`. */
  readonly includePath: (path: string) => boolean;
  readonly needle: string;
  readonly edit: (path: string, content: string) => FileEdit;
  readonly commit: {
    readonly message: string;
    readonly author: { readonly name: string; readonly email: string };
    /**
     * The commit's time. With it, the commit is a function of its inputs: the same promotion
     * on the same base is the same commit, and a branch already holding it is not pushed again.
     */
    readonly time?: Date;
  };
}

export type PromotionBranchResult =
  | {
      readonly status: 'pushed';
      readonly baseCommit: string;
      readonly commit: string;
      readonly changedFiles: readonly string[];
    }
  | {
      readonly status: 'unchanged';
      readonly baseCommit: string;
      /** Files with markers for the target: 0 means there is nothing to promote. */
      readonly markedFiles: number;
    };

export interface ConfigRepository {
  /**
   * Edits the files of `baseBranch`'s head and force-updates `branch` to one commit on top of
   * it. When the base moves before the push lands, starts again on the new head. Throws
   * PromoterError GIT_* codes.
   */
  preparePromotionBranch(request: PromotionBranchRequest): Promise<PromotionBranchResult>;
}

export interface PullRequestRequest {
  readonly repository: GitHubRepository;
  readonly token: string;
  readonly head: string;
  readonly base: string;
  readonly title: string;
  readonly body: string;
}

export interface PullRequestResult {
  readonly action: 'opened' | 'updated';
  readonly number: number;
  readonly url: string;
}

/** A pull request as the lifecycle reads it. */
export interface PullRequestView {
  readonly number: number;
  readonly state: PullRequestState;
  readonly title: string;
  readonly headRef: string;
  readonly mergedAt?: string;
  readonly mergeCommit?: string;
}

export interface PullRequestLookup {
  readonly repository: GitHubRepository;
  readonly token: string;
  readonly number: number;
}

export interface PullRequests {
  /** Updates the open PR whose head is `head`, else opens one. Throws PromoterError GITHUB_*. */
  upsert(request: PullRequestRequest): Promise<PullRequestResult>;
  /**
   * The PR's state, or `not-modified` when it has not changed since this adapter last read it
   * (a conditional request, which costs no rate limit on GitHub).
   */
  get(lookup: PullRequestLookup): Promise<PullRequestView | 'not-modified'>;
  /** Comments on the PR, then closes it (a stale promotion PR). */
  close(lookup: PullRequestLookup, comment: string): Promise<void>;
}

export type MetricUnit = 'Count' | 'Milliseconds';

export interface MetricPoint {
  readonly name: string;
  readonly unit: MetricUnit;
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
  /** High-cardinality context (revision, PR URL, job id), searchable but not a dimension. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface MetricsSink {
  record(point: MetricPoint): void;
}
