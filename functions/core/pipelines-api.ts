import { errorMessage, isPromoterError } from './errors.ts';
import { decodePathSegment, type HttpAnswer, type HttpRequest } from './http.ts';
import type { LogPort } from './logger.ts';
import { pipelineStatus } from './pipeline-status.ts';
import { hasNoDocuments, syncPipelineManifests } from './pipeline-sync.ts';
import type { PipelineRegistry, PipelineStore, PromotionStateStore, SecretStore } from './ports.ts';

/**
 * The pipelines API request function, shared by the Lambda handler (IAM-authorised routes of the
 * HTTP API) and `promoter serve` (status only, on loopback):
 *
 * | request | answer |
 * |---|---|
 * | `PUT /pipelines[?prune=true]`, body: `kubectl get pipelines.pipelines.weave.works -A -o yaml` (or `-o json`) | 200, the sync summary (pipeline-sync.ts) |
 * | body over 4 MiB | 413 |
 * | body empty, not UTF-8, or an unknown or malformed query parameter | 400, saying what was expected |
 * | `GET /pipelines/{ns}/{name}` | 200, the pipeline's status (pipeline-status.ts); 404 when unknown |
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
}

export type PipelinesApiResult = HttpAnswer;

export interface PipelinesApiDependencies {
  readonly pipelines: PipelineStore;
  /** The writable store behind `PUT /pipelines`; absent in `serve`, which reads files. */
  readonly registry?: PipelineRegistry;
  readonly state: Pick<PromotionStateStore, 'listDeployments' | 'listPromotions'>;
  /** The pipelines' secrets, read by the sync for its shared-key `warnings` only. */
  readonly secrets?: SecretStore;
  readonly logger: LogPort;
}

const SYNC_PATH = /^\/pipelines\/?$/;
const STATUS_PATH = /^\/pipelines\/([^/]+)\/([^/]+)\/?$/;

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

/** Answers one pipelines API request. */
export const handlePipelinesApiRequest = async (
  request: PipelinesApiRequest,
  deps: PipelinesApiDependencies,
): Promise<PipelinesApiResult> => {
  const method = request.method.toUpperCase();
  if (SYNC_PATH.test(request.path)) {
    if (method !== 'PUT') {
      return error(405, `method ${request.method} not allowed on /pipelines: use PUT`, {
        allow: 'PUT',
      });
    }
    return sync(request, deps);
  }
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
