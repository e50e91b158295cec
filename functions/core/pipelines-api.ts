import { errorMessage, isPromoterError } from './errors.ts';
import {
  approveRoute,
  freezeRoute,
  type GateControlDependencies,
  listFreezesRoute,
  unfreezeRoute,
} from './gate-controls.ts';
import { decodePathSegment, type HttpAnswer, type HttpRequest } from './http.ts';
import type { LogPort } from './logger.ts';
import { type Pipeline, pipelineId } from './pipeline.ts';
import { type PipelineStatus, pipelineStatus } from './pipeline-status.ts';
import { hasNoDocuments, syncPipelineManifests } from './pipeline-sync.ts';
import type { PipelineRegistry, PipelineStore, PromotionStateStore, SecretStore } from './ports.ts';
import { compareText } from './text-order.ts';

/*
 * The pipelines API request function, shared by the Lambda handler (IAM-authorised routes of the
 * HTTP API) and `promoter serve` (status only, on loopback):
 *
 * | request | answer |
 * |---|---|
 * | `GET /pipelines` | 200, `{"pipelines": [...]}`: every pipeline's status, by `namespace/name` |
 * | `PUT /pipelines[?prune=true]`, body: `kubectl get pipelines.pipelines.weave.works -A -o yaml` (or `-o json`) | 200, the sync summary (pipeline-sync.ts) |
 * | body over 4 MiB | 413 |
 * | body empty, not UTF-8, or an unknown or malformed query parameter | 400, saying what was expected |
 * | `GET /pipelines/{ns}/{name}` | 200, the pipeline's status (pipeline-status.ts); 404 when unknown |
 * | `POST /pipelines/{ns}/{name}/environments/{env}/approval`, `{"revision"?}` | 202 approved; 422 when nothing waits (gate-controls.ts) |
 * | `POST /freeze` `{"pipeline"?, "environment"?, "reason", "until"?}`, `POST /unfreeze`, `GET /freezes` | the freezes (gate-controls.ts) |
 * | another method on those paths | 405 with `Allow` |
 * | another path | 404 |
 * | the store unavailable | 503 (retry) |
 *
 * Invalid pipelines do not fail the request: the valid ones are stored and the invalid ones are
 * listed in the answer with their errors (`promoter sync` exits non-zero on them). With `secrets`,
 * the answer's `warnings` name pipelines whose environments share a webhook key.
 */

export const MAX_SYNC_BODY_BYTES = 4 * 1024 * 1024;

export interface PipelinesApiRequest extends HttpRequest {
  /** The raw query string, without `?`. */
  readonly query: string;
  /** Who asks: the caller's IAM ARN in AWS, serve's local user. Approvals and freezes keep it. */
  readonly caller?: string;
}

export type PipelinesApiResult = HttpAnswer;

export interface PipelinesApiDependencies {
  readonly pipelines: PipelineStore;
  /** The writable store behind `PUT /pipelines`; absent in `serve`, which reads files. */
  readonly registry?: PipelineRegistry;
  /** Every pipeline, for `GET /pipelines`: serve's files; the registry's list when absent. */
  readonly catalog?: { list(): readonly Pipeline[] | Promise<readonly Pipeline[]> };
  readonly state: Pick<PromotionStateStore, 'listDeployments' | 'listPromotions'>;
  /** The pipelines' secrets, read by the sync for its shared-key `warnings` only. */
  readonly secrets?: SecretStore;
  readonly logger: LogPort;
  /** The approvals and freezes; absent: those routes answer 404. */
  readonly gates?: GateControlDependencies;
}

const SYNC_PATH = /^\/pipelines\/?$/;
const APPROVAL_PATH = /^\/pipelines\/([^/]+)\/([^/]+)\/environments\/([^/]+)\/approval\/?$/;
const FREEZE_PATHS: Readonly<Record<string, 'GET' | 'POST'>> = {
  '/freeze': 'POST',
  '/unfreeze': 'POST',
  '/freezes': 'GET',
};
const STATUS_PATH = /^\/pipelines\/([^/]+)\/([^/]+)\/?$/;

/**
 * The routes of this API, for the shells that route to it (serve) or forward to it
 * (`promoter ui`, which forwards all but the sync).
 */
