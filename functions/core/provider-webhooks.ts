import {
  GITHUB_WEBHOOK_PATH,
  type GitHubWebhookDependencies,
  handleGitHubWebhookRequest,
  MAX_GITHUB_BODY_BYTES,
} from './github-webhook.ts';
import {
  GITLAB_WEBHOOK_PATH,
  type GitLabWebhookDependencies,
  gitlabDeliveryId,
  handleGitLabWebhookRequest,
  MAX_GITLAB_BODY_BYTES,
} from './gitlab-webhook.ts';
import type { Provider } from './pipeline.ts';
import type {
  PullRequestWebhookRequest,
  PullRequestWebhookResult,
} from './pull-request-webhook.ts';

/*
 * The git hosts' webhooks (`POST /webhooks/github`, `POST /webhooks/gitlab`) as one table the
 * shells route through (serve's server, the webhook Lambda): each shell reads the body within
 * the bound, hands it over and logs the answer the same way for every provider.
 */

export interface ProviderWebhookDependencies {
  readonly github?: GitHubWebhookDependencies;
  readonly gitlab?: GitLabWebhookDependencies;
}

export interface ProviderWebhookRoute {
  readonly provider: Provider;
  readonly maxBodyBytes: number;
  /** The delivery's id, for the log line (header names in lower case). */
  deliveryOf(headers: Readonly<Record<string, string | undefined>>): string | undefined;
  handle(request: PullRequestWebhookRequest): Promise<PullRequestWebhookResult>;
}

/**
 * The provider webhook served at `path`, when the shell has its dependencies.
 *
 * @example
 * const route = providerWebhookRoute('/webhooks/gitlab', { gitlab });
 * const result = await route?.handle({ method: 'POST', path, headers, body });
 */
export const providerWebhookRoute = (
  path: string,
  deps: ProviderWebhookDependencies,
): ProviderWebhookRoute | undefined => {
  const { github, gitlab } = deps;
  if (path === GITHUB_WEBHOOK_PATH && github !== undefined) {
    return {
      provider: 'github',
      maxBodyBytes: MAX_GITHUB_BODY_BYTES,
      deliveryOf: (headers) => headers['x-github-delivery'],
      handle: (request) => handleGitHubWebhookRequest(request, github),
    };
  }
  if (path === GITLAB_WEBHOOK_PATH && gitlab !== undefined) {
    return {
      provider: 'gitlab',
      maxBodyBytes: MAX_GITLAB_BODY_BYTES,
      deliveryOf: gitlabDeliveryId,
      handle: (request) => handleGitLabWebhookRequest(request, gitlab),
    };
  }
  return undefined;
};
