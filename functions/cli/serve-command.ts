import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_PROMOTING_REASONS, NEVER_PROMOTING_REASONS } from '../core/decision.ts';
import type { Clock } from '../core/ports.ts';
import { logger } from '../observability.ts';
import { createServeServer, listen } from '../serve/server.ts';
import { createServeApp, DEFAULT_DATA_DIR, type ServeSettings } from '../wiring/serve.ts';
import { commaList, portNumber, UsageError, wholeNumber } from './command-line.ts';

export const SERVE_USAGE = `promoter serve [--port 8080] [--host 127.0.0.1] [--pipelines PATH] [--secrets FILE]
               [--data DIR] [--git-cache DIR] [--max-event-age SECONDS]
               [--promoting-reasons REASON,REASON,...]
               [--git-max-pack-mb 256] [--git-max-object-mb 64] [--git-max-delta-depth 50]
               [--promotion-timeout 90] [--reconcile-interval 300] [--notify-url URL]
  Runs the webhook and the promotion worker in one process.
  PATH: a Pipeline manifest file or a directory of YAML/JSON manifests (default examples/pipelines).
  FILE: JSON mapping "namespace/name" to {"hmac-key", "token", ...} (default examples/secrets.json,
  else the template examples/secrets.example.json: cp it to examples/secrets.json, which git
  ignores, and put your GitHub token there).
  DIR (--data): the database of queued jobs, retries, dead letters and promotion state
  (default ${DEFAULT_DATA_DIR}); a job answered 202 is on disk and survives a crash or restart.
  --max-event-age: events older than this are refused as replays (default 900).
  --promoting-reasons: the Flux event reasons that promote (default
  ${DEFAULT_PROMOTING_REASONS.join(',')}); ${[...NEVER_PROMOTING_REASONS].join(' and ')} never do.
  The git limits: bytes one fetch may receive, an object's inflated size, a delta chain's depth,
  and the seconds one promotion's git work may take; past one, the promotion fails for good.
  GET / is the status page; GET /pipelines/{namespace}/{name} answers a pipeline's status
  (promoter status), unauthenticated.
  POST /webhooks/github takes the repository's pull_request webhook (secret: the "github-webhook"
  entry of FILE); every --reconcile-interval seconds (0: never) the open promotion PRs are read.
  POST /webhooks/gitlab takes the project's merge request webhook (secret token: the
  "gitlab-webhook" entry of FILE).
  --notify-url: where notices are POSTed, signed like Flux's generic-hmac (X-Signature) with the
  pipeline's hmac-key: the notification strategy's hand-offs and every promotion's changes of
  state (https://, or http:// on loopback).
  Ctrl-C stops taking requests and lets running promotions finish (30 s at most); queued ones
  resume at the next start. A second Ctrl-C exits at once.`;

/** The secrets file serve reads when `--secrets` is not given, and the template beside it. */
export const DEFAULT_SECRETS_FILE = 'examples/secrets.json';
export const SECRETS_TEMPLATE_FILE = 'examples/secrets.example.json';

const SHUTDOWN_GRACE_MS = 30_000;
/**
 * Signals this close to the first are the same Ctrl-C delivered twice (the terminal and a
 * wrapper such as `npm start`'s tsx both forward it), not a second one.
 */
const SAME_SIGNAL_MS = 1_000;

/** A Flux event reason: a CamelCase word (`UpgradeSucceeded`), or `info` of Flux before 2.0. */
const REASON = /^[A-Za-z][A-Za-z0-9]*$/;

/** `--promoting-reasons`: each a reason word, none of those that never promote. */
export const parsePromotingReasons = (value: string): string[] => {
  const reasons = commaList(value);
  if (reasons.length === 0) {
    throw new UsageError(
      '--promoting-reasons: expected one or more Flux event reasons, comma-separated (e.g. UpgradeSucceeded,InstallSucceeded)',
    );
  }
  for (const reason of reasons) {
    if (!REASON.test(reason)) {
      throw new UsageError(
        `--promoting-reasons: ${JSON.stringify(reason)} is not a Flux event reason (a word such as UpgradeSucceeded)`,
      );
    }
    if (NEVER_PROMOTING_REASONS.has(reason)) {
      throw new UsageError(
        `--promoting-reasons: ${reason} reports a release going back or away, which is never promoted: leave it out`,
      );
    }
  }
  return [...new Set(reasons)];
};

/** `--clock-start`: a clock that starts at that instant and runs in real time from now. */
const clockFrom = (value: string): Clock => {
  const start = /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(start)) {
    throw new UsageError(
      `--clock-start: expected an ISO 8601 date-time (2026-11-30T08:59:56Z), got ${JSON.stringify(value)}`,
    );
  }
  const launched = Date.now();
  return { now: () => new Date(start + (Date.now() - launched)) };
};

