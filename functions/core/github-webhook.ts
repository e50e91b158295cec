import { verify } from '@octokit/webhooks-methods';
import * as z from 'zod/mini';
import { Metric } from './metric-names.ts';
import {
  countedWebhookRequest,
  decodeWebhookSecret,
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
 * `POST /webhooks/github` (DESIGN.md section 5), shared by the Lambda handler and `serve`:
 * GitHub's `pull_request` events of promotion PRs move the lifecycle (merged, closed). The
 * `X-Hub-Signature-256` is checked over the raw body before anything is parsed, in constant
 * time (@octokit/webhooks-methods), against the current and previous webhook secret. The
 * parsed event goes on to what GitLab's webhook shares (pull-request-webhook.ts): promotion PR
 * or not, the lifecycle, the delivery id seen before.
 */

export const GITHUB_WEBHOOK_PATH = '/webhooks/github';
export const MAX_GITHUB_BODY_BYTES = MAX_PULL_REQUEST_WEBHOOK_BODY_BYTES;

/** The GitHub webhook secret's name: `{prefix}github-webhook`, serve's `"github-webhook"` entry. */
export const GITHUB_WEBHOOK_SECRET = 'github-webhook';

/** The GitHub webhook secret (DESIGN.md section 4): `secret` and, while rotating, the previous. */
export interface GitHubWebhookSecretStore {
  /** The secrets that verify a delivery, current first. Throws PromoterError SECRET_*. */
  githubWebhookSecrets(): Promise<readonly string[]>;
}

/**
 * The secrets of the `github-webhook` secret's JSON value; INVALID_SECRET naming the key (never
 * the value).
 *
 * @example
 * decodeGitHubWebhookSecret({ secret: 'a-long-random-secret' }, 'pipeline-promoter/github-webhook');
 */
export const decodeGitHubWebhookSecret = decodeWebhookSecret;

export interface GitHubWebhookDependencies extends PullRequestWebhookDependencies {
  readonly webhookSecrets: GitHubWebhookSecretStore;
}

export type GitHubWebhookRequest = PullRequestWebhookRequest;
export type GitHubWebhookResult = PullRequestWebhookResult;

const pullRequestEventSchema = z.object({
  action: z.string(),
  pull_request: z.object({
    number: z.number(),
    title: z.string(),
    body: z.nullable(z.optional(z.string())),
    state: z.string(),
    merged: z.nullable(z.optional(z.boolean())),
    merged_at: z.nullable(z.optional(z.string())),
    merge_commit_sha: z.nullable(z.optional(z.string())),
    head: z.object({ ref: z.string() }),
    base: z.object({ ref: z.string(), repo: z.object({ full_name: z.string() }) }),
  }),
});

const evaluate = async (
  request: GitHubWebhookRequest,
  deps: GitHubWebhookDependencies,
): Promise<GitHubWebhookResult> => {
  const refused = refuseMethodOrSize(request, MAX_GITHUB_BODY_BYTES);
  if (refused !== undefined) return refused;
  const signature = request.headers['x-hub-signature-256'];
  if (signature === undefined || signature === '') {
    return webhookAnswer(401, 'rejected-signature', { error: 'missing X-Hub-Signature-256' });
  }
  const read = await readWebhookSecrets(
    () => deps.webhookSecrets.githubWebhookSecrets(),
    'GitHub',
    deps.logger,
  );
  if ('refused' in read) return read.refused;
  const payload = Buffer.from(request.body).toString('utf8');
  let verified = false;
  for (const secret of read.secrets) {
    // verify() throws for a malformed header rather than answering false.
    verified = await verify(secret, payload, signature).catch(() => false);
    if (verified) break;
  }
  if (!verified) {
    return webhookAnswer(401, 'rejected-signature', {
      error: 'X-Hub-Signature-256 does not match',
    });
  }

  const delivery = request.headers['x-github-delivery'];
  if (delivery === undefined || delivery === '') {
    return webhookAnswer(400, 'rejected-invalid', { error: 'missing X-GitHub-Delivery' });
  }
  const event = request.headers['x-github-event'] ?? '';
  if (event === 'ping') return webhookAnswer(200, 'ping', { pong: true });
  if (event !== 'pull_request') return webhookAnswer(202, 'ignored', { ignored: `event ${event}` });

  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return webhookAnswer(400, 'rejected-invalid', { error: 'body is not JSON' });
  }
  const parsed = pullRequestEventSchema.safeParse(json);
  if (!parsed.success) {
    return webhookAnswer(400, 'rejected-invalid', {
      error: `not a pull_request event: ${formatIssues(parsed.error.issues).join('; ')}`,
    });
  }
  const { action, pull_request: pull } = parsed.data;
  if (action !== 'closed') return webhookAnswer(202, 'ignored', { ignored: `action ${action}` });

  const merged = pull.merged === true;
  const mergedAt = isoTime(pull.merged_at);
  return recordPromotionPullRequestEvent(
    {
      provider: 'github',
      number: pull.number,
      state: merged ? 'merged' : 'closed',
      title: pull.title,
      body: pull.body ?? '',
      headRef: pull.head.ref,
      repositoryPath: pull.base.repo.full_name,
      ...(mergedAt === undefined ? {} : { mergedAt }),
      ...(typeof pull.merge_commit_sha === 'string' ? { mergeCommit: pull.merge_commit_sha } : {}),
      deliveryId: delivery,
    },
    deps,
  );
};

/** Answers one GitHub delivery and counts it in `GitHubWebhookRequests` (its outcome a property). */
export const handleGitHubWebhookRequest = (
  request: GitHubWebhookRequest,
  deps: GitHubWebhookDependencies,
): Promise<GitHubWebhookResult> =>
  countedWebhookRequest(
    Metric.GitHubWebhookRequests,
    'GitHub',
    () => evaluate(request, deps),
    deps,
  );
