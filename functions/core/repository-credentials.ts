import { PromoterError } from './errors.ts';
import type { GitHubRepository } from './pipeline.ts';
import { type SecretRef, secretId } from './pipeline-secret.ts';
import type { GitCredentials, GitHubAppTokens, SecretStore } from './ports.ts';

/** What the worker and the reconcile sweep talk to one repository with. */
export interface RepositoryCredentials {
  /** For the GitHub API. Never logged. */
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
 * The credentials of `repository` from the pipeline secret `ref` (DESIGN.md section 4): a
 * GitHub App's installation token when the secret has the App keys, else its `token`; for git
 * `username`/`password` when given, else that token as `x-access-token`. An installation token
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
  repository: GitHubRepository,
): Promise<RepositoryCredentials> => {
  const secret = await deps.secrets.get(ref);
  let apiToken: string;
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
      `secret ${secretId(ref)} has no token: add the GitHub token under the key "token"`,
      { data: { secret: secretId(ref) } },
    );
  }
  return {
    apiToken,
    gitCredentials: secret.git ?? { username: 'x-access-token', password: apiToken },
  };
};
