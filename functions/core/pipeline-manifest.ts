import { parseAllDocuments } from 'yaml';
import * as z from 'zod';
import { refuseInsecureUrl } from './http.ts';
import type {
  Environment,
  GitHubRepository,
  Pipeline,
  Promotion,
  PromotionStrategy,
} from './pipeline.ts';
import { formatIssues } from './validation.ts';

/**
 * Weave `pipelines.weave.works/v1alpha1` Pipeline manifests, in the shipped shape and the RFC
 * draft shape, normalised into the internal model (DESIGN.md section 3).
 */
export const PIPELINE_API_VERSION = 'pipelines.weave.works/v1alpha1';

const name = z
  .string({ error: 'expected a non-empty string' })
  .min(1, 'expected a non-empty string');
const secretRef = z.object({ name });
/** The RFC draft writes a secretRef as a bare name. */
const looseSecretRef = z.union([name, secretRef], {
  error: 'expected a secret name or {name: <secret>}',
});

const pullRequestSpec = z.object({
  type: z.string({ error: 'expected the provider type: github' }),
  url: z.string({ error: 'expected the configuration repository URL' }),
  baseBranch: name,
  secretRef,
});

const promotionSpec = z.object({
  manual: z.boolean().optional(),
  strategy: z.object(
    {
      'pull-request': pullRequestSpec.optional(),
      notification: z.unknown().optional(),
      secretRef: secretRef.optional(),
    },
    { error: 'expected a strategy with pull-request' },
  ),
});

const rfcPromotionItem = z.object({
  name: z.string().optional(),
  type: z.string({ error: 'expected pull-request' }),
  url: z.string().optional(),
  branch: z.string().optional(),
  secretRef: looseSecretRef.optional(),
});

/** Environment names end up in branch names and `NS:NAME:ENV` markers. */
const environmentName = name.regex(
  /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/,
  'expected letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
);

const environmentSpec = z.object({
  name: environmentName,
  targets: z
    .array(
      z.object({
        namespace: name,
        clusterRef: z.object({ kind: name, name, namespace: z.string().optional() }).optional(),
      }),
    )
    .min(1, 'expected at least one target'),
  promotion: promotionSpec.optional(),
});

const pipelineManifest = z.object({
  apiVersion: z.literal(PIPELINE_API_VERSION, { error: `expected ${PIPELINE_API_VERSION}` }),
  kind: z.literal('Pipeline', { error: 'expected Pipeline' }),
  metadata: z.object({ name, namespace: name }),
  spec: z.object({
    appRef: z.object({
      apiVersion: name,
      kind: name,
      name,
      secretRef: looseSecretRef.optional(),
    }),
    environments: z.array(environmentSpec).min(1, 'expected at least one environment'),
    // The shipped shape or the RFC draft's list: told apart before validation, so that errors
    // inside either name their field.
    promotion: z.unknown().optional(),
  }),
});

type PipelineManifest = z.infer<typeof pipelineManifest>;
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

/**
 * The GitHub repository behind a clone URL: `https://host/owner/repo(.git)`, or the SSH forms
 * (`git@host:owner/repo.git`, `ssh://git@host/owner/repo`) rewritten to HTTPS since git runs
 * over HTTPS with the token. `http://` is accepted only for loopback hosts, and credentials in
 * the URL never: they belong in the secret.
 */
