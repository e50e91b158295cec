import { parseArgs } from 'node:util';
import { parseSoakDuration } from '../core/pipeline-settings.ts';
import {
  type ApiRequest,
  apiUrl,
  describeFailure,
  isLoopbackUrl,
  sendApiRequest,
  signingRegion,
} from './aws-signed-client.ts';

/**
 * `promoter approve`, `freeze` and `unfreeze` (DESIGN.md section 11): the runtime controls of the
 * gates, through the pipelines API (IAM-signed in AWS, which records the caller's ARN; plain on
 * serve's loopback address).
 */
export const APPROVE_USAGE = `promoter approve NAMESPACE/NAME ENVIRONMENT [--revision R] --api URL [--region REGION]
  Approves the promotion into ENVIRONMENT that waits for approval (manual: true). With
  --revision, only if that is the revision waiting (a newer one may have replaced it).
  Exit status: 0 approved, 1 nothing waits there, 2 failed.`;

export const FREEZE_USAGE = `promoter freeze [NAMESPACE/NAME] [--env ENVIRONMENT] --reason TEXT [--until TIME] --api URL
  Holds promotions of one pipeline, one environment (of one or every pipeline), or everything,
  until unfreeze or --until (ISO 8601, or a duration from now: 30m, 2h). Waiting promotions show
  the reason and who froze.`;

export const UNFREEZE_USAGE = `promoter unfreeze [NAMESPACE/NAME] [--env ENVIRONMENT] --api URL
  Ends the freeze of exactly that scope; the promotions it held and no other freeze holds go.
  Exit status: 0 unfrozen, 1 no such freeze, 2 failed.`;

const common = {
  api: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

const pipelineArgument = (id: string): { namespace: string; name: string } => {
  const [namespace, name, ...rest] = id.split('/');
  if (rest.length > 0 || !namespace || !name) {
    throw new Error(`expected a pipeline as NAMESPACE/NAME, got ${JSON.stringify(id)}`);
  }
  return { namespace, name };
};

const post = async (
  api: string | undefined,
  region: string | undefined,
  path: string,
  body: Record<string, unknown>,
): Promise<{ status: number; text: string; request: ApiRequest }> => {
  if (api === undefined) throw new Error('--api URL is required');
  const url = apiUrl(api, path);
  const request: ApiRequest = {
    method: 'POST',
    url,
    body: Buffer.from(JSON.stringify(body)),
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    region: isLoopbackUrl(url) ? undefined : signingRegion(url, region),
    // Not idempotent: a retried approval would answer 422 after the first one went through.
    attempts: 1,
  };
  const response = await sendApiRequest(request);
  return { ...response, request };
};

const errorOf = (text: string): string => {
  try {
    const body = JSON.parse(text) as { error?: unknown };
    return typeof body.error === 'string' ? body.error : text;
  } catch {
    return text;
  }
};

/** `--until`: an ISO 8601 date-time, or a duration from now (`30m`, `2h`, `1h30m`). */
export const parseUntil = (text: string, now: Date = new Date()): string => {
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const time = Date.parse(text);
    if (Number.isNaN(time)) throw new Error(`--until: ${JSON.stringify(text)} is not a date-time`);
    return new Date(time).toISOString();
  }
  const ms = parseSoakDuration(text);
  if (typeof ms === 'string') {
    throw new Error(
      `--until: expected an ISO 8601 date-time (2026-12-24T18:00:00Z) or a duration from now (30m, 2h), got ${JSON.stringify(text)}`,
    );
  }
  return new Date(now.getTime() + ms).toISOString();
};

/** `promoter approve`: 0 approved, 1 nothing waits for approval there. */
export const approveCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...common, revision: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [id, environment, ...extra] = positionals;
  if (id === undefined || environment === undefined || extra.length > 0) {
    throw new Error('expected NAMESPACE/NAME ENVIRONMENT');
  }
  const { namespace, name } = pipelineArgument(id);
  const answer = await post(
    values.api,
    values.region,
    `/pipelines/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/environments/${encodeURIComponent(environment)}/approval`,
    values.revision === undefined ? {} : { revision: values.revision },
  );
  if (answer.status === 422) {
    process.stderr.write(`promoter approve: ${errorOf(answer.text)}\n`);
    return 1;
  }
  if (answer.status !== 202) throw new Error(describeFailure(answer.request, answer));
  if (values.json) {
    process.stdout.write(`${answer.text}\n`);
    return 0;
  }
  const body = JSON.parse(answer.text) as {
    approved: { revision: string };
    promoted: boolean;
    waiting?: unknown;
  };
  process.stdout.write(
    `approved ${namespace}/${name} into ${environment} at ${body.approved.revision}: ${
      body.promoted ? 'promotion queued' : `still waiting for ${JSON.stringify(body.waiting)}`
    }\n`,
  );
  return 0;
};

const scopeOptions = { ...common, env: { type: 'string' } } as const;
const freezeOptions = {
  ...scopeOptions,
  reason: { type: 'string' },
  until: { type: 'string' },
} as const;

const scopeOf = (
  positionals: readonly string[],
  env: string | undefined,
): { pipeline?: string; environment?: string } => {
  const [id, ...rest] = positionals;
  if (rest.length > 0) throw new Error('expected at most one pipeline as NAMESPACE/NAME');
  const pipeline = id === undefined ? undefined : pipelineArgument(id);
  return {
    ...(pipeline === undefined ? {} : { pipeline: `${pipeline.namespace}/${pipeline.name}` }),
    ...(env === undefined ? {} : { environment: env }),
  };
};

const describeScope = (scope: { pipeline?: string; environment?: string }): string =>
  `${scope.pipeline ?? 'every pipeline'}${scope.environment === undefined ? '' : ` in ${scope.environment}`}`;

/** `promoter freeze`. */
export const freezeCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: freezeOptions,
    allowPositionals: true,
    strict: true,
  });
  const scope = scopeOf(positionals, values.env);
  if (values.reason === undefined || values.reason.trim() === '') {
    throw new Error('--reason TEXT is required: say why, for the people whose promotions wait');
  }
  const answer = await post(values.api, values.region, '/freeze', {
    ...scope,
    reason: values.reason,
    ...(values.until === undefined ? {} : { until: parseUntil(values.until) }),
  });
  if (answer.status !== 201) throw new Error(describeFailure(answer.request, answer));
  process.stdout.write(
    values.json ? `${answer.text}\n` : `froze promotions of ${describeScope(scope)}\n`,
  );
  return 0;
};

/** `promoter unfreeze`: 0 unfrozen, 1 no freeze of that scope. */
export const unfreezeCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: scopeOptions,
    allowPositionals: true,
    strict: true,
  });
  const scope = scopeOf(positionals, values.env);
  const answer = await post(values.api, values.region, '/unfreeze', scope);
  if (answer.status === 404 && errorOf(answer.text).startsWith('no freeze')) {
    process.stderr.write(`promoter unfreeze: ${errorOf(answer.text)}\n`);
    return 1;
  }
  if (answer.status !== 200) throw new Error(describeFailure(answer.request, answer));
  const body = JSON.parse(answer.text) as { released: number };
  process.stdout.write(
    values.json
      ? `${answer.text}\n`
      : `unfroze ${describeScope(scope)}: ${body.released} promotion(s) released\n`,
  );
  return 0;
};
