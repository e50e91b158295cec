import { describe, expect, it } from 'vitest';
import type { GitHubAppTokenRequest, GitHubAppTokens } from '../../functions/core/ports.ts';
import { repositoryCredentials } from '../../functions/core/repository-credentials.ts';
import { caught } from '../support/caught.ts';
import { memorySecrets } from '../support/webhook-harness.ts';

const REF = { namespace: 'flux-system', name: 'promotion-credentials' };
const REPOSITORY = {
  provider: 'github' as const,
  cloneUrl: 'https://github.com/acme/fleet.git',
  apiBaseUrl: 'https://api.github.com',
  owner: 'acme',
  repo: 'fleet',
};
const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEtest\n-----END RSA PRIVATE KEY-----\n';

/** The port's twin: hands out `ghs_<installation or lookup>` and notes what it was asked. */
const appTokens = (): GitHubAppTokens & { asked: GitHubAppTokenRequest[] } => {
  const asked: GitHubAppTokenRequest[] = [];
  return {
    asked,
    installationToken: async (request) => {
      asked.push(request);
      return `ghs_${request.app.installationId ?? 'looked-up'}`;
    },
  };
};

describe('repositoryCredentials', () => {
  it('uses the token for the API and, as x-access-token, for git', async () => {
    // Prepare
    const secrets = memorySecrets({ 'flux-system/promotion-credentials': { token: 'ghp_t' } });

    // Act
    const credentials = await repositoryCredentials({ secrets }, REF, REPOSITORY);

    // Assess
    expect(credentials).toEqual({
      apiToken: 'ghp_t',
      gitCredentials: { username: 'x-access-token', password: 'ghp_t' },
    });
  });

  it('sends a GitLab token to git as oauth2, and refuses GitHub App keys for GitLab', async () => {
    // Prepare
    const gitlab = {
      ...REPOSITORY,
      provider: 'gitlab' as const,
      cloneUrl: 'https://gitlab.com/acme/fleet.git',
      apiBaseUrl: 'https://gitlab.com/api/v4',
    };
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': { token: 'glpat-t' },
      'flux-system/app': { githubAppID: '12', githubAppPrivateKey: PEM },
    });

    // Act
    const credentials = await repositoryCredentials({ secrets }, REF, gitlab);
    const error = await caught(
      repositoryCredentials(
        { secrets, githubApps: appTokens() },
        { namespace: 'flux-system', name: 'app' },
        gitlab,
      ),
    );

    // Assess
    expect(credentials).toEqual({
      apiToken: 'glpat-t',
      gitCredentials: { username: 'oauth2', password: 'glpat-t' },
    });
    expect(error).toMatchObject({ code: 'INVALID_SECRET', retryable: false });
    expect(String(error)).toMatch(
      /GitHub App keys, and https:\/\/gitlab.com\/acme\/fleet.git is on gitlab/,
    );
  });

  it('prefers the GitHub App keys to the token, for the API and git', async () => {
    // Prepare
    const githubApps = appTokens();
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': {
        token: 'ghp_old',
        githubAppID: '12',
        githubAppInstallationID: '34',
        githubAppPrivateKey: PEM,
      },
    });

    // Act
    const credentials = await repositoryCredentials({ secrets, githubApps }, REF, REPOSITORY);

    // Assess
    expect(credentials).toEqual({
      apiToken: 'ghs_34',
      gitCredentials: { username: 'x-access-token', password: 'ghs_34' },
    });
    expect(githubApps.asked).toEqual([
      {
        secret: REF,
        app: { appId: 12, installationId: 34, privateKey: PEM },
        repository: REPOSITORY,
      },
    ]);
  });

  it('keeps username and password for git when the secret has them', async () => {
    // Prepare
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': {
        githubAppID: 12,
        githubAppPrivateKey: PEM,
        username: 'git-bot',
        password: 'git-password',
      },
    });

    // Act
    const credentials = await repositoryCredentials(
      { secrets, githubApps: appTokens() },
      REF,
      REPOSITORY,
    );

    // Assess
    expect(credentials).toEqual({
      apiToken: 'ghs_looked-up',
      gitCredentials: { username: 'git-bot', password: 'git-password' },
    });
  });

  it('refuses a secret with neither a token nor App keys, and App keys without App support', async () => {
    // Prepare
    const empty = memorySecrets({ 'flux-system/promotion-credentials': {} });
    const app = memorySecrets({
      'flux-system/promotion-credentials': { githubAppID: 12, githubAppPrivateKey: PEM },
    });

    // Act
    const noToken = await caught(repositoryCredentials({ secrets: empty }, REF, REPOSITORY));
    const noApps = await caught(repositoryCredentials({ secrets: app }, REF, REPOSITORY));

    // Assess
    expect(noToken).toMatchObject({
      code: 'INVALID_SECRET',
      message:
        'secret flux-system/promotion-credentials has no token: add the GitHub token under the key "token"',
    });
    expect(noApps).toMatchObject({ code: 'INVALID_SECRET', retryable: false });
    expect(noApps.message).toContain('holds GitHub App keys, which this deployment cannot use');
    expect(noApps.message).not.toContain('MIIEtest');
  });
});
