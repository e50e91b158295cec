import { isPromoterError } from './errors.ts';

/*
 * The one retry schedule of a job that failed for a transient reason (DESIGN.md section 12),
 * shared by the SQS path (the worker's visibility change) and serve's embedded queue: receive N
 * fails, the job comes back after 30 s × 2^(N−1) (at most 15 minutes), or later when the
 * failure says when to come back: GitHub's `Retry-After` or rate-limit reset, and at least 60 s
 * after a secondary rate limit that named no time. After `MAX_RECEIVES` receives the job is
 * dead-lettered.
 */

export const RETRY_BASE_SECONDS = 30;
export const RETRY_MAX_BACKOFF_SECONDS = 15 * 60;
/** GitHub asks for at least a minute after a secondary rate limit without `Retry-After`. */
export const SECONDARY_RATE_LIMIT_SECONDS = 60;
/** SQS's longest visibility timeout: no wait asked for can be longer. */
export const RETRY_MAX_WAIT_SECONDS = 12 * 60 * 60;
/** Receives before a dead letter: the queue's `maxReceiveCount`. */
export const MAX_RECEIVES = 5;

/**
 * What a transient failure says about when to come back, in `PromoterError.data`: adapters set
 * `retryAfterSeconds` (a server's explicit wait) and `rateLimit` ('primary' | 'secondary').
 */
export interface RetryHint {
  readonly retryAfterSeconds?: number;
  readonly rateLimit?: 'primary' | 'secondary';
}

const retryHint = (error: unknown): RetryHint => {
  if (!isPromoterError(error)) return {};
  const { retryAfterSeconds, rateLimit } = error.data;
  return {
    ...(typeof retryAfterSeconds === 'number' && Number.isFinite(retryAfterSeconds)
      ? { retryAfterSeconds: Math.max(0, retryAfterSeconds) }
      : {}),
    ...(rateLimit === 'primary' || rateLimit === 'secondary' ? { rateLimit } : {}),
  };
};

/** The backoff after receive `receiveCount` (1 for the first delivery) failed, in seconds. */
export const backoffSeconds = (receiveCount: number): number =>
  Math.min(RETRY_MAX_BACKOFF_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.max(0, receiveCount - 1));

/**
 * How long to wait before the next receive of a job whose receive `receiveCount` failed with
 * `error`: the backoff, or the wait the failure asks for when that is longer.
 *
 * @example
 * retryDelaySeconds(1, new Error('socket hang up')); // 30
 * retryDelaySeconds(3, githubError); // 120, or its Retry-After when longer
 */
export const retryDelaySeconds = (receiveCount: number, error: unknown): number => {
  const hint = retryHint(error);
  const asked =
    hint.retryAfterSeconds ?? (hint.rateLimit === 'secondary' ? SECONDARY_RATE_LIMIT_SECONDS : 0);
  return Math.min(RETRY_MAX_WAIT_SECONDS, Math.max(backoffSeconds(receiveCount), Math.ceil(asked)));
};
