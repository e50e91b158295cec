import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import * as z from 'zod';
import { isLoopbackHost, refuseInsecureUrl } from '../core/http.ts';
import { MAX_SYNC_BODY_BYTES } from '../core/pipelines-api.ts';

export const SYNC_USAGE = `promoter sync -f FILE|- --api URL [--prune] [--region REGION] [--json]
  Sends Pipeline manifests (what kubectl get pipelines.pipelines.weave.works -A -o yaml|json
  prints) to PUT URL/pipelines, signed with AWS SigV4 (service execute-api, default credential
  chain), and prints what was created, updated, unchanged, deleted and invalid.
  --prune    also delete stored pipelines absent from the input (skipped when an invalid item
             names no pipeline; a pipeline that is invalid in the input keeps its stored definition).
  REGION     --region, else the region of an execute-api host name, else AWS_REGION.
  --json     print the API's answer as JSON.
  Exit status: 0 synced, 1 synced but invalid pipelines were reported, 2 failed.`;

/**
 * What `promoter sync` and `promoter status` share: the API URL, SigV4 signing with the default
 * credential chain (environment, SSO, shared files, web identity/IRSA, ECS/EKS Pod Identity,
 * instance metadata), and a request with retries on throttling and transient failures.
 */
const EXECUTE_API_HOST = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

export const isLoopbackUrl = (url: URL): boolean => isLoopbackHost(url.hostname);