export const PIPELINES_API_ROUTES: readonly {
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly path: RegExp;
}[] = [
  { method: 'GET', path: SYNC_PATH },
  { method: 'PUT', path: SYNC_PATH },
  { method: 'GET', path: STATUS_PATH },
  { method: 'POST', path: APPROVAL_PATH },
  ...Object.entries(FREEZE_PATHS).map(([path, method]) => ({
    method,
    path: new RegExp(`^${path}/?$`),
  })),
];

/** Whether `path` is one of this API's (whatever the method: the API answers 405 itself). */
export const isPipelinesApiPath = (path: string): boolean =>
  path.startsWith('/pipelines/') || PIPELINES_API_ROUTES.some((route) => route.path.test(path));

const EXPECTED_BODY =
  'expected what `kubectl get pipelines.pipelines.weave.works -A -o yaml` (or `-o json`) prints: a List, a Pipeline, or multi-document YAML';

const utf8 = new TextDecoder('utf-8', { fatal: true });

const error = (
  status: number,
  message: string,
  headers?: Record<string, string>,
): PipelinesApiResult => ({
  status,
  body: { error: message },
  ...(headers === undefined ? {} : { headers }),
});

/** `?prune=true|false|1|0` (or a bare `?prune`); a string when the query is not understood. */
export const parseSyncQuery = (query: string): { prune: boolean } | string => {
  const params = new URLSearchParams(query);
  let prune = false;
  for (const [key, value] of params) {
    if (key !== 'prune')
      return `unknown query parameter ${JSON.stringify(key)}: only prune is accepted`;
    if (value === 'true' || value === '1' || value === '') prune = true;
    else if (value === 'false' || value === '0') prune = false;
    else return `prune: expected true or false, got ${JSON.stringify(value)}`;
  }
  return { prune };
};

const unavailable = (deps: PipelinesApiDependencies, what: string, cause: unknown) => {
  if (isPromoterError(cause) && cause.retryable) {
    deps.logger.error(`${what}: store unavailable`, { code: cause.code, error: cause.message });
    return error(503, 'pipeline store temporarily unavailable, retry later');
  }
  deps.logger.error(`${what} failed`, {
    code: isPromoterError(cause) ? cause.code : 'UNKNOWN',
    error: errorMessage(cause),
  });
  return error(500, 'internal error');
};

const sync = async (
  request: PipelinesApiRequest,
  deps: PipelinesApiDependencies,
): Promise<PipelinesApiResult> => {
  const { registry } = deps;
  if (registry === undefined) {
    return error(
      405,
      'this server reads its pipelines from files (promoter serve --pipelines) and reloads them when they change: it does not take PUT /pipelines',
    );
  }
  if (request.bodyTruncated === true || request.body.byteLength > MAX_SYNC_BODY_BYTES) {
    return error(413, `body over ${MAX_SYNC_BODY_BYTES} bytes: sync fewer pipelines at a time`);
  }
  const query = parseSyncQuery(request.query);
  if (typeof query === 'string') return error(400, query);
  let text: string;
  try {
    text = utf8.decode(request.body);
  } catch {
    return error(400, `body is not UTF-8 text: ${EXPECTED_BODY}`);
  }
  if (hasNoDocuments(text)) return error(400, `empty body: ${EXPECTED_BODY}`);
  try {
    const result = await syncPipelineManifests(registry, text, {
      prune: query.prune,
      ...(deps.secrets === undefined ? {} : { secrets: deps.secrets }),
    });
    deps.logger.info('pipelines synced', {
      ...result.counts,
      created: result.created,
      updated: result.updated,
      deleted: result.deleted,
      invalid: result.invalid.map((entry) => entry.id),
      prune: result.prune,
      warnings: result.warnings.map((warning) => warning.message),
    });
    return { status: 200, body: { ...result } };
  } catch (cause) {
    return unavailable(deps, 'pipelines sync', cause);
  }
};

const status = async (
  namespace: string,
  name: string,
  deps: PipelinesApiDependencies,
): Promise<PipelinesApiResult> => {
  try {
    const found = await pipelineStatus({ namespace, name }, deps);
    if (found === undefined) return error(404, `pipeline ${namespace}/${name} not found`);
    return { status: 200, body: { ...found } };
  } catch (cause) {
    return unavailable(deps, `status of ${namespace}/${name}`, cause);
  }
};

