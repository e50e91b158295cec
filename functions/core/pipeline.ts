/*
 * The internal pipeline model every shell and adapter works with, normalised from the Weave
 * `Pipeline` shapes in pipeline-manifest.ts. Nothing here knows where a pipeline came from.
 */

/** Weave's Pipeline API: what manifests declare, and what notices name their object with. */
export const PIPELINE_API_VERSION = 'pipelines.weave.works/v1alpha1';

export interface PipelineRef {
  readonly namespace: string;
  readonly name: string;
}

export interface AppRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
}

export interface ClusterRef {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface Target {
  readonly namespace: string;
  readonly clusterRef?: ClusterRef;
}

/** The hosts a pull-request promotion can go to (`pull-request.type`). */
export const PROVIDERS = ['github', 'gitlab'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** A configuration repository on a git host, and where that host's API is. */
export interface HostedRepository {
  /** Which API opens the pull (merge) requests: the PullRequests adapter of that provider. */
  readonly provider: Provider;
  /** `https://host/owner/repo.git` (or `http://` on loopback): what git fetches and pushes. */
  readonly cloneUrl: string;
  /**
   * GitHub: `https://api.github.com` or GitHub Enterprise Server's `{scheme}://{host}/api/v3`;
   * GitLab: `{scheme}://{host}/api/v4`.
   */
  readonly apiBaseUrl: string;
  /** GitHub's owner; GitLab's namespace, which may hold subgroups (`group/subgroup`). */
  readonly owner: string;
  readonly repo: string;
}

/** `owner/repo`: GitHub's full name, GitLab's project path (its URL-encoded project id). */
export const repositoryPath = (repository: Pick<HostedRepository, 'owner' | 'repo'>): string =>
  `${repository.owner}/${repository.repo}`;

export interface PullRequestStrategy {
  readonly type: 'pull-request';
  readonly repository: HostedRepository;
  readonly baseBranch: string;
  /** Secret name (in the pipeline's namespace) with the `token` (and optional git credentials). */
  readonly credentialsSecret: string;
}

/**
 * Weave's `strategy.notification: {}`: no pull request; the promotion is handed to a system
 * outside (DESIGN.md section 13) as a `Promotion` notice, and completes when the target
 * environment reports the revision.
 */
export interface NotificationStrategy {
  readonly type: 'notification';
}

export type PromotionStrategy = PullRequestStrategy | NotificationStrategy;

export interface Promotion {
  readonly manual: boolean;
  readonly strategy: PromotionStrategy;
  /** Secret name with the webhook `hmac-key`, when this promotion names its own. */
  readonly hmacSecret?: string;
}

export interface Environment {
  readonly name: string;
  readonly targets: readonly Target[];
  /** Overrides the pipeline's promotion for promotions *into* this environment. */
  readonly promotion?: Promotion;
}

export interface Pipeline extends PipelineRef {
  readonly app: AppRef;
  /** Secret name (in the pipeline's namespace) with the webhook `hmac-key`. */
  readonly hmacSecret: string;
  readonly environments: readonly Environment[];
  readonly promotion?: Promotion;
  /** From the `pipeline-promoter/*` annotations; absent when there are none. */
  readonly settings?: PipelineSettings;
}

export const pipelineId = (ref: PipelineRef): string => `${ref.namespace}/${ref.name}`;

export const findEnvironment = (pipeline: Pipeline, name: string): Environment | undefined =>
  pipeline.environments.find((environment) => environment.name === name);

/** The environment after `name`, or undefined when `name` is the last one (or unknown). */
export const nextEnvironment = (pipeline: Pipeline, name: string): Environment | undefined => {
  const index = pipeline.environments.findIndex((environment) => environment.name === name);
  return index < 0 ? undefined : pipeline.environments[index + 1];
};

/** The promotion that moves an application *into* `environment`: its override, else the default. */
export const promotionInto = (pipeline: Pipeline, environment: string): Promotion | undefined =>
  findEnvironment(pipeline, environment)?.promotion ?? pipeline.promotion;

/**
 * The secret with the `hmac-key` of promotions *into* `environment`: its own promotion's when it
 * names one, else the pipeline's. It approves them and signs their notices.
 */
export const hmacSecretInto = (pipeline: Pipeline, environment: string): string =>
  findEnvironment(pipeline, environment)?.promotion?.hmacSecret ?? pipeline.hmacSecret;

/**
 * The secret whose `hmac-key` signs events coming *from* `environment`: the key of the promotion
 * they trigger (into the next environment) when it names one, else the pipeline's.
 */
export const webhookSecretFor = (pipeline: Pipeline, environment: string): string => {
  const next = nextEnvironment(pipeline, environment);
  return next === undefined ? pipeline.hmacSecret : hmacSecretInto(pipeline, next.name);
};

/**
 * How many targets of an environment must report a promoting event at a revision before the
 * promotion out of it opens (annotation `pipeline-promoter/gate`, DESIGN.md section 11).
 */
export type TargetsGate =
  | { readonly kind: 'all' }
  | { readonly kind: 'any' }
  | { readonly kind: 'count'; readonly count: number };

/**
 * A weekly promotion window (`pipeline-promoter/window.{env}`), e.g. `Mon-Fri 09:00-17:00
 * Europe/Berlin`. Minutes are local to `timeZone` (IANA); `end` may be below `start` for a
 * window that runs past midnight.
 */
export interface PromotionWindow {
  /** Days the window opens on, 0 = Sunday ... 6 = Saturday. */
  readonly days: readonly number[];
  readonly startMinute: number;
  readonly endMinute: number;
  readonly timeZone: string;
  /** The annotation's value, as written: what status and errors show. */
  readonly text: string;
}

/** The settings of promotions *into* one environment, after `.{env}` suffixes override. */
export interface PromotionSettings {
  /** Counts the targets of the environment the promotion comes from. */
  readonly gate: TargetsGate;
  readonly soakMs?: number;
  readonly window?: PromotionWindow;
  readonly autoMerge: boolean;
}

/** Per annotation key, without and with an environment suffix (parsed in pipeline-settings.ts). */
export interface PipelineSettings {
  /** Settings with no suffix: every promotion. */
  readonly all: Partial<PromotionSettings>;
  /** Settings with a `.{env}` suffix, by the environment promoted into. */
  readonly into: Readonly<Record<string, Partial<PromotionSettings>>>;
}

/** The settings of promotions into `environment`: its suffixed annotations over the others. */
export const promotionSettings = (pipeline: Pipeline, environment: string): PromotionSettings => ({
  gate: { kind: 'all' },
  autoMerge: false,
  ...pipeline.settings?.all,
  ...pipeline.settings?.into[environment],
});
