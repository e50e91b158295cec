import { setTimeout as sleep } from 'node:timers/promises';
import { PromoterError } from '../../core/errors.ts';
import type { GitCredentials } from '../../core/ports.ts';
import {
  CredentialsRefusedError,
  type ErrorContext,
  HttpStatusError,
  isTransientRead,
  isTransientStatus,
  LimitError,
  mebibytes,
  NotSmartHttpError,
  ProtocolError,
  parseRetryAfter,
  RaceError,
  safeUrl,
  TruncatedError,
} from './errors.ts';
import { GIT_LIMIT_DEFAULTS } from './limits.ts';
import { type GitObject, writePack } from './pack.ts';
import { collect, FLUSH, packets, pkt, readUntilFlush } from './pkt-line.ts';

/*
 * Git's smart-HTTP protocol (v0/v1, the `git-upload-pack` and `git-receive-pack` services) as a
 * promotion uses it, over a WHATWG `fetch`: the ref advertisements (`GET info/refs`), one
 * `git-upload-pack` request for a head, one `git-receive-pack` request that force-updates a
 * branch. Each function returns what the server said; what to keep is the caller's business.
 * Redirects are followed here (same scheme only), credentials go with the first request.
 *
 * The reads (both advertisements and the `git-upload-pack` request) are idempotent and are tried
 * again in process after a 5xx, 408, 429 or a dropped connection (`ReadRetry`). The
 * `git-receive-pack` request never is: whether a push that lost its answer landed is only known
 * from the refs, which the promotion loop reads again, and the queue retries the rest.
 */

/** The fetch git requests go through (the WHATWG signature; `redirect: 'manual'` is honoured). */
export type GitFetch = (url: string, init: RequestInit) => Promise<Response>;

const ZERO_OID = '0000000000000000000000000000000000000000';
const AGENT = 'agent=pipeline-promoter';
const USER_AGENT = 'git/pipeline-promoter';
const MAX_REDIRECTS = 10;
/** What is read of an answer that is thrown away (an error page, a redirect's body). */
const DISCARDED_BYTES = 64 * 1024;

/** Push rejections that mean the ref moved under the push: the attempt starts again. */
const RACE =
  /stale info|failed to lock|cannot lock|failed to update|fetch first|non-fast-forward|reference already exists|incorrect old value/i;

/** How idempotent reads are tried again in process after a transient failure. */
export interface ReadRetry {
  /** Tries after the first one. */
  readonly retries: number;
  /** The first wait in milliseconds; later waits are 4x and then 8x it. */
  readonly baseDelayMs: number;
}

/** 3 retries, after 250 ms, 1 s and 2 s: a blip is bridged, an outage goes to the queue. */
export const DEFAULT_READ_RETRY: ReadRetry = { retries: 3, baseDelayMs: 250 };

const BACKOFF_STEPS = [1, 4, 8];
const LONGEST_STEP = 8;

/** The wait before retry `retry` (1 for the first). */
const backoffMs = (policy: ReadRetry, retry: number): number =>
  policy.baseDelayMs * (BACKOFF_STEPS[retry - 1] ?? LONGEST_STEP);

/** A repository to talk to, and how. */
export interface Remote {
  /** The clone URL; credentials written into it are used before `credentials`. */
  readonly url: string;
  readonly fetch: GitFetch;
  readonly credentials: GitCredentials;
  /** Default `DEFAULT_READ_RETRY`. */
  readonly readRetry?: ReadRetry;
  /** Ends the requests and the waits between retries (the promotion's time budget). */
  readonly signal?: AbortSignal;
}

export const DEFAULT_MAX_PACK_BYTES = GIT_LIMIT_DEFAULTS.maxPackBytes;

/**
 * Runs `read` (one idempotent request, its answer read to the end) until it succeeds, fails for a
 * reason that is not transient, or the retries are spent; then the last error is thrown as it was.
 * A `Retry-After` within the longest backoff is waited for; a longer one ends the retries at once
 * and goes with the error (for the queue to wait that long).
 */
