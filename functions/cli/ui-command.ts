import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { PIPELINES_API_ROUTES } from '../core/pipelines-api.ts';
import { readBody } from '../serve/http-body.ts';
import {
  MAX_CONTROL_BODY_BYTES,
  refuseCrossSiteRequest,
  refuseNonLoopbackHost,
} from '../serve/status-page/control-guard.ts';
import { answerStatusPage, type StatusPageSource } from '../serve/status-page/status-page.ts';
import {
  type ApiRequest,
  apiUrl,
  isLoopbackUrl,
  sendApiRequest,
  signingRegion,
} from './aws-signed-client.ts';
import { portNumber } from './command-line.ts';

export const UI_USAGE = `promoter ui --api URL [--port 8001] [--region REGION]
  Serves the status page of the AWS API at http://127.0.0.1:PORT/ (loopback only), as kubectl
  proxy does for a cluster: the page's reads and its approve and freeze requests go to URL signed
  with your AWS credentials (SigV4, service execute-api, the default credential chain), so you
  host nothing. Only the page's routes are forwarded. A loopback URL (promoter serve) is sent
  unsigned unless --region is given.
  REGION     --region, else the region of an execute-api host name, else AWS_REGION.
  Ctrl-C stops it.`;

export const DEFAULT_UI_PORT = 8001;

/** The routes the page calls, and so the only ones forwarded (with their methods). */
/** The status page's routes: the pipelines API's, but the sync. */
const FORWARDED = PIPELINES_API_ROUTES.filter((route) => route.method !== 'PUT');

export interface UiServerSettings {
  /** The API's base URL (the stack's `ApiUrl` output). */
  readonly api: string;
  /** The region to sign for; undefined: unsigned (a loopback `promoter serve`). */
  readonly region: string | undefined;
}

const sendJson = (response: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  response.end(text);
};

/** Reads the API for the page: signed GETs, one attempt each (the page polls again). */
const apiSource = (settings: UiServerSettings): StatusPageSource => ({
  read: async (path) => {
    const response = await sendApiRequest({
      method: 'GET',
      url: apiUrl(settings.api, path),
      headers: { accept: 'application/json' },
      region: settings.region,
      attempts: 1,
    });
    try {
      return { status: response.status, body: JSON.parse(response.text) as unknown };
    } catch {
      return { status: response.status, body: { error: response.text.slice(0, 200) } };
    }
  },
});

const forward = async (
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
  method: ApiRequest['method'],
  settings: UiServerSettings,
): Promise<void> => {
  const { body, truncated } =
    method === 'POST'
      ? await readBody(request, MAX_CONTROL_BODY_BYTES)
      : { body: undefined, truncated: false };
  if (truncated) {
    sendJson(response, 413, { error: `body over ${MAX_CONTROL_BODY_BYTES} bytes` });
    return;
  }
  const target = apiUrl(settings.api, url.pathname);
  target.search = url.search;
  const contentType = request.headers['content-type'];
  const forwarded: ApiRequest = {
    method,
    url: target,
    headers: {
      accept: 'application/json',
      ...(contentType === undefined ? {} : { 'content-type': contentType }),
    },
    ...(body === undefined ? {} : { body }),
    region: settings.region,
    // An approval or a freeze is not sent twice; the page polls its reads again anyway.
    attempts: 1,
  };
  const answer = await sendApiRequest(forwarded);
  response.writeHead(answer.status, {
    'content-type': answer.contentType ?? 'application/json',
    'content-length': Buffer.byteLength(answer.text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(answer.text);
};

/** The page and the signing proxy of `promoter ui`. */
export const createUiServer = (settings: UiServerSettings): Server => {
  const source = apiSource(settings);
  const subtitle = `${new URL(settings.api).host}${settings.region === undefined ? '' : ` (signed for ${settings.region})`}`;
  return createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://ui.local');
    const method = request.method ?? 'GET';
    try {
      // It listens on loopback: a page whose Host is another name came through DNS rebinding.
      const badHost = refuseNonLoopbackHost(request.headers);
      if (badHost !== undefined) {
        sendJson(response, 403, { error: badHost });
        return;
      }
      const page = await answerStatusPage(method, url.pathname, source, {
        controls: true,
        subtitle,
      });
      if (page !== undefined) {
        response.writeHead(page.status, page.headers);
        response.end(method === 'HEAD' ? undefined : page.body);
        return;
      }
      const route = FORWARDED.find(
        (candidate) => candidate.method === method && candidate.path.test(url.pathname),
      );
      if (route === undefined) {
        sendJson(response, 404, {
          error: `promoter ui forwards only the status page's routes (GET /pipelines, GET /pipelines/{ns}/{name}, GET /freezes, POST .../approval, POST /freeze, POST /unfreeze), not ${method} ${url.pathname}`,
        });
        return;
      }
      const refused = refuseCrossSiteRequest(request.headers, true);
      if (refused !== undefined) {
        sendJson(response, 403, { error: refused });
        return;
      }
      await forward(request, response, url, route.method, settings);
    } catch (error) {
      if (response.headersSent) {
        response.end();
        return;
      }
      sendJson(response, 502, {
        error: `promoter ui could not reach the API: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  });
};

/** `promoter ui`: serves until Ctrl-C. */
export const uiCommand = async (argv: string[]): Promise<void> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      port: { type: 'string', default: String(DEFAULT_UI_PORT) },
      region: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) {
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  }
  if (values.api === undefined) {
    throw new Error('--api URL is required (the stack output ApiUrl)');
  }
  const probe = apiUrl(values.api, '/pipelines');
  const region =
    isLoopbackUrl(probe) && values.region === undefined
      ? undefined
      : signingRegion(probe, values.region);
  const port = portNumber(values.port);
  const server = createUiServer({ api: values.api, region });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  process.stdout.write(
    `promoter ui: http://127.0.0.1:${bound}/ shows ${values.api}${region === undefined ? ' (unsigned)' : `, signed for ${region}`}; Ctrl-C stops it\n`,
  );
  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
};
