import { errorMessage, isPromoterError } from './errors.ts';
import { type Pipeline, pipelineId, webhookSecretFor } from './pipeline.ts';
import {
  environmentKeyName,
  hasEnvironmentKeys,
  type PipelineSecret,
  secretId,
} from './pipeline-secret.ts';
import type { SecretStore } from './ports.ts';

/*
 * Warnings about webhook keys (DESIGN.md section 4): a pipeline with several environments whose
 * events are verified with a secret's shared `hmac-key` lets one leaf cluster sign another
 * environment's deployments (and, with the pipeline's own secret, approvals). Said at
 * `promoter serve`'s start and in the sync answer; the pipeline stays valid.
 */

export interface SharedKeyWarning {
  /** The pipeline, `namespace/name`. */
  readonly id: string;
  readonly message: string;
}

const list = (names: readonly string[]): string =>
  names.length <= 1
    ? (names[0] ?? '')
    : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;

/**
 * One warning per secret whose shared `hmac-key` verifies events of a pipeline with two or more
 * environments, when another of its environments is verified by the same key or the secret is
 * the pipeline's own (whose `hmac-key` signs approvals). A secret that cannot be read gets a
 * warning too (the webhook refuses those events until it can). Never throws; never says a value.
 *
 * @example
 * for (const warning of await sharedKeyWarnings(pipeline, secrets)) {
 *   logger.warn(warning.message, { pipeline: warning.id });
 * }
 */
export const sharedKeyWarnings = async (
  pipeline: Pipeline,
  secrets: SecretStore,
): Promise<SharedKeyWarning[]> => {
  if (pipeline.environments.length < 2) return [];
  const id = pipelineId(pipeline);
  const bySecret = new Map<string, string[]>();
  for (const environment of pipeline.environments) {
    const name = webhookSecretFor(pipeline, environment.name);
    bySecret.set(name, [...(bySecret.get(name) ?? []), environment.name]);
  }
  const warnings: SharedKeyWarning[] = [];
  for (const [name, environments] of bySecret) {
    const ref = { namespace: pipeline.namespace, name };
    let secret: PipelineSecret;
    try {
      secret = await secrets.get(ref);
    } catch (error) {
      const code = isPromoterError(error) ? error.code : 'UNKNOWN';
      warnings.push({
        id,
        message: `pipeline ${id}: could not check the webhook keys of secret ${secretId(ref)} (events from ${list(environments)}): ${code}: ${errorMessage(error)}`,
      });
      continue;
    }
    if (secret.hmacKeys.length === 0) continue;
    const shared = environments.filter((environment) => !hasEnvironmentKeys(secret, environment));
    const approvals = name === pipeline.hmacSecret;
    if (shared.length === 0 || (shared.length < 2 && !approvals)) continue;
    const risk =
      shared.length < 2
        ? 'so its cluster can sign approvals'
        : `so each of their clusters can sign the others' events${approvals ? ' and approvals' : ''}`;
    const all = pipeline.environments.map((environment) => environment.name).join(',');
    warnings.push({
      id,
      message:
        `pipeline ${id}: events from ${list(shared)} are verified with the shared hmac-key of secret ${secretId(ref)}, ${risk}: ` +
        `give each environment its own key (${shared.map(environmentKeyName).join(', ')}; ` +
        `promoter keys ${id} --envs ${all} prints a set)`,
    });
  }
  return warnings;
};
