/** The GitLab stand-in's model: projects, merge requests, pipelines, faults and recorded requests. */

/**
 * The pipeline of a commit as the stand-in's controls set it, in GitLab's statuses (`none`: no
 * pipeline ran, or it was deleted).
 */
export type PipelineStatus =
  | 'none'
  | 'created'
  | 'waiting_for_resource'
  | 'preparing'
  | 'pending'
  | 'running'
  | 'success'
  | 'failed'
  | 'canceled'
  | 'skipped'
  | 'manual'
  | 'scheduled';

/** A pipeline of one commit of a branch. */
export interface StandInPipeline {
  readonly id: number;
  readonly sha: string;
  /** The branch it ran for. */
  readonly ref: string;
  status: Exclude<PipelineStatus, 'none'>;
  readonly createdAt: string;
  updatedAt: string;
}

/** GitLab's merge request states (`locked` is the short state while a merge is in progress). */
export type MergeRequestState = 'opened' | 'closed' | 'merged' | 'locked';

/** What a token may do: `read` is a `read_api` token (writes answer 403 insufficient_scope). */
export type TokenAccess = 'write' | 'read';

export interface ProjectOptions {
  /** GitLab's `only_allow_merge_if_pipeline_succeeds` (default false, as on GitLab). */
  readonly pipelineMustSucceed?: boolean;
  /**
   * The project has CI: each push gives the new head of every branch but the default one a
   * `running` pipeline, as GitLab's branch pipelines (default false: no pipeline unless a test
   * sets one with `setPipeline`, which also stands for a pipeline GitLab creates late).
   */
  readonly ci?: boolean;
}

export interface StandInProject {
  readonly id: number;
  /** `group/subgroup/project` */
  readonly path: string;
  readonly defaultBranch: string;
  readonly pipelineMustSucceed: boolean;
  readonly ci: boolean;
  readonly createdAt: string;
}

export interface StandInNote {
  readonly id: number;
  readonly body: string;
  readonly author: string;
  readonly createdAt: string;
}

export interface StandInMergeRequest {
  readonly id: number;
  readonly iid: number;
  /** The project's path. */
  readonly project: string;
  title: string;
  description: string;
  readonly sourceBranch: string;
  targetBranch: string;
  state: MergeRequestState;
  /** The source branch's head when the stand-in last looked (kept when the branch is deleted). */
  sha: string;
  mergeCommitSha?: string;
  mergedAt?: string;
  mergedBy?: string;
  closedAt?: string;
  closedBy?: string;
  readonly createdAt: string;
  updatedAt: string;
  readonly author: string;
  removeSourceBranch: boolean;
  /** Auto-merge ("merge when pipeline succeeds") is set, pinned to `autoMergeSha`. */
  mergeWhenPipelineSucceeds: boolean;
  autoMergeSha?: string;
  notes: StandInNote[];
}

/** What an injected fault answers instead of the route. */
export type GitLabFault =
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** Rack::Attack's throttle: 429 `Retry later`, with Retry-After and the RateLimit-* headers. */
  | { readonly kind: 'rate-limit'; readonly retryAfterSeconds?: number }
  /**
   * On `POST /projects/:id/merge_requests`: another client creates the same merge request
   * first, and this request gets GitLab's 409 "Another open merge request already exists".
   */
  | { readonly kind: 'race' }
  /** The create lands, then the answer is a 502 (a proxy that lost it). */
  | { readonly kind: 'lost-answer' }
  | { readonly kind: 'connection-reset' };

export interface FaultRule {
  /** `GET`, `POST`, `PUT`; any when absent. */
  readonly method?: string;
  /** A route template (`/projects/:id/merge_requests/:iid/merge`), a RegExp over the path, or any. */
  readonly route?: string | RegExp;
  /** How many matching requests it answers (default 1). */
  readonly times?: number;
  readonly fault: GitLabFault;
}

export interface RecordedRequest {
  readonly method: string;
  /** The path under `/api/v4`, as sent (the project id still URL-encoded). */
  readonly path: string;
  /** `/projects/:id/merge_requests/:iid`, or undefined for a path the stand-in does not serve. */
  readonly route: string | undefined;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly status: number;
  /** How the caller authenticated: `private-token`, `bearer`, or none. */
  readonly auth: 'private-token' | 'bearer' | 'none';
  readonly userAgent: string | undefined;
}
