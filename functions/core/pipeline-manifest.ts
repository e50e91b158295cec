import { type Document, parseAllDocuments } from 'yaml';
import * as z from 'zod';
import { refuseInsecureUrl } from './http.ts';
import { branchNameProblem, dns1123LabelProblem, dns1123SubdomainProblem } from './names.ts';
import {
  type Environment,
  type HostedRepository,
  PIPELINE_API_VERSION,
  type Pipeline,
  PROVIDERS,
  type Promotion,
  type PromotionStrategy,
  type Provider,
} from './pipeline.ts';
import { closestName, parsePipelineSettings } from './pipeline-settings.ts';
import { formatPath } from './validation.ts';
import { measureYamlDocument, splitYamlDocuments } from './yaml-documents.ts';

/*
 * Weave `pipelines.weave.works/v1alpha1` Pipeline manifests, in the shipped shape and the RFC
 * draft shape, normalised into the internal model (DESIGN.md section 3).
 */

export { PIPELINE_API_VERSION } from './pipeline.ts';

const name = z
  .string({ error: 'expected a non-empty string' })
  .min(1, 'expected a non-empty string');

/** A non-empty string that also passes `rule` (names.ts), whose message says what was expected. */
const ruled = (rule: (value: string) => string | undefined) =>
  name.superRefine((value, context) => {
    // The empty string is already reported by `name`.
    const problem = value === '' ? undefined : rule(value);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
  });

// Kubernetes' rules: namespaces are DNS-1123 labels, object names (pipelines, secrets)
// DNS-1123 subdomains. Secret names also become Secrets Manager names and file-store keys.
const namespaceName = ruled(dns1123LabelProblem);
const objectName = ruled(dns1123SubdomainProblem);
const branchName = ruled(branchNameProblem);

// The objects of `spec` are strict: a misspelt field is reported as unknown, with the field it
// likely meant, instead of being dropped (and its absence reported as the only problem).
const secretRef = z.strictObject({ name: objectName });
/** The RFC draft writes a secretRef as a bare name. */
const looseSecretRef = z.union([objectName, secretRef], {
  error: 'expected a secret name or {name: <secret>}',
});

const pullRequestSpec = z.strictObject({
  type: z.string({ error: 'expected the provider type: github or gitlab' }),
  url: z.string({ error: 'expected the configuration repository URL' }),
  baseBranch: branchName,
  secretRef,
});

const promotionSpec = z.strictObject({
  manual: z.boolean({ error: 'expected true or false' }).optional(),
  strategy: z.strictObject(
    {
      'pull-request': pullRequestSpec.optional(),
      // Weave's schema gives the notification strategy no fields.
      notification: z.strictObject({}, { error: 'expected {}' }).nullable().optional(),
      secretRef: secretRef.optional(),
    },
    { error: 'expected a strategy with pull-request or notification' },
  ),
});

const rfcPromotionItem = z.strictObject({
  name: z.string().optional(),
  type: z.string({ error: 'expected pull-request or notification' }),
  url: z.string().optional(),
  branch: branchName.optional(),
  secretRef: looseSecretRef.optional(),
});

/**
 * Environment names end up in branch names, `NS:NAME:ENV` markers, URL paths and secret keys
 * (`hmac-key-{env}`): DNS-1123 labels, like the namespaces they usually mirror.
 */
const environmentName = ruled(dns1123LabelProblem);

const environmentSpec = z.strictObject({
  name: environmentName,
  targets: z
    .array(
      z.strictObject({
        namespace: namespaceName,
        clusterRef: z
          .strictObject({
            apiVersion: z.string().optional(),
            kind: name,
            name,
            namespace: z.string().optional(),
          })
          .optional(),
      }),
    )
    .min(1, 'expected at least one target'),
  promotion: promotionSpec.optional(),
});

const environmentList = z.array(environmentSpec).min(1, 'expected at least one environment');

