import { handleApprovalRequest, isApprovalPath } from './approval-webhook.ts';
import { type DecisionSettings, decide } from './decision.ts';
import { errorMessage, isPromoterError } from './errors.ts';
import { eventRevision, fluxEventSchema } from './flux-event.ts';
import { decodePathSegment, type HttpAnswer, type HttpRequest } from './http.ts';
import type { LogPort } from './logger.ts';
import { Dimension, Metric, WebhookOutcome } from './metric-names.ts';
import { type Pipeline, pipelineId, webhookSecretFor } from './pipeline.ts';
import { webhookKeys } from './pipeline-secret.ts';
import type {
  Clock,
  JobQueue,
  MetricsSink,
  PipelineStore,
  PromotionNotices,
  PromotionStateStore,
  SecretStore,
} from './ports.ts';
import {
  type Admission,
  admitPromotion,
  cancelHeldPromotion,
  type GateTimer,
} from './promotion-gates.ts';
import {
  isDeploymentFailure,
  recordDeploymentFailure,
  recordTargetDeployment,
} from './promotion-lifecycle.ts';
import { SIGNATURE_EXPECTED, SIGNATURE_HEADER, verifySignature } from './signature.ts';

import { formatIssues } from './validation.ts';

/**
 * The webhook request function (DESIGN.md section 5), shared by the Lambda handler and
 * `promoter serve`: a request in, a status and JSON body out, in the order of checks of the
 * contract. It never does git or GitHub work.
 */
export const MAX_BODY_BYTES = 256 * 1024;

export interface WebhookRequest extends HttpRequest {
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
}

export interface WebhookResult extends HttpAnswer {
  readonly outcome: WebhookOutcome;
  readonly pipeline?: string;
  readonly environment?: string;
  readonly revision?: string;
}

