import type { HostedRepository, Pipeline, PipelineRef } from './pipeline.ts';
import type { PipelineSecret, SecretRef } from './pipeline-secret.ts';
import type { PromotionJob } from './promotion-job.ts';

/*
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

/**
 * A deployment seen by the webhook: the revision one target of an environment reported last.
 * One record per (pipeline, environment, target); `target` is absent on records written before
 * targets were told apart.
 */
export interface DeploymentRecord {
  readonly pipeline: PipelineRef;
  readonly environment: string;
  /** The target's name (core/targets.ts): its cluster and namespace. */
  readonly target?: string;
  readonly revision: string;
  /** False for a failed install, upgrade or test at `revision` (absent: it succeeded). */
  readonly ok?: boolean;
  readonly eventTimestamp: string;
  readonly recordedAt: string;
}

/**
 * The states a stored promotion record can have (the lifecycle of DESIGN.md section 10).
 * `pushing` is the claim a job takes before it pushes the branch (DESIGN.md 7.10); `opened`,
 * `updated`, `notified` (the notification strategy handed it over), `up-to-date`, `superseded`
 * and `failed` are written when a job ends,
 * `dead-lettered` by the queue's shell when its receives are spent; `merged` and `closed` come
 * from the git host (its webhook or the reconcile sweep), `deployed` from the target environment's
 * own deployment event. `waiting` and `awaiting-approval` hold a promotion at its gates
 * (core/promotion-gates.ts, DESIGN.md section 11), `queued` is written when the gates open and the
 * job is enqueued, `cancelled` when a failure of the source environment ends a soak.
 */
export const PROMOTION_STATES = [
  'waiting',
  'awaiting-approval',
  'queued',
  'pushing',
  'opened',
  'updated',
  'notified',
  'up-to-date',
  'merged',
  'closed',
  'deployed',
  'superseded',
  'failed',
  'dead-lettered',
  'cancelled',
] as const;

export type PromotionState = (typeof PROMOTION_STATES)[number];

/**
 * States after which a revision's promotion is settled: a later job of the same revision does
 * not claim the environment again (a PR a person closed is not reopened for that revision, a
 * merged, notified or deployed one has nothing left to do).
 */
export const SETTLED_STATES = [
  'merged',
  'closed',
  'deployed',
  // Handed over by the notification strategy: a repeated job must not trigger the system twice.
  'notified',
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
  readonly approvalRequestedAt?: string;
  readonly approvedAt?: string;
}

/** What a promotion in state `waiting` waits for (DESIGN.md section 10), one gate at a time. */
export type WaitingFor =
  | { readonly targets: { readonly ready: number; readonly needed: number } }
  | { readonly soak: { readonly until: string } }
  | { readonly window: { readonly opensAt: string } }
  | { readonly freeze: { readonly reason: string; readonly by: string; readonly until?: string } };

/** A freeze (`promoter freeze`): no scope field, every pipeline or environment. */
export interface Freeze {
  /** `namespace/name`; absent: every pipeline. */
  readonly pipeline?: string;
  /** Absent: every environment. */
  readonly environment?: string;
  readonly reason: string;
  /** Who froze: the caller's IAM ARN in AWS, `serve`'s local user otherwise. */
  readonly by: string;
  readonly at: string;
  /** When it ends by itself (ISO 8601); absent: at `unfreeze`. */
  readonly until?: string;
}

export type PullRequestState = 'open' | 'merged' | 'closed';

export interface PromotionPullRequest {
  readonly number: number;
  readonly url: string;
  /** Absent on records written before the lifecycle: open. */
  readonly state?: PullRequestState;
  readonly mergeCommit?: string;
  /** The commit the promotion pushed as the PR's head: the only head auto-merge merges. */
  readonly head?: string;
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
  /** State `waiting`: the gate it waits at. */
  readonly waitingFor?: WaitingFor;
  /** When a time gate (soak, window, a freeze's end) is due to be looked at again. */
  readonly dueAt?: string;
  /** Who approved (an IAM ARN, or `hmac` for Weave's signed approval route). */
  readonly approvedBy?: string;
  /** States `waiting`, `awaiting-approval`: the job that is enqueued when the gates open. */
  readonly job?: PromotionJob;
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
  /** Stores a freeze, replacing one of the same scope (pipeline and environment). */
  putFreeze(freeze: Freeze): Promise<void>;
  /** Removes the freeze of exactly this scope; true when there was one. */
  removeFreeze(scope: Pick<Freeze, 'pipeline' | 'environment'>): Promise<boolean>;
  listFreezes(): Promise<Freeze[]>;
}

