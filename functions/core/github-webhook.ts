import { verify } from '@octokit/webhooks-methods';
import * as z from 'zod/mini';
import { errorMessage, isPromoterError, PromoterError } from './errors.ts';
import type { HttpAnswer, HttpRequest } from './http.ts';
import { Dimension, Metric } from './metric-names.ts';
import { findEnvironment, pipelineId, promotionInto } from './pipeline.ts';
import type { DeliveryLog, PipelineStore } from './ports.ts';
import { promotionBranch } from './promotion.ts';
import { type LifecycleDependencies, recordPullRequestOutcome } from './promotion-lifecycle.ts';
import { formatIssues } from './validation.ts';

/*
 * `POST /webhooks/github` (DESIGN.md section 5), shared by the Lambda handler and `serve`:
 * GitHub's `pull_request` events of promotion PRs move the lifecycle (merged, closed). The
 * `X-Hub-Signature-256` is checked over the raw body before anything is parsed, in constant
 * time (@octokit/webhooks-methods), against the current and previous webhook secret; a
 * delivery id seen before is answered without a second effect. A PR is a promotion PR when its
 * body's correlation line names a pipeline and env whose branch is its head and whose
 * repository is its base's.
 */

export const GITHUB_WEBHOOK_PATH = '/webhooks/github';
/** GitHub caps webhook payloads at 25 MB; pull_request payloads are tens of kilobytes. */
export const MAX_GITHUB_BODY_BYTES = 5 * 1024 * 1024;
/** How long a delivery id is remembered: GitHub's manual redeliveries come within days. */
export const DELIVERY_TTL_SECONDS = 7 * 24 * 60 * 60;

/** The GitHub webhook secret's name: `{prefix}github-webhook`, serve's `"github-webhook"` entry. */
export const GITHUB_WEBHOOK_SECRET = 'github-webhook';

/** The GitHub webhook secret (DESIGN.md section 4): `secret` and, while rotating, the previous. */
export interface GitHubWebhookSecretStore {
  /** The secrets that verify a delivery, current first. Throws PromoterError SECRET_*. */
  githubWebhookSecrets(): Promise<readonly string[]>;
}

const webhookSecretSchema = z.object({
  secret: z.string().check(z.minLength(16, 'expected a webhook secret of 16 characters or more')),
  'secret-previous': z.optional(
    z.string().check(z.minLength(16, 'expected 16 characters or more')),
  ),
});

/**
 * The secrets of the `github-webhook` secret's JSON value; INVALID_SECRET naming the key (never
 * the value).
 *
 * @example
 * decodeGitHubWebhookSecret({ secret: 'a-long-random-secret' }, 'pipeline-promoter/github-webhook');
 */
export const decodeGitHubWebhookSecret = (value: unknown, name: string): readonly string[] => {
  const result = webhookSecretSchema.safeParse(value);
  if (!result.success) {
    throw new PromoterError(
      'INVALID_SECRET',
      `secret ${name}: ${formatIssues(result.error.issues).join('; ')} (expected {"secret": "...", "secret-previous": "..."})`,
      { data: { secret: name } },
    );
  }
  const previous = result.data['secret-previous'];
  return previous === undefined ? [result.data.secret] : [result.data.secret, previous];
};

export interface GitHubWebhookDependencies extends LifecycleDependencies {
  readonly pipelines: PipelineStore;
  readonly webhookSecrets: GitHubWebhookSecretStore;
  readonly deliveries: DeliveryLog;
}

export interface GitHubWebhookRequest extends HttpRequest {
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
}

export interface GitHubWebhookResult extends HttpAnswer {
  readonly outcome: string;
}

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

/** `pipeline-promoter: ns/name/env`, the line every promotion PR body ends with. */
const CORRELATION = /^pipeline-promoter: ([^/\s]+)\/([^/\s]+)\/([^/\s]+)$/m;

const answer = (
  status: number,
  outcome: string,
  body: Record<string, unknown>,
  headers?: Record<string, string>,
): GitHubWebhookResult => ({
  status,
  outcome,
  body,
  ...(headers === undefined ? {} : { headers }),
});