/** Statuses read at once by `GET /pipelines`: a few store reads each, not hundreds in flight. */
const LIST_CONCURRENCY = 8;

const list = async (deps: PipelinesApiDependencies): Promise<PipelinesApiResult> => {
  const catalog = deps.catalog ?? deps.registry;
  if (catalog === undefined) return error(404, 'this server does not list its pipelines');
  try {
    const pipelines = [...(await catalog.list())].sort((a, b) =>
      compareText(pipelineId(a), pipelineId(b)),
    );
    const statuses: PipelineStatus[] = [];
    for (let start = 0; start < pipelines.length; start += LIST_CONCURRENCY) {
      const batch = pipelines.slice(start, start + LIST_CONCURRENCY);
      const found = await Promise.all(batch.map((pipeline) => pipelineStatus(pipeline, deps)));
      // A pipeline deleted between the list and its status is left out.
      for (const status of found) if (status !== undefined) statuses.push(status);
    }
    return { status: 200, body: { pipelines: statuses } };
  } catch (cause) {
    return unavailable(deps, 'list of pipelines', cause);
  }
};

/** Answers one pipelines API request. */
export const handlePipelinesApiRequest = async (
  request: PipelinesApiRequest,
  deps: PipelinesApiDependencies,
): Promise<PipelinesApiResult> => {
  const method = request.method.toUpperCase();
  if (SYNC_PATH.test(request.path)) {
    if (method === 'GET') return list(deps);
    if (method !== 'PUT') {
      return error(405, `method ${request.method} not allowed on /pipelines: use GET or PUT`, {
        allow: 'GET, PUT',
      });
    }
    return sync(request, deps);
  }
  const control = await gateControl(request, method, deps);
  if (control !== undefined) return control;
  const match = STATUS_PATH.exec(request.path);
  if (match !== null) {
    const namespace = decodePathSegment(match[1] ?? '');
    const name = decodePathSegment(match[2] ?? '');
    if (namespace === undefined || name === undefined) {
      return error(404, 'not found: GET /pipelines/{namespace}/{name}');
    }
    if (method !== 'GET') {
      return error(405, `method ${request.method} not allowed: use GET`, { allow: 'GET' });
    }
    return status(namespace, name, deps);
  }
  return error(404, 'not found: PUT /pipelines or GET /pipelines/{namespace}/{name}');
};

/** The approval and freeze routes; undefined for another path. */
const gateControl = async (
  request: PipelinesApiRequest,
  method: string,
  deps: PipelinesApiDependencies,
): Promise<PipelinesApiResult | undefined> => {
  const approval = APPROVAL_PATH.exec(request.path);
  const freezeMethod = FREEZE_PATHS[request.path.replace(/\/$/, '')];
  if (approval === null && freezeMethod === undefined) return undefined;
  const allowed = approval === null ? (freezeMethod ?? 'POST') : 'POST';
  if (method !== allowed) {
    return error(405, `method ${request.method} not allowed: use ${allowed}`, { allow: allowed });
  }
  const { gates } = deps;
  if (gates === undefined) return error(404, 'this server takes no approvals or freezes');
  const caller = request.caller ?? 'unknown';
  try {
    if (approval !== null) {
      const [namespace, name, environment] = approval
        .slice(1)
        .map((part) => decodePathSegment(part ?? ''));
      if (namespace === undefined || name === undefined || environment === undefined) {
        return error(
          404,
          'not found: POST /pipelines/{namespace}/{name}/environments/{env}/approval',
        );
      }
      const ref = { namespace, name };
      const pipeline = await deps.pipelines.get(ref);
      return await approveRoute(pipeline, ref, environment, request.body, caller, gates);
    }
    if (request.path.startsWith('/freezes')) return await listFreezesRoute(gates);
    return request.path.startsWith('/freeze')
      ? await freezeRoute(request.body, caller, gates)
      : await unfreezeRoute(request.body, caller, gates);
  } catch (cause) {
    return unavailable(deps, `${method} ${request.path}`, cause);
  }
};
