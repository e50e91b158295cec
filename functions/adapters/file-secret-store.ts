import { readFile } from 'node:fs/promises';
import { PromoterError } from '../core/errors.ts';
import { GITHUB_WEBHOOK_SECRET, type GitHubWebhookSecretStore } from '../core/github-webhook.ts';
import { GITLAB_WEBHOOK_SECRET, type GitLabWebhookSecretStore } from '../core/gitlab-webhook.ts';
import {
  decodePipelineSecret,
  type PipelineSecret,
  type SecretRef,
  secretId,
} from '../core/pipeline-secret.ts';
import type { SecretStore } from '../core/ports.ts';
import { decodeWebhookSecret } from '../core/pull-request-webhook.ts';

/** Why a file could not be read, in words: missing, a directory, not permitted. */
const unreadable = (error: unknown): string => {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EISDIR':
      return 'is a directory: expected a JSON file';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    default:
      return `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  }
};

/** ` at line L, column C` of a JSON.parse error, when its message gives the position. */
const jsonErrorPlace = (error: unknown, text: string): string => {
  const message = error instanceof Error ? error.message : '';
  const at = /line (\d+) column (\d+)/.exec(message);
  if (at !== null) return ` at line ${at[1]}, column ${at[2]}`;
  const position = /position (\d+)/.exec(message)?.[1];
  if (position === undefined) return text.trim() === '' ? ': the file is empty' : '';
  const before = text.slice(0, Number(position)).split('\n');
  return ` at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
};

/**
 * `promoter serve`'s secrets: one JSON file mapping `"NS/S"` to the same object Secrets Manager
 * holds (DESIGN.md section 4), `"github-webhook"` to the GitHub webhook secret and
 * `"gitlab-webhook"` to the GitLab webhook's secret token. Read and validated once at start-up,
 * so that a broken file fails before the first request rather than on it.
 */
export class FileSecretStore
  implements SecretStore, GitHubWebhookSecretStore, GitLabWebhookSecretStore
{
  private constructor(
    private readonly path: string,
    private readonly secrets: ReadonlyMap<string, PipelineSecret>,
    /** The webhook secrets by name (`github-webhook`, `gitlab-webhook`). */
    private readonly webhookSecrets: ReadonlyMap<string, readonly string[]>,
  ) {}

  static async load(path: string): Promise<FileSecretStore> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new PromoterError('INVALID_CONFIG', `secrets file ${path} ${unreadable(error)}`, {
        cause: error,
      });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // Not the parser's message: it quotes the text around the mistake, which may be a key.
      throw new PromoterError(
        'INVALID_CONFIG',
        `secrets file ${path} is not valid JSON${jsonErrorPlace(error, text)}`,
      );
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new PromoterError(
        'INVALID_CONFIG',
        `secrets file ${path}: expected an object mapping "namespace/name" to a secret`,
      );
    }
    const secrets = new Map<string, PipelineSecret>();
    const webhookSecrets = new Map<string, readonly string[]>();
    for (const [id, secret] of Object.entries(value)) {
      if (id === GITHUB_WEBHOOK_SECRET || id === GITLAB_WEBHOOK_SECRET) {
        webhookSecrets.set(id, decodeWebhookSecret(secret, `${path}: "${id}"`));
        continue;
      }
      const [namespace, name, ...rest] = id.split('/');
      if (namespace === undefined || name === undefined || rest.length > 0 || !namespace || !name) {
        throw new PromoterError(
          'INVALID_CONFIG',
          `secrets file ${path}: key ${JSON.stringify(id)}: expected "namespace/name"`,
        );
      }
      secrets.set(id, decodePipelineSecret({ namespace, name }, secret));
    }
    return new FileSecretStore(path, secrets, webhookSecrets);
  }

  async get(ref: SecretRef): Promise<PipelineSecret> {
    const secret = this.secrets.get(secretId(ref));
    if (secret === undefined) {
      throw new PromoterError(
        'SECRET_NOT_FOUND',
        `secret ${secretId(ref)} not found in ${this.path}: add "${secretId(ref)}": {"hmac-key": ..., "token": ...}`,
        { data: { secret: secretId(ref) } },
      );
    }
    return secret;
  }

  async githubWebhookSecrets(): Promise<readonly string[]> {
    return this.webhookSecret(
      GITHUB_WEBHOOK_SECRET,
      'GitHub webhook secret',
      "the secret of the repository's webhook",
    );
  }

  async gitlabWebhookSecrets(): Promise<readonly string[]> {
    return this.webhookSecret(
      GITLAB_WEBHOOK_SECRET,
      'GitLab webhook secret',
      "the secret token of the project's webhook",
    );
  }

  private webhookSecret(id: string, what: string, hint: string): readonly string[] {
    const secrets = this.webhookSecrets.get(id);
    if (secrets === undefined) {
      throw new PromoterError(
        'SECRET_NOT_FOUND',
        `no ${what} in ${this.path}: add "${id}": {"secret": "..."} (${hint})`,
        { data: { secret: id } },
      );
    }
    return secrets;
  }
}
