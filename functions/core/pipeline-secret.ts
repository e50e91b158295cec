import * as z from 'zod/mini';
import { PromoterError } from './errors.ts';
import { refuseInsecureUrl } from './http.ts';
import { formatIssues } from './validation.ts';

/**
 * A pipeline secret's value, with Weave's keys (DESIGN.md section 4). Never log or echo one:
 * errors about a secret name its reference and the failing key, not its content.
 */

/**
 * The shortest HMAC key accepted, in UTF-8 bytes. 16 bytes is 128 bits when the key is random
 * (`promoter keys` writes 32 random bytes, base64url); shorter keys are passwords a captured
 * signed event lets anyone brute-force offline. Flux users' keys are random strings far longer.
 */
export const MIN_HMAC_KEY_BYTES = 16;

const SHARED_KEY = 'hmac-key';
const SHARED_PREVIOUS_KEY = 'hmac-key-previous';
const ENVIRONMENT_KEY_PREFIX = 'hmac-key-';
const PREVIOUS_SUFFIX = '-previous';

const bytes = new TextEncoder();

const key = z.optional(
  z
    .string({ error: 'expected a non-empty string' })
    .check(z.minLength(1, 'expected a non-empty string')),
);

const hmacKey = z.string({ error: 'expected a string' }).check(
  z.refine((value) => bytes.encode(value).byteLength >= MIN_HMAC_KEY_BYTES, {
    message: `expected an HMAC key of at least ${MIN_HMAC_KEY_BYTES} bytes (a random string, e.g. from promoter keys)`,
  }),
);

// Flux notification-controller's key names for a GitHub App (DESIGN.md section 4).
const APP_ID = 'githubAppID';
const APP_INSTALLATION_ID = 'githubAppInstallationID';
const APP_PRIVATE_KEY = 'githubAppPrivateKey';
const APP_BASE_URL = 'githubAppBaseURL';

/** A Kubernetes secret holds `"123"`; a JSON secret may hold `123`. */
const numericId = z.pipe(
  z.union([z.string(), z.number()], { error: 'expected a positive integer (e.g. "123456")' }),
  z.transform((value, context) => {
    const id = typeof value === 'number' ? value : /^[1-9][0-9]*$/.test(value) ? Number(value) : 0;
    if (Number.isSafeInteger(id) && id > 0) return id;
    context.issues.push({
      code: 'custom',
      input: value,
      message: 'expected a positive integer (e.g. "123456")',
    });
    return z.NEVER;
  }),
);

/** PKCS#1 (what GitHub hands out) or PKCS#8; the key itself is checked when it signs. */
const PEM_PRIVATE_KEY = /-----BEGIN (RSA )?PRIVATE KEY-----[\s\S]+-----END (RSA )?PRIVATE KEY-----/;

const privateKey = z.string({ error: 'expected a string' }).check(
  z.refine((value) => PEM_PRIVATE_KEY.test(value.replaceAll('\\n', '\n')), {
    message:
      'expected the GitHub App\'s private key in PEM ("-----BEGIN RSA PRIVATE KEY-----" ... "-----END RSA PRIVATE KEY-----")',
  }),
);

const apiBaseUrl = z.string({ error: 'expected a string' }).check(
  z.refine(
    (value) => {
      const url = URL.canParse(value) ? new URL(value) : undefined;
      return url !== undefined && refuseInsecureUrl(url) === undefined;
    },
    {
      message:
        'expected the GitHub API base URL, https:// (e.g. "https://github.example.com/api/v3")',
    },
  ),
);

