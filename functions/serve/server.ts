import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, userInfo } from 'node:os';
import type { GitHubWebhookDependencies } from '../core/github-webhook.ts';
import type { GitLabWebhookDependencies } from '../core/gitlab-webhook.ts';
import type { LogPort } from '../core/logger.ts';
import {
  handlePipelinesApiRequest,
  isPipelinesApiPath,
  type PipelinesApiDependencies,
} from '../core/pipelines-api.ts';
import { providerWebhookRoute } from '../core/provider-webhooks.ts';
import {
  handleWebhookRequest,
  MAX_BODY_BYTES,
  normaliseHeaders,
  type WebhookDependencies,
  type WebhookResult,
} from '../core/webhook.ts';
import { readBody } from './http-body.ts';
import {
  isLoopbackAddress,
  MAX_CONTROL_BODY_BYTES,
  refuseCrossSiteRequest,
} from './status-page/control-guard.ts';
import { pipelinesApiSource } from './status-page/pipelines-api-source.ts';
import { answerStatusPage } from './status-page/status-page.ts';

/*
 * `promoter serve`'s HTTP shell: `GET /healthz`, `GET /metrics`, the status page (`GET /` and
 * its assets, status-page/), `/pipelines...` and the freeze routes through the shared pipelines
 * API request function (the status, approvals and freezes; serve reads its pipelines from
 * files, so a body is read only for POST), and everything else through the shared webhook
 * request function. A POST there from a browser must come from the page itself
 * (status-page/control-guard.ts).
 */

export interface ServeServerOptions {
  readonly webhook: WebhookDependencies;
  readonly pipelinesApi?: PipelinesApiDependencies;
  readonly logger: LogPort;
  readonly metricsSnapshot?: () => unknown;
  /** `POST /webhooks/github` (the promotion lifecycle), when set. */
  readonly github?: GitHubWebhookDependencies;
  /** `POST /webhooks/gitlab` (the promotion lifecycle of GitLab merge requests), when set. */
  readonly gitlab?: GitLabWebhookDependencies;
  /** The connection bounds; `SERVE_LIMITS` unless told. */
  readonly limits?: Partial<ServeServerLimits>;
  /**
   * The status page's approve and freeze buttons; by default shown when the server listens on
   * loopback only.
   */
  readonly statusPageControls?: boolean;
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

const LOCAL_CALLER = `${userInfo().username}@${hostname()} (promoter serve)`;

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

export const createServeServer = (options: ServeServerOptions): Server => {
  const listensOnLoopback = (): boolean => {
    const address = server.address();
    return typeof address === 'object' && address !== null && isLoopbackAddress(address.address);
  };
  const server = bounded(options, async (request, response) => {
    const started = performance.now();
    const url = new URL(request.url ?? '/', 'http://serve.local');
    try {
      if (options.pipelinesApi !== undefined) {
        const page = await answerStatusPage(
          request.method ?? 'GET',
          url.pathname,
          pipelinesApiSource(options.pipelinesApi),
          { controls: options.statusPageControls ?? listensOnLoopback() },
        );
        if (page !== undefined) {
          response.writeHead(page.status, page.headers);
          response.end(request.method === 'HEAD' ? undefined : page.body);
          return;
        }
      }
      if (request.method === 'GET' && url.pathname === '/healthz') {
        send(response, 200, { status: 'ok' });
        return;
      }
      if (request.method === 'GET' && url.pathname === '/metrics' && options.metricsSnapshot) {
        send(response, 200, options.metricsSnapshot());
        return;
      }
      if (options.pipelinesApi !== undefined && isPipelinesApiPath(url.pathname)) {
        const posted = request.method === 'POST';
        // serve's controls have no authentication of their own: they answer only on loopback
        // (in AWS the same routes are IAM's), even when serve listens on another address.
        const refused = !posted
          ? undefined
          : !isLoopbackAddress(request.socket.remoteAddress ?? '')
            ? 'approvals and freezes are taken from this machine only (loopback)'
            : refuseCrossSiteRequest(request.headers, listensOnLoopback());
        if (refused !== undefined) {
          send(response, 403, { error: refused }, { connection: 'close' });
          options.logger.warn('status page request refused', { path: url.pathname, refused });
          return;
        }
        const { body, truncated } = posted
          ? await readBody(request, MAX_CONTROL_BODY_BYTES)
          : { body: Buffer.alloc(0), truncated: false };
        const result = await handlePipelinesApiRequest(
          {
            method: request.method ?? 'GET',
            path: url.pathname,
            query: url.search.slice(1),
            body,
            bodyTruncated: truncated,
            // Loopback only: whoever runs serve (the stack records the caller's IAM ARN).
            caller: LOCAL_CALLER,
          },
          options.pipelinesApi,
        );
        send(response, result.status, result.body, {
          ...result.headers,
          ...(truncated ? { connection: 'close' } : {}),
        });
        if (posted) {
          options.logger.info('pipelines API request', {
            method: request.method,
            path: url.pathname,
            status: result.status,
          });
        }
        return;
      }
      const provider = providerWebhookRoute(url.pathname, options);
      if (provider !== undefined) {
        const { body, truncated } =
          request.method === 'POST'
            ? await readBody(request, provider.maxBodyBytes)
            : { body: Buffer.alloc(0), truncated: false };
        const headers = normaliseHeaders(request.headers);
        const result = await provider.handle({
          method: request.method ?? 'GET',
          path: url.pathname,
          headers,
          body,
          bodyTruncated: truncated,
        });
        // An oversized body is left unread: close the connection rather than drain it.
        send(response, result.status, result.body, {
          ...result.headers,
          ...(truncated ? { connection: 'close' } : {}),
        });
        options.logger.info(`${provider.provider} webhook request`, {
          status: result.status,
          outcome: result.outcome,
          delivery: provider.deliveryOf(headers),
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
        // Why a request was refused: what the client was told, in the operator's log too.
        ...(result.status >= 400 && typeof result.body.error === 'string'
          ? { reason: result.body.error }
          : {}),
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
  return server;
};

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
