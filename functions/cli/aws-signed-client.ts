import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { isLoopbackHost, refuseInsecureUrl } from '../core/http.ts';

/**
 * What the commands that call the AWS API share (`promoter sync`, `status`, `ui`): the API URL,
 * SigV4 signing (service execute-api) with the default credential chain (environment, SSO,
 * shared files, web identity/IRSA, ECS/EKS Pod Identity, instance metadata), and a request with
 * retries on throttling and transient failures.
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

export interface ApiRequest {
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly url: URL;
  readonly body?: Buffer;
  readonly headers?: Readonly<Record<string, string>>;
  /** The signing region, or undefined to send the request unsigned. */
  readonly region: string | undefined;
  /** Attempts in all (default 3); 1 for a request that must not be repeated. */
  readonly attempts?: number;
}

export interface ApiResponse {
  readonly status: number;
  readonly text: string;
  /** The answer's content type, when it gave one. */
  readonly contentType?: string;
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
    sha256: Hash.bind(null, 'sha256'),
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
 * 429, 502, 503, 504 and network errors, `attempts` (3) in all: for idempotent routes.
 */
export const sendApiRequest = async (request: ApiRequest): Promise<ApiResponse> => {
  const attempts = request.attempts ?? ATTEMPTS;
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
      if (!RETRYABLE_STATUS.has(response.status) || attempt >= attempts) {
        const contentType = response.headers.get('content-type');
        return { status: response.status, text, ...(contentType === null ? {} : { contentType }) };
      }
      const retryAfter = Number(response.headers.get('retry-after'));
      await delay(
        Number.isFinite(retryAfter) && retryAfter > 0
          ? Math.min(retryAfter, 10) * 1000
          : 1000 * attempt,
      );
    } catch (error) {
      if (attempt >= attempts) {
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
