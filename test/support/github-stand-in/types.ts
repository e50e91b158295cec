/** The public types of the GitHub stand-in (github-stand-in.ts re-exports them all). */

export type TokenAccess = 'write' | 'read';

/** GitHub's merge methods; the stand-in performs `merge` and `squash`. */
export type MergeMethod = 'merge' | 'squash' | 'rebase';

export interface GitIdentity {
  readonly name: string;
  readonly email: string;
}

/** A merge for the git side to make, with everything resolved beforehand. */
export interface GitMergeRequest {
  /** The base branch, moved only while it still points at `baseSha` (compare and swap). */
  readonly base: string;
  readonly baseSha: string;
  /** The head commit merged (resolved before, so that a push racing the merge is not merged). */
  readonly headSha: string;
  readonly method: 'merge' | 'squash';
  readonly title: string;
  /** The commit message body; for a squash without one, the squashed commits' messages. */
  readonly message: string | undefined;
  readonly author: GitIdentity;
  readonly committer: GitIdentity;
  /** A head branch to delete after the merge (the repository's `delete_branch_on_merge`). */
  readonly deleteBranch?: string;
}

export type GitMergeOutcome =
  | { readonly kind: 'merged'; readonly sha: string }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'base-moved' };

/** What the stand-in may ask of the git repositories behind it (all optional, all cheap). */
export interface StandInGit {
  /** Every branch of the repository and the commit it points at (asked once per request). */
  branches(owner: string, repo: string): Promise<ReadonlyMap<string, string>>;
  /** How many commits `head` has that `base` does not (GitHub refuses a PR with none). */
  commitsBetween?(owner: string, repo: string, base: string, head: string): Promise<number>;
  /** Makes the merge commit (or squash commit) and moves the base branch to it. */
  merge?(owner: string, repo: string, request: GitMergeRequest): Promise<GitMergeOutcome>;
  /** Whether `headSha` merges into `baseSha` without conflicts (GitHub's `mergeable`). */
  mergeable?(owner: string, repo: string, baseSha: string, headSha: string): Promise<boolean>;
}

export interface GitHubStandInOptions {
  /** Tokens allowed to read and write. */
  readonly tokens?: Iterable<string>;
  /** Tokens allowed to read only: writes answer 403. */
  readonly readOnlyTokens?: Iterable<string>;
  /** The login the tokens act as (default `promoter-bot`). */
  readonly login?: string;
  /** Requests per token per hour before the primary rate limit answers 403 (default 5000). */
  readonly rateLimit?: number;
  /** Resolves head SHAs and checks branches; without it, SHAs are made up and never checked. */
  readonly git?: StandInGit;
  /**
   * `http://host:port` used in `html_url`s; defaults to the request's Host. Webhook payloads,
   * which answer no request, use it too (else `http://127.0.0.1`).
   */
  readonly webBaseUrl?: string;
}

/** A fault answered instead of (or, with `after`, in place of the answer to) a request. */
export type GitHubFault =
  | {
      readonly kind: 'status';
      /** 500, 502, 503, ... */
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Readonly<Record<string, string>>;
      /** Handle the request first (its effects happen), then answer the fault. */
      readonly after?: boolean;
    }
  | {
      /** GitHub's secondary rate limit: 403 (or 429) with Retry-After. */
      readonly kind: 'secondary-rate-limit';
      readonly status?: 403 | 429;
      readonly retryAfterSeconds?: number;
    }
  | {
      /** GitHub's primary rate limit: 403 (or 429), x-ratelimit-remaining 0, reset soon. */
      readonly kind: 'primary-rate-limit';
      readonly status?: 403 | 429;
      readonly resetInSeconds?: number;
    }
  | {
      /** 422 "A pull request already exists for owner:branch." (without creating anything). */
      readonly kind: 'already-exists';
    }
  | {
      /** The TCP connection is reset without an answer. */
      readonly kind: 'connection-reset';
      readonly after?: boolean;
    };

export interface FaultRule {
  /** HTTP method to match (any when absent). */
  readonly method?: string;
  /**
   * The route to match: a template (`/repos/{owner}/{repo}/pulls`), a concrete path
   * (`/repos/acme/fleet/pulls`, without `/api/v3`), or a RegExp tested on the concrete path.
   * GraphQL requests are `/graphql`. Any route when absent.
   */
  readonly route?: string | RegExp;
  /** How many matching requests the fault answers (default 1). */
  readonly times?: number;
  readonly fault: GitHubFault;
}

export interface RecordedRequest {
  readonly method: string;
  /** The path after `/api/v3`, without the query; `/graphql` for GraphQL (`/api/graphql`). */
  readonly path: string;
  /** The route template, or undefined for an unknown route. */
  readonly route: string | undefined;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** The login of an accepted token, else undefined. */
  readonly login: string | undefined;
  readonly userAgent: string | undefined;
  /** The status answered (0 for a connection reset; 304 for an unchanged conditional GET). */
  readonly status: number;
  /** The fault that answered, if any. */
  readonly fault: GitHubFault['kind'] | undefined;
  /** Whether the request carried `If-None-Match`. */
  readonly conditional: boolean;
  /** Whether it used the token's primary rate limit (a 304 does not, nor does `/rate_limit`). */
  readonly counted: boolean;
}

