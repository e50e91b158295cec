import { describe, expect, it } from 'vitest';
import { PromoterError } from '../../functions/core/errors.ts';
import type { GitHubWebhookSecretStore } from '../../functions/core/github-webhook.ts';
import type { GitLabWebhookSecretStore } from '../../functions/core/gitlab-webhook.ts';
import type { SecretStore } from '../../functions/core/ports.ts';

/*
 * The behaviour every SecretStore shares (Secrets Manager on moto, serve's secrets file): the
 * same JSON value decodes to the same secret; a missing secret is SECRET_NOT_FOUND and a value
 * that does not decode INVALID_SECRET (no later than when it is asked for: the file twin checks
 * every secret at start-up), both permanent, naming the secret and never a value. Likewise for
 * the GitHub and GitLab webhook secrets.
 */

export type ContractSecretStore = SecretStore & GitHubWebhookSecretStore & GitLabWebhookSecretStore;

/** `secrets`: JSON values by `namespace/name`, `github-webhook` and `gitlab-webhook` for the webhooks'. */
export type MakeSecretStore = (secrets: Record<string, unknown>) => Promise<ContractSecretStore>;

const ref = { namespace: 'flux-system', name: 'podinfo-creds' };
const ID = 'flux-system/podinfo-creds';

/** The error `work` fails with, at the store's set-up or at the read. */
const failure = (work: () => Promise<unknown>): Promise<unknown> =>
  work().then(
    () => undefined,
    (caught: unknown) => caught,
  );

export const describeSecretStoreContract = (name: string, make: MakeSecretStore): void => {
  describe(`${name}: the SecretStore contract`, () => {
    it('decodes the Weave keys to the same secret, previous HMAC key and git credentials', async () => {
      // Prepare
      const store = await make({
        [ID]: {
          'hmac-key': 'new-hmac-key-for-tests',
          'hmac-key-previous': 'old-hmac-key-for-tests',
          token: 'ghp_token',
          username: 'git-user',
          password: 'git-password',
        },
        'github-webhook': {
          secret: 'a-long-webhook-secret',
          'secret-previous': 'an-old-secret-0000',
        },
      });

      // Act
      const secret = await store.get(ref);
      const webhook = await store.githubWebhookSecrets();

      // Assess
      expect(secret).toEqual({
        hmacKeys: ['new-hmac-key-for-tests', 'old-hmac-key-for-tests'],
        token: 'ghp_token',
        git: { username: 'git-user', password: 'git-password' },
      });
      expect(webhook).toEqual(['a-long-webhook-secret', 'an-old-secret-0000']);
    });

    it('answers a missing secret with SECRET_NOT_FOUND, permanent, naming it', async () => {
      // Prepare
      const store = await make({ 'flux-system/other': { token: 'ghp_token' } });

      // Act
      const missing = await failure(() => store.get(ref));
      const noWebhook = await failure(() => store.githubWebhookSecrets());

      // Assess
      expect(missing).toBeInstanceOf(PromoterError);
      expect(missing).toMatchObject({
        code: 'SECRET_NOT_FOUND',
        retryable: false,
        message: expect.stringContaining(ID),
      });
      expect(noWebhook).toMatchObject({
        code: 'SECRET_NOT_FOUND',
        retryable: false,
        message: expect.stringContaining('github-webhook'),
      });
    });

    it.each([
      ['a key of the wrong type', { 'hmac-key': 1234567890, token: 'ghp_tok' }, 'hmac-key'],
      ['a username without a password', { token: 'ghp_tok', username: 'git-user' }, 'password'],
      ['an HMAC key under 16 bytes', { 'hmac-key': 'short-key', token: 'ghp_tok' }, 'hmac-key'],
    ])(
      'answers %s with INVALID_SECRET, permanent, naming the key and no value',
      async (_case, value, key) => {
        // Prepare: nothing (the file twin refuses the value when it loads it)

        // Act
        const error = await failure(async () => (await make({ [ID]: value })).get(ref));

        // Assess
        expect(error).toBeInstanceOf(PromoterError);
        expect(error).toMatchObject({ code: 'INVALID_SECRET', retryable: false });
        const { message } = error as PromoterError;
        expect(message).toContain(ID);
        expect(message).toContain(key);
        for (const secret of ['ghp_tok', 'git-user', 'short-key'])
          expect(message).not.toContain(secret);
      },
    );

    it("reads the GitLab webhook secret apart from GitHub's: decoded alike, missing or invalid named", async () => {
      // Prepare
      const both = await make({
        'github-webhook': { secret: 'a-long-github-webhook-secret' },
        'gitlab-webhook': {
          secret: 'a-long-gitlab-token',
          'secret-previous': 'an-old-gitlab-token',
        },
      });
      const githubOnly = await make({
        'github-webhook': { secret: 'a-long-github-webhook-secret' },
      });

      // Act
      const gitlab = await both.gitlabWebhookSecrets();
      const github = await both.githubWebhookSecrets();
      const missing = await failure(() => githubOnly.gitlabWebhookSecrets());
      const invalid = await failure(async () =>
        (await make({ 'gitlab-webhook': { secret: 'too-short' } })).gitlabWebhookSecrets(),
      );

      // Assess
      expect(gitlab).toEqual(['a-long-gitlab-token', 'an-old-gitlab-token']);
      expect(github).toEqual(['a-long-github-webhook-secret']);
      expect(missing).toMatchObject({
        code: 'SECRET_NOT_FOUND',
        retryable: false,
        message: expect.stringContaining('gitlab-webhook'),
      });
      expect(invalid).toMatchObject({ code: 'INVALID_SECRET', retryable: false });
      expect((invalid as PromoterError).message).toContain('gitlab-webhook');
      expect((invalid as PromoterError).message).not.toContain('too-short');
    });

    it('answers a webhook secret that does not decode with INVALID_SECRET naming the key', async () => {
      // Prepare: nothing

      // Act
      const error = await failure(async () =>
        (await make({ 'github-webhook': { secret: 'too-short' } })).githubWebhookSecrets(),
      );

      // Assess
      expect(error).toMatchObject({ code: 'INVALID_SECRET', retryable: false });
      const { message } = error as PromoterError;
      expect(message).toContain('secret');
      expect(message).not.toContain('too-short');
    });
  });
};
