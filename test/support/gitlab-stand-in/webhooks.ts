import { randomUUID } from 'node:crypto';

/*
 * GitLab's "Merge Request Hook" webhook: the payload (`object_kind: merge_request`) and headers
 * GitLab sends for a merge request event, and a deliverer that POSTs them in order. The payload
 * builder is exported so that the receiving side's tests (core/gitlab-webhook.ts) build the same
 * shape as the stand-in sends.
 */

/** `action` of a Merge Request Hook (GitLab also sends approval actions, not modelled). */
export type MergeRequestHookAction = 'open' | 'close' | 'reopen' | 'update' | 'merge';

export interface MergeRequestHookInput {
  readonly action: MergeRequestHookAction;
  /** The GitLab instance's web URL (`X-Gitlab-Instance`, and what the URLs start with). */
  readonly instanceUrl: string;
  readonly project: {
    readonly id: number;
    /** `group/subgroup/project` */
    readonly pathWithNamespace: string;
    readonly defaultBranch: string;
  };
  readonly mergeRequest: {
    readonly id: number;
    readonly iid: number;
    readonly state: 'opened' | 'closed' | 'merged' | 'locked';
    readonly sourceBranch: string;
    readonly targetBranch: string;
    readonly title: string;
    readonly description: string;
    readonly mergeCommitSha: string | null;
    /** The head commit of the source branch. */
    readonly lastCommitId: string;
    readonly lastCommitMessage?: string;
    readonly createdAt: string;
    readonly updatedAt: string;
    readonly mergeWhenPipelineSucceeds?: boolean;
  };
  /** The user who did it (default the stand-in's `promoter-bot`). */
  readonly user?: { readonly id: number; readonly username: string; readonly name: string };
}

/** GitLab's timestamps in hook payloads: `2026-12-01 10:00:00 UTC`. */
const hookTime = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;

const STATE_IDS = { opened: 1, closed: 2, merged: 3, locked: 4 } as const;

/**
 * The body of a Merge Request Hook as GitLab sends it (the fields a receiver reads, and the
 * usual others around them).
 *
 * @example
 * const body = mergeRequestHookPayload({ action: 'merge', instanceUrl, project, mergeRequest });
 */
export const mergeRequestHookPayload = (input: MergeRequestHookInput): Record<string, unknown> => {
  const { project, mergeRequest: mr } = input;
  const user = input.user ?? { id: 1, username: 'promoter-bot', name: 'Promoter Bot' };
  const webUrl = `${input.instanceUrl}/${project.pathWithNamespace}`;
  const namespace = project.pathWithNamespace.split('/').slice(0, -1).join('/');
  const name = project.pathWithNamespace.split('/').at(-1) ?? '';
  const host = new URL(input.instanceUrl).host;
  const projectJson = {
    id: project.id,
    name,
    description: null,
    web_url: webUrl,
    avatar_url: null,
    git_ssh_url: `git@${host}:${project.pathWithNamespace}.git`,
    git_http_url: `${webUrl}.git`,
    namespace,
    visibility_level: 0,
    path_with_namespace: project.pathWithNamespace,
    default_branch: project.defaultBranch,
    ci_config_path: null,
    homepage: webUrl,
    url: `git@${host}:${project.pathWithNamespace}.git`,
    ssh_url: `git@${host}:${project.pathWithNamespace}.git`,
    http_url: `${webUrl}.git`,
  };
  return {
    object_kind: 'merge_request',
    event_type: 'merge_request',
    user: {
      id: user.id,
      name: user.name,
      username: user.username,
      avatar_url: null,
      email: '[REDACTED]',
    },
    project: projectJson,
    object_attributes: {
      assignee_id: null,
      author_id: user.id,
      created_at: hookTime(mr.createdAt),
      description: mr.description,
      draft: false,
      head_pipeline_id: null,
      id: mr.id,
      iid: mr.iid,
      last_edited_at: null,
      last_edited_by_id: null,
      merge_commit_sha: mr.mergeCommitSha,
      merge_error: null,
      merge_params: { force_remove_source_branch: '0' },
      merge_status: mr.state === 'opened' ? 'can_be_merged' : 'unchecked',
      merge_user_id: mr.state === 'merged' ? user.id : null,
      merge_when_pipeline_succeeds: mr.mergeWhenPipelineSucceeds ?? false,
      milestone_id: null,
      source_branch: mr.sourceBranch,
      source_project_id: project.id,
      state_id: STATE_IDS[mr.state],
      target_branch: mr.targetBranch,
      target_project_id: project.id,
      title: mr.title,
      updated_at: hookTime(mr.updatedAt),
      url: `${webUrl}/-/merge_requests/${mr.iid}`,
      source: projectJson,
      target: projectJson,
      last_commit: {
        id: mr.lastCommitId,
        message: mr.lastCommitMessage ?? mr.title,
        title: (mr.lastCommitMessage ?? mr.title).split('\n')[0],
        timestamp: mr.updatedAt,
        url: `${webUrl}/-/commit/${mr.lastCommitId}`,
        author: { name: 'Pipeline Promoter', email: 'promoter@example.com' },
      },
      work_in_progress: false,
      total_time_spent: 0,
      time_change: 0,
      human_total_time_spent: null,
      human_time_change: null,
      human_time_estimate: null,
      assignee_ids: [],
      reviewer_ids: [],
      labels: [],
      state: mr.state,
      blocking_discussions_resolved: true,
      first_contribution: false,
      detailed_merge_status: mr.state === 'opened' ? 'mergeable' : 'not_open',
      action: input.action,
    },
    labels: [],
    changes:
      input.action === 'merge' || input.action === 'close'
        ? {
            state_id: { previous: STATE_IDS.opened, current: STATE_IDS[mr.state] },
            updated_at: { previous: hookTime(mr.createdAt), current: hookTime(mr.updatedAt) },
          }
        : {},
    repository: {
      name,
      url: `git@${host}:${project.pathWithNamespace}.git`,
      description: null,
      homepage: webUrl,
    },
  };
};