export interface RequestFilter {
  readonly method?: string;
  /** A route template or a concrete path. */
  readonly route?: string;
  readonly status?: number;
}

/** What a set of requests cost. */
export interface ApiUsage {
  readonly requests: number;
  /** Answered 304 Not Modified. */
  readonly notModified: number;
  /** Used the primary rate limit. */
  readonly counted: number;
}

export interface StandInRepositoryOptions {
  /** @default 'main' */
  readonly defaultBranch?: string;
  /** @default true */
  readonly private?: boolean;
  /** Deletes the head branch once a PR is merged. @default false */
  readonly deleteBranchOnMerge?: boolean;
  /** @default true */
  readonly allowMergeCommit?: boolean;
  /** @default true */
  readonly allowSquashMerge?: boolean;
  /** The repository setting "Allow auto-merge" (GitHub's default: off). @default false */
  readonly allowAutoMerge?: boolean;
  /**
   * Branch protection's required status checks: commit status contexts or check run names that
   * must succeed on a PR's head before it merges (mergeable_state `blocked` until then).
   */
  readonly requiredChecks?: readonly string[];
  /** Branch protection's required approving reviews (`approvePullRequest`). @default 0 */
  readonly requiredApprovingReviews?: number;
}

export interface StandInRepository {
  readonly id: number;
  readonly owner: string;
  readonly name: string;
  readonly defaultBranch: string;
  readonly private: boolean;
  readonly deleteBranchOnMerge: boolean;
  readonly allowMergeCommit: boolean;
  readonly allowSquashMerge: boolean;
  readonly allowAutoMerge: boolean;
  readonly requiredChecks: readonly string[];
  readonly requiredApprovingReviews: number;
}

/** GitHub's auto-merge request on a PR (`auto_merge` in its JSON). */
export interface StandInAutoMerge {
  /** The login that enabled it: GitHub merges as that user. */
  readonly enabledBy: string;
  readonly mergeMethod: MergeMethod;
  readonly enabledAt: string;
}

/** GitHub's `mergeable_state`. */
export type MergeableState =
  | 'clean'
  | 'unstable'
  | 'has_hooks'
  | 'blocked'
  | 'behind'
  | 'dirty'
  | 'draft'
  | 'unknown';

export type CommitStatusState = 'pending' | 'success' | 'failure' | 'error';

/** A commit status (`POST /repos/{owner}/{repo}/statuses/{sha}`): the latest per context counts. */
export interface StandInCommitStatus {
  readonly id: number;
  readonly sha: string;
  readonly context: string;
  readonly state: CommitStatusState;
  readonly description: string | null;
  readonly targetUrl: string | null;
  readonly creator: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type CheckRunStatus = 'queued' | 'in_progress' | 'completed';

export type CheckRunConclusion =
  | 'success'
  | 'failure'
  | 'neutral'
  | 'cancelled'
  | 'skipped'
  | 'timed_out'
  | 'action_required';

/** A check run (a GitHub App's, e.g. Actions): one per name and head SHA, updated in place. */
export interface StandInCheckRun {
  readonly id: number;
  readonly sha: string;
  readonly name: string;
  readonly status: CheckRunStatus;
  /** Set once `completed`. */
  readonly conclusion: CheckRunConclusion | null;
  readonly startedAt: string;
  readonly completedAt: string | null;
}

/** What a test sets on a commit: a status context, or a check run (with `kind: 'check-run'`). */
export type CommitCheck =
  | {
      readonly kind?: 'status';
      readonly context: string;
      readonly state: CommitStatusState;
      readonly description?: string;
      readonly targetUrl?: string;
    }
  | {
      readonly kind: 'check-run';
      readonly name: string;
      readonly status: CheckRunStatus;
      /** Required when `completed` (default `success`). */
      readonly conclusion?: CheckRunConclusion;
    };

export interface StandInPullRequest {
  readonly id: number;
  readonly number: number;
  readonly owner: string;
  readonly repo: string;
  readonly state: 'open' | 'closed';
  readonly title: string;
  readonly body: string | null;
  /** Branch name (same repository). */
  readonly head: string;
  readonly base: string;
  /**
   * The head SHA when the PR was created, last saw a push, or was closed (a closed PR keeps the
   * head it had: later pushes to the branch are not its commits).
   */
  readonly headSha: string;
  readonly user: string;
  readonly draft: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly closedAt: string | null;
  readonly merged: boolean;
  readonly mergedAt: string | null;
  readonly mergeCommitSha: string | null;
  /** The login that merged it. */
  readonly mergedBy: string | null;
  /** GitHub's auto-merge, when enabled (`enablePullRequestAutoMerge`). */
  readonly autoMerge: StandInAutoMerge | null;
}

export interface StandInComment {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  /** The pull request's number (a PR is an issue). */
  readonly issueNumber: number;
  readonly body: string;
  readonly user: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What a person clicking merge chooses. */
export interface MergeOptions {
  /** @default 'merge' */
  readonly method?: MergeMethod;
  /** Merge only while the head is at this SHA (else 409). */
  readonly sha?: string;
  readonly commitTitle?: string;
  readonly commitMessage?: string;
  /** The login merging (default `fleet-admin`, a person). */
  readonly by?: string;
}

/** The GitHub answer of a merge. */
export interface MergeResult {
  readonly sha: string;
  readonly merged: true;
  readonly message: string;
}
