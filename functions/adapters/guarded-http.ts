import * as dns from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import { PromoterError } from '../core/errors.ts';
import { type AddressPolicy, refuseConnection } from '../core/http.ts';

/*
 * HTTP agents that apply the core's address rule (`refuseConnection`, DESIGN.md section 14) to
 * every connection they open, at connect time: a DNS name is resolved by the agent's own
 * `lookup` and only its allowed addresses are connected to, and an IP literal is checked before
 * connecting. A check before the request instead would let a name that rebinds between the check
 * and the connection through. Used by the git transport and by Octokit, both through
 * `guardedFetch` (the global `fetch` takes no agent).
 */

export interface GuardedAgentsOptions {
  /** Told of each refused connection (for logs and tests). */
  readonly onRefused?: (refusal: PromoterError) => void;
}

export interface GuardedAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
  readonly policy: AddressPolicy;
}

type Protocol = 'http:' | 'https:';
type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

const refusal = (host: string, reason: string): PromoterError =>
  new PromoterError('HOST_REFUSED', `connection to ${host} refused: ${reason}`, {
    data: { host },
  });

/** `net.connect`'s lookup: the name resolved, then only the addresses the policy allows. */
const guardedLookup =
  (policy: AddressPolicy, protocol: Protocol, onRefused: (error: PromoterError) => void) =>
  (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) {
        callback(error, []);
        return;
      }
      let refused: string | undefined;
      const allowed = addresses.filter((entry) => {
        const reason = refuseConnection(hostname, entry.address, policy, protocol);
        refused ??= reason;
        return reason === undefined;
      });
      const [first] = allowed;
      if (first === undefined) {
        const failure = refusal(hostname, refused ?? `${hostname} has no address`);
        onRefused(failure);
        callback(failure as unknown as NodeJS.ErrnoException, []);
        return;
      }
      if (options.all === true) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };

/** A socket that fails at once with `error` (what an agent hands out for a refused literal). */
const failedSocket = (error: Error): Duplex => {
  const socket = new net.Socket();
  process.nextTick(() => socket.destroy(error));
  return socket;
};

/** The refusal for an IP literal host (net.connect does not call `lookup` for those). */
const literalRefusal = (
  host: string | null | undefined,
  policy: AddressPolicy,
  protocol: Protocol,
): PromoterError | undefined => {
  const name = host ?? 'localhost';
  const literal = name.replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(literal) === 0) return undefined;
  const reason = refuseConnection(name, literal, policy, protocol);
  return reason === undefined ? undefined : refusal(name, reason);
};

class GuardedHttpAgent extends http.Agent {
  constructor(
    private readonly policy: AddressPolicy,
    private readonly onRefused: (error: PromoterError) => void,
  ) {
    super({ keepAlive: true, lookup: guardedLookup(policy, 'http:', onRefused) });
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const refused = literalRefusal(options.host, this.policy, 'http:');
    if (refused !== undefined) {
      this.onRefused(refused);
      return failedSocket(refused);
    }
    return super.createConnection(options, callback);
  }
}

class GuardedHttpsAgent extends https.Agent {
  constructor(
    private readonly policy: AddressPolicy,
    private readonly onRefused: (error: PromoterError) => void,
  ) {
    super({ keepAlive: true, lookup: guardedLookup(policy, 'https:', onRefused) });
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const refused = literalRefusal(options.host, this.policy, 'https:');
    if (refused !== undefined) {
      this.onRefused(refused);
      return failedSocket(refused);
    }
    return super.createConnection(options, callback);
  }
}

/** An http and an https agent (keep-alive) that connect only where `policy` allows. */
export const createGuardedAgents = (
  policy: AddressPolicy,
  options: GuardedAgentsOptions = {},
): GuardedAgents => {
  const onRefused = options.onRefused ?? (() => undefined);
  return {
    http: new GuardedHttpAgent(policy, onRefused),
    https: new GuardedHttpsAgent(policy, onRefused),
    policy,
  };
};

