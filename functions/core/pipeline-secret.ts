import * as z from 'zod/mini';
import { PromoterError } from './errors.ts';
import { formatIssues } from './validation.ts';

/**
 * A pipeline secret's value, with Weave's keys (DESIGN.md section 4). Never log or echo one:
 * errors about a secret name its reference and the failing key, not its content.
 */
const key = z.optional(z.string().check(z.minLength(1, 'expected a non-empty string')));

export const pipelineSecretSchema = z
  .object({
    'hmac-key': key,
    'hmac-key-previous': key,
    token: key,
    username: z.optional(z.string()),
    password: z.optional(z.string()),
  })
  .check(
    z.refine((secret) => (secret.username === undefined) === (secret.password === undefined), {
      message: 'expected username and password together',
      path: ['password'],
    }),
  );

export interface PipelineSecret {
  readonly hmacKeys: readonly string[];
  readonly token?: string;
  readonly git?: { readonly username: string; readonly password: string };
}

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

/**
 * The naming contract (DESIGN.md section 4): the `secretRef` `S` of a pipeline in namespace `NS`
 * is the secret `{prefix}NS/S`, with this prefix unless the deployment configures another.
 */
export const DEFAULT_SECRET_PREFIX = 'pipeline-promoter/';

export const secretId = (ref: SecretRef): string => `${ref.namespace}/${ref.name}`;

/** Decodes a secret's JSON text; errors name the secret and key, never the value. */
export const parsePipelineSecret = (ref: SecretRef, text: string): PipelineSecret => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PromoterError('INVALID_SECRET', `secret ${secretId(ref)} is not a JSON object`, {
      data: { secret: secretId(ref) },
    });
  }
  return decodePipelineSecret(ref, value);
};

export const decodePipelineSecret = (ref: SecretRef, value: unknown): PipelineSecret => {
  const result = pipelineSecretSchema.safeParse(value);
  if (!result.success) {
    throw new PromoterError(
      'INVALID_SECRET',
      `secret ${secretId(ref)} is invalid: ${formatIssues(result.error.issues).join('; ')}`,
      { data: { secret: secretId(ref) } },
    );
  }
  const secret = result.data;
  return {
    hmacKeys: [secret['hmac-key'], secret['hmac-key-previous']].filter(
      (key): key is string => key !== undefined,
    ),
    ...(secret.token === undefined ? {} : { token: secret.token }),
    ...(secret.username === undefined || secret.password === undefined
      ? {}
      : { git: { username: secret.username, password: secret.password } }),
  };
};
