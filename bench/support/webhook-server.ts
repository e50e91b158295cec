import { createServer } from 'node:http';
import { logger } from '../../functions/observability.ts';
import { createServeServer, listen } from '../../functions/serve/server.ts';
import { createServeApp } from '../../functions/wiring/serve.ts';

/**
 * A server for bench/webhook.bench.ts, in its own process: `bare` answers 202 to everything,
 * `serve` is `promoter serve`'s HTTP shell over the fixture pipelines, its jobs committed to its
 * database in `dataDir` (group commit, fsync), its worker off so that only the webhook is measured. Sends its URL over IPC.
 */
const [kind, pipelinesPath, secretsPath, dataDir] = process.argv.slice(2);
if (kind === 'bare') {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(202, { 'content-type': 'application/json' });
      response.end('{"promoted":true}');
    });
  });
  process.send?.(await listen(server, 0, '127.0.0.1'));
} else {
  const app = await createServeApp(
    {
      pipelinesPath: pipelinesPath as string,
      secretsPath: secretsPath as string,
      ...(dataDir === undefined ? {} : { dataDir }),
      runWorker: false,
    },
    logger,
  );
  const server = createServeServer({ webhook: app.webhook, logger });
  process.send?.(await listen(server, 0, '127.0.0.1'));
}