export const pipelineSecretSchema = z
  .object({
    [SHARED_KEY]: z.optional(hmacKey),
    [SHARED_PREVIOUS_KEY]: z.optional(hmacKey),
    token: key,
    username: z.optional(z.string()),
    password: z.optional(z.string()),
    [APP_ID]: z.optional(numericId),
    [APP_INSTALLATION_ID]: z.optional(numericId),
    [APP_PRIVATE_KEY]: z.optional(privateKey),
    [APP_BASE_URL]: z.optional(apiBaseUrl),
  })
  .check(
    z.refine((secret) => (secret.username === undefined) === (secret.password === undefined), {
      message: 'expected username and password together',
      path: ['password'],
    }),
    z.refine((secret) => secret[APP_ID] !== undefined || secret[APP_PRIVATE_KEY] === undefined, {
      message: `expected ${APP_ID} with ${APP_PRIVATE_KEY}`,
      path: [APP_ID],
    }),
    z.refine(
      (secret) =>
        secret[APP_PRIVATE_KEY] !== undefined ||
        (secret[APP_ID] === undefined &&
          secret[APP_INSTALLATION_ID] === undefined &&
          secret[APP_BASE_URL] === undefined),
      {
        message: `expected ${APP_PRIVATE_KEY} with the other GitHub App keys`,
        path: [APP_PRIVATE_KEY],
      },
    ),
  );

/** `dev` in `hmac-key-dev`, `dev-previous` in `hmac-key-dev-previous`. */
const ENVIRONMENT_KEY_SUFFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface PipelineSecret {
  /** The shared keys: `hmac-key`, then `hmac-key-previous`. */
  readonly hmacKeys: readonly string[];
  /**
   * The `hmac-key-{suffix}` values by suffix (`dev`, `dev-previous`); absent when there are
   * none. Read through webhookKeys, which knows the environment.
   */
  readonly environmentHmacKeys?: ReadonlyMap<string, string>;
  readonly token?: string;
  readonly git?: { readonly username: string; readonly password: string };
  /** The GitHub App keys, when the secret has them: then used instead of `token`. */
  readonly githubApp?: GitHubApp;
}

/**
 * A GitHub App's credentials, from Flux's keys `githubAppID`, `githubAppPrivateKey`,
 * `githubAppInstallationID` and `githubAppBaseURL`.
 */
