/*
 * Every failure the core knows about carries a stable `code` and says whether trying the same
 * work again can succeed. The worker retries `retryable` errors through the queue and records the
 * others as permanent failures; `data` holds safe, structured context (never a secret value).
 */

export type ErrorCode =
  | 'INVALID_CONFIG'
  | 'INVALID_PIPELINE'
  | 'INVALID_JOB'
  | 'SECRET_NOT_FOUND'
  | 'INVALID_SECRET'
  | 'SECRET_UNAVAILABLE'
  | 'SECRET_INACCESSIBLE'
  | 'QUEUE_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_CORRUPT'
  | 'NO_MARKER'
  | 'NOTHING_TO_APPROVE'
  | 'INVALID_REQUEST'
  | 'GIT_AUTH_FAILED'
  | 'GIT_REPOSITORY_NOT_FOUND'
  | 'GIT_BRANCH_NOT_FOUND'
  | 'GIT_PUSH_REJECTED'
  | 'GIT_UNAVAILABLE'
  | 'GIT_LIMIT_EXCEEDED'
  | 'HOST_REFUSED'
  | 'GITHUB_AUTH_FAILED'
  | 'GITHUB_NOT_FOUND'
  | 'GITHUB_REJECTED'
  | 'GITHUB_UNAVAILABLE'
  | 'GITHUB_APP_AUTH'
  | 'GITHUB_APP_NOT_INSTALLED'
  | 'GITHUB_APP_UNAVAILABLE'
  | 'GITLAB_AUTH_FAILED'
  | 'GITLAB_NOT_FOUND'
  | 'GITLAB_REJECTED'
  | 'GITLAB_UNAVAILABLE'
  | 'NOTICE_REJECTED'
  | 'NOTICE_UNAVAILABLE'
  | 'NOTICES_UNCONFIGURED'
  | 'GATE_TIMER_FAILED';

export interface PromoterErrorOptions {
  readonly retryable?: boolean;
  readonly data?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

export class PromoterError extends Error {
  override readonly name = 'PromoterError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: PromoterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.data = options.data ?? {};
  }
}

export const isPromoterError = (error: unknown): error is PromoterError =>
  error instanceof PromoterError;

/** Unknown errors are treated as transient: the queue retries them and the DLQ keeps them. */
export const isRetryable = (error: unknown): boolean =>
  isPromoterError(error) ? error.retryable : true;

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
