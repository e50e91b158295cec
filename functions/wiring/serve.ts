import { existsSync } from 'node:fs';
import { BackgroundNotices } from '../adapters/background-notices.ts';
import { databaseFile, openEmbeddedDatabase } from '../adapters/embedded/embedded-database.ts';
import { EmbeddedJobQueue } from '../adapters/embedded/embedded-job-queue.ts';
import { EmbeddedPromotionStateStore } from '../adapters/embedded/embedded-promotion-state-store.ts';
import { TimeoutGateTimer } from '../adapters/embedded/gate-timer.ts';
import { FilePipelineStore } from '../adapters/file-pipeline-store.ts';
import { FileSecretStore } from '../adapters/file-secret-store.ts';
import { SmartHttpConfigRepository } from '../adapters/git/smart-http-config-repository.ts';
import { GitHubAppInstallationTokens } from '../adapters/github-app-tokens.ts';
import { createGitLabMergeRequests } from '../adapters/gitlab-merge-requests.ts';
import { HttpNotices } from '../adapters/http-notices.ts';
import { MemoryMetricsSink } from '../adapters/memory-metrics-sink.ts';
import { createOctokitPullRequests } from '../adapters/octokit-pull-requests.ts';
import { routePullRequests } from '../adapters/pull-requests-by-provider.ts';
import { decisionSettings } from '../core/decision.ts';
import { errorMessage, PromoterError } from '../core/errors.ts';
import type { GitHubWebhookDependencies } from '../core/github-webhook.ts';
import type { GitLabWebhookDependencies } from '../core/gitlab-webhook.ts';
import { type LogPort, silentLogger } from '../core/logger.ts';
import type { PipelinesApiDependencies } from '../core/pipelines-api.ts';
import { type Clock, type DeadLetters, systemClock } from '../core/ports.ts';
import { type PromotionDependencies, recordDeadLetter, runPromotion } from '../core/promotion.ts';
import { type GateSweepDependencies, releaseDuePromotions } from '../core/promotion-gates.ts';
import { type ReconcileReport, runReconcileSweep } from '../core/promotion-lifecycle.ts';
import { sharedKeyWarnings } from '../core/shared-key-warnings.ts';
import type { WebhookDependencies } from '../core/webhook.ts';

/*
 * The composition root of `promoter serve`: pipelines and secrets from files; the job queue,
 * its dead letters, deployments and promotion records in one database under the data
 * directory (DESIGN.md section 12), whose in-process worker runs the same promotion core as the
 * Lambda worker.
 */

export const DEFAULT_DATA_DIR = '.promoter';
/** The reconcile sweep's period, as in the stack (DESIGN.md section 10). */
export const DEFAULT_RECONCILE_INTERVAL_SECONDS = 300;

export interface ServeSettings {
  readonly pipelinesPath: string;
  readonly secretsPath: string;
  /** Where the database lives (default `.promoter`). */
  readonly dataDir?: string;
  readonly gitCacheDir?: string;
  readonly maxEventAgeSeconds?: number;
  /** The Flux event reasons that promote (default: core/decision.ts DEFAULT_PROMOTING_REASONS). */
  readonly promotingReasons?: readonly string[];
  /** Milliseconds one second of the retry schedule lasts (tests shorten it; default 1000). */
  readonly retryUnitMs?: number;
  /** How often the queue looks for jobs put back by `promoter dead-letters retry` (ms). */
  readonly pollIntervalMs?: number;
  /** Options for the GitHub client (tests shorten its retry waits). */
  readonly github?: Parameters<typeof createOctokitPullRequests>[0];
  /** Options for the GitLab client (tests shorten its retry waits). */
  readonly gitlab?: Parameters<typeof createGitLabMergeRequests>[0];
  /**
   * Where notices go (DESIGN.md section 13): the notification strategy's hand-offs and the
   * lifecycle's changes, POSTed signed with each pipeline's `hmac-key`. Absent: none are sent.
   */
  readonly notifyUrl?: string;
  /** Options for the git client (tests shorten its retry waits). */
  readonly git?: ConstructorParameters<typeof SmartHttpConfigRepository>[0];
  /** False: jobs stay queued (the webhook benchmark measures the webhook alone). */
  readonly runWorker?: boolean;
  /** Seconds between reconcile sweeps of the open promotion PRs; 0: none (default 300). */
  readonly reconcileIntervalSeconds?: number;
  /** The time gates' and the webhook's clock (tests start it at a chosen instant). */
  readonly clock?: Clock;
}

export interface ServeApp {
  readonly webhook: WebhookDependencies;
  readonly promotion: PromotionDependencies;
  readonly queue: EmbeddedJobQueue;
  readonly pipelines: FilePipelineStore;
  readonly state: EmbeddedPromotionStateStore;
  readonly metrics: MemoryMetricsSink;
  /** The database file. */
  readonly database: string;
  /** The status API (`GET /pipelines/{ns}/{name}`); no registry: serve reads files. */
  readonly pipelinesApi: PipelinesApiDependencies;
  /** `POST /webhooks/github`. */
  readonly github: GitHubWebhookDependencies;
  /** `POST /webhooks/gitlab`. */
  readonly gitlab: GitLabWebhookDependencies;
  /** One reconcile sweep now (the timer runs them every `reconcileIntervalSeconds`). */
  reconcile(): Promise<ReconcileReport>;
  /** Stops starting jobs, waits for the running ones, closes the database. */
  close(): Promise<void>;
}

