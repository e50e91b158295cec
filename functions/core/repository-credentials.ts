import { PromoterError } from './errors.ts';
import type { HostedRepository, Provider } from './pipeline.ts';
import { type SecretRef, secretId } from './pipeline-secret.ts';
import type { GitCredentials, GitHubAppTokens, SecretStore } from './ports.ts';

const PROVIDER_NAMES: Readonly<Record<Provider, string>> = { github: 'GitHub', gitlab: 'GitLab' };

/** The user name git sends with a bare token: each host's documented one. */
const GIT_USERNAME: Readonly<Record<Provider, string>> = {
  github: 'x-access-token',
  gitlab: 'oauth2',
};

/** What the worker and the reconcile sweep talk to one repository with. */
export interface RepositoryCredentials {
  /** For the host's API. Never logged. */
  readonly apiToken: string;
  /** For git over HTTPS. */
  readonly gitCredentials: GitCredentials;
}

export interface RepositoryCredentialsDependencies {
  readonly secrets: SecretStore;
  /** Absent: a secret with GitHub App keys is refused (this deployment has no App support). */
  readonly githubApps?: GitHubAppTokens;
}

/**
 * The credentials of `repository` from the pipeline secret `ref` (DESIGN.md sections 4, 13): a
 * GitHub App's installation token when the secret has the App keys, else its `token`; for git
 * `username`/`password` when given, else that token as `x-access-token` (GitHub) or `oauth2`
 * (GitLab). An installation token
 * comes from `githubApps`, which shares one per installation, so git, the API and the sweep use
 * the same one. Throws INVALID_SECRET (no token, no App), and what the secret store and
 * `githubApps` throw.
 *
 * @example
 * const { apiToken, gitCredentials } = await repositoryCredentials(
 *   deps,
 *   { namespace: 'flux-system', name: 'promotion-credentials' },
 *   strategy.repository,
 * );
 * // gitCredentials: { username: 'x-access-token', password: apiToken }
 */
export const repositoryCredentials = async (
  deps: RepositoryCredentialsDependencies,
  ref: SecretRef,
  repository: HostedRepository,
): Promise<RepositoryCredentials> => {
  const secret = await deps.secrets.get(ref);
  let apiToken: string;
  if (secret.githubApp !== undefined && repository.provider !== 'github') {
    throw new PromoterError(
      'INVALID_SECRET',
      `secret ${secretId(ref)} holds GitHub App keys, and ${repository.cloneUrl} is on ${repository.provider}: put a ${repository.provider} token with the api scope under the key "token"`,
      { data: { secret: secretId(ref) } },
    );
  }
  if (secret.githubApp !== undefined) {
    if (deps.githubApps === undefined) {
      throw new PromoterError(
        'INVALID_SECRET',
        `secret ${secretId(ref)} holds GitHub App keys, which this deployment cannot use: put a token under the key "token"`,
        { data: { secret: secretId(ref) } },
      );
    }
    apiToken = await deps.githubApps.installationToken({
      secret: ref,
      app: secret.githubApp,
      repository,
    });
  } else if (secret.token !== undefined) {
    apiToken = secret.token;
  } else {
    throw new PromoterError(
      'INVALID_SECRET',
      `secret ${secretId(ref)} has no token: add the ${PROVIDER_NAMES[repository.provider]} token under the key "token"`,
      { data: { secret: secretId(ref) } },
    );
  }
  return {
    apiToken,
    gitCredentials: secret.git ?? {
      username: GIT_USERNAME[repository.provider],
      password: apiToken,
    },
  };
};
