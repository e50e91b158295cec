import { PromoterError } from '../../core/errors.ts';

/**
 * The git adapter's errors. ProtocolError (bad pack, unexpected answer: the cache is dropped) and
 * RaceError (the base moved: the attempt starts again) steer the promotion loop; HttpStatusError,
 * CredentialsRefusedError and NotSmartHttpError are what the transport answers with;
 * `isTransientRead` says which failures of an idempotent read smart-http tries again in process;
 * `toPromoterError` maps every failure to the port's PromoterError GIT_* codes, credentials kept
 * out of messages.
 */

/** What an error message names about a promotion. */
export interface ErrorContext {
  readonly url: string;
  readonly baseBranch: string;
  readonly branch: string;
  /** Secrets to scrub from the text of an underlying error. */
  readonly secrets: readonly string[];
}

/** A password written into a clone URL, as written and decoded. */
export const urlPasswords = (url: string): string[] => {
  try {
    const { password } = new URL(url);
    return password === '' ? [] : [password, decodeURIComponent(password)];
  } catch {
    return [];
  }
};

/** The text with each secret of 4 characters or more replaced by `***`. */
const scrub = (text: string, secrets: readonly string[]): string =>
  secrets.reduce(
    (scrubbed, secret) => (secret.length >= 4 ? scrubbed.split(secret).join('***') : scrubbed),
    text,
  );

/** The clone URL without user information (credentials never reach a message). */
export const safeUrl = (url: string): string => {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
};

/** A failure of the git protocol itself (bad pack, unexpected answer): retryable. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** The limits a hostile or broken git server meets (DESIGN.md section 14). */
export type GitLimit = 'maxPackBytes' | 'maxObjectBytes' | 'maxDeltaDepth' | 'promotionTimeout';

/** Where each limit is set: the stack's context key, the worker's variable, serve's flag. */
export const LIMIT_SETTINGS: Readonly<
  Record<GitLimit, { readonly stack: string; readonly env: string; readonly serve: string }>
> = {
  maxPackBytes: {
    stack: 'gitMaxPackMb',
    env: 'PROMOTER_GIT_MAX_PACK_MB',
    serve: '--git-max-pack-mb',
  },
  maxObjectBytes: {
    stack: 'gitMaxObjectMb',
    env: 'PROMOTER_GIT_MAX_OBJECT_MB',
    serve: '--git-max-object-mb',
  },
  maxDeltaDepth: {
    stack: 'gitMaxDeltaDepth',
    env: 'PROMOTER_GIT_MAX_DELTA_DEPTH',
    serve: '--git-max-delta-depth',
  },
  promotionTimeout: {
    stack: 'promotionTimeoutSeconds',
    env: 'PROMOTER_PROMOTION_TIMEOUT_SECONDS',
    serve: '--promotion-timeout',
  },
};

/**
 * Work refused because it would pass one of the limits: permanent (the same server sends the
 * same pack again). `detail` says what was seen and the limit's value.
 */
export class LimitError extends Error {
  override readonly name = 'LimitError';
  constructor(
    readonly limit: GitLimit,
    readonly detail: string,
  ) {
    super(`${detail} (${limit})`);
  }
}

/** `n` bytes in MiB, for messages. */
export const mebibytes = (bytes: number): string => {
  const value = bytes / (1024 * 1024);
  return `${Number.isInteger(value) ? value : value.toFixed(1)} MiB`;
};

/** The base moved between the advertisement and the request: start the attempt again. */
export class RaceError extends Error {
  override readonly name = 'RaceError';
}

/**
 * An answer that ended before its end (the connection was cut mid-stream). Not a ProtocolError:
 * what the cache holds is fine, and the same request is tried again.
 */
export class TruncatedError extends Error {
  override readonly name = 'TruncatedError';
}

/** `Retry-After` (delta-seconds or an HTTP date) as seconds from `now`, if it says anything. */
export const parseRetryAfter = (
  value: string | undefined,
  now: number = Date.now(),
): number | undefined => {
  if (value === undefined || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
};

/**
 * A git server's answer other than 200 (after redirects and the one answered challenge), with
 * the wait its `Retry-After` asked for when the status is a transient one.
 */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly url: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(`HTTP ${status} from ${url}`);
  }
}

