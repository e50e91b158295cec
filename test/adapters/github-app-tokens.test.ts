import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GitHubAppInstallationTokens } from '../../functions/adapters/github-app-tokens.ts';
import type { GitHubApp } from '../../functions/core/pipeline-secret.ts';
import type { Clock, GitHubAppTokenRequest } from '../../functions/core/ports.ts';
import { repositoryCredentials } from '../../functions/core/repository-credentials.ts';
import { caught } from '../support/caught.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { JWT_MESSAGES } from '../support/github-stand-in/app-installations.ts';
import { memorySecrets } from '../support/webhook-harness.ts';

const OWNER = 'acme';
const REPO = 'fleet';
const APP_ID = 31337;
const SECRET = { namespace: 'flux-system', name: 'app-credentials' };

/** An RSA key pair as GitHub hands out App keys (PKCS#1 PEM), made for this run. */
const appKeys = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });

/** A clock the test moves. */
const movableClock = (): Clock & { at: Date } => {
  const clock = {
    at: new Date(),
    now: () => clock.at,
  };
  return clock;
};

describe('GitHubAppInstallationTokens against the GitHub stand-in', () => {
  let github: FakeGitHubEnterprise;
  const keys = appKeys();
  const app: GitHubApp = { appId: APP_ID, privateKey: keys.privateKey };
  let request: GitHubAppTokenRequest;
  let installationId: number;

  beforeAll(async () => {
    // No personal token is accepted: only what the App's installation is issued.
    github = await startFakeGitHubEnterprise({ tokens: [] });
    await github.createRepository(OWNER, REPO, { 'README.md': 'fleet\n' });
    github.standIn.apps.registerApp(APP_ID, keys.publicKey);
    installationId = github.standIn.apps.install(APP_ID, OWNER, [REPO]).id;
    request = { secret: SECRET, app, repository: github.repository(OWNER, REPO) };
  });

  afterAll(async () => {
    await github?.close();
  });

  beforeEach(() => {
    github.standIn.apps.now = () => new Date();
    github.standIn.apps.tokenLifetimeSeconds = 3600;
    github.standIn.clearRequests();
  });

  const issued = () => github.standIn.apps.issued.length;
  const lookups = () =>
    github.standIn.requestCount({ method: 'GET', route: `/repos/${OWNER}/${REPO}/installation` });

  it('looks the installation up from the repository and gets a token that REST and git accept', async () => {
    // Prepare
    const tokens = new GitHubAppInstallationTokens();
    const before = issued();

    // Act
    const token = await tokens.installationToken(request);

    // Assess
    expect(issued()).toBe(before + 1);
    expect(github.standIn.apps.issued.at(-1)).toMatchObject({ installationId, token });
    expect(lookups()).toBe(1);
    const api = await fetch(`${github.apiBaseUrl}/repos/${OWNER}/${REPO}`, {
      headers: { authorization: `token ${token}` },
    });
    const git = await fetch(`${github.cloneUrl(OWNER, REPO)}/info/refs?service=git-upload-pack`, {
      headers: {
        authorization: `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`,
      },
    });
    expect([api.status, git.status]).toEqual([200, 200]);
  });

  it('keeps one token per installation: asked again, or by many at once, GitHub is asked once', async () => {
    // Prepare
    const tokens = new GitHubAppInstallationTokens();
    const before = issued();

    // Act
    const together = await Promise.all(
      Array.from({ length: 5 }, () => tokens.installationToken(request)),
    );
    const later = await tokens.installationToken(request);

    // Assess
    expect(new Set([...together, later]).size).toBe(1);
    expect(issued()).toBe(before + 1);
    expect(lookups()).toBe(1);
  });

  it('replaces the token shortly before it expires, by its own clock', async () => {
    // Prepare: a first token that GitHub issues for 10 minutes, then the usual hour.
    const clock = movableClock();
    const tokens = new GitHubAppInstallationTokens({ clock, refreshBeforeExpiryMs: 5 * 60_000 });
    github.standIn.apps.tokenLifetimeSeconds = 600;
    const first = await tokens.installationToken(request);
    const expiresAt = Date.parse(github.standIn.apps.issued.at(-1)?.expiresAt ?? '');
    github.standIn.apps.tokenLifetimeSeconds = 3600;

    // Act
    clock.at = new Date(expiresAt - 6 * 60_000);
    const stillFirst = await tokens.installationToken(request);
    clock.at = new Date(expiresAt - 4 * 60_000);
    const second = await tokens.installationToken(request);
    const stillSecond = await tokens.installationToken(request);

    // Assess
    expect(stillFirst).toBe(first);
    expect(second).not.toBe(first);
    expect(stillSecond).toBe(second);
    expect(github.standIn.apps.issued.slice(-2).map((entry) => entry.token)).toEqual([
      first,
      second,
    ]);
  });

  it('uses githubAppInstallationID without a lookup, and githubAppBaseURL for the App calls', async () => {
    // Prepare: the repository's own API base answers nothing; the App's base is the stand-in.
    const tokens = new GitHubAppInstallationTokens();
    const elsewhere = { ...request.repository, apiBaseUrl: 'http://127.0.0.1:9/api/v3' };

    // Act
    const token = await tokens.installationToken({
      secret: SECRET,
      app: { ...app, installationId, baseUrl: github.apiBaseUrl },
      repository: elsewhere,
    });

    // Assess
    expect(github.standIn.apps.issued.at(-1)).toMatchObject({ installationId, token });
    expect(lookups()).toBe(0);
  });

  it("refuses a key that is not the App's: GITHUB_APP_AUTH naming the secret, never the key", async () => {
    // Prepare
    const other = appKeys();
    const tokens = new GitHubAppInstallationTokens();

    // Act
    const error = await caught(
      tokens.installationToken({ ...request, app: { ...app, privateKey: other.privateKey } }),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_APP_AUTH', retryable: false });
    expect(error.message).toContain('secret flux-system/app-credentials');
    expect(error.message).toContain(`GitHub App ${APP_ID}`);
    expect(error.message).toContain(JWT_MESSAGES.undecodable);
    const shown = inspect(error, { depth: 10 });
    expect(shown).not.toContain(other.privateKey.split('\n')[1]);
  });

  it.each([
    ['expired', 11 * 60_000, JWT_MESSAGES.expired],
    ['not yet valid', -5 * 60_000, JWT_MESSAGES.notYetValid],
  ])('refuses a JWT that is %s for GitHub', async (_case, skewMs, message) => {
    // Prepare: GitHub's clock is off from this host's by skewMs.
    github.standIn.apps.now = () => new Date(Date.now() + skewMs);
    const tokens = new GitHubAppInstallationTokens();

    // Act
    const error = await caught(
      tokens.installationToken({ ...request, app: { ...app, installationId } }),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_APP_AUTH', retryable: false });
    expect(error.message).toContain(`401 ${message}`);
  });

  it('says when the App is not installed on the repository, or the installation is unknown', async () => {
    // Prepare
    await github.createRepository(OWNER, 'elsewhere', { 'README.md': 'x\n' });
    const tokens = new GitHubAppInstallationTokens();

    // Act
    const notInstalled = await caught(
      tokens.installationToken({ ...request, repository: github.repository(OWNER, 'elsewhere') }),
    );
    const unknown = await caught(
      tokens.installationToken({ ...request, app: { ...app, installationId: 999 } }),
    );

    // Assess
    expect(notInstalled).toMatchObject({ code: 'GITHUB_APP_NOT_INSTALLED', retryable: false });
    expect(notInstalled.message).toContain(
      `GitHub App ${APP_ID} of secret flux-system/app-credentials is not installed on acme/elsewhere`,
    );
    expect(unknown).toMatchObject({ code: 'GITHUB_APP_NOT_INSTALLED', retryable: false });
    expect(unknown.message).toContain('has no installation 999');
  });

  it('refuses an unusable PEM key without quoting it', async () => {
    // Prepare
    const broken =
      '-----BEGIN RSA PRIVATE KEY-----\nbm90LWEta2V5LWF0LWFsbA==\n-----END RSA PRIVATE KEY-----\n';
    const tokens = new GitHubAppInstallationTokens();

    // Act
    const error = await caught(
      tokens.installationToken({ ...request, app: { ...app, privateKey: broken } }),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_APP_AUTH', retryable: false });
    expect(error.message).toBe(
      `githubAppPrivateKey of secret flux-system/app-credentials (GitHub App ${APP_ID}) is not a usable RSA private key in PEM`,
    );
    expect(inspect(error, { depth: 10 })).not.toContain('bm90LWEta2V5');
  });

  it('answers GITHUB_APP_UNAVAILABLE, retryable, when GitHub cannot be reached', async () => {
    // Prepare
    const tokens = new GitHubAppInstallationTokens();

    // Act
    const error = await caught(
      tokens.installationToken({
        ...request,
        app: { ...app, installationId, baseUrl: 'http://127.0.0.1:9/api/v3' },
      }),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GITHUB_APP_UNAVAILABLE', retryable: true });
  });

  it('gives the worker one token for git and the API through repositoryCredentials', async () => {
    // Prepare
    const secrets = memorySecrets({
      'flux-system/app-credentials': {
        githubAppID: String(APP_ID),
        githubAppPrivateKey: keys.privateKey,
      },
    });
    const githubApps = new GitHubAppInstallationTokens();

    // Act
    const worker = await repositoryCredentials({ secrets, githubApps }, SECRET, request.repository);
    const sweep = await repositoryCredentials({ secrets, githubApps }, SECRET, request.repository);

    // Assess
    expect(worker.gitCredentials).toEqual({
      username: 'x-access-token',
      password: worker.apiToken,
    });
    expect(sweep.apiToken).toBe(worker.apiToken);
    expect(github.standIn.apps.issued.at(-1)?.token).toBe(worker.apiToken);
  });
});