/** The settings of a serve command line, every value checked before anything starts. */
export const serveSettingsFrom = (
  argv: string[],
  exists: (path: string) => boolean = existsSync,
): { readonly port: number; readonly host: string; readonly settings: ServeSettings } => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      pipelines: { type: 'string', default: 'examples/pipelines' },
      secrets: { type: 'string' },
      data: { type: 'string', default: DEFAULT_DATA_DIR },
      'git-cache': { type: 'string' },
      'max-event-age': { type: 'string' },
      'promoting-reasons': { type: 'string' },
      'git-max-pack-mb': { type: 'string' },
      'git-max-object-mb': { type: 'string' },
      'git-max-delta-depth': { type: 'string' },
      'promotion-timeout': { type: 'string' },
      'reconcile-interval': { type: 'string' },
      'notify-url': { type: 'string' },
      // For tests of the retry schedule: milliseconds one of its seconds lasts. Not in the usage.
      'retry-unit-ms': { type: 'string' },
      // For tests of the time gates: serve's clock starts at this instant. Not in the usage.
      'clock-start': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals[0] !== undefined) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(positionals[0])}: serve takes options only`,
    );
  }
  if (values.host.trim() === '') throw new UsageError('--host: expected an address or host name');
  const limit = (flag: string, unit: string, scale: number): number | undefined => {
    const value = (values as Record<string, string | undefined>)[flag];
    return value === undefined
      ? undefined
      : wholeNumber(value, `--${flag}`, { minimum: 1, unit }) * scale;
  };
  const git = Object.fromEntries(
    Object.entries({
      maxPackBytes: limit('git-max-pack-mb', 'MiB', 1024 * 1024),
      maxObjectBytes: limit('git-max-object-mb', 'MiB', 1024 * 1024),
      maxDeltaDepth: limit('git-max-delta-depth', 'deltas', 1),
      promotionTimeoutMs: limit('promotion-timeout', 'seconds', 1000),
    }).filter(([, value]) => value !== undefined),
  );
  const secretsPath =
    values.secrets ??
    (exists(DEFAULT_SECRETS_FILE) || !exists(SECRETS_TEMPLATE_FILE)
      ? DEFAULT_SECRETS_FILE
      : SECRETS_TEMPLATE_FILE);
  const port = portNumber(values.port);
  const clock = values['clock-start'] === undefined ? undefined : clockFrom(values['clock-start']);
  // Checked where it is used (HttpNotices: INVALID_CONFIG naming it) before serve listens.
  const notifyUrl = values['notify-url'];
  const settings: ServeSettings = {
    git,
    ...(notifyUrl === undefined ? {} : { notifyUrl }),
    ...(clock === undefined ? {} : { clock }),
    pipelinesPath: values.pipelines,
    secretsPath,
    dataDir: values.data,
    ...(values['reconcile-interval'] === undefined
      ? {}
      : {
          reconcileIntervalSeconds: wholeNumber(
            values['reconcile-interval'],
            '--reconcile-interval',
            {
              minimum: 0,
              unit: 'seconds (0: never)',
            },
          ),
        }),
    ...(values['git-cache'] === undefined ? {} : { gitCacheDir: values['git-cache'] }),
    ...(values['max-event-age'] === undefined
      ? {}
      : {
          maxEventAgeSeconds: wholeNumber(values['max-event-age'], '--max-event-age', {
            minimum: 1,
            unit: 'seconds',
          }),
        }),
    ...(values['promoting-reasons'] === undefined
      ? {}
      : { promotingReasons: parsePromotingReasons(values['promoting-reasons']) }),
    ...(values['retry-unit-ms'] === undefined
      ? {}
      : {
          retryUnitMs: wholeNumber(values['retry-unit-ms'], '--retry-unit-ms', {
            minimum: 1,
            unit: 'milliseconds',
          }),
        }),
  };
  return { port, host: values.host, settings };
};

export const serveCommand = async (argv: string[]): Promise<void> => {
  const { port, host, settings } = serveSettingsFrom(argv);
  if (settings.secretsPath === SECRETS_TEMPLATE_FILE) {
    logger.warn(
      `no ${DEFAULT_SECRETS_FILE}: using the template ${SECRETS_TEMPLATE_FILE} and its example keys; cp it to ${DEFAULT_SECRETS_FILE} (ignored by git) and put your GitHub token there`,
    );
  }
  const app = await createServeApp(settings, logger);
  const server = createServeServer({
    webhook: app.webhook,
    logger,
    metricsSnapshot: () => app.metrics.snapshot(),
    pipelinesApi: app.pipelinesApi,
    github: app.github,
    gitlab: app.gitlab,
  });
  const url = await listen(server, port, host);
  logger.info('promoter serve listening', {
    url,
    webhook: `${url}/promotion/{namespace}/{pipeline}/{environment}`,
    status: `${url}/pipelines/{namespace}/{pipeline}`,
    database: app.database,
    queued: app.queue.pendingCount(),
    pipelines: app.pipelines.list().map((pipeline) => `${pipeline.namespace}/${pipeline.name}`),
  });

  let stoppingSince: number | undefined;
  const stop = async (signal: string) => {
    if (stoppingSince !== undefined) {
      if (Date.now() - stoppingSince < SAME_SIGNAL_MS) return;
      logger.warn('second signal: exiting now; queued promotions resume at the next start', {
        signal,
        queued: app.queue.pendingCount(),
      });
      process.exit(130);
    }
    stoppingSince = Date.now();
    logger.info('stopping: no new requests; letting running promotions finish', {
      signal,
      queued: app.queue.pendingCount(),
    });
    server.close();
    server.closeIdleConnections();
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(resolve, SHUTDOWN_GRACE_MS, 'timeout').unref(),
    );
    await Promise.race([app.queue.idle(), timeout]);
    const left = app.queue.pendingJobs();
    await Promise.race([app.close(), timeout]);
    if (left.length > 0) {
      logger.info('stopped; these promotions stay queued and resume at the next start', {
        database: app.database,
        queued: left.map((job) => ({
          id: job.id,
          pipeline: `${job.pipeline.namespace}/${job.pipeline.name}`,
          to: job.to,
          revision: job.revision,
        })),
      });
    } else {
      logger.info('stopped');
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
};