// The top level and metadata stay open: kubectl's output adds status and server fields there.
const pipelineManifest = z.object({
  apiVersion: z.literal(PIPELINE_API_VERSION, { error: `expected ${PIPELINE_API_VERSION}` }),
  kind: z.literal('Pipeline', { error: 'expected Pipeline' }),
  metadata: z.object({
    name: objectName,
    namespace: namespaceName,
    // Settings (pipeline-settings.ts); other tools' annotations are ignored.
    annotations: z
      .record(z.string(), z.unknown(), { error: 'expected a mapping of annotations' })
      .nullable()
      .optional(),
  }),
  spec: z.strictObject({
    appRef: z.strictObject({
      apiVersion: name,
      kind: name,
      name,
      secretRef: looseSecretRef.optional(),
    }),
    environments: environmentList,
    // The shipped shape or the RFC draft's list: told apart before validation, so that errors
    // inside either name their field.
    promotion: z.unknown().optional(),
  }),
});

type EnvironmentSpec = z.infer<typeof environmentSpec>;
type PromotionSpec = z.infer<typeof promotionSpec>;
type RfcPromotionItem = z.infer<typeof rfcPromotionItem>;

export interface InvalidPipeline {
  /** `namespace/name` when the document has them, else `document N` of the source. */
  readonly id: string;
  readonly errors: readonly string[];
}

export interface ParsedPipelines {
  readonly pipelines: Pipeline[];
  readonly invalid: InvalidPipeline[];
}

/** The URL as it may appear in a message: any user information (a token) masked. */
const withoutCredentials = (raw: string): string => raw.replace(/\/\/[^/@]*@/, '//***@');

/** Where each provider's API lives, from the repository URL's origin (DESIGN.md 7.8, 13). */
const API_BASE: Readonly<Record<Provider, (url: URL) => string>> = {
  github: (url) =>
    url.host === 'github.com' ? 'https://api.github.com' : `${url.protocol}//${url.host}/api/v3`,
  gitlab: (url) => `${url.protocol}//${url.host}/api/v4`,
};

/**
 * The repository behind a clone URL on `provider`: `https://host/owner/repo(.git)`, or the SSH
 * forms (`git@host:owner/repo.git`, `ssh://git@host/owner/repo`) rewritten to HTTPS since git
 * runs over HTTPS with the token. GitLab's owner is a namespace that may hold subgroups
 * (`https://gitlab.com/group/subgroup/repo`). `http://` is accepted only for loopback hosts,
 * and credentials in the URL never: they belong in the secret.
 *
 * @example
 * parseRepositoryUrl('git@gitlab.com:platform/gitops/fleet.git', 'gitlab');
 * // { provider: 'gitlab', cloneUrl: 'https://gitlab.com/platform/gitops/fleet.git',
 * //   apiBaseUrl: 'https://gitlab.com/api/v4', owner: 'platform/gitops', repo: 'fleet' }
 */
export const parseRepositoryUrl = (
  raw: string,
  provider: Provider = 'github',
): HostedRepository | string => {
  const shown = JSON.stringify(withoutCredentials(raw));
  const scp = /^[\w.-]+@([\w.-]+(?::\d+)?):(?!\/)(.+)$/.exec(raw);
  let url: URL;
  try {
    url = new URL(scp ? `https://${scp[1]}/${scp[2]}` : raw);
  } catch {
    return `expected an https:// repository URL, got ${shown}`;
  }
  if (url.protocol === 'ssh:') url = new URL(`https://${url.host}${url.pathname}`);
  if (url.username !== '' || url.password !== '') {
    return `expected a repository URL without credentials, got ${shown}: put the token in the pipeline's secret`;
  }
  const refused = refuseInsecureUrl(url);
  if (refused !== undefined) return refused;
  const parts = url.pathname
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .split('/')
    .filter(Boolean);
  const repo = parts.at(-1);
  const owner = parts.slice(0, -1).join('/');
  const shape =
    provider === 'gitlab' ? parts.length >= 2 && !parts.includes('-') : parts.length === 2;
  if (!shape || repo === undefined || owner === '') {
    const expected =
      provider === 'gitlab' ? '<group>[/<subgroup>...]/<project>' : '<owner>/<repository>';
    return `expected https://${url.host}/${expected}, got ${shown}`;
  }
  return {
    provider,
    cloneUrl: `${url.protocol}//${url.host}/${owner}/${repo}.git`,
    apiBaseUrl: API_BASE[provider](url),
    owner,
    repo,
  };
};

