import * as z from 'zod/mini';
import { isPromoterError } from './errors.ts';
import type { HttpAnswer } from './http.ts';
import { type Pipeline, type PipelineRef, pipelineId } from './pipeline.ts';
import type { Freeze } from './ports.ts';
import {
  approvePromotion,
  type GateSweepDependencies,
  releaseDuePromotions,
} from './promotion-gates.ts';
import { formatIssues } from './validation.ts';

/**
 * The runtime controls of the gates (DESIGN.md section 11) behind the pipelines API's
 * IAM-authorised routes (loopback-only in serve): approve a promotion, freeze and unfreeze.
 * `caller` is who asks: the IAM ARN in AWS, serve's local user.
 */
export type GateControlDependencies = GateSweepDependencies;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const MAX_REASON_CHARS = 500;

const approvalBody = z.object({
  revision: z.optional(z.string().check(z.minLength(1, 'expected a non-empty revision'))),
});

const scopeFields = {
  pipeline: z.optional(
    z.string().check(z.regex(/^[^/\s]+\/[^/\s]+$/, 'expected namespace/name of a pipeline')),
  ),
  environment: z.optional(z.string().check(z.minLength(1, 'expected an environment name'))),
};

const freezeBody = z.object({
  ...scopeFields,
  reason: z
    .string({ error: 'expected a reason: what is going on, for the people who wait' })
    .check(
      z.minLength(1, 'expected a reason: what is going on, for the people who wait'),
      z.maxLength(MAX_REASON_CHARS, `expected at most ${MAX_REASON_CHARS} characters`),
    ),
  until: z.optional(z.iso.datetime({ offset: true, error: 'expected an ISO 8601 date-time' })),
});

const unfreezeBody = z.object(scopeFields);

const failure = (status: number, message: string): HttpAnswer => ({
  status,
  body: { error: message },
});

/** The JSON body against `schema`; an answer (400) naming the field when it does not fit. */
const readBody = <T>(body: Uint8Array, schema: z.ZodMiniType<T>): T | HttpAnswer => {
  let value: unknown = {};
  if (body.byteLength > 0) {
    try {
      value = JSON.parse(utf8.decode(body));
    } catch {
      return failure(400, 'body is not JSON');
    }
  }
  const parsed = schema.safeParse(value);
  return parsed.success
    ? parsed.data
    : failure(400, `invalid body: ${formatIssues(parsed.error.issues).join('; ')}`);
};

const isAnswer = (value: unknown): value is HttpAnswer =>
  typeof value === 'object' && value !== null && 'status' in value && 'body' in value;

/**
 * `POST /pipelines/{ns}/{name}/environments/{env}/approval`, body `{"revision"?}`: 202 and the
 * job is enqueued (or the promotion waits at a later gate); 422 when nothing waits there at
 * that revision; 404 for an unknown pipeline or environment.
 *
 * @example
 * await approveRoute(pipeline, 'prod', body, 'arn:aws:iam::123456789012:user/ana', deps);
 */
export const approveRoute = async (
  pipeline: Pipeline | undefined,
  ref: PipelineRef,
  environment: string,
  body: Uint8Array,
  caller: string,
  deps: GateControlDependencies,
): Promise<HttpAnswer> => {
  if (pipeline === undefined) return failure(404, `pipeline ${pipelineId(ref)} not found`);
  if (!pipeline.environments.some((candidate) => candidate.name === environment)) {
    const known = pipeline.environments.map((candidate) => candidate.name).join(', ');
    return failure(
      404,
      `environment ${JSON.stringify(environment)} is not in pipeline ${pipelineId(ref)} (environments: ${known})`,
    );
  }
  const request = readBody(body, approvalBody);
  if (isAnswer(request)) return request;
  try {
    const { approved, admission } = await approvePromotion(
      {
        pipeline,
        environment,
        by: caller,
        ...(request.revision === undefined ? {} : { revision: request.revision }),
      },
      deps,
    );
    return {
      status: 202,
      body: {
        approved: {
          pipeline: pipelineId(ref),
          environment,
          revision: approved.revision,
          approvedBy: caller,
        },
        ...(admission.status === 'enqueued'
          ? { promoted: true, promotion: { id: admission.job.id } }
          : { promoted: false, waiting: admission.waiting }),
      },
    };
  } catch (error) {
    if (isPromoterError(error) && error.code === 'NOTHING_TO_APPROVE') {
      return failure(422, error.message);
    }
    throw error;
  }
};

