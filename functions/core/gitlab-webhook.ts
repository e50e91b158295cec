import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as z from 'zod/mini';
import { Metric } from './metric-names.ts';
import {
  countedWebhookRequest,
  isoTime,
  MAX_PULL_REQUEST_WEBHOOK_BODY_BYTES,
  type PullRequestWebhookDependencies,
  type PullRequestWebhookRequest,
  type PullRequestWebhookResult,
  readWebhookSecrets,
  recordPromotionPullRequestEvent,
  refuseMethodOrSize,
  webhookAnswer,
} from './pull-request-webhook.ts';
import { formatIssues } from './validation.ts';

/*
 * `POST /webhooks/gitlab` (DESIGN.md sections 5 and 13), shared by the Lambda handler and
 * `serve`: GitLab's "Merge Request Hook" deliveries of promotion merge requests move the
 * lifecycle (merged, closed), as GitHub's pull_request events do. GitLab does not sign its
 * deliveries: it sends the webhook's secret token itself in `X-Gitlab-Token`, which is compared
 * in constant time with the current and previous `gitlab-webhook` secret before the body is
 * parsed. The parsed event goes on to what GitHub's webhook shares (pull-request-webhook.ts).
 */

export const GITLAB_WEBHOOK_PATH = '/webhooks/gitlab';
export const MAX_GITLAB_BODY_BYTES = MAX_PULL_REQUEST_WEBHOOK_BODY_BYTES;

/** The GitLab webhook secret's name: `{prefix}gitlab-webhook`, serve's `"gitlab-webhook"` entry. */
export const GITLAB_WEBHOOK_SECRET = 'gitlab-webhook';

/** The `X-Gitlab-Event` of merge request events; every other event is ignored. */
export const MERGE_REQUEST_HOOK = 'Merge Request Hook';

/** The GitLab webhook's secret token (DESIGN.md section 4): `secret` and, while rotating, the previous. */
export interface GitLabWebhookSecretStore {
  /** The tokens a delivery may carry, current first. Throws PromoterError SECRET_*. */
  gitlabWebhookSecrets(): Promise<readonly string[]>;
}

export interface GitLabWebhookDependencies extends PullRequestWebhookDependencies {
  readonly webhookSecrets: GitLabWebhookSecretStore;
}

export type GitLabWebhookRequest = PullRequestWebhookRequest;
export type GitLabWebhookResult = PullRequestWebhookResult;

// The tokens are compared as HMACs under a key of this process: digests of one length, so
// neither the comparison nor a length check tells anything about a secret's length or content.
const COMPARISON_KEY = randomBytes(32);
const comparable = (token: string): Buffer =>
  createHmac('sha256', COMPARISON_KEY).update(token, 'utf8').digest();

/**
 * Whether `token` is one of `secrets`, in time that depends on neither (every secret is
 * compared, whatever matched first).
 *
 * @example
 * matchesWebhookToken('a-gitlab-webhook-token', ['a-gitlab-webhook-token']); // true
 * matchesWebhookToken('a-gitlab-webhook-toke', ['a-gitlab-webhook-token']); // false
 */
export const matchesWebhookToken = (token: string, secrets: readonly string[]): boolean => {
  const given = comparable(token);
  let matched = false;
  for (const secret of secrets) matched = timingSafeEqual(given, comparable(secret)) || matched;
  return matched;
};

/**
 * A delivery's id: Idempotency-Key (GitLab 17.4 and later) stays the same on GitLab's retries of
 * a delivery; X-Gitlab-Event-UUID (14.8 and later) is the event's, for the versions before it.
 */
export const gitlabDeliveryId = (
  headers: Readonly<Record<string, string | undefined>>,
): string | undefined => headers['idempotency-key'] || headers['x-gitlab-event-uuid'];

