import { parseArgs } from 'node:util';
import { logger } from '../observability.ts';
import { createServeServer, listen } from '../serve/server.ts';
import { createServeApp, DEFAULT_DATA_DIR } from '../wiring/serve.ts';

export const SERVE_USAGE = `promoter serve [--port 8080] [--host 127.0.0.1] [--pipelines PATH] [--secrets FILE]
               [--data DIR] [--git-cache DIR] [--max-event-age SECONDS]
               [--git-max-pack-mb 256] [--git-max-object-mb 64] [--git-max-delta-depth 50]
               [--promotion-timeout 90] [--reconcile-interval 300]
  Runs the webhook and the promotion worker in one process.
  PATH: a Pipeline manifest file or a directory of YAML/JSON manifests (default examples/pipelines).
  FILE: JSON mapping "namespace/name" to {"hmac-key", "token", ...} (default examples/secrets.json).
  DIR (--data): the database of queued jobs, retries, dead letters and promotion state
  (default ${DEFAULT_DATA_DIR}); a job answered 202 is on disk and survives a crash or restart.
  The git limits: bytes one fetch may receive, an object's inflated size, a delta chain's depth,
  and the seconds one promotion's git work may take; past one, the promotion fails for good.
  GET /pipelines/{namespace}/{name} answers a pipeline's status (promoter status), unauthenticated.
  POST /webhooks/github takes the repository's pull_request webhook (secret: the "github-webhook"
  entry of FILE); every --reconcile-interval seconds (0: never) the open promotion PRs are read.
  Ctrl-C stops taking requests and lets running promotions finish (30 s at most); queued ones
  resume at the next start. A second Ctrl-C exits at once.`;

const SHUTDOWN_GRACE_MS = 30_000;
/**
 * Signals this close to the first are the same Ctrl-C delivered twice (the terminal and a
 * wrapper such as `npm start`'s tsx both forward it), not a second one.
 */
const SAME_SIGNAL_MS = 1_000;

const wholeNumber = (value: string, flag: string, minimum: number): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum) {
    throw new Error(`${flag}: expected a whole number >= ${minimum}, got ${JSON.stringify(value)}`);
  }
  return number;
};

export const serveCommand = async (argv: string[]): Promise<void> => {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      pipelines: { type: 'string', default: 'examples/pipelines' },
      secrets: { type: 'string', default: 'examples/secrets.json' },
      data: { type: 'string', default: DEFAULT_DATA_DIR },
      'git-cache': { type: 'string' },
      'max-event-age': { type: 'string' },
      'git-max-pack-mb': { type: 'string' },
      'git-max-object-mb': { type: 'string' },
      'git-max-delta-depth': { type: 'string' },
      'promotion-timeout': { type: 'string' },
      'reconcile-interval': { type: 'string' },
      // For tests of the retry schedule: milliseconds one of its seconds lasts. Not in the usage.
      'retry-unit-ms': { type: 'string' },
    },
    strict: true,
  });
  const limit = (flag: string, scale: number): number | undefined => {
    const value = (values as Record<string, string | undefined>)[flag];
    return value === undefined ? undefined : wholeNumber(value, `--${flag}`, 1) * scale;
  };
  const git = Object.fromEntries(
    Object.entries({
      maxPackBytes: limit('git-max-pack-mb', 1024 * 1024),
      maxObjectBytes: limit('git-max-object-mb', 1024 * 1024),
      maxDeltaDepth: limit('git-max-delta-depth', 1),
      promotionTimeoutMs: limit('promotion-timeout', 1000),
    }).filter(([, value]) => value !== undefined),
  );
  const app = await createServeApp(
    {
      git,
      pipelinesPath: values.pipelines,
      secretsPath: values.secrets,
      dataDir: values.data,
      ...(values['reconcile-interval'] === undefined
        ? {}
        : {
            reconcileIntervalSeconds: wholeNumber(
              values['reconcile-interval'],
              '--reconcile-interval',
              0,
            ),
          }),
      ...(values['git-cache'] === undefined ? {} : { gitCacheDir: values['git-cache'] }),
      ...(values['max-event-age'] === undefined
        ? {}
        : { maxEventAgeSeconds: wholeNumber(values['max-event-age'], '--max-event-age', 1) }),
      ...(values['retry-unit-ms'] === undefined
        ? {}
        : { retryUnitMs: wholeNumber(values['retry-unit-ms'], '--retry-unit-ms', 1) }),
    },
    logger,
  );
  const server = createServeServer({
    webhook: app.webhook,
    logger,
    metricsSnapshot: () => app.metrics.snapshot(),
    pipelinesApi: app.pipelinesApi,
    github: app.github,
  });
  const url = await listen(server, wholeNumber(values.port, '--port', 0), values.host);
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
