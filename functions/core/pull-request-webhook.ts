import * as z from 'zod/mini';
import { errorMessage, isPromoterError, PromoterError } from './errors.ts';
import type { HttpAnswer, HttpRequest } from './http.ts';
import type { LogPort } from './logger.ts';
import { Dimension } from './metric-names.ts';
import {
  findEnvironment,
  type Provider,
  pipelineId,
  promotionInto,
  repositoryPath,
} from './pipeline.ts';
import type { DeliveryLog, MetricsSink, PipelineStore } from './ports.ts';
import { promotionBranch } from './promotion.ts';
import { type LifecycleDependencies, recordPullRequestOutcome } from './promotion-lifecycle.ts';
import { formatIssues } from './validation.ts';

/*
 * What `POST /webhooks/github` and `POST /webhooks/gitlab` (DESIGN.md section 5) share once a
 * delivery is authenticated and parsed into a provider-neutral `PullRequestEvent`: a pull (merge)
 * request is a promotion PR when its body's correlation line names a pipeline and env whose
 * promotion is a pull request on the same provider, whose branch is its head and whose
 * repository is its target's; its outcome moves the lifecycle, and a delivery id seen before is
 * answered without a second effect. Also the answers, bounds and secret format both hosts share.
 */

/** How long a delivery id is remembered: GitHub's and GitLab's manual redeliveries come within days. */
export const DELIVERY_TTL_SECONDS = 7 * 24 * 60 * 60;

/** GitHub caps webhook payloads at 25 MB; pull and merge request payloads are tens of kilobytes. */
export const MAX_PULL_REQUEST_WEBHOOK_BODY_BYTES = 5 * 1024 * 1024;

/** A merged or closed pull (merge) request, as either host's webhook reports it. */
export interface PullRequestEvent {
  readonly provider: Provider;
  /** GitHub's PR number, GitLab's merge request IID: what the promotion record keeps. */
  readonly number: number;
  readonly state: 'merged' | 'closed';
  readonly title: string;
  /** The PR description, where the correlation line is. */
  readonly body: string;
  readonly headRef: string;
  /** The target repository: GitHub's base `owner/repo`, GitLab's project path. */
  readonly repositoryPath: string;
  /** ISO 8601. */
  readonly mergedAt?: string;
  readonly mergeCommit?: string;
  /** Unique per delivery (and per provider), the same on the host's redeliveries. */
  readonly deliveryId: string;
}

export interface PullRequestWebhookDependencies extends LifecycleDependencies {
  readonly pipelines: PipelineStore;
  readonly deliveries: DeliveryLog;
}

export interface PullRequestWebhookRequest extends HttpRequest {
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
}

export interface PullRequestWebhookResult extends HttpAnswer {
  readonly outcome: string;
}

export const webhookAnswer = (
  status: number,
  outcome: string,
  body: Record<string, unknown>,
  headers?: Record<string, string>,
): PullRequestWebhookResult => ({
  status,
  outcome,
  body,
  ...(headers === undefined ? {} : { headers }),
});

/** 405 for another method, 413 for a body over `maxBytes`; undefined when neither. */
export const refuseMethodOrSize = (
  request: PullRequestWebhookRequest,
  maxBytes: number,
): PullRequestWebhookResult | undefined => {
  if (request.method.toUpperCase() !== 'POST') {
    return webhookAnswer(
      405,
      'method-not-allowed',
      { error: `method ${request.method} not allowed: use POST` },
      { allow: 'POST' },
    );
  }
  if (request.bodyTruncated === true || request.body.byteLength > maxBytes) {
    return webhookAnswer(413, 'too-large', { error: `body over ${maxBytes} bytes` });
  }
  return undefined;
};

/** A host's timestamp as ISO 8601; undefined when absent or unreadable. */
export const isoTime = (text: string | null | undefined): string | undefined => {
  if (typeof text !== 'string' || text === '') return undefined;
  const time = new Date(text);
  return Number.isNaN(time.getTime()) ? undefined : time.toISOString();
};

const webhookSecretSchema = z.object({
  secret: z.string().check(z.minLength(16, 'expected a webhook secret of 16 characters or more')),
  'secret-previous': z.optional(
    z.string().check(z.minLength(16, 'expected 16 characters or more')),
  ),
});

/**
 * The secrets of a webhook secret's JSON value (`github-webhook`, `gitlab-webhook`: DESIGN.md
 * section 4), current first; INVALID_SECRET naming the key (never the value).
 *
 * @example
 * decodeWebhookSecret({ secret: 'a-long-random-secret' }, 'pipeline-promoter/gitlab-webhook');
 * // ['a-long-random-secret']
 */
