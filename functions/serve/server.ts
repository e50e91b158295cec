import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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
}

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
  createServer(async (request, response) => {
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
