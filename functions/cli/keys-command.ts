import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { FilePipelineStore } from '../adapters/file-pipeline-store.ts';
import { silentLogger } from '../core/logger.ts';
import { dns1123LabelProblem, dns1123SubdomainProblem } from '../core/names.ts';
import { type Pipeline, type PipelineRef, pipelineId, webhookSecretFor } from '../core/pipeline.ts';
import { describeInvalidPipeline } from '../core/pipeline-manifest.ts';
import { DEFAULT_SECRET_PREFIX, environmentKeyName } from '../core/pipeline-secret.ts';

export const KEYS_USAGE = `promoter keys NAMESPACE/NAME (--envs ENV,ENV,... | --pipelines PATH) [--secret NAME]
              [--provider-secret NAME] [--token-placeholder] [--out FILE]
  Prints a pipeline secret with fresh random webhook keys (32 random bytes, base64url): one
  hmac-key-{env} per environment, held by that environment's clusters only, and the shared
  hmac-key, which signs approvals and no leaf cluster holds. Then, for each environment (each
  target namespace with --pipelines), the Kubernetes Secret of its Flux generic-hmac Provider
  (stringData.token: that environment's key), to apply on that environment's cluster.
  --envs               the pipeline's environments, in order.
  --pipelines PATH     read them (and their target namespaces) from a Pipeline manifest file or
                       a directory of them, as promoter serve --pipelines does.
  --secret NAME        the pipeline secret's name, for the instructions (default with
                       --pipelines: the pipeline's webhook secretRef).
  --provider-secret    the Provider's Secret name (default promoter-webhook).
  --token-placeholder  add "token": "<GitHub token>" to the secret, to fill in.
  --out FILE           write the secret JSON to FILE (mode 0600, never overwritten) instead of
                       standard output; standard output then has the Provider Secrets only.`;

/** 32 random bytes (256 bits, twice the minimum a secret accepts), base64url: no quoting. */
const KEY_BYTES = 32;
export const DEFAULT_PROVIDER_SECRET = 'promoter-webhook';
export const TOKEN_PLACEHOLDER = '<GitHub token>';

/** A fresh webhook key. */
export const randomKey = (): string => randomBytes(KEY_BYTES).toString('base64url');

export interface KeySetEnvironment {
  readonly name: string;
  /** Where its Provider lives: its target namespaces (and clusters), when known. */
  readonly targets?: readonly { readonly namespace: string; readonly cluster?: string }[];
}

export interface KeySetRequest {
  readonly pipeline: PipelineRef;
  readonly environments: readonly KeySetEnvironment[];
  readonly secretName?: string;
  readonly providerSecretName?: string;
  readonly tokenPlaceholder?: boolean;
  /** Tests may pass their own; a fresh random key by default. */
  readonly newKey?: () => string;
}

export interface ProviderSecret {
  readonly environment: string;
  readonly namespace?: string;
  readonly cluster?: string;
  readonly manifest: Readonly<Record<string, unknown>>;
}

export interface KeySet {
  /** The pipeline secret's JSON value: `hmac-key`, `hmac-key-{env}` each, maybe `token`. */
  readonly secret: Readonly<Record<string, string>>;
  readonly providerSecrets: readonly ProviderSecret[];
}

/**
 * Why these environments cannot each get a key, or undefined: every name a DNS-1123 label, none
 * twice, and none `previous` (`hmac-key-previous` is the shared key's rotation slot).
 */
const environmentsProblem = (names: readonly string[]): string | undefined => {
  if (names.length === 0) return 'expected at least one environment';
  for (const name of names) {
    const problem = dns1123LabelProblem(name);
    if (problem !== undefined) return `environment: ${problem}`;
    if (name === 'previous') {
      return 'environment "previous" cannot have a key of its own: hmac-key-previous is the shared key\'s previous value';
    }
  }
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  return duplicate === undefined
    ? undefined
    : `environment ${JSON.stringify(duplicate)} is listed twice`;
};

/**
 * A pipeline secret with a fresh key per environment and a shared approval key, and the Provider
 * Secret of each environment's clusters (DESIGN.md section 4).
 *
 * @example
 * const keys = createKeySet({
 *   pipeline: { namespace: 'flux-system', name: 'podinfo' },
 *   environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod' }],
 * });
 * keys.secret['hmac-key-dev']; // also keys.providerSecrets[0].manifest.stringData.token
 */