export const decodeWebhookSecret = (value: unknown, name: string): readonly string[] => {
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

/**
 * A host's webhook secrets, or the answer when they cannot be had: 503 when the store may
 * answer later (the host retries or the sweep catches up), else 401 (a missing or invalid
 * secret cannot verify anything).
 */
export const readWebhookSecrets = async (
  read: () => Promise<readonly string[]>,
  host: string,
  logger: LogPort,
): Promise<
  { readonly secrets: readonly string[] } | { readonly refused: PullRequestWebhookResult }
> => {
  try {
    return { secrets: await read() };
  } catch (error) {
    logger.error(`${host} webhook secret unusable`, {
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      reason: errorMessage(error),
    });
    return {
      refused:
        isPromoterError(error) && error.retryable
          ? webhookAnswer(503, 'unavailable', { error: 'temporarily unavailable, retry later' })
          : webhookAnswer(401, 'rejected-signature', {
              error: 'the delivery could not be verified',
            }),
    };
  }
};

/** `pipeline-promoter: ns/name/env`, the line every promotion PR body ends with. */
const CORRELATION = /^pipeline-promoter: ([^/\s]+)\/([^/\s]+)\/([^/\s]+)$/m;

const NOT_A_PROMOTION = { ignored: 'not a promotion pull request' } as const;

/**
 * Moves the promotion a merged or closed promotion PR belongs to (recordPullRequestOutcome) and
 * remembers the delivery: 202 ignored for a PR that is not a promotion PR of a known pipeline
 * on this provider, 200 with the outcome otherwise, 200 duplicate for a delivery seen before.
 *
 * @example
 * await recordPromotionPullRequestEvent(
 *   { provider: 'gitlab', number: 7, state: 'merged', title: 'Promote flux-system/podinfo in staging to 6.5.0',
 *     body: '...\n\npipeline-promoter: flux-system/podinfo/staging',
 *     headRef: 'promotion-flux-system-podinfo-staging', repositoryPath: 'platform/gitops/fleet',
 *     deliveryId: 'gitlab:f5e5f430-f57b-4e6e-9fac-d9128cd7232f' },
 *   deps,
 * ); // { status: 200, outcome: 'merged', body: { pipeline, environment, state: 'merged' } }
 */
export const recordPromotionPullRequestEvent = async (
  event: PullRequestEvent,
  deps: PullRequestWebhookDependencies,
): Promise<PullRequestWebhookResult> => {
  const [, namespace, name, environment] = CORRELATION.exec(event.body) ?? [];
  if (namespace === undefined || name === undefined || environment === undefined) {
    return webhookAnswer(202, 'ignored', NOT_A_PROMOTION);
  }
  const ref = { namespace, name };
  const pipeline = await deps.pipelines.get(ref);
  const strategy =
    pipeline === undefined ? undefined : promotionInto(pipeline, environment)?.strategy;
  if (
    pipeline === undefined ||
    findEnvironment(pipeline, environment) === undefined ||
    strategy?.type !== 'pull-request' ||
    strategy.repository.provider !== event.provider ||
    event.headRef !== promotionBranch({ pipeline: ref, to: environment }) ||
    event.repositoryPath.toLowerCase() !== repositoryPath(strategy.repository).toLowerCase()
  ) {
    return webhookAnswer(202, 'ignored', NOT_A_PROMOTION);
  }

  const outcome = await recordPullRequestOutcome(
    pipeline,
    environment,
    {
      number: event.number,
      state: event.state,
      title: event.title,
      headRef: event.headRef,
      ...(event.mergedAt === undefined ? {} : { mergedAt: event.mergedAt }),
      ...(event.state === 'merged' && event.mergeCommit !== undefined
        ? { mergeCommit: event.mergeCommit }
        : {}),
    },
    deps,
  );
  // Remembered once handled: a delivery whose handling failed (503) is taken again when the
  // host redelivers it. A repeated one finds the transition already made (a conditional write).
  if (!(await deps.deliveries.firstSeen(event.deliveryId, DELIVERY_TTL_SECONDS))) {
    return webhookAnswer(200, 'duplicate', { duplicate: true });
  }
  return webhookAnswer(200, outcome.status, {
    pipeline: pipelineId(pipeline),
    environment,
    ...(outcome.status === 'ignored'
      ? { ignored: outcome.reason }
      : { state: outcome.record.state }),
  });
};

/**
 * Runs one delivery's evaluation, answers 503 for what it could not handle (the host redelivers,
 * the sweep catches up), and counts it in `metricName` with its outcome.
 */
export const countedWebhookRequest = async (
  metricName: string,
  host: string,
  evaluate: () => Promise<PullRequestWebhookResult>,
  deps: { readonly metrics: MetricsSink; readonly logger: LogPort },
): Promise<PullRequestWebhookResult> => {
  let result: PullRequestWebhookResult;
  try {
    result = await evaluate();
  } catch (error) {
    deps.logger.error(`${host} delivery not handled`, {
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      reason: errorMessage(error),
    });
    result = webhookAnswer(503, 'unavailable', { error: 'temporarily unavailable, retry later' });
  }
  deps.metrics.record({
    name: metricName,
    unit: 'Count',
    value: 1,
    dimensions: { [Dimension.Outcome]: result.outcome },
  });
  return result;
};
