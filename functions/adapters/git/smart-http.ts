import { setTimeout as sleep } from 'node:timers/promises';
import { GitRemoteHTTP } from 'isomorphic-git/managers';
import { PromoterError } from '../../core/errors.ts';
import type { GitCredentials } from '../../core/ports.ts';
import {
  type ErrorContext,
  httpStatus,
  isTransientRead,
  isTransientStatus,
  LimitError,
  mebibytes,
  noteRetryAfter,
  ProtocolError,
  parseRetryAfter,
  RaceError,
  TruncatedError,
} from './errors.ts';
import { GIT_LIMIT_DEFAULTS } from './limits.ts';
import { type GitObject, type PackLimits, writePack } from './pack.ts';
import type { PackParser } from './pack-parser.ts';
import { collect, FLUSH, packets, pkt, readUntilFlush } from './pkt-line.ts';
import type { RepositoryCache } from './repository-cache.ts';

/**
 * The two git smart-HTTP services as a promotion uses them, over isomorphic-git's transport
 * (`GitRemoteHTTP`: ref discovery, requests, `onAuth`): one `git-upload-pack` request for a head
 * (depth 1 at first, then a thin pack of what is new) and one `git-receive-pack` request that
 * force-updates a branch. The requests are written here rather than left to isomorphic-git's
 * fetch and push because its fetch + readBlob path took 7.6 s at 6,000 files against 0.5 s for a
 * git CLI clone, and its push lists the objects of the whole tree twice (README.md "Benchmarks").
 *
 * The reads (both `info/refs` advertisements and the `git-upload-pack` request) are idempotent
 * and are tried again in process after a 5xx, 408, 429 or a dropped connection (`ReadRetry`).
 * The `git-receive-pack` request never is: whether a push that lost its answer landed is only
 * known from the refs, which the promotion loop reads again, and the queue retries the rest.
 */

/** isomorphic-git's HTTP client interface. */
export type GitHttpClient = Parameters<typeof GitRemoteHTTP.discover>[0]['http'];

const ZERO_OID = '0000000000000000000000000000000000000000';
const AGENT = 'agent=pipeline-promoter';

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
  readonly url: string;
  readonly http: GitHttpClient;
  readonly credentials: GitCredentials;
  /** Default `DEFAULT_READ_RETRY`. */
  readonly readRetry?: ReadRetry;
  /** Ends the waits between retries (the promotion's time budget). */
  readonly signal?: AbortSignal;
}

export const DEFAULT_MAX_PACK_BYTES = GIT_LIMIT_DEFAULTS.maxPackBytes;

/** How a fetch reads its pack. */
export interface FetchOptions {
  /** The most bytes one `git-upload-pack` answer may have, the first fetch's included. */
  readonly maxPackBytes: number;
  readonly limits: PackLimits;
  readonly parser: PackParser;
}

type GitHttpResponse = Awaited<ReturnType<GitHttpClient['request']>>;

/**
 * Runs `read` (one idempotent request, its answer read to the end) until it succeeds, fails for a
 * reason that is not transient, or the retries are spent; then the last error is thrown as it was.
 * A `Retry-After` within the longest backoff is waited for; a longer one ends the retries at once
 * and goes with the error (for the queue to wait that long).
 */
const retryingRead = async <T>(
  remote: Remote,
  read: (http: GitHttpClient) => Promise<T>,
): Promise<T> => {
  const policy = remote.readRetry ?? DEFAULT_READ_RETRY;
  const longestMs = policy.baseDelayMs * LONGEST_STEP;
  for (let retry = 1; ; retry++) {
    // isomorphic-git's HttpError leaves out the headers: note those of the last answer.
    let last: GitHttpResponse | undefined;
    const http: GitHttpClient = {
      request: async (request) => {
        last = await remote.http.request(request);
        return last;
      },
    };
    try {
      return await read(http);
    } catch (error) {
      const status = httpStatus(error);
      const retryAfter = isTransientStatus(status)
        ? parseRetryAfter(last?.headers?.['retry-after'])
        : undefined;
      noteRetryAfter(error, retryAfter);
      if (retry > policy.retries || !isTransientRead(error)) throw error;
      const askedMs = (retryAfter ?? 0) * 1000;
      if (askedMs > longestMs) throw error;
      await sleep(
        Math.max(backoffMs(policy, retry), askedMs),
        undefined,
        remote.signal === undefined ? undefined : { signal: remote.signal },
      );
    }
  }
};

/** What `info/refs` answered: refs by name, capabilities, and the auth to reuse. */
export interface Advertisement {
  readonly refs: Map<string, string>;
  readonly capabilities: Set<string>;
  readonly auth: unknown;
}

