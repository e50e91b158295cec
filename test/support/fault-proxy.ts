import {
  Agent,
  createServer,
  request as forward,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A loopback HTTP proxy for tests that puts faults between a client and a real server: requests
 * go through unchanged to `target` unless a queued rule matches, and then the rule's fault
 * answers instead (or, with `after`, once the server has handled the request).
 *
 * @example
 * const proxy = await startFaultProxy(gitServer.url);
 * proxy.inject({ path: '/info/refs?service=git-upload-pack', fault: { kind: 'status', status: 503 } });
 * proxy.inject({ method: 'POST', path: /git-upload-pack$/, fault: { kind: 'drop', reset: true } });
 * // ...point the client at `${proxy.url}/...`, then:
 * expect(proxy.count({ path: '/git-upload-pack' })).toBe(2);
 */
export type ProxyFault =
  | {
      /** Answer `status` (with `headers` and `body`) without asking the server. */
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: string;
    }
  | {
      /**
       * Close the client's connection without an answer: a plain close (the client sees
       * "socket hang up"), or with `reset` a TCP RST (ECONNRESET). With `after`, the server
       * handles the request first (a push lands) and only its answer is lost.
       */
      readonly kind: 'drop';
      readonly reset?: boolean;
      readonly after?: boolean;
    }
  | {
      /**
       * Forward the request, send the answer's headers and `bytes` bytes of its body (default 0),
       * then cut the connection: the client sees the body aborted. With `clean`, the body is sent
       * close-delimited (no length, no chunks) and ends normally at the cut, so that only its
       * content can tell that something is missing.
       */
      readonly kind: 'truncate';
      readonly bytes?: number;
      readonly clean?: boolean;
    }
  | {
      /** Wait `ms` milliseconds, then forward the request. */
      readonly kind: 'delay';
      readonly ms: number;
    };

export interface ProxyRule {
  /** HTTP method to match (any when absent). */
  readonly method?: string;
  /**
   * Matched against the request target (path and query): a string matches when the target ends
   * with it (`/git-receive-pack`, `/info/refs?service=git-upload-pack`), a RegExp when it tests
   * true. Any request when absent.
   */
  readonly path?: string | RegExp;
  /** How many matching requests the fault answers (default 1). */
  readonly times?: number;
  readonly fault: ProxyFault;
}

export interface ProxiedRequest {
  readonly method: string;
  /** The request target: path and query. */
  readonly path: string;
  /** The status answered (0 when the connection was dropped before an answer). */
  readonly status: number;
  /** The fault that answered, if any. */
  readonly fault: ProxyFault['kind'] | undefined;
}

export interface FaultProxy {
  /** `http://127.0.0.1:{port}`: use it in place of the target's origin. */
  readonly url: string;
  /** Every request seen, in order of arrival (its status filled in when answered). */
  readonly requests: readonly ProxiedRequest[];
  /** Queues a fault; rules are tried in the order they were injected. */
  inject(rule: ProxyRule): void;
  /** How many fault answers are still queued. */
  pending(): number;
  /** Requests seen that match `filter` (same matching as a rule). */
  count(filter?: Pick<ProxyRule, 'method' | 'path'>): number;
  /** Forgets queued faults and recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

const matches = (
  filter: Pick<ProxyRule, 'method' | 'path'>,
  method: string,
  path: string,
): boolean => {
  if (filter.method !== undefined && filter.method.toUpperCase() !== method) return false;
  if (filter.path === undefined) return true;
  return typeof filter.path === 'string' ? path.endsWith(filter.path) : filter.path.test(path);
};

const readBody = async (request: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const drop = (response: ServerResponse, reset: boolean | undefined): void => {
  const socket = response.socket;
  if (socket === null) return;
  if (reset === true) socket.resetAndDestroy();
  else socket.destroy();
};

/** Starts a proxy on 127.0.0.1 in front of `target` (`http://host:port`). */
export const startFaultProxy = async (target: string): Promise<FaultProxy> => {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const rules: { rule: ProxyRule; remaining: number }[] = [];
  const requests: ProxiedRequest[] = [];

  const take = (method: string, path: string): ProxyFault | undefined => {
    const index = rules.findIndex(({ rule }) => matches(rule, method, path));
    if (index < 0) return undefined;
    const entry = rules[index] as { rule: ProxyRule; remaining: number };
    entry.remaining -= 1;
    if (entry.remaining <= 0) rules.splice(index, 1);
    return entry.rule.fault;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const method = (request.method ?? 'GET').toUpperCase();
    const path = request.url ?? '/';
    const fault = take(method, path);
    const index = requests.push({ method, path, status: 0, fault: fault?.kind }) - 1;
    const answered = (status: number): void => {
      requests[index] = { method, path, status, fault: fault?.kind };
    };
    // The whole body first: a fault answered while the client still writes would break its pipe.
    const body = await readBody(request);

    if (fault?.kind === 'status') {
      answered(fault.status);
      response.writeHead(fault.status, { 'content-type': 'text/plain', ...fault.headers });
      response.end(fault.body ?? `fault-proxy: ${fault.status}\n`);
      return;
    }
    if (fault?.kind === 'drop' && fault.after !== true) {
      drop(response, fault.reset);
      return;
    }
    if (fault?.kind === 'delay') await sleep(fault.ms);

    const headers = { ...request.headers, host: upstream.host };
    const proxied = forward({
      agent,
      hostname: upstream.hostname,
      port: upstream.port,
      method,
      path,
      headers,
    });
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      proxied.on('response', resolve);
      proxied.on('error', reject);
      proxied.end(body);
    });
    if (fault?.kind === 'drop') {
      // The server did the work; its answer is lost on the way back.
      await readBody(answer);
      drop(response, fault.reset);
      return;
    }
    answered(answer.statusCode ?? 502);
    if (fault?.kind !== 'truncate') {
      response.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
      answer.pipe(response);
      return;
    }
    const { clean } = fault;
    const kept = { ...answer.headers };
    if (clean === true) {
      delete kept['content-length'];
      delete kept['transfer-encoding'];
      kept.connection = 'close';
      response.useChunkedEncodingByDefault = false;
      response.shouldKeepAlive = false;
    }
    response.writeHead(answer.statusCode ?? 502, answer.statusMessage, kept);
    response.flushHeaders();
    let left = fault.bytes ?? 0;
    for await (const chunk of answer as AsyncIterable<Buffer>) {
      if (chunk.length >= left) {
        // Let the partial body leave before the connection goes.
        const part = chunk.subarray(0, left);
        await new Promise<void>((resolve) =>
          part.length > 0 ? response.write(part, () => resolve()) : setImmediate(resolve),
        );
        answer.destroy();
        if (clean === true) response.end();
        else drop(response, false);
        return;
      }
      response.write(chunk);
      left -= chunk.length;
    }
    response.end();
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(502, { 'content-type': 'text/plain' });
        response.end(`fault-proxy: ${String(error)}\n`);
      } else {
        response.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inject(rule) {
      rules.push({ rule, remaining: rule.times ?? 1 });
    },
    pending: () => rules.reduce((sum, entry) => sum + entry.remaining, 0),
    count: (filter = {}) =>
      requests.filter((request) => matches(filter, request.method, request.path)).length,
    reset() {
      rules.length = 0;
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
};