const retryingRead = async <T>(remote: Remote, read: () => Promise<T>): Promise<T> => {
  const policy = remote.readRetry ?? DEFAULT_READ_RETRY;
  const longestMs = policy.baseDelayMs * LONGEST_STEP;
  for (let retry = 1; ; retry++) {
    try {
      return await read();
    } catch (error) {
      if (retry > policy.retries || !isTransientRead(error)) throw error;
      const askedMs =
        (error instanceof HttpStatusError ? (error.retryAfterSeconds ?? 0) : 0) * 1000;
      if (askedMs > longestMs) throw error;
      await sleep(
        Math.max(backoffMs(policy, retry), askedMs),
        undefined,
        remote.signal === undefined ? undefined : { signal: remote.signal },
      );
    }
  }
};

/** What `info/refs` answered: refs by name, capabilities, and the credentials that worked. */
export interface Advertisement {
  readonly refs: Map<string, string>;
  readonly capabilities: Set<string>;
  /** The `Authorization` header the later requests of this conversation send. */
  readonly authorization: string | undefined;
}

const basic = (username: string, password: string): string =>
  `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;

/** The clone URL without user information, and the Basic authorization written into it. */
const splitUrl = (url: string): { base: string; authorization: string | undefined } => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new NotSmartHttpError(`not a URL: ${safeUrl(url)}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new NotSmartHttpError(`not an http(s) URL: ${safeUrl(url)}`);
  }
  const authorization =
    parsed.username === '' && parsed.password === ''
      ? undefined
      : basic(decodeURIComponent(parsed.username), decodeURIComponent(parsed.password));
  parsed.username = '';
  parsed.password = '';
  return { base: parsed.href.replace(/\/$/, ''), authorization };
};

/** Reads a little of an answer that is thrown away, then lets the connection go. */
const discard = async (response: Response): Promise<void> => {
  try {
    await collect(chunksOf(response.body), DISCARDED_BYTES);
  } catch {
    // Nothing in it was needed.
  }
};

/** A response body as an async iterable of chunks; `return()` cancels the stream. */
export async function* chunksOf(
  body: ReadableStream<Uint8Array> | null,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (body === null) return;
  const reader = body.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
  }
}

interface Sent {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

/**
 * One request, redirects followed like git's curl does: at most 10, `Authorization` dropped when
 * the origin changes, a 303 (or a 301/302 to a POST) turned into a GET. A redirect to the other
 * scheme is refused (HOST_REFUSED): an https server cannot send the credentials over http.
 */
const send = async (remote: Remote, first: Sent): Promise<Response> => {
  let request = first;
  for (let redirects = 0; ; redirects++) {
    const response = await remote.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      redirect: 'manual',
      ...(request.body === undefined ? {} : { body: request.body }),
      ...(remote.signal === undefined ? {} : { signal: remote.signal }),
    });
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || location === null) return response;
    await discard(response);
    if (redirects >= MAX_REDIRECTS) throw new ProtocolError('the git server redirected too often');
    const from = new URL(request.url);
    const to = new URL(location, from);
    if (to.protocol !== from.protocol) {
      throw new PromoterError(
        'HOST_REFUSED',
        `the git server at ${safeUrl(request.url)} redirected to another scheme, which is refused`,
        { data: { url: safeUrl(request.url) } },
      );
    }
    const headers = { ...request.headers };
    if (to.origin !== from.origin) delete headers.Authorization;
    const toGet = response.status === 303 || (response.status <= 302 && request.method === 'POST');
    if (toGet) delete headers['Content-Type'];
    request = toGet
      ? { method: 'GET', url: to.href, headers }
      : { ...request, url: to.href, headers };
  }
};

/** The error for an answer other than 200: its status, and the wait it asked for. */
const statusError = async (response: Response, url: string): Promise<HttpStatusError> => {
  const retryAfter = isTransientStatus(response.status)
    ? parseRetryAfter(response.headers.get('retry-after') ?? undefined)
    : undefined;
  await discard(response);
  return new HttpStatusError(response.status, safeUrl(url), retryAfter);
};