export const createKeySet = (request: KeySetRequest): KeySet => {
  const problem = environmentsProblem(request.environments.map((environment) => environment.name));
  if (problem !== undefined) throw new Error(problem);
  const newKey = request.newKey ?? randomKey;
  const secret: Record<string, string> = { 'hmac-key': newKey() };
  const providerSecrets: ProviderSecret[] = [];
  for (const environment of request.environments) {
    const key = newKey();
    secret[environmentKeyName(environment.name)] = key;
    const places: readonly { namespace?: string; cluster?: string }[] =
      environment.targets === undefined || environment.targets.length === 0
        ? [{}]
        : environment.targets;
    const seen = new Set<string>();
    for (const place of places) {
      const where = `${place.cluster ?? ''}/${place.namespace ?? ''}`;
      if (seen.has(where)) continue;
      seen.add(where);
      providerSecrets.push({
        environment: environment.name,
        ...(place.namespace === undefined ? {} : { namespace: place.namespace }),
        ...(place.cluster === undefined ? {} : { cluster: place.cluster }),
        manifest: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name: request.providerSecretName ?? DEFAULT_PROVIDER_SECRET,
            ...(place.namespace === undefined ? {} : { namespace: place.namespace }),
            labels: { 'app.kubernetes.io/managed-by': 'pipeline-promoter' },
            // Annotations: a pipeline name may be longer than a label value.
            annotations: {
              'pipeline-promoter/pipeline': pipelineId(request.pipeline),
              'pipeline-promoter/environment': environment.name,
            },
          },
          type: 'Opaque',
          // Flux's generic-hmac Provider reads its HMAC key from the `token` key.
          stringData: { token: key },
        },
      });
    }
  }
  if (request.tokenPlaceholder === true) secret.token = TOKEN_PLACEHOLDER;
  return { secret, providerSecrets };
};

/** The secret's JSON, as Secrets Manager and serve's `--secrets` file hold it. */
export const formatSecretJson = (keys: KeySet): string =>
  `${JSON.stringify(keys.secret, null, 2)}\n`;

const secretInstructions = (request: KeySetRequest): string => {
  const { namespace } = request.pipeline;
  const name = request.secretName ?? 'S';
  return [
    `# The webhook keys of ${pipelineId(request.pipeline)}, for its webhook secret${request.secretName === undefined ? ' (secretRef S)' : ''}:`,
    `# Secrets Manager ${DEFAULT_SECRET_PREFIX}${namespace}/${name}, or "${namespace}/${name}" in promoter serve --secrets.`,
    '# hmac-key signs approvals: give it to no leaf cluster. Each hmac-key-{env} goes to that',
    "# environment's clusters only, in the Provider Secret below.",
  ].join('\n');
};

/** The Provider Secrets as one multi-document YAML text, each saying where it goes. */
export const formatProviderSecrets = (keys: KeySet, request: KeySetRequest): string =>
  keys.providerSecrets
    .map((provider) => {
      const cluster = provider.cluster === undefined ? '' : ` (cluster ${provider.cluster})`;
      const namespace =
        provider.namespace === undefined
          ? `\n# Apply it in the namespace of the ${provider.environment} Provider (kubectl apply -n NAMESPACE -f -).`
          : '';
      return (
        `# ${provider.environment}${cluster}: apply on the ${provider.environment} cluster, for the Provider whose` +
        `\n# address ends in /promotion/${request.pipeline.namespace}/${request.pipeline.name}/${provider.environment}.${namespace}\n` +
        stringify(provider.manifest)
      );
    })
    .join('---\n');

const parseRef = (text: string | undefined): PipelineRef => {
  if (text === undefined) throw new Error('expected the pipeline as NAMESPACE/NAME');
  const [namespace, name, ...rest] = text.split('/');
  if (namespace === undefined || name === undefined || rest.length > 0) {
    throw new Error(`expected the pipeline as NAMESPACE/NAME, got ${JSON.stringify(text)}`);
  }
  const namespaceProblem = dns1123LabelProblem(namespace);
  if (namespaceProblem !== undefined) throw new Error(`namespace: ${namespaceProblem}`);
  const nameProblem = dns1123SubdomainProblem(name);
  if (nameProblem !== undefined) throw new Error(`name: ${nameProblem}`);
  return { namespace, name };
};