export const createServeApp = async (
  settings: ServeSettings,
  logger: LogPort,
): Promise<ServeApp> => {
  const pipelines = await FilePipelineStore.load(settings.pipelinesPath, logger);
  const secrets = await FileSecretStore.load(settings.secretsPath);
  // One key per environment is the safe set-up (DESIGN.md section 4): say so where it is not.
  for (const pipeline of pipelines.list()) {
    for (const warning of await sharedKeyWarnings(pipeline, secrets)) {
      logger.warn(warning.message, { pipeline: warning.id });
    }
  }
  const database = databaseFile(settings.dataDir ?? DEFAULT_DATA_DIR);
  const db = openEmbeddedDatabase(database);
  pipelines.watch();
  const state = new EmbeddedPromotionStateStore(db);
  const metrics = new MemoryMetricsSink();
  const clock = settings.clock ?? systemClock;
  const notices =
    settings.notifyUrl === undefined
      ? undefined
      : new BackgroundNotices(new HttpNotices({ url: settings.notifyUrl, secrets }), {
          logger,
          metrics,
        });
  const common = {
    pipelines,
    secrets,
    state,
    clock,
    metrics,
    logger,
    ...(notices === undefined ? {} : { notices }),
  };
  const queue = new EmbeddedJobQueue(db, {
    logger,
    onDeadLetter: (job, error) => recordDeadLetter(job, error, common),
    ...(settings.retryUnitMs === undefined ? {} : { retryUnitMs: settings.retryUnitMs }),
    ...(settings.pollIntervalMs === undefined ? {} : { pollIntervalMs: settings.pollIntervalMs }),
  });
  const repository = new SmartHttpConfigRepository({
    // Pack parsing off the event loop that answers HTTP (/healthz) (DESIGN.md section 14).
    packParsing: 'worker-thread',
    ...settings.git,
    ...(settings.gitCacheDir === undefined ? {} : { cacheDir: settings.gitCacheDir }),
  });
  const promotion: PromotionDependencies = {
    ...common,
    repository,
    pullRequests: routePullRequests({
      github: createOctokitPullRequests(settings.github),
      gitlab: createGitLabMergeRequests(settings.gitlab),
    }),
    // One token per App installation, for the worker's git and API calls and the sweep.
    githubApps: new GitHubAppInstallationTokens(),
  };
  const catalog = { get: pipelines.get.bind(pipelines), list: () => pipelines.list() };
  const gates: GateSweepDependencies & { timer: TimeoutGateTimer } = {
    ...common,
    pipelines: catalog,
    queue,
    timer: new TimeoutGateTimer(
      () => releaseDuePromotions(gates),
      (error) => logger.error('gate sweep failed', { reason: errorMessage(error) }),
      clock,
    ),
  };
  const reconcile = async () => (await runReconcileSweep({ ...promotion, ...gates })).pullRequests;
  const interval = (settings.reconcileIntervalSeconds ?? DEFAULT_RECONCILE_INTERVAL_SECONDS) * 1000;
  const sweeps =
    interval > 0 && settings.runWorker !== false
      ? setInterval(() => {
          reconcile().catch((error: unknown) =>
            logger.error('reconcile sweep failed', { reason: errorMessage(error) }),
          );
        }, interval).unref()
      : undefined;
  if (settings.runWorker !== false) {
    queue.process(async (job) => {
      await runPromotion(job, promotion);
    });
    gates.timer.start();
  }
  return {
    webhook: {
      ...common,
      queue,
      timer: gates.timer,
      settings: decisionSettings({
        ...(settings.maxEventAgeSeconds === undefined
          ? {}
          : { maxEventAgeSeconds: settings.maxEventAgeSeconds }),
        promotingReasons: settings.promotingReasons,
      }),
    },
    promotion,
    queue,
    pipelines,
    state,
    metrics,
    database,
    pipelinesApi: { pipelines, catalog: pipelines, state, secrets, logger, gates },
    github: { ...common, webhookSecrets: secrets, deliveries: state },
    gitlab: { ...common, webhookSecrets: secrets, deliveries: state },
    reconcile,
    close: async () => {
      clearInterval(sweeps);
      gates.timer.stop();
      pipelines.close();
      await queue.stop();
      await notices?.drain();
      await repository.close();
      db.close();
    },
  };
};

/**
 * The dead letters of a serve data directory, for `promoter dead-letters` (serve may be running:
 * the database takes both, and serve picks up retried jobs within its poll interval).
 */
export const openEmbeddedDeadLetters = (
  dataDir: string = DEFAULT_DATA_DIR,
): { deadLetters: DeadLetters; close(): void } => {
  const file = databaseFile(dataDir);
  // A mistyped --data must not answer "no dead letters" from a database it just created.
  if (!existsSync(file)) {
    throw new PromoterError(
      'INVALID_CONFIG',
      `no serve database at ${file}: pass the --data directory that promoter serve uses`,
    );
  }
  const db = openEmbeddedDatabase(file);
  const queue = new EmbeddedJobQueue(db, { logger: silentLogger });
  return { deadLetters: queue, close: () => db.close() };
};