/** `{api}{path}`: the API base URL (with or without a trailing slash) and a route path. */
export const apiUrl = (api: string, path: string): URL => {
  let base: URL;
  try {
    base = new URL(api);
  } catch {
    throw new Error(
      `--api: expected the API URL (https://<id>.execute-api.<region>.amazonaws.com), got ${JSON.stringify(api)}`,
    );
  }
  const refused = refuseInsecureUrl(base);
  if (refused !== undefined) throw new Error(`--api: ${refused}`);
  if (base.search !== '' || base.hash !== '') {
    throw new Error(`--api: expected the API base URL without a query, got ${JSON.stringify(api)}`);
  }
  return new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`);
};

/**
 * The region to sign for: `--region`, else the one in an execute-api host name (it is the one
 * the signature must name, whatever AWS_REGION a pod was given), else AWS_REGION or
 * AWS_DEFAULT_REGION (custom domain names).
 */
export const signingRegion = (
  url: URL,
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string => {
  const region =
    flag ??
    EXECUTE_API_HOST.exec(url.hostname)?.[1] ??
    (env.AWS_REGION || undefined) ??
    (env.AWS_DEFAULT_REGION || undefined);
  if (region === undefined || region === '') {
    throw new Error(`cannot tell the AWS region of ${url.host}: pass --region or set AWS_REGION`);
  }
  return region;
};

type SourceData = string | ArrayBuffer | ArrayBufferView;

const bytes = (data: SourceData): Buffer | string =>
  typeof data === 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** SHA-256 and HMAC-SHA-256 for the signer, on node:crypto (no extra hashing package). */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.create();
  }
  private create(): Hash | Hmac {
    return this.secret === undefined
      ? createHash('sha256')
      : createHmac('sha256', bytes(this.secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.create();
  }
}

export interface ApiRequest {
  readonly method: 'GET' | 'PUT';
  readonly url: URL;
  readonly body?: Buffer;
  readonly headers?: Readonly<Record<string, string>>;
  /** The signing region, or undefined to send the request unsigned. */
  readonly region: string | undefined;
}

export interface ApiResponse {
  readonly status: number;
  readonly text: string;
}

let credentials: ReturnType<typeof defaultProvider> | undefined;

/** The request's headers with the SigV4 `Authorization` (and `X-Amz-*`) headers added. */
export const signRequest = async (
  request: ApiRequest & { readonly region: string },
): Promise<Record<string, string>> => {
  credentials ??= defaultProvider();
  const signer = new SignatureV4({
    service: 'execute-api',
    region: request.region,
    credentials,
    sha256: NodeSha256,
  });
  const { url } = request;
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = value;
  const signed = await signer.sign({
    method: request.method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query,
    headers: { ...request.headers, host: url.host },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) {
    // fetch sets Host from the URL, to the same value.
    if (name.toLowerCase() !== 'host') headers[name] = value;
  }
  return headers;
};

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const ATTEMPTS = 3;
const TIMEOUT_MS = 60_000;
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends the request (signed afresh for each attempt when a region is given), trying again on
 * 429, 502, 503, 504 and network errors, 3 attempts in all. Both routes are idempotent.
 */
export const sendApiRequest = async (request: ApiRequest): Promise<ApiResponse> => {
  for (let attempt = 1; ; attempt += 1) {
    const headers =
      request.region === undefined
        ? { ...request.headers }
        : await signRequest({ ...request, region: request.region });
    try {
      const response = await fetch(request.url, {
        method: request.method,
        headers: { 'user-agent': 'pipeline-promoter-cli', ...headers },
        ...(request.body === undefined ? {} : { body: request.body }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const text = await response.text();
      if (!RETRYABLE_STATUS.has(response.status) || attempt >= ATTEMPTS) {
        return { status: response.status, text };
      }
      const retryAfter = Number(response.headers.get('retry-after'));
      await delay(
        Number.isFinite(retryAfter) && retryAfter > 0
          ? Math.min(retryAfter, 10) * 1000
          : 1000 * attempt,
      );
    } catch (error) {
      if (attempt >= ATTEMPTS) {
        const reason =
          error instanceof Error
            ? error.cause instanceof Error
              ? error.cause.message
              : error.message
            : String(error);
        throw new Error(`${request.method} ${request.url.href} failed: ${reason}`);
      }
      await delay(1000 * attempt);
    }
  }
};

/** The error an API answered, as one line: its `error` or `message` field, else the text. */
export const describeFailure = (request: ApiRequest, response: ApiResponse): string => {
  let detail = response.text.trim().slice(0, 500);
  try {
    const body = JSON.parse(response.text) as { error?: unknown; message?: unknown };
    const message = body.error ?? body.message;
    if (typeof message === 'string') detail = message;
  } catch {}
  const hint =
    response.status === 403 && request.region !== undefined
      ? ` (the caller needs execute-api:Invoke on this route, with credentials for the API's account, signed for region ${request.region}: check --region)`
      : '';
  return `${request.method} ${request.url.href} answered ${response.status}: ${detail}${hint}`;
};

const syncAnswer = z.object({
  counts: z.object({
    created: z.number(),
    updated: z.number(),
    unchanged: z.number(),
    deleted: z.number(),
    invalid: z.number(),
  }),
  created: z.array(z.string()),
  updated: z.array(z.string()),
  unchanged: z.array(z.string()),
  deleted: z.array(z.string()),
  invalid: z.array(z.object({ id: z.string(), errors: z.array(z.string()) })),
  prune: z.object({
    requested: z.boolean(),
    performed: z.boolean(),
    reason: z.string().optional(),
    kept: z.array(z.string()),
  }),
});

export type SyncAnswer = z.infer<typeof syncAnswer>;

/** The summary people read: counts, then each pipeline that changed or is invalid. */
export const formatSyncSummary = (answer: SyncAnswer): string => {
  const { counts } = answer;
  const lines = [
    `pipelines: ${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged, ${counts.deleted} deleted, ${counts.invalid} invalid`,
  ];
  for (const id of answer.created) lines.push(`  created    ${id}`);
  for (const id of answer.updated) lines.push(`  updated    ${id}`);
  for (const id of answer.deleted) lines.push(`  deleted    ${id}`);
  for (const entry of answer.invalid) {
    lines.push(`  invalid    ${entry.id}`);
    for (const error of entry.errors) lines.push(`               - ${error}`);
  }
  if (answer.prune.requested && !answer.prune.performed) {
    lines.push(`prune skipped: ${answer.prune.reason ?? 'no reason given'}`);
  }
  for (const id of answer.prune.kept) {
    lines.push(`prune kept ${id}: it is invalid in the input, its last valid definition stays`);
  }
  return lines.join('\n');
};

const readInput = async (file: string): Promise<Buffer> => {
  if (file !== '-') return readFile(file);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/** `promoter sync`: resolves to the exit status (0 synced, 1 invalid pipelines reported). */
export const syncCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string', short: 'f' },
      api: { type: 'string' },
      prune: { type: 'boolean', default: false },
      region: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0)
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.file === undefined)
    throw new Error('-f FILE (or -f - for standard input) is required');
  if (values.api === undefined) throw new Error('--api URL is required');
  const url = apiUrl(values.api, '/pipelines');
  if (values.prune) url.searchParams.set('prune', 'true');
  const region = signingRegion(url, values.region);

  const body = await readInput(values.file);
  const where = values.file === '-' ? 'standard input' : values.file;
  if (body.toString('utf8').trim() === '') {
    throw new Error(`${where} is empty: nothing sent (did kubectl fail?)`);
  }
  if (body.byteLength > MAX_SYNC_BODY_BYTES) {
    throw new Error(
      `${where} is over ${MAX_SYNC_BODY_BYTES} bytes: sync fewer pipelines at a time`,
    );
  }
  const json = /^\s*[[{]/.test(body.toString('utf8', 0, Math.min(body.byteLength, 1024)));
  const request: ApiRequest = {
    method: 'PUT',
    url,
    body,
    headers: { 'content-type': json ? 'application/json' : 'application/yaml' },
    region,
  };
  const response = await sendApiRequest(request);
  if (response.status !== 200) throw new Error(describeFailure(request, response));
  let answer: SyncAnswer;
  try {
    answer = syncAnswer.parse(JSON.parse(response.text));
  } catch {
    throw new Error(
      `${url.href} answered 200 with something that is not a sync summary: ${response.text.slice(0, 200)}`,
    );
  }
  process.stdout.write(
    `${values.json ? JSON.stringify(answer, null, 2) : formatSyncSummary(answer)}\n`,
  );
  return answer.counts.invalid > 0 ? 1 : 0;
};
