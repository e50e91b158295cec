import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  GITHUB_WEBHOOK_PATH,
  type GitHubWebhookDependencies,
  handleGitHubWebhookRequest,
  MAX_GITHUB_BODY_BYTES,
} from '../core/github-webhook.ts';
import type { LogPort } from '../core/logger.ts';
import { handlePipelinesApiRequest, type PipelinesApiDependencies } from '../core/pipelines-api.ts';
import {
  handleWebhookRequest,
  MAX_BODY_BYTES,
  normaliseHeaders,
  type WebhookDependencies,
  type WebhookResult,
} from '../core/webhook.ts';
import { readBody } from './http-body.ts';

/**
 * `promoter serve`'s HTTP shell: `GET /healthz`, `GET /metrics`, `/pipelines...` through the
 * shared pipelines API request function (the status; serve reads its pipelines from files, so it
 * reads no body there), and everything else through the shared webhook request function.
 */
export interface ServeServerOptions {
  readonly webhook: WebhookDependencies;
  readonly pipelinesApi?: PipelinesApiDependencies;
  readonly logger: LogPort;
  readonly metricsSnapshot?: () => unknown;
  /** `POST /webhooks/github` (the promotion lifecycle), when set. */
  readonly github?: GitHubWebhookDependencies;
  /** The connection bounds; `SERVE_LIMITS` unless told. */
  readonly limits?: Partial<ServeServerLimits>;
}

/**
 * What one client may hold of the server: a connection that trickles its headers or body is
 * closed (408) once its time is up, so thousands of slow connections cannot pile up, and past
 * `maxConnections` new ones are dropped at once. Flux sends a small body and waits for the
 * answer, which takes milliseconds: these are far above what it needs.
 */
export interface ServeServerLimits {
  /** Time to receive a request's headers, from its first byte (or the connection). */
  readonly headersTimeoutMs: number;
  /** Time to receive a whole request, body included. */
  readonly requestTimeoutMs: number;
  /** How long a kept-alive connection may wait for its next request. */
  readonly keepAliveTimeoutMs: number;
  readonly maxHeadersCount: number;
  readonly maxHeaderBytes: number;
  /** Requests on one kept-alive connection before it is closed. */
  readonly maxRequestsPerSocket: number;
  /** Open connections; past it, new ones are closed as they come. */
  readonly maxConnections: number;
  /** How often the header and request times are checked (Node's own default is 30 s). */
  readonly connectionsCheckingIntervalMs: number;
}

export const SERVE_LIMITS: ServeServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxHeadersCount: 100,
  maxHeaderBytes: 16 * 1024,
  maxRequestsPerSocket: 1_000,
  maxConnections: 256,
  connectionsCheckingIntervalMs: 1_000,
};

const bounded = (options: ServeServerOptions, handler: RequestListener): Server => {
  const limits = { ...SERVE_LIMITS, ...options.limits };
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
    },
    handler,
  );
  server.maxHeadersCount = limits.maxHeadersCount;
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxConnections = limits.maxConnections;
  return server;
};

const isPipelinesPath = (path: string): boolean =>
  path === '/pipelines' || path.startsWith('/pipelines/');

const send = (
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void => {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
};

const webhook = async (
  request: IncomingMessage,
  url: URL,
  options: ServeServerOptions,
): Promise<WebhookResult> => {
  const { body, truncated } =
    request.method === 'POST'
      ? await readBody(request, MAX_BODY_BYTES)
      : { body: Buffer.alloc(0), truncated: false };
  return handleWebhookRequest(
    {
      method: request.method ?? 'GET',
      path: url.pathname,
      headers: normaliseHeaders(request.headers),
      body,
      bodyTruncated: truncated,
    },
    options.webhook,
  );
};

export const createServeServer = (options: ServeServerOptions): Server =>
  bounded(options, async (request, response) => {
    const started = performance.now();
    const url = new URL(request.url ?? '/', 'http://serve.local');
    try {
      if (request.method === 'GET' && url.pathname === '/healthz') {
        send(response, 200, { status: 'ok' });
        return;
      }
      if (request.method === 'GET' && url.pathname === '/metrics' && options.metricsSnapshot) {
        send(response, 200, options.metricsSnapshot());
        return;
      }
      if (options.pipelinesApi !== undefined && isPipelinesPath(url.pathname)) {
        const result = await handlePipelinesApiRequest(
          {
            method: request.method ?? 'GET',
            path: url.pathname,
            query: url.search.slice(1),
            body: new Uint8Array(0),
          },
          options.pipelinesApi,
        );
        send(response, result.status, result.body, result.headers);
        return;
      }
      if (options.github !== undefined && url.pathname === GITHUB_WEBHOOK_PATH) {
        const { body, truncated } =
          request.method === 'POST'
            ? await readBody(request, MAX_GITHUB_BODY_BYTES)
            : { body: Buffer.alloc(0), truncated: false };
        const result = await handleGitHubWebhookRequest(
          {
            method: request.method ?? 'GET',
            path: url.pathname,
            headers: normaliseHeaders(request.headers),
            body,
            bodyTruncated: truncated,
          },
          options.github,
        );
        send(response, result.status, result.body, result.headers);
        options.logger.info('github webhook request', {
          status: result.status,
          outcome: result.outcome,
          delivery: request.headers['x-github-delivery'],
        });
        return;
      }
      const result = await webhook(request, url, options);
      // An oversized body is left unread: close the connection rather than drain it.
      send(response, result.status, result.body, {
        ...result.headers,
        ...(result.status === 413 ? { connection: 'close' } : {}),
      });
      options.logger.info('webhook request', {
        method: request.method,
        path: url.pathname,
        status: result.status,
        outcome: result.outcome,
        pipeline: result.pipeline,
        environment: result.environment,
        revision: result.revision,
        latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      });
    } catch (error) {
      options.logger.error('request failed', {
        method: request.method,
        path: url.pathname,
        error: error instanceof Error ? error.message : String(error),
      });
      if (!response.headersSent) send(response, 500, { error: 'internal error' });
      else response.end();
    }
  });

export const listen = (server: Server, port: number, host: string): Promise<string> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(`http://${shownHost}:${address.port}`);
    });
  });
