import { parseArgs } from 'node:util';
import { logger } from '../observability.ts';
import { createServeServer, listen } from '../serve/server.ts';
import { createServeApp } from '../wiring/serve.ts';

export const SERVE_USAGE = `promoter serve [--port 8080] [--host 127.0.0.1] [--pipelines PATH] [--secrets FILE]
               [--git-cache DIR] [--max-event-age SECONDS]
  Runs the webhook and the promotion worker in one process.
  PATH: a Pipeline manifest file or a directory of YAML/JSON manifests (default examples/pipelines).
  FILE: JSON mapping "namespace/name" to {"hmac-key", "token", ...} (default examples/secrets.json).
  GET /pipelines/{namespace}/{name} answers a pipeline's status (promoter status), unauthenticated.`;

const SHUTDOWN_GRACE_MS = 30_000;

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
      'git-cache': { type: 'string' },
      'max-event-age': { type: 'string' },
    },
    strict: true,
  });
  const app = await createServeApp(
    {
      pipelinesPath: values.pipelines,
      secretsPath: values.secrets,
      ...(values['git-cache'] === undefined ? {} : { gitCacheDir: values['git-cache'] }),
      ...(values['max-event-age'] === undefined
        ? {}
        : { maxEventAgeSeconds: wholeNumber(values['max-event-age'], '--max-event-age', 1) }),
    },
    logger,
  );
  const server = createServeServer({
    webhook: app.webhook,
    logger,
    metricsSnapshot: () => app.metrics.snapshot(),
    pipelinesApi: app.pipelinesApi,
  });
  const url = await listen(server, wholeNumber(values.port, '--port', 0), values.host);
  logger.info('promoter serve listening', {
    url,
    webhook: `${url}/promotion/{namespace}/{pipeline}/{environment}`,
    status: `${url}/pipelines/{namespace}/{pipeline}`,
    pipelines: app.pipelines.list().map((pipeline) => `${pipeline.namespace}/${pipeline.name}`),
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn('second signal: exiting now', { signal, unfinished: app.queue.pending().length });
      process.exit(130);
    }
    stopping = true;
    logger.info('stopping: no new requests; letting queued promotions finish', {
      signal,
      pending: app.queue.pending().length,
    });
    server.close();
    server.closeIdleConnections();
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(resolve, SHUTDOWN_GRACE_MS, 'timeout').unref(),
    );
    const drained = await Promise.race([app.queue.drain().then(() => 'drained' as const), timeout]);
    const unfinished = app.queue.pending();
    if (drained === 'timeout' || unfinished.length > 0) {
      logger.warn('stopped with unfinished promotions', {
        unfinished: unfinished.map((job) => ({
          id: job.id,
          pipeline: `${job.pipeline.namespace}/${job.pipeline.name}`,
          to: job.to,
          revision: job.revision,
        })),
      });
    }
    for (const { job, error } of app.queue.failed()) {
      logger.warn('dead-lettered promotion', {
        id: job.id,
        to: job.to,
        revision: job.revision,
        error,
      });
    }
    app.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
};