/** The headers of a delivery: `X-Gitlab-Event`, `X-Gitlab-Token` (the hook's secret token), UUIDs. */
export const mergeRequestHookHeaders = (options: {
  readonly token: string;
  readonly instanceUrl: string;
  readonly eventUuid?: string;
  readonly webhookUuid?: string;
}): Record<string, string> => {
  const eventUuid = options.eventUuid ?? randomUUID();
  return {
    'content-type': 'application/json',
    'user-agent': 'GitLab/17.11.0',
    'x-gitlab-event': 'Merge Request Hook',
    'x-gitlab-token': options.token,
    'x-gitlab-instance': options.instanceUrl,
    'x-gitlab-webhook-uuid': options.webhookUuid ?? randomUUID(),
    'x-gitlab-event-uuid': eventUuid,
    'idempotency-key': eventUuid,
  };
};

export interface WebhookDelivery {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: Record<string, unknown>;
  /** The receiver's status, or 0 when the POST failed. */
  status: number;
  responseBody: string;
}

interface Hook {
  readonly url: string;
  readonly token: string;
  readonly uuid: string;
  /** Only events of this project (path), or all. */
  readonly project?: string;
}

/** Project hooks and the deliveries made to them, in order. */
export class MergeRequestHooks {
  readonly #hooks: Hook[] = [];
  readonly #deliveries: WebhookDelivery[] = [];
  #queue: Promise<void> = Promise.resolve();

  add(url: string, token: string, project?: string): void {
    this.#hooks.push({
      url,
      token,
      uuid: randomUUID(),
      ...(project === undefined ? {} : { project }),
    });
  }

  clear(): void {
    this.#hooks.length = 0;
  }

  get deliveries(): readonly WebhookDelivery[] {
    return this.#deliveries;
  }

  forgetDeliveries(): void {
    this.#deliveries.length = 0;
  }

  /** Queues one delivery per matching hook, after those already queued. */
  deliver(input: MergeRequestHookInput): void {
    for (const hook of this.#hooks) {
      if (hook.project !== undefined && hook.project !== input.project.pathWithNamespace) continue;
      const delivery: WebhookDelivery = {
        url: hook.url,
        headers: mergeRequestHookHeaders({
          token: hook.token,
          instanceUrl: input.instanceUrl,
          webhookUuid: hook.uuid,
        }),
        payload: mergeRequestHookPayload(input),
        status: 0,
        responseBody: '',
      };
      this.#deliveries.push(delivery);
      this.#queue = this.#queue.then(async () => {
        try {
          const response = await fetch(delivery.url, {
            method: 'POST',
            headers: delivery.headers,
            body: JSON.stringify(delivery.payload),
            signal: AbortSignal.timeout(10_000),
          });
          delivery.status = response.status;
          delivery.responseBody = await response.text();
        } catch (error) {
          delivery.status = 0;
          delivery.responseBody = String(error);
        }
      });
    }
  }

  /** Resolves once every queued delivery was sent (or failed). */
  settled(): Promise<void> {
    return this.#queue;
  }
}