/** Basic authorization with the remote's credentials, when there are any. */
const authHeaders = (remote: Remote): Record<string, string> => {
  const { username, password } = remote.credentials;
  return username === '' && password === ''
    ? {}
    : { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
};

/** The refs and capabilities a service advertises (`info/refs`). */
export const discover = async (
  remote: Remote,
  service: 'git-upload-pack' | 'git-receive-pack',
): Promise<Advertisement> => {
  const { username, password } = remote.credentials;
  const hasCredentials = username !== '' || password !== '';
  return retryingRead(remote, async (http) => {
    // Credentials go with the first request (no 401 round trip); `onAuth` answers a challenge
    // with the same credentials once, and a second refusal cancels. isomorphic-git writes into
    // `headers`: a fresh object per try.
    const headers = authHeaders(remote);
    let offered = false;
    const result = (await GitRemoteHTTP.discover({
      http,
      service,
      url: remote.url,
      headers,
      protocolVersion: 1,
      onAuth: () => {
        if (!hasCredentials || offered) return { cancel: true };
        offered = true;
        return { username, password };
      },
      onAuthFailure: () => ({ cancel: true }),
    })) as { refs: Map<string, string>; capabilities: Set<string>; auth: unknown };
    return { refs: result.refs, capabilities: result.capabilities, auth: result.auth };
  });
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

interface UploadAnswer {
  readonly pack: Buffer;
  readonly shallow: readonly string[];
  readonly unshallow: readonly string[];
}

/**
 * The pack and shallow updates of a `git-upload-pack` answer. The server's refusal (`ERR`, or
 * band 3) ends the answer without a flush; any other answer without its closing flush was cut
 * short (a TruncatedError, so that the fetch is made again).
 */
const readUploadAnswer = (raw: Buffer): UploadAnswer => {
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

/**
 * Fetches `head`. A first fetch asks for depth 1 (the head's tree only). Later ones name the
 * heads the cache holds (`have`, and the depth-1 boundary as `shallow`) without deepening
 * again: the server then sends the commits since those heads and their new objects, and skips
 * its costly shallow computation (100 ms at 60,000 files). Should that answer grow past the
 * size of a fresh copy (history rewritten, no common commit), it is dropped for a depth-1
 * fetch. The pack goes into `cache`, with the heads and shallow commits it now holds. An
 * answer over `maxPackBytes` is refused (LimitError) once it passes the limit.
 */
export const fetchHead = async (
  cache: RepositoryCache,
  remote: Remote,
  advertisement: Advertisement,
  head: string,
  mode: 'incremental' | 'depth-1' | 'fresh',
  options: FetchOptions,
): Promise<void> => {
  const names = new Set(
    [...advertisement.capabilities].map((capability) => capability.split('=')[0]),
  );
  const wanted = ['side-band-64k', 'ofs-delta', 'thin-pack', 'no-progress', AGENT].filter(
    (capability) => names.has(capability.split('=')[0]),
  );
  if (!names.has('side-band-64k') && names.has('side-band')) wanted.push('side-band');
  const shallowSupported = names.has('shallow');
  const incremental = mode === 'incremental' && cache.heads.length > 0;
  const haves = mode === 'fresh' ? [] : cache.heads.slice(-16).reverse();
  const body: Buffer[] = [pkt(`want ${head} ${wanted.join(' ')}\n`)];
  if (shallowSupported) {
    for (const oid of cache.shallow) body.push(pkt(`shallow ${oid}\n`));
    if (!incremental) body.push(pkt('deepen 1\n'));
  }
  body.push(FLUSH);
  for (const oid of haves) body.push(pkt(`have ${oid}\n`));
  body.push(pkt('done\n'));

  const request = Buffer.concat(body);
  const limit = incremental
    ? Math.min(options.maxPackBytes, Math.max(64 * 1024 * 1024, 2 * cache.store.bytes()))
    : options.maxPackBytes;
  const answer = await retryingRead(remote, async (http) => {
    const response = await GitRemoteHTTP.connect({
      http,
      service: 'git-upload-pack',
      url: remote.url,
      auth: advertisement.auth,
      headers: authHeaders(remote),
      body: [request],
    });
    const raw = await collect(response.body, limit);
    return raw === undefined ? undefined : readUploadAnswer(raw);
  });
  if (answer === undefined) {
    if (!incremental) {
      throw new LimitError(
        'maxPackBytes',
        `the git server sent more than ${mebibytes(options.maxPackBytes)} for one fetch, the limit on pack bytes`,
      );
    }
    await fetchHead(cache, remote, advertisement, head, 'depth-1', options);
    return;
  }
  const shallow = new Set(cache.shallow);
  for (const oid of answer.shallow) shallow.add(oid);
  for (const oid of answer.unshallow) shallow.delete(oid);
  await cache.addPack(answer.pack, options.parser, options.limits);
  cache.shallow = [...shallow];
  cache.heads = [...cache.heads.filter((oid) => oid !== head), head].slice(-16);
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
  const response = await GitRemoteHTTP.connect({
    http: remote.http,
    service: 'git-receive-pack',
    url: remote.url,
    auth: advertisement.auth,
    headers: authHeaders(remote),
    body: [body],
  });
  // The report ends with a flush packet: the ref is updated by then, and whatever the server
  // still does (hooks, `gc --auto`) is not waited for.
  const raw = await readUntilFlush(response.body);
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