/** The agent for a URL's scheme; undefined for any other scheme. */
export const agentFor = (agents: GuardedAgents, url: string): http.Agent | undefined => {
  const protocol = new URL(url).protocol;
  return protocol === 'https:' ? agents.https : protocol === 'http:' ? agents.http : undefined;
};

/** A PromoterError HOST_REFUSED inside what a client library wrapped it in, if any. */
export const refusedConnection = (error: unknown): PromoterError | undefined => {
  for (let current = error, depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof PromoterError && current.code === 'HOST_REFUSED') return current;
    current = (current as { cause?: unknown } | null)?.cause;
  }
  return undefined;
};

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that carry a credential: dropped on a redirect to another origin. */
const CREDENTIAL_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'private-token',
  'job-token',
] as const;

const MAX_REDIRECTS = 10;
const NULL_BODY = new Set([204, 205, 304]);

const requestBody = async (body: RequestInit['body']): Promise<Buffer | undefined> => {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.length);
  return Buffer.from(await new Response(body).arrayBuffer());
};

interface Sent {
  readonly response: http.IncomingMessage;
  readonly url: URL;
}

const send = (
  agents: GuardedAgents,
  url: URL,
  method: string,
  headers: Headers,
  body: Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<Sent> =>
  new Promise((resolve, reject) => {
    const agent = agentFor(agents, url.href);
    if (agent === undefined) {
      reject(new TypeError(`fetch: unsupported scheme ${url.protocol}`));
      return;
    }
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const outgoing: Record<string, string> = Object.fromEntries(headers);
    if (body !== undefined) outgoing['content-length'] = String(body.length);
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method,
      headers: outgoing,
      agent,
      ...(signal === undefined ? {} : { signal }),
    });
    request.once('response', (response) => resolve({ response, url }));
    request.once('error', (error) => reject(signal?.aborted === true ? signal.reason : error));
    request.end(body);
  });

/**
 * A `fetch` for Octokit over the guarded agents: what Octokit uses of it (method, headers,
 * string bodies, `signal`, `redirect`), redirects followed like fetch does (Authorization dropped
 * when the origin changes), every hop through the agents. Bodies are not decompressed: no
 * `Accept-Encoding` is sent.
 */
export const guardedFetch =
  (agents: GuardedAgents) =>
  async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    let url = new URL(
      typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
    );
    let method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    let body = await requestBody(init.body);
    const signal = init.signal ?? undefined;
    for (let redirects = 0; ; redirects++) {
      const sent = await send(agents, url, method, headers, body, signal);
      const { response } = sent;
      const status = response.statusCode ?? 500;
      const location = response.headers.location;
      if (REDIRECTS.has(status) && location !== undefined && init.redirect !== 'manual') {
        response.resume();
        if (init.redirect === 'error') throw new TypeError(`fetch: redirected to ${location}`);
        if (redirects >= MAX_REDIRECTS) throw new TypeError('fetch: too many redirects');
        const next = new URL(location, url);
        if (next.origin !== url.origin) {
          // Every credential stays with its origin: fetch's own rule, plus GitLab's token headers.
          for (const name of CREDENTIAL_HEADERS) headers.delete(name);
        }
        if ((status === 303 && method !== 'HEAD') || (status <= 302 && method === 'POST')) {
          method = 'GET';
          body = undefined;
          headers.delete('content-type');
        }
        url = next;
        continue;
      }
      const responseHeaders = new Headers();
      for (const [name, value] of Object.entries(response.headers)) {
        for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
          responseHeaders.append(name, item);
        }
      }
      const empty = method === 'HEAD' || NULL_BODY.has(status);
      if (empty) response.resume();
      const answer = new Response(
        empty ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>),
        { status, statusText: response.statusMessage ?? '', headers: responseHeaders },
      );
      Object.defineProperty(answer, 'url', { value: url.href });
      return answer;
    }
  };