/** The server asked for credentials (401) and refused the ones given, or none were given. */
export class CredentialsRefusedError extends Error {
  override readonly name = 'CredentialsRefusedError';
}

/** The URL answers, but not as a git smart-HTTP server (a web page, a dumb server). */
export class NotSmartHttpError extends Error {
  override readonly name = 'NotSmartHttpError';
}

/** The HTTP status of an HttpStatusError, else undefined. */
export const httpStatus = (error: unknown): number | undefined =>
  error instanceof HttpStatusError ? error.status : undefined;

/** Statuses after which the same read can succeed a moment later. */
const TRANSIENT_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export const isTransientStatus = (status: number | undefined): boolean =>
  status !== undefined && TRANSIENT_STATUSES.has(status);

/** Connection failures worth trying again at once (a lost DNS name or route is not). */
const DROPPED_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * Whether an idempotent read (ref advertisement, fetch) that failed so is worth repeating in
 * process: a 5xx, 408 or 429, a dropped or refused connection, or an answer cut short.
 */
export const isTransientRead = (error: unknown): boolean => {
  if (error instanceof TruncatedError) return true;
  if (isTransientStatus(httpStatus(error))) return true;
  const code = errorCode(error);
  if (code !== undefined && DROPPED_CODES.has(code)) return true;
  return error instanceof Error && /socket hang up|premature close/i.test(error.message);
};

/** A Node error code, on the error or (a WHATWG fetch's TypeError) on its cause. */
const errorCode = (error: unknown): string | undefined => {
  for (let current = error, depth = 0; current !== undefined && depth < 3; depth++) {
    const code = (current as { code?: unknown } | null)?.code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown } | null)?.cause;
  }
  return undefined;
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export const toPromoterError = (error: unknown, context: ErrorContext): PromoterError => {
  if (error instanceof PromoterError) return error;
  const where = `${context.url} (base branch ${context.baseBranch}, branch ${context.branch})`;
  const data = { url: context.url, baseBranch: context.baseBranch, branch: context.branch };
  if (error instanceof LimitError) {
    const setting = LIMIT_SETTINGS[error.limit];
    return new PromoterError(
      'GIT_LIMIT_EXCEEDED',
      `git work for ${where} refused: ${error.detail}; the limit is ${error.limit} (stack setting ${setting.stack}, ${setting.env}, serve ${setting.serve})`,
      { data: { ...data, limit: error.limit, setting: setting.stack }, cause: error },
    );
  }
  const code = errorCode(error);
  const status = httpStatus(error);
  if (status !== undefined) {
    if (status === 401 || status === 403) {
      return new PromoterError(
        'GIT_AUTH_FAILED',
        `git credentials were refused (HTTP ${status}) by ${where}`,
        { data: { ...data, status }, cause: error },
      );
    }
    if (status === 404 || status === 410) {
      return new PromoterError(
        'GIT_REPOSITORY_NOT_FOUND',
        `git repository not found (HTTP ${status}): ${where}`,
        { data: { ...data, status }, cause: error },
      );
    }
    const transient = status === 408 || status === 429 || status >= 500;
    const retryAfterSeconds =
      error instanceof HttpStatusError ? error.retryAfterSeconds : undefined;
    return new PromoterError('GIT_UNAVAILABLE', `git server answered HTTP ${status} for ${where}`, {
      retryable: transient,
      data: {
        ...data,
        status,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      },
      cause: error,
    });
  }
  if (error instanceof CredentialsRefusedError) {
    return new PromoterError('GIT_AUTH_FAILED', `git credentials were refused by ${where}`, {
      data,
      cause: error,
    });
  }
  if (error instanceof NotSmartHttpError) {
    return new PromoterError(
      'GIT_REPOSITORY_NOT_FOUND',
      `no git repository is served at ${where}`,
      { data, cause: error },
    );
  }
  const message = scrub(error instanceof Error ? error.message : String(error), context.secrets);
  const network = code !== undefined && NETWORK_CODES.has(code);
  return new PromoterError(
    'GIT_UNAVAILABLE',
    `git ${network ? 'server unreachable' : 'transfer failed'} for ${where}: ${message}`,
    { retryable: true, data, cause: error },
  );
};