/** `POST /freeze`: 201 with the freeze stored (one per scope: a second replaces the first). */
export const freezeRoute = async (
  body: Uint8Array,
  caller: string,
  deps: GateControlDependencies,
): Promise<HttpAnswer> => {
  const request = readBody(body, freezeBody);
  if (isAnswer(request)) return request;
  const scoped = await checkScope(scopeOf(request), deps);
  if (scoped !== undefined) return scoped;
  const now = deps.clock.now();
  if (request.until !== undefined && Date.parse(request.until) <= now.getTime()) {
    return failure(400, `until: ${request.until} is in the past`);
  }
  const freeze: Freeze = {
    ...scopeOf(request),
    reason: request.reason,
    by: caller,
    at: now.toISOString(),
    ...(request.until === undefined ? {} : { until: new Date(request.until).toISOString() }),
  };
  await deps.state.putFreeze(freeze);
  deps.logger.info('promotions frozen', { ...freeze });
  return { status: 201, body: { freeze } };
};

/**
 * `POST /unfreeze`: removes the freeze of exactly that scope, then looks at every promotion a
 * freeze held (those that no freeze holds any more go). 404 when there was no such freeze.
 */
export const unfreezeRoute = async (
  body: Uint8Array,
  caller: string,
  deps: GateControlDependencies,
): Promise<HttpAnswer> => {
  const parsed = readBody(body, unfreezeBody);
  if (isAnswer(parsed)) return parsed;
  const request = scopeOf(parsed);
  const removed = await deps.state.removeFreeze(request);
  if (!removed) {
    const freezes = await deps.state.listFreezes();
    const scopes = freezes.map(describeScope).join('; ') || 'none';
    return failure(404, `no freeze of ${describeScope(request)} (freezes: ${scopes})`);
  }
  deps.logger.info('promotions unfrozen', { ...request, by: caller });
  const report = await releaseDuePromotions(deps);
  return { status: 200, body: { unfrozen: { ...request }, released: report.released } };
};

/** `GET /freezes`. */
export const listFreezesRoute = async (deps: GateControlDependencies): Promise<HttpAnswer> => ({
  status: 200,
  body: { freezes: await deps.state.listFreezes() },
});

type Scope = Pick<Freeze, 'pipeline' | 'environment'>;

const scopeOf = (request: {
  readonly pipeline?: string | undefined;
  readonly environment?: string | undefined;
}): Scope => ({
  ...(request.pipeline === undefined ? {} : { pipeline: request.pipeline }),
  ...(request.environment === undefined ? {} : { environment: request.environment }),
});

const describeScope = (scope: Pick<Freeze, 'pipeline' | 'environment'>): string =>
  `${scope.pipeline ?? 'every pipeline'}, ${scope.environment ?? 'every environment'}`;

/** A named pipeline must exist, and a named environment must be one of it (or of any). */
const checkScope = async (
  scope: Pick<Freeze, 'pipeline' | 'environment'>,
  deps: GateControlDependencies,
): Promise<HttpAnswer | undefined> => {
  const pipelines =
    scope.pipeline === undefined
      ? await deps.pipelines.list()
      : await (async () => {
          const [namespace = '', name = ''] = (scope.pipeline ?? '').split('/');
          const found = await deps.pipelines.get({ namespace, name });
          return found === undefined ? [] : [found];
        })();
  if (scope.pipeline !== undefined && pipelines.length === 0) {
    return failure(404, `pipeline ${scope.pipeline} not found`);
  }
  if (scope.environment === undefined) return undefined;
  const known = new Set(pipelines.flatMap((pipeline) => pipeline.environments.map((e) => e.name)));
  if (known.has(scope.environment) || (scope.pipeline === undefined && known.size === 0)) {
    return undefined;
  }
  return failure(
    404,
    `environment ${JSON.stringify(scope.environment)} is not in ${scope.pipeline ?? 'any pipeline'} (environments: ${[...known].sort().join(', ')})`,
  );
};