const loadPipeline = async (path: string, ref: PipelineRef): Promise<Pipeline> => {
  const store = await FilePipelineStore.load(path, silentLogger);
  const pipeline = await store.get(ref);
  if (pipeline !== undefined) return pipeline;
  const invalid = store.invalid().find((entry) => entry.id === pipelineId(ref));
  throw new Error(
    invalid === undefined
      ? `no pipeline ${pipelineId(ref)} in ${path}`
      : describeInvalidPipeline(invalid),
  );
};

/** The request of `--pipelines`: environments, their targets, and the webhook secret's name. */
const fromPipeline = (pipeline: Pipeline, secretName: string | undefined) => {
  const secret = secretName ?? pipeline.hmacSecret;
  const elsewhere = pipeline.environments
    .map((environment) => ({
      environment: environment.name,
      secret: webhookSecretFor(pipeline, environment.name),
    }))
    .filter((entry) => entry.secret !== secret);
  return {
    secretName: secret,
    environments: pipeline.environments.map((environment) => ({
      name: environment.name,
      targets: environment.targets.map((target) => ({
        namespace: target.namespace,
        ...(target.clusterRef === undefined ? {} : { cluster: target.clusterRef.name }),
      })),
    })),
    notes: elsewhere.map(
      (entry) =>
        `note: events from ${entry.environment} are verified with secret ${pipeline.namespace}/${entry.secret} (the secretRef of the promotion they trigger): put ${environmentKeyName(entry.environment)} in that secret`,
    ),
  };
};

/** `promoter keys`: prints a fresh set of webhook keys; resolves to the exit status. */
export const keysCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      envs: { type: 'string' },
      pipelines: { type: 'string' },
      secret: { type: 'string' },
      'provider-secret': { type: 'string' },
      'token-placeholder': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${KEYS_USAGE}\n`);
    return 0;
  }
  const [refText, ...extra] = positionals;
  if (extra.length > 0) throw new Error(`unexpected argument ${JSON.stringify(extra[0])}`);
  const pipeline = parseRef(refText);
  if ((values.envs === undefined) === (values.pipelines === undefined)) {
    throw new Error('expected either --envs ENV,ENV,... or --pipelines PATH');
  }
  for (const [flag, value] of [
    ['--secret', values.secret],
    ['--provider-secret', values['provider-secret']],
  ] as const) {
    const problem = value === undefined ? undefined : dns1123SubdomainProblem(value);
    if (problem !== undefined) throw new Error(`${flag}: ${problem}`);
  }

  let environments: KeySetEnvironment[];
  let secretName = values.secret;
  if (values.pipelines !== undefined) {
    const found = fromPipeline(await loadPipeline(values.pipelines, pipeline), values.secret);
    environments = found.environments;
    secretName = found.secretName;
    for (const note of found.notes) process.stderr.write(`${note}\n`);
  } else {
    environments = (values.envs ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '')
      .map((name) => ({ name }));
  }
  const request: KeySetRequest = {
    pipeline,
    environments,
    ...(secretName === undefined ? {} : { secretName }),
    ...(values['provider-secret'] === undefined
      ? {}
      : { providerSecretName: values['provider-secret'] }),
    tokenPlaceholder: values['token-placeholder'],
  };
  const keys = createKeySet(request);
  const providers = formatProviderSecrets(keys, request);
  if (values.out !== undefined) {
    try {
      await writeFile(values.out, formatSecretJson(keys), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      const exists = (error as NodeJS.ErrnoException).code === 'EEXIST';
      throw new Error(
        exists
          ? `--out: ${values.out} exists: not overwritten (its keys may be in use)`
          : `--out: cannot write ${values.out}: ${(error as Error).message}`,
      );
    }
    process.stdout.write(
      `${secretInstructions(request).replace('# The webhook keys', `# ${values.out} holds the webhook keys`)}\n${providers}`,
    );
    return 0;
  }
  process.stdout.write(
    `${secretInstructions(request)}\n${formatSecretJson(keys)}---\n${providers}`,
  );
  return 0;
};