const evaluate = async (
  request: GitHubWebhookRequest,
  deps: GitHubWebhookDependencies,
): Promise<GitHubWebhookResult> => {
  if (request.method.toUpperCase() !== 'POST') {
    return answer(
      405,
      'method-not-allowed',
      { error: `method ${request.method} not allowed: use POST` },
      { allow: 'POST' },
    );
  }
  if (request.bodyTruncated === true || request.body.byteLength > MAX_GITHUB_BODY_BYTES) {
    return answer(413, 'too-large', { error: `body over ${MAX_GITHUB_BODY_BYTES} bytes` });
  }
  const signature = request.headers['x-hub-signature-256'];
  if (signature === undefined || signature === '') {
    return answer(401, 'rejected-signature', { error: 'missing X-Hub-Signature-256' });
  }
  let secrets: readonly string[];
  try {
    secrets = await deps.webhookSecrets.githubWebhookSecrets();
  } catch (error) {
    deps.logger.error('GitHub webhook secret unusable', {
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      reason: errorMessage(error),
    });
    return isPromoterError(error) && error.retryable
      ? answer(503, 'unavailable', { error: 'temporarily unavailable, retry later' })
      : answer(401, 'rejected-signature', { error: 'signature could not be verified' });
  }
  const payload = Buffer.from(request.body).toString('utf8');
  let verified = false;
  for (const secret of secrets) {
    // verify() throws for a malformed header rather than answering false.
    verified = await verify(secret, payload, signature).catch(() => false);
    if (verified) break;
  }
  if (!verified) {
    return answer(401, 'rejected-signature', { error: 'X-Hub-Signature-256 does not match' });
  }

  const delivery = request.headers['x-github-delivery'];
  if (delivery === undefined || delivery === '') {
    return answer(400, 'rejected-invalid', { error: 'missing X-GitHub-Delivery' });
  }
  const event = request.headers['x-github-event'] ?? '';
  if (event === 'ping') return answer(200, 'ping', { pong: true });
  if (event !== 'pull_request') return answer(202, 'ignored', { ignored: `event ${event}` });

  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return answer(400, 'rejected-invalid', { error: 'body is not JSON' });
  }
  const parsed = pullRequestEventSchema.safeParse(json);
  if (!parsed.success) {
    return answer(400, 'rejected-invalid', {
      error: `not a pull_request event: ${formatIssues(parsed.error.issues).join('; ')}`,
    });
  }
  const { action, pull_request: pull } = parsed.data;
  if (action !== 'closed') return answer(202, 'ignored', { ignored: `action ${action}` });

  const correlation = CORRELATION.exec(pull.body ?? '');
  const [, namespace, name, environment] = correlation ?? [];
  if (namespace === undefined || name === undefined || environment === undefined) {
    return answer(202, 'ignored', { ignored: 'not a promotion pull request' });
  }
  const ref = { namespace, name };
  const pipeline = await deps.pipelines.get(ref);
  const strategy =
    pipeline === undefined ? undefined : promotionInto(pipeline, environment)?.strategy;
  if (
    pipeline === undefined ||
    findEnvironment(pipeline, environment) === undefined ||
    strategy === undefined ||
    pull.head.ref !== promotionBranch({ pipeline: ref, to: environment }) ||
    pull.base.repo.full_name.toLowerCase() !==
      `${strategy.repository.owner}/${strategy.repository.repo}`.toLowerCase()
  ) {
    return answer(202, 'ignored', { ignored: 'not a promotion pull request' });
  }

  const merged = pull.merged === true;
  const outcome = await recordPullRequestOutcome(
    pipeline,
    environment,
    {
      number: pull.number,
      state: merged ? 'merged' : 'closed',
      title: pull.title,
      headRef: pull.head.ref,
      ...(typeof pull.merged_at === 'string'
        ? { mergedAt: new Date(pull.merged_at).toISOString() }
        : {}),
      ...(merged && typeof pull.merge_commit_sha === 'string'
        ? { mergeCommit: pull.merge_commit_sha }
        : {}),
    },
    deps,
  );
  // Remembered once handled: a delivery whose handling failed (503) is taken again when GitHub
  // redelivers it. A repeated one finds the transition already made (a conditional write).
  if (!(await deps.deliveries.firstSeen(delivery, DELIVERY_TTL_SECONDS))) {
    return answer(200, 'duplicate', { duplicate: true });
  }
  return answer(200, outcome.status, {
    pipeline: pipelineId(pipeline),
    environment,
    ...(outcome.status === 'ignored'
      ? { ignored: outcome.reason }
      : { state: outcome.record.state }),
  });
};

/** Answers one GitHub delivery and counts it in `GitHubWebhookRequests` by `Outcome`. */
export const handleGitHubWebhookRequest = async (
  request: GitHubWebhookRequest,
  deps: GitHubWebhookDependencies,
): Promise<GitHubWebhookResult> => {
  let result: GitHubWebhookResult;
  try {
    result = await evaluate(request, deps);
  } catch (error) {
    deps.logger.error('GitHub delivery not handled', {
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      reason: errorMessage(error),
    });
    result = answer(503, 'unavailable', { error: 'temporarily unavailable, retry later' });
  }
  deps.metrics.record({
    name: Metric.GitHubWebhookRequests,
    unit: 'Count',
    value: 1,
    dimensions: { [Dimension.Outcome]: result.outcome },
  });
  return result;
};
