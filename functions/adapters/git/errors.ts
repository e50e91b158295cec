import { PromoterError } from '../../core/errors.ts';

/**
 * The git adapter's errors. ProtocolError (bad pack, unexpected answer: the cache is dropped) and
 * RaceError (the base moved: the attempt starts again) steer the promotion loop; `toPromoterError`
 * maps every failure to the port's PromoterError GIT_* codes, credentials kept out of messages.
 * A module of its own because the adapter's own protocol and pack code, written because
 * isomorphic-git's fetch + readBlob path took 7.6 s at 6,000 files against 0.5 s for a git CLI
 * clone (README.md "Benchmarks"), raises them at every layer.
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

/** The base moved between the advertisement and the request: start the attempt again. */
export class RaceError extends Error {
  override readonly name = 'RaceError';
}

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
  const code = (error as { code?: unknown } | undefined)?.code;
  const status = (error as { data?: { statusCode?: unknown } } | undefined)?.data?.statusCode;
  if (code === 'HttpError' && typeof status === 'number') {
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
    return new PromoterError('GIT_UNAVAILABLE', `git server answered HTTP ${status} for ${where}`, {
      retryable: transient,
      data: { ...data, status },
      cause: error,
    });
  }
  if (code === 'UserCanceledError') {
    return new PromoterError('GIT_AUTH_FAILED', `git credentials were refused by ${where}`, {
      data,
      cause: error,
    });
  }
  if (code === 'SmartHttpError' || code === 'UrlParseError' || code === 'UnknownTransportError') {
    return new PromoterError(
      'GIT_REPOSITORY_NOT_FOUND',
      `no git repository is served at ${where}`,
      { data, cause: error },
    );
  }
  const message = scrub(error instanceof Error ? error.message : String(error), context.secrets);
  const network = typeof code === 'string' && NETWORK_CODES.has(code);
  return new PromoterError(
    'GIT_UNAVAILABLE',
    `git ${network ? 'server unreachable' : 'transfer failed'} for ${where}: ${message}`,
    { retryable: true, data, cause: error },
  );
};