class Issues {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const hasKey = (value: unknown, key: PropertyKey): boolean =>
  typeof value === 'object' && value !== null && Object.hasOwn(value, key);

/** What the document holds at `path`, and whether it holds anything there at all. */
const valueAt = (
  document: unknown,
  path: readonly PropertyKey[],
): { found: boolean; value?: unknown } => {
  let value = document;
  for (const key of path) {
    if (!hasKey(value, key)) return { found: false };
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return { found: true, value };
};

/** The fields the object schema at `path` of `schema` knows (empty where it is no object). */
const knownFieldsAt = (schema: z.ZodType, path: readonly PropertyKey[]): string[] => {
  let current: z.ZodType | undefined = schema;
  const unwrap = (type: z.ZodType): z.ZodType =>
    type instanceof z.ZodOptional || type instanceof z.ZodNullable
      ? unwrap(type.unwrap() as z.ZodType)
      : type;
  for (const key of path) {
    if (current === undefined) return [];
    const type = unwrap(current);
    current =
      type instanceof z.ZodObject && typeof key === 'string' && Object.hasOwn(type.shape, key)
        ? (type.shape[key] as z.ZodType)
        : type instanceof z.ZodArray && typeof key === 'number'
          ? (type.element as z.ZodType)
          : undefined;
  }
  const type = current === undefined ? undefined : unwrap(current);
  return type instanceof z.ZodObject ? Object.keys(type.shape) : [];
};

const EXPECTED_IN_WORDS: Readonly<Record<string, string>> = {
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

const inWords = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'a list'
      : typeof value === 'object'
        ? 'a mapping'
        : typeof value === 'string'
          ? 'a string'
          : typeof value === 'number' || typeof value === 'boolean'
            ? String(value)
            : typeof value;

/**
 * One line per problem, each naming its field: zod's issues for `document` (validated by
 * `schema`, found at `root` of the manifest), with unknown fields named one by one along with
 * the field they likely meant, whose absence is then not reported a second time.
 */
const describeIssues = (
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  document: unknown,
  root: readonly PropertyKey[] = [],
): string[] => {
  const explained = new Set<string>();
  const unknownFields = new Map<z.core.$ZodIssue, string[]>();
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    const known = knownFieldsAt(schema, issue.path);
    const here = valueAt(document, issue.path).value;
    const absent = known.filter((field) => !hasKey(here, field));
    unknownFields.set(
      issue,
      issue.keys.map((key) => {
        const at = formatPath([...root, ...issue.path, key]);
        const meant = closestName(key, absent);
        if (meant === undefined) {
          return `${at}: unknown field; the fields here are ${known.join(', ')}`;
        }
        explained.add(formatPath([...issue.path, meant]));
        return `${at}: unknown field; did you mean ${formatPath([...root, ...issue.path, meant])}?`;
      }),
    );
  }
  return issues.flatMap((issue) => {
    const fields = unknownFields.get(issue);
    if (fields !== undefined) return fields;
    if (explained.has(formatPath(issue.path))) return [];
    const { found, value } = valueAt(document, issue.path);
    const missing = issue.path.at(-1);
    if (!found && typeof missing === 'string') {
      // In the open objects (the top level, metadata) a misspelt field is not an issue of its own.
      const parent = issue.path.slice(0, -1);
      const known = knownFieldsAt(schema, parent);
      const here = valueAt(document, parent).value;
      const strays = isRecord(here) ? Object.keys(here).filter((key) => !known.includes(key)) : [];
      const stray = strays.find((key) => closestName(key, [missing]) !== undefined);
      if (stray !== undefined) {
        return [
          `${formatPath([...root, ...parent, stray])}: unknown field; did you mean ${formatPath([...root, ...issue.path])}?`,
        ];
      }
    }
    const at = formatPath([...root, ...issue.path]);
    let message = issue.message;
    const expected = issue.code === 'invalid_type' ? EXPECTED_IN_WORDS[issue.expected] : undefined;
    // zod's own wording ("Invalid input: expected array, received undefined"), in words.
    if (expected !== undefined && message.startsWith('Invalid input')) {
      message = found
        ? `expected ${expected}, got ${inWords(value)}`
        : `missing: expected ${expected}`;
    }
    return [at === '' ? message : `${at}: ${message}`];
  });
};

const isProvider = (type: string): type is Provider =>
  (PROVIDERS as readonly string[]).includes(type);

/** Weave's other pull-request provider: parsed, and refused in a sentence that says what works. */
const NOT_SUPPORTED_YET: readonly string[] = ['bitbucket-server'];
const SUPPORTED_PROVIDERS =
  'github (github.com and GitHub Enterprise Server) or gitlab (gitlab.com and self-managed GitLab)';

const pullRequestStrategy = (
  spec: { type: string; url: string; baseBranch: string; credentialsSecret: string },
  path: string,
  issues: Issues,
): PromotionStrategy | undefined => {
  if (!isProvider(spec.type)) {
    issues.add(
      `${path}.type`,
      NOT_SUPPORTED_YET.includes(spec.type)
        ? `pull-request type ${spec.type} is not supported yet: use ${SUPPORTED_PROVIDERS}.`
        : `expected ${SUPPORTED_PROVIDERS}, got ${JSON.stringify(spec.type)}`,
    );
    return undefined;
  }
  const repository = parseRepositoryUrl(spec.url, spec.type);
  if (typeof repository === 'string') {
    issues.add(`${path}.url`, repository);
    return undefined;
  }
  return {
    type: 'pull-request',
    repository,
    baseBranch: spec.baseBranch,
    credentialsSecret: spec.credentialsSecret,
  };
};

const shippedPromotion = (
  spec: PromotionSpec,
  path: string,
  issues: Issues,
): Promotion | undefined => {
  const { strategy } = spec;
  const pr = strategy['pull-request'];
  const hmacSecret =
    strategy.secretRef === undefined ? {} : { hmacSecret: strategy.secretRef.name };
  if (strategy.notification !== undefined && pr !== undefined) {
    issues.add(`${path}.strategy`, 'expected one strategy, pull-request or notification, not both');
    return undefined;
  }
  if (strategy.notification !== undefined) {
    return { manual: spec.manual ?? false, strategy: { type: 'notification' }, ...hmacSecret };
  }
  if (pr === undefined) {
    issues.add(`${path}.strategy`, 'expected pull-request or notification');
    return undefined;
  }
  const normalised = pullRequestStrategy(
    {
      type: pr.type,
      url: pr.url,
      baseBranch: pr.baseBranch,
      credentialsSecret: pr.secretRef.name,
    },
    `${path}.strategy.pull-request`,
    issues,
  );
  if (normalised === undefined) return undefined;
  return {
    manual: spec.manual ?? false,
    strategy: normalised,
    ...hmacSecret,
  };
};

const secretName = (ref: string | { name: string }): string =>
  typeof ref === 'string' ? ref : ref.name;

const rfcPromotion = (
  items: readonly RfcPromotionItem[],
  path: string,
  issues: Issues,
): Promotion | undefined => {
  if (items.length > 1) {
    issues.add(path, `expected one promotion, got ${items.length}`);
    return undefined;
  }
  const item = items[0];
  if (item === undefined) return undefined;
  const itemPath = `${path}[0]`;
  if (item.type === 'notification') return { manual: false, strategy: { type: 'notification' } };
  if (item.type !== 'pull-request') {
    issues.add(
      `${itemPath}.type`,
      `expected pull-request or notification, got ${JSON.stringify(item.type)}`,
    );
    return undefined;
  }
  if (item.url === undefined)
    issues.add(`${itemPath}.url`, 'expected the configuration repository URL');
  if (item.branch === undefined) issues.add(`${itemPath}.branch`, 'expected the base branch');
  if (item.secretRef === undefined) {
    issues.add(`${itemPath}.secretRef`, 'expected the secret with the API token');
  }
  if (item.url === undefined || item.branch === undefined || item.secretRef === undefined) {
    return undefined;
  }
  const strategy = pullRequestStrategy(
    {
      type: 'github',
      url: item.url,
      baseBranch: item.branch,
      credentialsSecret: secretName(item.secretRef),
    },
    itemPath,
    issues,
  );
  return strategy === undefined ? undefined : { manual: false, strategy };
};

const rfcPromotionList = z.array(rfcPromotionItem).min(1, 'expected at least one promotion');

const defaultPromotion = (raw: unknown, issues: Issues): Promotion | undefined => {
  if (raw === undefined) return undefined;
  const root = ['spec', 'promotion'];
  if (Array.isArray(raw)) {
    const list = rfcPromotionList.safeParse(raw);
    if (list.success) return rfcPromotion(list.data, 'spec.promotion', issues);
    issues.list.push(...describeIssues(rfcPromotionList, list.error.issues, raw, root));
    return undefined;
  }
  const shipped = promotionSpec.safeParse(raw);
  if (shipped.success) return shippedPromotion(shipped.data, 'spec.promotion', issues);
  issues.list.push(...describeIssues(promotionSpec, shipped.error.issues, raw, root));
  return undefined;
};

const normaliseEnvironments = (
  specs: readonly EnvironmentSpec[],
  hasDefaultPromotion: boolean,
  issues: Issues,
): Environment[] => {
  const seen = new Set<string>();
  return specs.map((environment, index): Environment => {
    const path = `spec.environments[${index}]`;
    if (seen.has(environment.name)) {
      issues.add(`${path}.name`, `duplicate environment ${JSON.stringify(environment.name)}`);
    }
    seen.add(environment.name);
    const override =
      environment.promotion === undefined
        ? undefined
        : shippedPromotion(environment.promotion, `${path}.promotion`, issues);
    if (index > 0 && override === undefined && !hasDefaultPromotion) {
      issues.add(
        'spec.promotion',
        `expected a promotion strategy for environment ${JSON.stringify(environment.name)} (spec.promotion, or ${path}.promotion)`,
      );
    }
    return {
      name: environment.name,
      targets: environment.targets.map((target) => ({
        namespace: target.namespace,
        ...(target.clusterRef === undefined
          ? {}
          : {
              clusterRef: {
                kind: target.clusterRef.kind,
                name: target.clusterRef.name,
                ...(target.clusterRef.namespace === undefined
                  ? {}
                  : { namespace: target.clusterRef.namespace }),
              },
            }),
      })),
      ...(override === undefined ? {} : { promotion: override }),
    };
  });
};

/** The field `name` of `value`, or of a misspelling of it (reported as an unknown field). */
const fieldOrLikely = (value: unknown, name: string): unknown => {
  if (!isRecord(value)) return undefined;
  if (value[name] !== undefined) return value[name];
  const likely = Object.keys(value).find((key) => closestName(key, [name]) !== undefined);
  return likely === undefined ? undefined : value[likely];
};

/**
 * Whether the spec names an HMAC secret at all, valid or not (a bad or misspelt one has its own
 * message): `spec.promotion.strategy.secretRef`, or `spec.appRef.secretRef` in the RFC shape.
 */
const namesHmacSecret = (spec: Record<string, unknown>): boolean => {
  const at = (path: readonly string[]): unknown =>
    path.reduce<unknown>((value, name) => fieldOrLikely(value, name), spec);
  return (
    at(['appRef', 'secretRef']) !== undefined ||
    at(['promotion', 'strategy', 'secretRef']) !== undefined
  );
};

const NO_HMAC_SECRET =
  'expected the secret holding the webhook HMAC key (hmac-key): the webhook refuses unsigned events. ' +
  'Add spec.promotion.strategy.secretRef: {name: <secret>} (or spec.appRef.secretRef in the RFC shape)';

const NOTICES_UNSIGNED =
  "the notification strategy signs its notices with the pipeline's hmac-key, so it needs the HMAC secret too (spec.promotion.strategy.secretRef)";

/** Where a notification strategy is chosen: the default promotion's, each environment's own. */
const notificationPaths = (
  promotion: Promotion | undefined,
  environments: readonly Environment[] | undefined,
): string[] => [
  ...(promotion?.strategy.type === 'notification' ? ['spec.promotion.strategy.notification'] : []),
  ...(environments ?? []).flatMap((environment, index) =>
    environment.promotion?.strategy.type === 'notification'
      ? [`spec.environments[${index}].promotion.strategy.notification`]
      : [],
  ),
];

/**
 * Every problem of one manifest at once (DESIGN.md section 3): the schema's, the promotion's,
 * the HMAC secret's and the settings' are looked for even when another part is invalid.
 */
const normalise = (document: unknown): Pipeline | Issues => {
  const issues = new Issues();
  const manifest = pipelineManifest.safeParse(document);
  if (!manifest.success) {
    issues.list.push(...describeIssues(pipelineManifest, manifest.error.issues, document));
  }
  const raw = isRecord(document) ? document : {};
  const spec = isRecord(raw.spec) ? raw.spec : undefined;
  const metadata = isRecord(raw.metadata) ? raw.metadata : undefined;

  const promotion = spec === undefined ? undefined : defaultPromotion(spec.promotion, issues);
  const environmentSpecs = manifest.success
    ? manifest.data.spec.environments
    : environmentList.safeParse(spec?.environments).data;
  const environments =
    environmentSpecs === undefined
      ? undefined
      : normaliseEnvironments(environmentSpecs, spec?.promotion !== undefined, issues);
  if (spec !== undefined && !namesHmacSecret(spec)) {
    issues.add('spec.promotion.strategy.secretRef', NO_HMAC_SECRET);
    // Its notices are signed with that key too (DESIGN.md section 13): say so where it is used.
    for (const path of notificationPaths(promotion, environments)) {
      issues.add(path, NOTICES_UNSIGNED);
    }
  }
  const annotations = manifest.success
    ? manifest.data.metadata.annotations
    : isRecord(metadata?.annotations)
      ? metadata.annotations
      : undefined;
  const { settings, problems } = parsePipelineSettings(annotations, environments);
  issues.list.push(...problems);

  if (!manifest.success || environments === undefined || issues.list.length > 0) return issues;
  const { metadata: valid, spec: validSpec } = manifest.data;
  const hmacSecret =
    promotion?.hmacSecret ??
    (validSpec.appRef.secretRef === undefined ? undefined : secretName(validSpec.appRef.secretRef));
  if (hmacSecret === undefined) {
    issues.add('spec.promotion.strategy.secretRef', NO_HMAC_SECRET);
    return issues;
  }
  return {
    namespace: valid.namespace,
    name: valid.name,
    app: {
      apiVersion: validSpec.appRef.apiVersion,
      kind: validSpec.appRef.kind,
      name: validSpec.appRef.name,
    },
    hmacSecret,
    environments,
    ...(promotion === undefined ? {} : { promotion }),
    ...(settings === undefined ? {} : { settings }),
  };
};

const idOf = (document: unknown, fallback: string): string => {
  const metadata = (document as { metadata?: { namespace?: unknown; name?: unknown } } | null)
    ?.metadata;
  return typeof metadata?.namespace === 'string' && typeof metadata.name === 'string'
    ? `${metadata.namespace}/${metadata.name}`
    : fallback;
};

/** Validates one decoded manifest object. */
export const parsePipelineObject = (
  document: unknown,
  fallbackId = 'pipeline',
): Pipeline | InvalidPipeline => {
  const id = idOf(document, fallbackId);
  const normalised = normalise(document);
  return normalised instanceof Issues ? { id, errors: normalised.list } : normalised;
};

export const isInvalidPipeline = (value: Pipeline | InvalidPipeline): value is InvalidPipeline =>
  'errors' in value;

/** Nesting deeper than this is refused before parsing; a Pipeline nests about 8 levels. */
export const MAX_MANIFEST_DEPTH = 64;
/** The yaml library's own default, kept on purpose: it stops alias bombs (billion laughs). */
export const MAX_ALIAS_COUNT = 100;
/**
 * YAML tokens one text may hold, over all its documents: what the parser's time and memory grow
 * with. 4 MiB of `kubectl get pipelines -o yaml` (2,400 pipelines) has about 390,000; the same
 * size of `[1,1,1,...` has four million and takes the parser 2 GiB.
 */
export const MAX_MANIFEST_TOKENS = 500_000;
/** Documents and List items one text may hold: 4 MiB of real pipelines is about 2,500. */
export const MAX_MANIFEST_ITEMS = 10_000;
/** Invalid items listed one by one; past this, one last entry counts the others. */
export const MAX_REPORTED_INVALID = 100;
const MAX_ERRORS_PER_ITEM = 10;
const MAX_ERROR_LENGTH = 500;
const MAX_ID_LENGTH = 300;

const clip = (text: string, limit: number): string =>
  text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length - limit} more characters)`;

/** Bounded, so that the answer to a hostile body stays small whatever the body holds. */
const boundedErrors = (errors: readonly string[]): string[] => {
  const shown = errors.slice(0, MAX_ERRORS_PER_ITEM).map((error) => clip(error, MAX_ERROR_LENGTH));
  const more = errors.length - shown.length;
  return more > 0 ? [...shown, `… and ${more} more errors`] : shown;
};

/** A yaml error message with its line counted from the start of the whole text. */
const atTextLine = (message: string, firstLine: number): string =>
  firstLine === 0
    ? message
    : message.replace(
        / at line (\d+), column/,
        (_match, line: string) => ` at line ${Number(line) + firstLine}, column`,
      );

const ALIAS_BOMB = /alias/i;

/**
 * Every pipeline in a YAML or JSON text: single documents, multi-document YAML and Kubernetes
 * `List` objects (what `kubectl get pipelines.pipelines.weave.works -A -o yaml|json` prints).
 * Each document is read by itself: one nested deeper than `MAX_MANIFEST_DEPTH` (measured before
 * parsing), an alias bomb or invalid YAML is reported as an invalid item for that document, and
 * the others are read all the same. The whole text is bounded too (`MAX_MANIFEST_TOKENS`,
 * `MAX_MANIFEST_ITEMS`): what is past a bound is reported, not read. Nothing in the text makes
 * it throw, and the report stays small (`MAX_REPORTED_INVALID`).
 */
export const parsePipelineManifests = (text: string, source = 'input'): ParsedPipelines => {
  const pipelines: Pipeline[] = [];
  const invalid: InvalidPipeline[] = [];
  const report = (id: string, errors: readonly string[], where: string): void => {
    invalid.push({ id: id.length > MAX_ID_LENGTH ? where : id, errors: boundedErrors(errors) });
  };
  let items = 0;
  const take = (document: unknown, where: string): void => {
    items += 1;
    if (items > MAX_MANIFEST_ITEMS) return;
    const parsed = parsePipelineObject(document, where);
    if (isInvalidPipeline(parsed)) report(parsed.id, parsed.errors, where);
    else pipelines.push(parsed);
  };
  const read = (document: Document.Parsed, where: string, firstLine: number): void => {
    if (document.errors.length > 0) {
      const errors = document.errors.map((error) => atTextLine(error.message, firstLine));
      report(where, errors, where);
      return;
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      report(
        where,
        [
          ALIAS_BOMB.test(message)
            ? `its aliases expand past the limit (maxAliasCount ${MAX_ALIAS_COUNT}): an alias bomb, not read`
            : `not readable: ${message}`,
        ],
        where,
      );
      return;
    }
    if (value === null || value === undefined) return;
    const list = value as { kind?: unknown; items?: unknown };
    if (list.kind === 'List' || list.kind === 'PipelineList') {
      if (!Array.isArray(list.items)) {
        report(where, ['items: expected a list of Pipeline objects'], where);
        return;
      }
      list.items.forEach((item, itemIndex) => {
        take(item, `${where} items[${itemIndex}]`);
      });
      return;
    }
    take(value, where);
  };

  const documents = splitYamlDocuments(text);
  let number = 0;
  let tokensLeft = MAX_MANIFEST_TOKENS;
  for (const [index, document] of documents.entries()) {
    if (!document.hasContent) {
      number += 1;
      continue;
    }
    const measure = measureYamlDocument(document.text, MAX_MANIFEST_DEPTH, tokensLeft);
    const refused =
      measure.depth > MAX_MANIFEST_DEPTH
        ? `it nests more than ${MAX_MANIFEST_DEPTH} levels deep (brackets or indentation)`
        : measure.tokens > tokensLeft
          ? `it takes the input past ${MAX_MANIFEST_TOKENS} YAML tokens (sync fewer pipelines at a time)`
          : undefined;
    if (refused !== undefined) {
      number += 1;
      const where = `${source} document ${number}`;
      report(
        where,
        [`not parsed: ${refused}; the document starts at line ${document.firstLine + 1}`],
        where,
      );
      if (measure.tokens > tokensLeft) {
        const rest = documents.slice(index + 1).filter((next) => next.hasContent).length;
        if (rest > 0) {
          report(
            `${source}: ${rest} more document${rest === 1 ? '' : 's'}`,
            [`not read: the input is over ${MAX_MANIFEST_TOKENS} YAML tokens`],
            where,
          );
        }
        break;
      }
      continue;
    }
    tokensLeft -= measure.tokens;
    for (const parsed of parseAllDocuments(document.text)) {
      number += 1;
      const where = `${source} document ${number}`;
      try {
        read(parsed, where, document.firstLine);
      } catch (error) {
        report(
          where,
          [`not readable: ${error instanceof Error ? error.message : String(error)}`],
          where,
        );
      }
    }
    if (items > MAX_MANIFEST_ITEMS) {
      report(
        `${source}: more than ${MAX_MANIFEST_ITEMS} items`,
        [
          `the items after the first ${MAX_MANIFEST_ITEMS} (documents and List items) are not read: sync fewer pipelines at a time`,
        ],
        source,
      );
      break;
    }
  }

  const seen = new Map<string, number>();
  for (const pipeline of pipelines) {
    const id = `${pipeline.namespace}/${pipeline.name}`;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  const duplicates = [...seen].filter(([, count]) => count > 1).map(([id]) => id);
  const duplicated = new Set(duplicates);
  const all: ParsedPipelines =
    duplicates.length === 0
      ? { pipelines, invalid }
      : {
          pipelines: pipelines.filter(
            (pipeline) => !duplicated.has(`${pipeline.namespace}/${pipeline.name}`),
          ),
          invalid: [
            ...invalid,
            ...duplicates.map((id) => ({ id, errors: ['defined more than once in the input'] })),
          ],
        };
  if (all.invalid.length <= MAX_REPORTED_INVALID) return all;
  const more = all.invalid.length - (MAX_REPORTED_INVALID - 1);
  return {
    pipelines: all.pipelines,
    invalid: [
      ...all.invalid.slice(0, MAX_REPORTED_INVALID - 1),
      {
        // Not a namespace/name: a sync's prune deletes nothing while it is in the answer.
        id: `${source}: ${more} more invalid items`,
        errors: [
          `not listed one by one (at most ${MAX_REPORTED_INVALID} are): fix the ones above first`,
        ],
      },
    ],
  };
};

/** Error text for one invalid pipeline: its id, then each field path and what was expected. */
export const describeInvalidPipeline = (invalid: InvalidPipeline): string =>
  `pipeline ${invalid.id} is invalid:\n${invalid.errors.map((error) => `  - ${error}`).join('\n')}`;
