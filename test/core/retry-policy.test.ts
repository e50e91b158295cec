import { describe, expect, it } from 'vitest';
import { PromoterError } from '../../functions/core/errors.ts';
import { backoffSeconds, retryDelaySeconds } from '../../functions/core/retry-policy.ts';

const githubUnavailable = (data: Record<string, unknown>) =>
  new PromoterError('GITHUB_UNAVAILABLE', 'GitHub rate-limited the request', {
    retryable: true,
    data,
  });

describe('backoffSeconds', () => {
  it.each([
    [1, 30],
    [2, 60],
    [3, 120],
    [5, 480],
    [6, 900],
    [10, 900],
  ])('receive %i: %i s', (receiveCount, seconds) => {
    // Act
    const delay = backoffSeconds(receiveCount);

    // Assess
    expect(delay).toBe(seconds);
  });

  it('treats a receive count below 1 as the first receive', () => {
    // Act
    const delays = [0, -1].map(backoffSeconds);

    // Assess
    expect(delays).toEqual([30, 30]);
  });
});

describe('retryDelaySeconds', () => {
  it('is the backoff for a failure that says nothing about when to come back', () => {
    // Act
    const delays = [
      retryDelaySeconds(1, new Error('socket hang up')),
      retryDelaySeconds(3, new PromoterError('GIT_UNAVAILABLE', '503', { retryable: true })),
      retryDelaySeconds(2, undefined),
    ];

    // Assess
    expect(delays).toEqual([30, 120, 60]);
  });

  it('honours a Retry-After longer than the backoff, and the backoff when it is longer', () => {
    // Act
    const delays = [
      retryDelaySeconds(1, githubUnavailable({ retryAfterSeconds: 300 })),
      retryDelaySeconds(4, githubUnavailable({ retryAfterSeconds: 5 })),
      retryDelaySeconds(1, githubUnavailable({ retryAfterSeconds: 90.2 })),
    ];

    // Assess
    expect(delays).toEqual([300, 240, 91]);
  });

  it('waits at least 60 s after a secondary rate limit that named no time', () => {
    // Act
    const delays = [
      retryDelaySeconds(1, githubUnavailable({ rateLimit: 'secondary' })),
      retryDelaySeconds(3, githubUnavailable({ rateLimit: 'secondary' })),
      retryDelaySeconds(1, githubUnavailable({ rateLimit: 'primary' })),
    ];

    // Assess
    expect(delays).toEqual([60, 120, 30]);
  });

  it('never asks for more than SQS can wait (12 hours), and ignores nonsense hints', () => {
    // Act
    const delays = [
      retryDelaySeconds(1, githubUnavailable({ retryAfterSeconds: 10 ** 9 })),
      retryDelaySeconds(1, githubUnavailable({ retryAfterSeconds: 'soon', rateLimit: 'other' })),
      retryDelaySeconds(1, githubUnavailable({ retryAfterSeconds: -5 })),
    ];

    // Assess
    expect(delays).toEqual([43_200, 30, 30]);
  });
});
