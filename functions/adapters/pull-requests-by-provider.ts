import { PromoterError } from '../core/errors.ts';
import type { HostedRepository, Provider } from '../core/pipeline.ts';
import type { PullRequests } from '../core/ports.ts';

/*
 * The PullRequests port over one adapter per provider, chosen by the repository's `provider`:
 * the core talks to one port, and a new host is a new adapter registered here at start-up.
 */

/** The adapters by provider; a provider without one fails its promotions with a clear error. */
export type PullRequestsByProvider = Partial<Readonly<Record<Provider, PullRequests>>>;

/**
 * @example
 * const pullRequests = routePullRequests({
 *   github: createOctokitPullRequests(),
 *   gitlab: createGitLabMergeRequests(),
 * });
 */
export const routePullRequests = (adapters: PullRequestsByProvider): PullRequests => {
  const of = (repository: HostedRepository): PullRequests => {
    const adapter = adapters[repository.provider];
    if (adapter !== undefined) return adapter;
    throw new PromoterError(
      'INVALID_CONFIG',
      `no ${repository.provider} client in this deployment for ${repository.cloneUrl}`,
      { data: { provider: repository.provider, repository: repository.cloneUrl } },
    );
  };
  return {
    upsert: (request) => of(request.repository).upsert(request),
    get: (lookup) => of(lookup.repository).get(lookup),
    close: (lookup, comment) => of(lookup.repository).close(lookup, comment),
    enableAutoMerge: (lookup) => of(lookup.repository).enableAutoMerge(lookup),
    mergeWhenReady: (lookup) => of(lookup.repository).mergeWhenReady(lookup),
  };
};