/**
 * The refs and capabilities of a v0/v1 ref advertisement (`# service=` line, flush, optionally
 * `version 1`, then `oid name` lines, the first with `\0` and the capabilities). Peeled tags
 * (`^{}`) and `shallow` lines are left out; an empty repository advertises no refs.
 */
export const parseAdvertisement = (
  raw: Buffer,
  service: string,
): { refs: Map<string, string>; capabilities: Set<string> } => {
  const lines: string[] = [];
  for (const packet of packets(raw)) {
    if (packet !== null) lines.push(packet.toString('utf8').replace(/\n$/, ''));
  }
  const refs = new Map<string, string>();
  const capabilities = new Set<string>();
  const [first, ...rest] = lines;
  if (first !== `# service=${service}`) {
    throw new ProtocolError(`the ref advertisement does not start with # service=${service}`);
  }
  const entries = rest[0] === 'version 1' ? rest.slice(1) : rest;
  if (entries[0]?.startsWith('version ') === true) {
    throw new ProtocolError(`the git server answered with protocol ${entries[0]}`);
  }
  for (const [index, line] of entries.entries()) {
    let text = line;
    if (index === 0) {
      const nul = line.indexOf('\0');
      if (nul < 0) throw new ProtocolError('the ref advertisement has no capabilities');
      for (const capability of line.slice(nul + 1).split(' ')) {
        if (capability !== '') capabilities.add(capability);
      }
      text = line.slice(0, nul);
    }
    if (text.startsWith('shallow ')) continue;
    const match = /^([0-9a-f]{40}) (\S+)$/.exec(text);
    if (match === null) throw new ProtocolError(`malformed ref advertisement line: ${text}`);
    const [, oid, name] = match as unknown as [string, string, string];
    if (name === 'capabilities^{}' || name.endsWith('^{}')) continue;
    refs.set(name, oid);
  }
  return { refs, capabilities };
};

/**
 * The refs and capabilities a service advertises (`info/refs`). Credentials go with the first
 * request (no 401 round trip); a challenge (401, or Azure DevOps' 203 sign-in page) is answered
 * once with `credentials`, and a second one is a CredentialsRefusedError. An answer over
 * `maxBytes` is refused (LimitError maxPackBytes).
 */
export const discover = async (
  remote: Remote,
  service: 'git-upload-pack' | 'git-receive-pack',
  maxBytes: number = DEFAULT_MAX_PACK_BYTES,
): Promise<Advertisement> => {
  const { base, authorization: fromUrl } = splitUrl(remote.url);
  const { username, password } = remote.credentials;
  const given = username === '' && password === '' ? undefined : basic(username, password);
  const url = `${base}/info/refs?service=${service}`;
  return retryingRead(remote, async () => {
    let authorization = fromUrl ?? given;
    let answered = false;
    for (;;) {
      const response = await send(remote, {
        method: 'GET',
        url,
        headers: {
          'User-Agent': USER_AGENT,
          ...(authorization === undefined ? {} : { Authorization: authorization }),
        },
      });
      if (response.status === 401 || response.status === 203) {
        await discard(response);
        if (given === undefined || answered) {
          throw new CredentialsRefusedError(`credentials refused by ${safeUrl(url)}`);
        }
        answered = true;
        authorization = given;
        continue;
      }
      if (response.status !== 200) throw await statusError(response, url);
      const raw = await collect(chunksOf(response.body), maxBytes);
      if (raw === undefined) {
        throw new LimitError(
          'maxPackBytes',
          `the git server sent more than ${mebibytes(maxBytes)} of ref advertisement, the limit on pack bytes`,
        );
      }
      const smart =
        response.headers.get('content-type') === `application/x-${service}-advertisement`;
      try {
        return { ...parseAdvertisement(raw, service), authorization };
      } catch (error) {
        // No smart-HTTP content type and no advertisement: a web page or a dumb server.
        if (!smart) throw new NotSmartHttpError(`no git smart-HTTP service at ${safeUrl(url)}`);
        throw error;
      }
    }
  });
};