export interface WebhookDependencies {
  readonly pipelines: PipelineStore;
  readonly secrets: SecretStore;
  readonly queue: JobQueue;
  /** Deployments, and the lifecycle they move (deployed, incidents). */
  readonly state: PromotionStateStore;
  readonly clock: Clock;
  readonly metrics: MetricsSink;
  readonly logger: LogPort;
  readonly settings: DecisionSettings;
  /** Told when a held promotion's time gate is due (serve's timer; a one-time schedule in AWS). */
  readonly timer?: GateTimer;
  /** Where changes of state are announced (DESIGN.md section 13); absent: nowhere. */
  readonly notices?: PromotionNotices;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const PATH = /^\/promotion\/([^/]+)\/([^/]+)\/([^/]+)\/?$/;

const parsePath = (path: string) => {
  const match = PATH.exec(path);
  if (match === null) return undefined;
  const [namespace, name, environment] = match
    .slice(1)
    .map((part) => decodePathSegment(part ?? ''));
  if (namespace === undefined || name === undefined || environment === undefined) return undefined;
  return { namespace, name, environment };
};

const answer = (
  status: number,
  outcome: WebhookOutcome,
  body: Record<string, unknown>,
  context: Partial<Pick<WebhookResult, 'pipeline' | 'environment' | 'revision' | 'headers'>> = {},
): WebhookResult => ({ status, outcome, body, ...context });

const unavailable = (context: Partial<WebhookResult>): WebhookResult =>
  answer(
    503,
    WebhookOutcome.Unavailable,
    { error: 'temporarily unavailable, retry later' },
    context,
  );

const evaluate = async (
  request: WebhookRequest,
  deps: WebhookDependencies,
): Promise<WebhookResult> => {
  if (request.method.toUpperCase() !== 'POST') {
    return answer(
      405,
      WebhookOutcome.MethodNotAllowed,
      { error: `method ${request.method} not allowed: use POST` },
      { headers: { allow: 'POST' } },
    );
  }
  if (request.bodyTruncated === true || request.body.byteLength > MAX_BODY_BYTES) {
    return answer(413, WebhookOutcome.TooLarge, {
      error: `body over ${MAX_BODY_BYTES} bytes`,
    });
  }
  // Before the path and the pipeline are looked at, so that unsigned requests cannot tell a
  // known pipeline from an unknown one (the answer is the one a bad signature gets).
  if ((request.headers[SIGNATURE_HEADER] ?? '').trim() === '') {
    return answer(401, WebhookOutcome.RejectedSignature, {
      error: `signature missing: ${SIGNATURE_EXPECTED}`,
    });
  }
  const route = parsePath(request.path);
  if (route === undefined) {
    return answer(404, WebhookOutcome.NotFound, {
      error: 'not found: POST /promotion/{namespace}/{pipeline}/{environment}',
    });
  }
  const id = pipelineId(route);
  let pipeline: Pipeline | undefined;
  try {
    pipeline = await deps.pipelines.get(route);
  } catch (error) {
    deps.logger.error('pipeline store unavailable', { pipeline: id, error: errorMessage(error) });
    return unavailable({ pipeline: id });
  }
  if (pipeline === undefined) {
    return answer(
      404,
      WebhookOutcome.NotFound,
      { error: `pipeline ${id} not found` },
      { pipeline: id },
    );
  }
  const context = { pipeline: id, environment: route.environment };

  const secretRef = {
    namespace: pipeline.namespace,
    name: webhookSecretFor(pipeline, route.environment),
  };
  let keys: readonly string[] = [];
  try {
    keys = webhookKeys(await deps.secrets.get(secretRef), route.environment);
    if (keys.length === 0) {
      deps.logger.error('webhook secret has no hmac-key (nor hmac-key-{environment})', {
        ...context,
        secret: `${secretRef.namespace}/${secretRef.name}`,
      });
    }
  } catch (error) {
    if (isPromoterError(error) && error.retryable) {
      deps.logger.error('webhook secret unavailable', { ...context, code: error.code });
      return unavailable(context);
    }
    // A missing or broken secret is the operator's to fix; the caller only learns that the
    // signature could not be verified.
    deps.logger.error('webhook secret unusable', {
      ...context,
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      error: errorMessage(error),
    });
  }
  const signature = verifySignature(request.body, request.headers[SIGNATURE_HEADER], keys);
  if (!signature.valid) {
    return answer(
      401,
      WebhookOutcome.RejectedSignature,
      {
        error: `signature ${signature.failure}: ${SIGNATURE_EXPECTED}`,
      },
      context,
    );
  }

  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(request.body));
  } catch {
    return answer(400, WebhookOutcome.RejectedInvalid, { error: 'body is not JSON' }, context);
  }
  const parsed = fluxEventSchema.safeParse(json);
  if (!parsed.success) {
    return answer(
      400,
      WebhookOutcome.RejectedInvalid,
      { error: `not a Flux event: ${formatIssues(parsed.error.issues).join('; ')}` },
      context,
    );
  }
  const decision = decide(
    pipeline,
    route.environment,
    parsed.data,
    deps.clock.now(),
    deps.settings,
  );
  switch (decision.kind) {
    case 'invalid':
      return answer(
        422,
        decision.replay === true ? WebhookOutcome.RejectedReplay : WebhookOutcome.RejectedInvalid,
        { error: decision.error },
        context,
      );
    case 'ignore':
      if (isDeploymentFailure(parsed.data)) {
        const revision = eventRevision(parsed.data);
        try {
          const failed = decision.deployment;
          if (failed !== undefined) {
            await deps.state.recordDeployment({
              pipeline: { namespace: pipeline.namespace, name: pipeline.name },
              ...failed,
              ok: false,
              recordedAt: deps.clock.now().toISOString(),
            });
            await cancelHeldPromotion(
              pipeline,
              failed.environment,
              failed.revision,
              parsed.data.reason,
              deps,
            );
          }
          await recordDeploymentFailure(
            pipeline,
            route.environment,
            { ...parsed.data, ...(revision === undefined ? {} : { revision }) },
            deps,
          );
        } catch (error) {
          deps.logger.error('could not record the failed deployment', {
            ...context,
            code: isPromoterError(error) ? error.code : 'UNKNOWN',
            reason: errorMessage(error),
          });
          return unavailable(context);
        }
      }
      return answer(
        200,
        WebhookOutcome.Ignored,
        { promoted: false, reason: decision.reason },
        context,
      );
    default:
      break;
  }

  const { deployment } = decision;
  const withRevision = { ...context, revision: deployment.revision };
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  let admission: Admission | undefined;
  try {
    // False: the target already reported a later event (a late or reordered delivery).
    const fresh = await deps.state.recordDeployment({
      pipeline: ref,
      ...deployment,
      recordedAt: deps.clock.now().toISOString(),
    });
    // The promotion into this environment, if it is at this revision, may now be deployed.
    await recordTargetDeployment(
      pipeline,
      deployment.environment,
      deployment.revision,
      deployment.eventTimestamp,
      deps,
    );
    if (decision.kind === 'promote') {
      admission = await admitPromotion(pipeline, decision.job, deps, {
        target: deployment.target,
        late: !fresh,
      });
    }
  } catch (error) {
    deps.logger.error('could not record the deployment or enqueue the promotion', {
      ...withRevision,
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      error: errorMessage(error),
    });
    return unavailable(withRevision);
  }
  deps.metrics.record({
    name: Metric.Deployments,
    unit: 'Count',
    value: 1,
    dimensions: {
      [Dimension.Pipeline]: id,
      [Dimension.Application]: pipeline.app.name,
      [Dimension.Environment]: deployment.environment,
    },
    metadata: { revision: deployment.revision },
  });
  if (decision.kind === 'final') {
    return answer(
      200,
      WebhookOutcome.FinalEnvironment,
      { promoted: false, reason: 'final-environment' },
      withRevision,
    );
  }
  if (admission?.status === 'waiting') {
    return answer(
      202,
      WebhookOutcome.Waiting,
      { promoted: false, waiting: admission.waiting },
      withRevision,
    );
  }
  // The job that went: with targets reporting out of order, the latest event's, not this one's.
  const job = admission?.job ?? decision.job;
  return answer(
    202,
    WebhookOutcome.Accepted,
    {
      promoted: true,
      promotion: { id: job.id, pipeline: id, from: job.from, to: job.to, revision: job.revision },
    },
    withRevision,
  );
};

/** Answers one webhook request and counts it in `WebhookRequests` by `Outcome`. */
export const handleWebhookRequest = async (
  request: WebhookRequest,
  deps: WebhookDependencies,
): Promise<WebhookResult> => {
  const result = isApprovalPath(request.path)
    ? await handleApprovalRequest(request, deps)
    : await evaluate(request, deps);
  deps.metrics.record({
    name: Metric.WebhookRequests,
    unit: 'Count',
    value: 1,
    dimensions: { [Dimension.Outcome]: result.outcome },
  });
  return result;
};

/** Lower-cases header names (HTTP header names are case-insensitive). */
export const normaliseHeaders = (
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | undefined> => {
  const normalised: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) {
    normalised[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return normalised;
};