export interface GitHubApp {
  readonly appId: number;
  /** PEM. Never logged, never in an error. */
  readonly privateKey: string;
  /** Absent: looked up from the repository (`GET /repos/{owner}/{repo}/installation`). */
  readonly installationId?: number;
  /** The API base for the App's own calls (GitHub Enterprise Server); else the repository's. */
  readonly baseUrl?: string;
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

/** The secret key of an environment's own webhook key: `hmac-key-{environment}`. */
export const environmentKeyName = (environment: string): string =>
  `${ENVIRONMENT_KEY_PREFIX}${environment}`;

/** The secret key of an environment's previous webhook key, kept while rotating. */
export const environmentPreviousKeyName = (environment: string): string =>
  `${ENVIRONMENT_KEY_PREFIX}${environment}${PREVIOUS_SUFFIX}`;

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

const environmentKeys = (value: unknown, problems: string[]): Map<string, string> => {
  const found = new Map<string, string>();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return found;
  for (const [name, entry] of Object.entries(value)) {
    if (!name.startsWith(ENVIRONMENT_KEY_PREFIX) || name === SHARED_PREVIOUS_KEY) continue;
    const suffix = name.slice(ENVIRONMENT_KEY_PREFIX.length);
    if (!ENVIRONMENT_KEY_SUFFIX.test(suffix)) {
      problems.push(
        `${JSON.stringify(name)}: expected hmac-key-{environment} or hmac-key-{environment}-previous, {environment} being an environment name (a DNS-1123 label)`,
      );
      continue;
    }
    const parsed = hmacKey.safeParse(entry);
    if (parsed.success) found.set(suffix, parsed.data);
    else problems.push(...formatIssues(parsed.error.issues, [name]));
  }
  return found;
};

/**
 * Validates a secret's decoded value: Weave's keys, `hmac-key-{env}`/`hmac-key-{env}-previous`
 * per environment, and Flux's GitHub App keys (`githubAppID` with `githubAppPrivateKey`,
 * optional `githubAppInstallationID` and `githubAppBaseURL`); every HMAC key at least
 * MIN_HMAC_KEY_BYTES long. Throws INVALID_SECRET with every problem, each naming its key and
 * never a value.
 *
 * @example
 * const secret = decodePipelineSecret(
 *   { namespace: 'flux-system', name: 'promotion-credentials' },
 *   { 'hmac-key': approvalKey, 'hmac-key-dev': devKey, token },
 * );
 * webhookKeys(secret, 'dev'); // [devKey]
 */
export const decodePipelineSecret = (ref: SecretRef, value: unknown): PipelineSecret => {
  const result = pipelineSecretSchema.safeParse(value);
  const problems = result.success ? [] : formatIssues(result.error.issues);
  const perEnvironment = environmentKeys(value, problems);
  if (!result.success || problems.length > 0) {
    throw new PromoterError(
      'INVALID_SECRET',
      `secret ${secretId(ref)} is invalid: ${problems.join('; ')}`,
      { data: { secret: secretId(ref) } },
    );
  }
  const secret = result.data;
  return {
    hmacKeys: [secret[SHARED_KEY], secret[SHARED_PREVIOUS_KEY]].filter(
      (key): key is string => key !== undefined,
    ),
    ...(perEnvironment.size === 0 ? {} : { environmentHmacKeys: perEnvironment }),
    ...(secret.token === undefined ? {} : { token: secret.token }),
    ...(secret.username === undefined || secret.password === undefined
      ? {}
      : { git: { username: secret.username, password: secret.password } }),
    ...githubAppOf(secret),
  };
};

const githubAppOf = (secret: z.infer<typeof pipelineSecretSchema>): { githubApp?: GitHubApp } => {
  const appId = secret[APP_ID];
  const key = secret[APP_PRIVATE_KEY];
  if (appId === undefined || key === undefined) return {};
  const installationId = secret[APP_INSTALLATION_ID];
  const baseUrl = secret[APP_BASE_URL];
  return {
    githubApp: {
      appId,
      // Keys pasted into one line of an env file or JSON often carry `\n` for their newlines.
      privateKey: key.replaceAll('\\n', '\n'),
      ...(installationId === undefined ? {} : { installationId }),
      ...(baseUrl === undefined ? {} : { baseUrl: baseUrl.replace(/\/+$/, '') }),
    },
  };
};

/**
 * True when the secret holds keys of `environment`'s own (`hmac-key-{env}` or its
 * `-previous`). An environment named `previous` never has: `hmac-key-previous` is the shared
 * key's rotation slot.
 */
export const hasEnvironmentKeys = (secret: PipelineSecret, environment: string): boolean =>
  environment !== 'previous' &&
  (secret.environmentHmacKeys?.has(environment) === true ||
    secret.environmentHmacKeys?.has(`${environment}${PREVIOUS_SUFFIX}`) === true);

/**
 * The keys that verify `POST /promotion/{ns}/{name}/{environment}` (DESIGN.md sections 4, 5):
 * the environment's own `hmac-key-{env}` and `hmac-key-{env}-previous` when the secret has
 * either, and then only those (one leaf cluster's key cannot sign another environment's
 * events); else the shared `hmac-key` and `hmac-key-previous`. Current key first.
 *
 * @example
 * webhookKeys(secret, 'staging'); // ['<hmac-key-staging>', '<hmac-key-staging-previous>']
 */
export const webhookKeys = (secret: PipelineSecret, environment: string): readonly string[] => {
  if (!hasEnvironmentKeys(secret, environment)) return secret.hmacKeys;
  return [environment, `${environment}${PREVIOUS_SUFFIX}`]
    .map((suffix) => secret.environmentHmacKeys?.get(suffix))
    .filter((key): key is string => key !== undefined);
};

/**
 * The keys that verify an approval (`POST /approval/{ns}/{name}/{env}/{revision}`, DESIGN.md
 * section 5): the pipeline's shared `hmac-key` (and `hmac-key-previous`), never an
 * environment's, so a leaf cluster's key cannot approve a promotion.
 *
 * @example
 * verifySignature(body, header, approvalKeys(secret));
 */
export const approvalKeys = (secret: PipelineSecret): readonly string[] => secret.hmacKeys;