export const parseGitHubRepositoryUrl = (raw: string): GitHubRepository | string => {
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
  const [owner, repo] = parts;
  if (parts.length !== 2 || owner === undefined || repo === undefined) {
    return `expected https://${url.host}/<owner>/<repository>, got ${shown}`;
  }
  const origin = `${url.protocol}//${url.host}`;
  return {
    cloneUrl: `${origin}/${owner}/${repo}.git`,
    apiBaseUrl: url.host === 'github.com' ? 'https://api.github.com' : `${origin}/api/v3`,
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

const pullRequestStrategy = (
  spec: { type: string; url: string; baseBranch: string; credentialsSecret: string },
  path: string,
  issues: Issues,
): PromotionStrategy | undefined => {
  if (spec.type !== 'github') {
    const known = ['gitlab', 'bitbucket-server'].includes(spec.type);
    issues.add(
      `${path}.type`,
      known
        ? `pull-request type ${spec.type} is not supported yet: only github (github.com and GitHub Enterprise Server) is`
        : `expected github, got ${JSON.stringify(spec.type)}`,
    );
    return undefined;
  }
  const repository = parseGitHubRepositoryUrl(spec.url);
  if (typeof repository === 'string') {
    issues.add(`${path}.url`, repository);
    return undefined;
  }
  return {
    type: 'pull-request',
    provider: 'github',
    repository,
    baseBranch: spec.baseBranch,
    credentialsSecret: spec.credentialsSecret,
  };
};

const NOTIFICATION_NOT_SUPPORTED =
  'the notification strategy is not supported yet: use pull-request';

const shippedPromotion = (
  spec: PromotionSpec,
  path: string,
  issues: Issues,
): Promotion | undefined => {
  const { strategy } = spec;
  const pr = strategy['pull-request'];
  if (strategy.notification !== undefined) {
    issues.add(`${path}.strategy.notification`, NOTIFICATION_NOT_SUPPORTED);
    return undefined;
  }
  if (pr === undefined) {
    issues.add(`${path}.strategy`, 'expected pull-request');
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
    ...(strategy.secretRef === undefined ? {} : { hmacSecret: strategy.secretRef.name }),
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
  if (item.type !== 'pull-request') {
    issues.add(
      `${itemPath}.type`,
      item.type === 'notification'
        ? NOTIFICATION_NOT_SUPPORTED
        : `expected pull-request, got ${JSON.stringify(item.type)}`,
    );
    return undefined;
  }
  if (item.url === undefined)
    issues.add(`${itemPath}.url`, 'expected the configuration repository URL');
  if (item.branch === undefined) issues.add(`${itemPath}.branch`, 'expected the base branch');
  if (item.secretRef === undefined) {
    issues.add(`${itemPath}.secretRef`, 'expected the secret with the GitHub token');
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
    issues.list.push(...formatIssues(list.error.issues, root));
    return undefined;
  }
  const shipped = promotionSpec.safeParse(raw);
  if (shipped.success) return shippedPromotion(shipped.data, 'spec.promotion', issues);
  issues.list.push(...formatIssues(shipped.error.issues, root));
  return undefined;
};

const normalise = (manifest: PipelineManifest): Pipeline | Issues => {
  const { metadata, spec } = manifest;
  const issues = new Issues();
  const issuesBefore = issues.list.length;
  const promotion = defaultPromotion(spec.promotion, issues);
  const promotionInvalid = issues.list.length > issuesBefore;

  const seen = new Set<string>();
  const environments = spec.environments.map((environment, index): Environment => {
    const path = `spec.environments[${index}]`;
    if (seen.has(environment.name)) {
      issues.add(`${path}.name`, `duplicate environment ${JSON.stringify(environment.name)}`);
    }
    seen.add(environment.name);
    const override =
      environment.promotion === undefined
        ? undefined
        : shippedPromotion(environment.promotion, `${path}.promotion`, issues);
    if (index > 0 && override === undefined && spec.promotion === undefined) {
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

  const hmacSecret =
    promotion?.hmacSecret ??
    (spec.appRef.secretRef === undefined ? undefined : secretName(spec.appRef.secretRef));
  if (hmacSecret === undefined && !promotionInvalid) {
    issues.add(
      'spec.promotion.strategy.secretRef',
      'expected the secret holding the webhook HMAC key (hmac-key): the webhook refuses unsigned events. ' +
        'Add spec.promotion.strategy.secretRef: {name: <secret>} (or spec.appRef.secretRef in the RFC shape)',
    );
  }
  if (issues.list.length > 0 || hmacSecret === undefined) return issues;
  return {
    namespace: metadata.namespace,
    name: metadata.name,
    app: { apiVersion: spec.appRef.apiVersion, kind: spec.appRef.kind, name: spec.appRef.name },
    hmacSecret,
    environments,
    ...(promotion === undefined ? {} : { promotion }),
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
  const result = pipelineManifest.safeParse(document);
  if (!result.success) return { id, errors: formatIssues(result.error.issues) };
  const normalised = normalise(result.data);
  return normalised instanceof Issues ? { id, errors: normalised.list } : normalised;
};

export const isInvalidPipeline = (value: Pipeline | InvalidPipeline): value is InvalidPipeline =>
  'errors' in value;

/**
 * Every pipeline in a YAML or JSON text: single documents, multi-document YAML and Kubernetes
 * `List` objects (what `kubectl get pipelines.pipelines.weave.works -A -o yaml|json` prints).
 */
export const parsePipelineManifests = (text: string, source = 'input'): ParsedPipelines => {
  const pipelines: Pipeline[] = [];
  const invalid: InvalidPipeline[] = [];
  const take = (document: unknown, where: string): void => {
    const parsed = parsePipelineObject(document, where);
    if (isInvalidPipeline(parsed)) invalid.push(parsed);
    else pipelines.push(parsed);
  };
  parseAllDocuments(text).forEach((document, index) => {
    const where = `${source} document ${index + 1}`;
    if (document.errors.length > 0) {
      invalid.push({ id: where, errors: document.errors.map((error) => error.message) });
      return;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return;
    const list = value as { kind?: unknown; items?: unknown };
    if (list.kind === 'List' || list.kind === 'PipelineList') {
      if (!Array.isArray(list.items)) {
        invalid.push({ id: where, errors: ['items: expected a list of Pipeline objects'] });
        return;
      }
      list.items.forEach((item, itemIndex) => {
        take(item, `${where} items[${itemIndex}]`);
      });
      return;
    }
    take(value, where);
  });
  const seen = new Map<string, number>();
  for (const pipeline of pipelines) {
    const id = `${pipeline.namespace}/${pipeline.name}`;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  const duplicates = [...seen].filter(([, count]) => count > 1).map(([id]) => id);
  if (duplicates.length === 0) return { pipelines, invalid };
  return {
    pipelines: pipelines.filter(
      (pipeline) => !duplicates.includes(`${pipeline.namespace}/${pipeline.name}`),
    ),
    invalid: [
      ...invalid,
      ...duplicates.map((id) => ({ id, errors: ['defined more than once in the input'] })),
    ],
  };
};

/** Error text for one invalid pipeline: its id, then each field path and what was expected. */
export const describeInvalidPipeline = (invalid: InvalidPipeline): string =>
  `pipeline ${invalid.id} is invalid:\n${invalid.errors.map((error) => `  - ${error}`).join('\n')}`;
