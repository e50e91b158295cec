import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { isPromoterError, PromoterError } from '../core/errors.ts';
import { GITHUB_WEBHOOK_SECRET, type GitHubWebhookSecretStore } from '../core/github-webhook.ts';
import { GITLAB_WEBHOOK_SECRET, type GitLabWebhookSecretStore } from '../core/gitlab-webhook.ts';
import {
  DEFAULT_SECRET_PREFIX,
  type PipelineSecret,
  parsePipelineSecret,
  type SecretRef,
} from '../core/pipeline-secret.ts';
import { type Clock, type SecretStore, systemClock } from '../core/ports.ts';
import { decodeWebhookSecret } from '../core/pull-request-webhook.ts';
import { ReadThroughCache } from './read-through-cache.ts';

/*
 * The `SecretStore` port on AWS Secrets Manager (DESIGN.md section 4): the secret reference
 * `S` in namespace `NS` is the secret `{prefix}NS/S` (prefix DEFAULT_SECRET_PREFIX,
 * `pipeline-promoter/`, unless told), whose SecretString is the JSON object with Weave's keys.
 *
 * Decoded values are cached in memory for `ttlMs` (60 s unless told), so that a burst of
 * webhook deliveries costs one GetSecretValue and a rotated key is picked up within the TTL;
 * concurrent gets of the same secret share one request.
 *
 * Errors name the secret id and what to check, never its value:
 * - permanent (not retryable), which only an operator can fix:
 *   ResourceNotFoundException is SECRET_NOT_FOUND; AccessDeniedException (the role may not read
 *   the secret or decrypt it), DecryptionFailure (its KMS key cannot decrypt it) and
 *   InvalidRequestException (e.g. the secret is scheduled for deletion) are SECRET_INACCESSIBLE;
 *   an unreadable value is INVALID_SECRET.
 * - transient (retryable): throttling, 5xx, network and every other error are SECRET_UNAVAILABLE.
 *
 * A permanent failure is cached for `failureTtlMs` (5 s unless told), so that a stream of
 * unsigned requests to a pipeline whose secret is missing does not cost a GetSecretValue each;
 * a transient failure is not cached.
 */

export const DEFAULT_SECRET_TTL_MS = 60_000;
export const DEFAULT_SECRET_FAILURE_TTL_MS = 5_000;

export interface SecretsManagerSecretStoreOptions {
  /** Prepended to `NS/S`; `pipeline-promoter/` unless told. */
  readonly prefix?: string;
  /** How long a decoded value is served from memory; 60 s unless told, 0 disables the cache. */
  readonly ttlMs?: number;
  /** How long a permanent failure is answered from memory; 5 s unless told, 0: not at all. */
  readonly failureTtlMs?: number;
  readonly clock?: Clock;
}

