import { errorMessage, isPromoterError } from './errors.ts';
import { decodePathSegment } from './http.ts';
import { WebhookOutcome } from './metric-names.ts';
import { type Pipeline, pipelineId, webhookSecretFor } from './pipeline.ts';
import { approvalKeys } from './pipeline-secret.ts';
import { approvePromotion } from './promotion-gates.ts';
import { SIGNATURE_EXPECTED, SIGNATURE_HEADER, verifySignature } from './signature.ts';
import type { WebhookDependencies, WebhookRequest, WebhookResult } from './webhook.ts';

/**
 * Weave's approval route (DESIGN.md section 5): `POST /approval/{ns}/{name}/{env}/{revision}`,
 * `X-Signature` the HMAC of the raw body (an empty body is allowed) with the pipeline's shared
 * `hmac-key` (not an environment's own key: those sign a leaf cluster's events). Approves the
 * promotion into `{env}` waiting at `{revision}`.
 */
const PATH = /^\/approval\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\/?$/;

/** Whether the body is an event (a Flux event, a notice): an object with `involvedObject`. */
const isSignedEvent = (body: Uint8Array): boolean => {
  if (body.byteLength === 0) return false;
  try {
    const value: unknown = JSON.parse(Buffer.from(body).toString('utf8'));
    return typeof value === 'object' && value !== null && 'involvedObject' in value;
  } catch {
    return false;
  }
};

export const isApprovalPath = (path: string): boolean => path.startsWith('/approval/');

const OUTCOME_BY_STATUS: Readonly<Record<number, WebhookOutcome>> = {
  202: WebhookOutcome.Approved,
  401: WebhookOutcome.RejectedSignature,
  404: WebhookOutcome.NotFound,
  405: WebhookOutcome.MethodNotAllowed,
  413: WebhookOutcome.TooLarge,
  422: WebhookOutcome.RejectedInvalid,
  503: WebhookOutcome.Unavailable,
};

const reply = (status: number, body: Record<string, unknown>): WebhookResult => ({
  status,
  body,
  outcome: OUTCOME_BY_STATUS[status] ?? WebhookOutcome.RejectedInvalid,
});

const refuse = (status: number, error: string): WebhookResult => reply(status, { error });

/** Weave's approvals carry an empty body or a small JSON one. */
const MAX_APPROVAL_BODY_BYTES = 64 * 1024;

/**
 * @example
 * await handleApprovalRequest({ method: 'POST', path: '/approval/flux-system/podinfo/prod/6.5.0',
 *   headers: { 'x-signature': 'sha256=…' }, body: new Uint8Array() }, deps);
 * // { status: 202, body: { approved: {...}, promoted: true, ... } }
 */
export const handleApprovalRequest = async (
  request: WebhookRequest,
  deps: WebhookDependencies,
): Promise<WebhookResult> => {
  if (request.method.toUpperCase() !== 'POST') {
    return {
      ...refuse(405, `method ${request.method} not allowed: use POST`),
      headers: { allow: 'POST' },
    };
  }
  if (request.bodyTruncated === true || request.body.byteLength > MAX_APPROVAL_BODY_BYTES) {
    return reply(413, { error: `body over ${MAX_APPROVAL_BODY_BYTES} bytes` });
  }
  if ((request.headers[SIGNATURE_HEADER] ?? '').trim() === '') {
    return refuse(401, `signature missing: ${SIGNATURE_EXPECTED}`);
  }
  const parts = PATH.exec(request.path)
    ?.slice(1)
    .map((part) => decodePathSegment(part ?? ''));
  const [namespace, name, environment, revision] = parts ?? [];
  if (
    namespace === undefined ||
    name === undefined ||
    environment === undefined ||
    revision === undefined
  ) {
    return refuse(404, 'not found: POST /approval/{namespace}/{pipeline}/{environment}/{revision}');
  }
  let pipeline: Pipeline | undefined;
  try {
    pipeline = await deps.pipelines.get({ namespace, name });
  } catch (error) {
    deps.logger.error('pipeline store unavailable', { error: errorMessage(error) });
    return refuse(503, 'temporarily unavailable, retry later');
  }
  if (pipeline === undefined) return refuse(404, `pipeline ${namespace}/${name} not found`);
  const index = pipeline.environments.findIndex((candidate) => candidate.name === environment);
  const source = pipeline.environments[index - 1];
  if (index < 0 || source === undefined) {
    return refuse(
      422,
      `environment ${JSON.stringify(environment)} of pipeline ${pipelineId(pipeline)} takes no approvals (promotions go into: ${pipeline.environments
        .slice(1)
        .map((candidate) => candidate.name)
        .join(', ')})`,
    );
  }
  let keys: readonly string[] = [];
  try {
    keys = approvalKeys(
      await deps.secrets.get({ namespace, name: webhookSecretFor(pipeline, source.name) }),
    );
  } catch (error) {
    if (isPromoterError(error) && error.retryable) {
      return refuse(503, 'temporarily unavailable, retry later');
    }
    deps.logger.error('approval secret unusable', {
      pipeline: pipelineId(pipeline),
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
    });
  }
  const signature = verifySignature(request.body, request.headers[SIGNATURE_HEADER], keys);
  if (!signature.valid) return refuse(401, `signature ${signature.failure}: ${SIGNATURE_EXPECTED}`);
  // The route signs the body only: a Flux event or a notice signed with the same key, captured
  // on its way elsewhere, must not pass for an approval.
  if (isSignedEvent(request.body)) {
    return refuse(
      400,
      'a Flux event or a Pipeline Promoter notice is not an approval: sign an empty body',
    );
  }
  try {
    const { approved, admission } = await approvePromotion(
      { pipeline, environment, revision, by: 'hmac' },
      deps,
    );
    return {
      ...reply(202, {
        approved: { pipeline: pipelineId(pipeline), environment, revision: approved.revision },
        ...(admission.status === 'enqueued'
          ? { promoted: true, promotion: { id: admission.job.id } }
          : { promoted: false, waiting: admission.waiting }),
      }),
      pipeline: pipelineId(pipeline),
      environment,
      revision: approved.revision,
    };
  } catch (error) {
    if (isPromoterError(error) && error.code === 'NOTHING_TO_APPROVE') {
      return refuse(422, error.message);
    }
    deps.logger.error('approval failed', {
      pipeline: pipelineId(pipeline),
      environment,
      code: isPromoterError(error) ? error.code : 'UNKNOWN',
      reason: errorMessage(error),
    });
    return refuse(503, 'temporarily unavailable, retry later');
  }
};