/**
 * Deliveries already handled, by id (GitHub's `X-GitHub-Delivery`, GitLab's `Idempotency-Key`),
 * for `ttlSeconds` at least.
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
  readonly repository: HostedRepository;
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
  readonly repository: HostedRepository;
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
  /** The head commit's SHA: what a merge expects the branch to hold. */
  readonly headSha?: string;
}

export interface PullRequestLookup {
  readonly repository: HostedRepository;
  readonly token: string;
  readonly number: number;
}

/**
 * Pull requests (GitLab: merge requests) on the host of a repository; one adapter per provider
 * (`HostedRepository.provider`), the core sees only this. Numbers are the host's per-repository
 * ones (GitHub's `number`, GitLab's `iid`).
 */
export interface PullRequests {
  /**
   * Updates the open PR whose head is `head`, else opens one. Throws PromoterError GITHUB_* or
   * GITLAB_*: `*_UNAVAILABLE` retryable, `*_AUTH_FAILED`, `*_NOT_FOUND`, `*_REJECTED` permanent.
   */
  upsert(request: PullRequestRequest): Promise<PullRequestResult>;
  /**
   * The PR's state, or `not-modified` when it has not changed since this adapter last read it
   * (a conditional request, which costs no rate limit on GitHub).
   */
  get(lookup: PullRequestLookup): Promise<PullRequestView | 'not-modified'>;
  /** Comments on the PR, then closes it (a stale promotion PR). */
  close(lookup: PullRequestLookup, comment: string): Promise<void>;
  /**
   * Turns on the host's own auto-merge for the PR while its head is `expectedHead` (GitHub's
   * GraphQL `enablePullRequestAutoMerge`, GitLab's "merge when pipeline succeeds"): `enabled`,
   * or `unavailable` when the repository does not allow it (then the sweep merges with
   * `mergeWhenReady`). Throws PromoterError GITHUB_* / GITLAB_* for other failures.
   */
  enableAutoMerge(
    lookup: PullRequestLookup & { readonly expectedHead: string },
  ): Promise<'enabled' | 'unavailable'>;
  /**
   * Merges the PR if its head is still `expectedHead`, it is mergeable and its required checks
   * passed; otherwise says what it waits for. Never merges another head than the one expected.
   */
  mergeWhenReady(
    lookup: PullRequestLookup & { readonly expectedHead: string },
  ): Promise<MergeAttempt>;
}

export type MergeAttempt =
  | { readonly status: 'merged'; readonly mergeCommit: string }
  /** Checks pending, mergeability not computed yet: try again on the next sweep. */
  | { readonly status: 'pending'; readonly reason: string }
  /** Conflicts, failed checks, a head that moved, a closed PR: a person has to look. */
  | { readonly status: 'blocked'; readonly reason: string };

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

/** What an installation token is asked for: the App's keys, from `secret`, for `repository`. */
export interface GitHubAppTokenRequest {
  /** The secret the keys come from: what errors name (never its content). */
  readonly secret: SecretRef;
  readonly app: NonNullable<PipelineSecret['githubApp']>;
  readonly repository: HostedRepository;
}

/**
 * Installation tokens of GitHub Apps (DESIGN.md section 4): one per installation, shared by git
 * and the API, until shortly before it expires. Throws PromoterError GITHUB_APP_AUTH or
 * GITHUB_APP_NOT_INSTALLED (permanent), GITHUB_APP_UNAVAILABLE (retryable).
 */
export interface GitHubAppTokens {
  installationToken(request: GitHubAppTokenRequest): Promise<string>;
}

/** What a notice is: the notification strategy's hand-off, or a change of a promotion's state. */
export const NOTICE_TYPES = ['Promotion', 'Promotion State Change'] as const;
export type NoticeType = (typeof NOTICE_TYPES)[number];

/**
 * A notice for systems outside (DESIGN.md section 13), built by core/promotion-notices.ts: an
 * EventBridge event in AWS (source `pipeline-promoter`, `type` as its detail-type, `body` as
 * its detail), a POST of `body` signed like Flux's generic-hmac in serve.
 */
export interface PromotionNotice {
  readonly type: NoticeType;
  readonly pipeline: PipelineRef;
  /** The secret whose `hmac-key` signs the notice where notices are signed (serve's POST). */
  readonly signingSecret: SecretRef;
  /** JSON-serialisable; the same fields wherever it goes. */
  readonly body: Readonly<Record<string, unknown>>;
}

/**
 * Where notices go. Throws PromoterError NOTICE_UNAVAILABLE (retryable: the receiver or the bus
 * failed or timed out) or NOTICE_REJECTED (permanent: the receiver refused it with a 4xx), and
 * what the secret store throws for the signing key.
 */
export interface PromotionNotices {
  publish(notice: PromotionNotice): Promise<void>;
}