export class SecretsManagerSecretStore
  implements SecretStore, GitHubWebhookSecretStore, GitLabWebhookSecretStore
{
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly failureTtlMs: number;
  private readonly cache: ReadThroughCache<PipelineSecret>;
  private readonly webhookCache: ReadThroughCache<readonly string[]>;

  constructor(
    private readonly client: SecretsManagerClient,
    options: SecretsManagerSecretStoreOptions = {},
  ) {
    this.prefix = options.prefix ?? DEFAULT_SECRET_PREFIX;
    this.ttlMs = options.ttlMs ?? DEFAULT_SECRET_TTL_MS;
    this.failureTtlMs = options.failureTtlMs ?? DEFAULT_SECRET_FAILURE_TTL_MS;
    this.cache = new ReadThroughCache(options.clock ?? systemClock);
    this.webhookCache = new ReadThroughCache(options.clock ?? systemClock);
  }

  /** The Secrets Manager secret id (name) behind a reference. */
  secretName(ref: SecretRef): string {
    return `${this.prefix}${ref.namespace}/${ref.name}`;
  }

  get(ref: SecretRef): Promise<PipelineSecret> {
    const id = this.secretName(ref);
    return this.cache.get(
      id,
      () => this.fetch(ref, id),
      (outcome) => {
        if (!('error' in outcome)) return this.ttlMs;
        // A permanent failure (missing, inaccessible, invalid) is kept briefly; a transient one
        // is asked again.
        return isPromoterError(outcome.error) && !outcome.error.retryable ? this.failureTtlMs : 0;
      },
    );
  }

  /** The GitHub webhook secret, `{prefix}github-webhook` (DESIGN.md section 4), cached alike. */
  githubWebhookSecrets(): Promise<readonly string[]> {
    return this.webhookSecrets(GITHUB_WEBHOOK_SECRET);
  }

  /** The GitLab webhook's secret token, `{prefix}gitlab-webhook`, cached alike. */
  gitlabWebhookSecrets(): Promise<readonly string[]> {
    return this.webhookSecrets(GITLAB_WEBHOOK_SECRET);
  }

  private webhookSecrets(name: string): Promise<readonly string[]> {
    const id = `${this.prefix}${name}`;
    return this.webhookCache.get(
      id,
      async () => {
        let text: string | undefined;
        try {
          text = (await this.client.send(new GetSecretValueCommand({ SecretId: id }))).SecretString;
        } catch (error) {
          throw secretsManagerError(error, id);
        }
        let value: unknown;
        try {
          value = JSON.parse(text ?? '');
        } catch {
          throw new PromoterError('INVALID_SECRET', `secret ${id} is not a JSON object`, {
            data: { secret: id },
          });
        }
        return decodeWebhookSecret(value, id);
      },
      (outcome) =>
        !('error' in outcome)
          ? this.ttlMs
          : isPromoterError(outcome.error) && !outcome.error.retryable
            ? this.failureTtlMs
            : 0,
    );
  }

  /** Forgets cached values and failures: one secret's, or all of them. */
  invalidate(ref?: SecretRef): void {
    this.cache.invalidate(ref === undefined ? undefined : this.secretName(ref));
  }

  private async fetch(ref: SecretRef, id: string): Promise<PipelineSecret> {
    let text: string | undefined;
    try {
      const response = await this.client.send(new GetSecretValueCommand({ SecretId: id }));
      text = response.SecretString;
    } catch (error) {
      throw secretsManagerError(error, id);
    }
    if (text === undefined) {
      throw new PromoterError(
        'INVALID_SECRET',
        `secret ${id} has no SecretString: store its JSON object as a secret string ` +
          '(with keys hmac-key, token, ...), not as binary',
        { data: { secret: id } },
      );
    }
    let value: PipelineSecret;
    try {
      value = parsePipelineSecret(ref, text);
    } catch (error) {
      // The core names the reference (NS/S); name the Secrets Manager id too. Its messages
      // never contain the value.
      if (isPromoterError(error)) {
        throw new PromoterError(error.code, `${error.message} (Secrets Manager secret ${id})`, {
          retryable: error.retryable,
          data: { ...error.data, secret: id },
        });
      }
      throw error;
    }
    return value;
  }
}

const errorName = (error: unknown): string =>
  error instanceof Error ? error.name : typeof error === 'string' ? error : 'Error';

/** Permanent Secrets Manager failures: the message says what to check, for the secret `id`. */
const PERMANENT_FAILURES: Readonly<Record<string, (id: string) => string>> = {
  AccessDeniedException: (id) =>
    `access to secret ${id} was denied: check that the function's role may ` +
    `secretsmanager:GetSecretValue on it (the stack grants it on the secret prefix) and, when ` +
    'the secret is encrypted with a customer managed KMS key, kms:Decrypt with that key',
  DecryptionFailure: (id) =>
    `Secrets Manager cannot decrypt secret ${id}: check that its KMS key exists, is enabled and ` +
    "lets the function's role (kms:Decrypt) and Secrets Manager use it",
  InvalidRequestException: (id) =>
    `secret ${id} cannot be read in its current state: check whether it is scheduled for ` +
    `deletion (restore it with \`aws secretsmanager restore-secret --secret-id ${id}\`) ` +
    'and that it has a current version',
};

const secretsManagerError = (error: unknown, id: string): PromoterError => {
  const name = errorName(error);
  if (name === 'ResourceNotFoundException') {
    return new PromoterError(
      'SECRET_NOT_FOUND',
      `secret ${id} does not exist in Secrets Manager: create it with ` +
        `\`aws secretsmanager create-secret --name ${id} --secret-string file://secret.json\` ` +
        'where secret.json is a JSON object with hmac-key (and token for pull requests)',
      { data: { secret: id }, cause: error },
    );
  }
  // Service messages name the secret and the failure, never the value.
  const detail = error instanceof Error && error.message !== '' ? `: ${error.message}` : '';
  const permanent = Object.hasOwn(PERMANENT_FAILURES, name) ? PERMANENT_FAILURES[name] : undefined;
  if (permanent !== undefined) {
    return new PromoterError('SECRET_INACCESSIBLE', `${permanent(id)} (${name}${detail})`, {
      retryable: false,
      data: { secret: id, error: name },
      cause: error,
    });
  }
  return new PromoterError(
    'SECRET_UNAVAILABLE',
    `could not read secret ${id} from Secrets Manager (${name}${detail})`,
    { retryable: true, data: { secret: id, error: name }, cause: error },
  );
};