/** A POST to a service of the repository, with the advertisement's credentials. */
const post = async (
  remote: Remote,
  advertisement: Advertisement,
  service: 'git-upload-pack' | 'git-receive-pack',
  body: Buffer,
): Promise<Response> => {
  const url = `${splitUrl(remote.url).base}/${service}`;
  const response = await send(remote, {
    method: 'POST',
    url,
    headers: {
      'User-Agent': USER_AGENT,
      'Content-Type': `application/x-${service}-request`,
      Accept: `application/x-${service}-result`,
      ...(advertisement.authorization === undefined
        ? {}
        : { Authorization: advertisement.authorization }),
    },
    body,
  });
  if (response.status !== 200) throw await statusError(response, url);
  return response;
};

/** A refused fetch: a race when the head is gone (the base moved), else a protocol error. */
const uploadError = (message: string): Error =>
  /not our ref|no such|not valid|unadvertised/i.test(message)
    ? new RaceError(message)
    : new ProtocolError(`the git server refused the fetch: ${message}`);

/** Whether a pkt-line answer ends with a flush packet: else the connection was cut. */
const endsWithFlush = (raw: Buffer): boolean => {
  let position = 0;
  let flushed = false;
  while (position + 4 <= raw.length) {
    const length = Number.parseInt(raw.toString('latin1', position, position + 4), 16);
    // Not pkt-lines at all: the parse says what is wrong.
    if (Number.isNaN(length)) return true;
    flushed = length < 4;
    position += Math.max(length, 4);
  }
  return flushed && position === raw.length;
};

/** What a `git-upload-pack` answer holds: the pack, and the shallow boundary's changes. */
export interface UploadAnswer {
  readonly pack: Buffer;
  readonly shallow: readonly string[];
  readonly unshallow: readonly string[];
}

/**
 * The pack and shallow updates of a `git-upload-pack` answer. The server's refusal (`ERR`, or
 * band 3) ends the answer without a flush; any other answer without its closing flush was cut
 * short (a TruncatedError, so that the fetch is made again).
 */
export const readUploadAnswer = (raw: Buffer): UploadAnswer => {
  const whole = endsWithFlush(raw);
  const pack: Buffer[] = [];
  const shallow: string[] = [];
  const unshallow: string[] = [];
  let refusal: Error | undefined;
  let sideband = false;
  try {
    for (const packet of packets(raw)) {
      if (packet === null || packet.length === 0) continue;
      const band = packet[0] ?? 0;
      if (sideband || band === 1 || band === 2 || band === 3) {
        sideband = true;
        if (band === 1) pack.push(packet.subarray(1));
        else if (band === 3) refusal = uploadError(packet.toString('utf8', 1).trim());
      } else {
        const line = packet.toString('utf8').trimEnd();
        if (line.startsWith('shallow ')) shallow.push(line.slice(8));
        else if (line.startsWith('unshallow ')) unshallow.push(line.slice(10));
        else if (line.startsWith('ERR ')) refusal = uploadError(line.slice(4));
      }
      if (refusal !== undefined) break;
    }
  } catch (error) {
    if (whole || refusal !== undefined) throw error;
  }
  if (refusal !== undefined) throw refusal;
  if (!whole) throw new TruncatedError('the fetch answer of the git server was cut short');
  return { pack: Buffer.concat(pack), shallow, unshallow };
};

/** What one `git-upload-pack` request asks for. */
export interface PackRequest {
  readonly want: string;
  /** Commits the client holds, newest first (`have`). */
  readonly haves: readonly string[];
  /** Commits the client holds without their parents (`shallow`). */
  readonly shallow: readonly string[];
  /** Ask for the wanted commit alone (`deepen 1`). */
  readonly depthOne: boolean;
  /** The most bytes the answer may have. */
  readonly maxBytes: number;
}