/** GitLab's documented "Merge Request Hook" body, the fields the lifecycle reads. */
const mergeRequestEventSchema = z.object({
  object_kind: z.literal('merge_request', 'expected "merge_request"'),
  project: z.object({ path_with_namespace: z.string() }),
  object_attributes: z.object({
    iid: z.number(),
    title: z.string(),
    description: z.nullable(z.optional(z.string())),
    source_branch: z.string(),
    action: z.nullable(z.optional(z.string())),
    // Absent from older GitLab's hooks: then the lifecycle's clock says when.
    merged_at: z.nullable(z.optional(z.string())),
    merge_commit_sha: z.nullable(z.optional(z.string())),
  }),
});

const OUTCOME_OF_ACTION: Readonly<Record<string, 'merged' | 'closed'>> = {
  merge: 'merged',
  close: 'closed',
};

const evaluate = async (
  request: GitLabWebhookRequest,
  deps: GitLabWebhookDependencies,
): Promise<GitLabWebhookResult> => {
  const refused = refuseMethodOrSize(request, MAX_GITLAB_BODY_BYTES);
  if (refused !== undefined) return refused;
  const token = request.headers['x-gitlab-token'];
  if (token === undefined || token === '') {
    return webhookAnswer(401, 'rejected-signature', { error: 'missing X-Gitlab-Token' });
  }
  const read = await readWebhookSecrets(
    () => deps.webhookSecrets.gitlabWebhookSecrets(),
    'GitLab',
    deps.logger,
  );
  if ('refused' in read) return read.refused;
  if (!matchesWebhookToken(token, read.secrets)) {
    return webhookAnswer(401, 'rejected-signature', {
      error: "X-Gitlab-Token is not the webhook's secret token",
    });
  }

  const event = request.headers['x-gitlab-event'] ?? '';
  if (event !== MERGE_REQUEST_HOOK) {
    return webhookAnswer(202, 'ignored', { ignored: `event ${event || '(none)'}` });
  }
  const delivery = gitlabDeliveryId(request.headers);
  if (delivery === undefined || delivery === '') {
    return webhookAnswer(400, 'rejected-invalid', {
      error: 'missing Idempotency-Key and X-Gitlab-Event-UUID (GitLab 14.8 and later send them)',
    });
  }

  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(request.body).toString('utf8'));
  } catch {
    return webhookAnswer(400, 'rejected-invalid', { error: 'body is not JSON' });
  }
  const parsed = mergeRequestEventSchema.safeParse(json);
  if (!parsed.success) {
    return webhookAnswer(400, 'rejected-invalid', {
      error: `not a merge request event: ${formatIssues(parsed.error.issues).join('; ')}`,
    });
  }
  const { project, object_attributes: mergeRequest } = parsed.data;
  const action = mergeRequest.action ?? '';
  const state = OUTCOME_OF_ACTION[action];
  if (state === undefined) {
    return webhookAnswer(202, 'ignored', { ignored: `action ${action || '(none)'}` });
  }

  const mergedAt = state === 'merged' ? isoTime(mergeRequest.merged_at) : undefined;
  const mergeCommit = mergeRequest.merge_commit_sha;
  return recordPromotionPullRequestEvent(
    {
      provider: 'gitlab',
      number: mergeRequest.iid,
      state,
      title: mergeRequest.title,
      body: mergeRequest.description ?? '',
      headRef: mergeRequest.source_branch,
      repositoryPath: project.path_with_namespace,
      ...(mergedAt === undefined ? {} : { mergedAt }),
      ...(typeof mergeCommit === 'string' && mergeCommit !== '' ? { mergeCommit } : {}),
      // Apart from GitHub's ids in the same delivery log.
      deliveryId: `gitlab:${delivery}`,
    },
    deps,
  );
};

/** Answers one GitLab delivery and counts it in `GitLabWebhookRequests` (its outcome a property). */
export const handleGitLabWebhookRequest = (
  request: GitLabWebhookRequest,
  deps: GitLabWebhookDependencies,
): Promise<GitLabWebhookResult> =>
  countedWebhookRequest(
    Metric.GitLabWebhookRequests,
    'GitLab',
    () => evaluate(request, deps),
    deps,
  );