/**
 * One `git-upload-pack` request: `want` with the capabilities both sides have (side band, ofs
 * deltas, thin packs, no progress), the shallow boundary and `deepen 1` when the server supports
 * shallow fetches, the `have` lines, `done`. Undefined when the answer passed `maxBytes` (the
 * download is stopped there).
 */
export const requestPack = async (
  remote: Remote,
  advertisement: Advertisement,
  request: PackRequest,
): Promise<UploadAnswer | undefined> => {
  const names = new Set(
    [...advertisement.capabilities].map((capability) => capability.split('=')[0]),
  );
  const wanted = ['side-band-64k', 'ofs-delta', 'thin-pack', 'no-progress', AGENT].filter(
    (capability) => names.has(capability.split('=')[0]),
  );
  if (!names.has('side-band-64k') && names.has('side-band')) wanted.push('side-band');
  const body: Buffer[] = [pkt(`want ${request.want} ${wanted.join(' ')}\n`)];
  if (names.has('shallow')) {
    for (const oid of request.shallow) body.push(pkt(`shallow ${oid}\n`));
    if (request.depthOne) body.push(pkt('deepen 1\n'));
  }
  body.push(FLUSH);
  for (const oid of request.haves) body.push(pkt(`have ${oid}\n`));
  body.push(pkt('done\n'));
  const sent = Buffer.concat(body);
  return retryingRead(remote, async () => {
    const response = await post(remote, advertisement, 'git-upload-pack', sent);
    const raw = await collect(chunksOf(response.body), request.maxBytes);
    return raw === undefined ? undefined : readUploadAnswer(raw);
  });
};

/**
 * Force-updates `ref` to `commit`, sending only the new objects (`receiveCapabilities`: what
 * the receive-pack advertisement offered). A rejection that means the base moved is a RaceError.
 */
export const pushCommit = async (
  remote: Remote,
  advertisement: Advertisement,
  receiveCapabilities: ReadonlySet<string> | undefined,
  ref: string,
  commit: string,
  objects: readonly GitObject[],
  context: ErrorContext,
): Promise<void> => {
  const old = advertisement.refs.get(ref) ?? ZERO_OID;
  const offered = new Set(
    [...(receiveCapabilities ?? [])].map((capability) => capability.split('=')[0]),
  );
  const capabilities = ['report-status', AGENT].filter((capability) =>
    offered.has(capability.split('=')[0]),
  );
  const body = Buffer.concat([
    pkt(`${old} ${commit} ${ref}\0${capabilities.join(' ')}\n`),
    FLUSH,
    writePack(objects),
  ]);
  const response = await post(remote, advertisement, 'git-receive-pack', body);
  // The report ends with a flush packet: the ref is updated by then, and whatever the server
  // still does (hooks, `gc --auto`) is not waited for.
  const raw = await readUntilFlush(chunksOf(response.body));
  if (!capabilities.includes('report-status')) return;
  const lines: string[] = [];
  for (const packet of packets(raw)) {
    if (packet !== null) lines.push(packet.toString('utf8').trimEnd());
  }
  const unpack = lines.find((line) => line.startsWith('unpack '));
  if (unpack !== 'unpack ok') {
    throw new PromoterError(
      'GIT_PUSH_REJECTED',
      `push of branch ${context.branch} to ${context.url} failed: ${unpack ?? 'no report'}`,
      { retryable: true, data: { url: context.url, branch: context.branch } },
    );
  }
  const status = lines.find((line) => line.endsWith(` ${ref}`) || line.includes(` ${ref} `));
  if (status?.startsWith('ok ')) return;
  const reason = status?.slice(`ng ${ref} `.length) ?? 'no status';
  if (RACE.test(reason)) throw new RaceError(reason);
  throw new PromoterError(
    'GIT_PUSH_REJECTED',
    `push of branch ${context.branch} to ${context.url} was rejected: ${reason}`,
    { data: { url: context.url, branch: context.branch, reason } },
  );
};
