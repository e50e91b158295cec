import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../functions/core/logger.ts';
import { createServeServer, listen, SERVE_LIMITS } from '../../functions/serve/server.ts';
import { createServeApp, type ServeApp } from '../../functions/wiring/serve.ts';
import { FIXTURE_HMAC_KEY, readFixture } from '../support/fixtures.ts';

/**
 * A real `promoter serve` server against trickling clients (issue 9 item 5: 3,000 of them were
 * all still open after 40 s): connections that send their headers or body a byte at a time are
 * closed once their time is up, those past the connection bound at once, and `/healthz` answers
 * throughout. The limits are shortened so that the test waits for the closes, not for minutes.
 */
const TRICKLERS = 24;
const MAX_CONNECTIONS = TRICKLERS + 4;

let app: ServeApp;
let server: Server;
let port: number;
const sockets: Socket[] = [];
const timers: NodeJS.Timeout[] = [];

beforeAll(async () => {
  const folder = await mkdtemp(join(tmpdir(), 'serve-limits-'));
  await writeFile(join(folder, 'pipelines.yaml'), readFixture('pipelines/podinfo.yaml'));
  await writeFile(
    join(folder, 'secrets.json'),
    JSON.stringify({ 'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY } }),
  );
  app = await createServeApp(
    {
      pipelinesPath: join(folder, 'pipelines.yaml'),
      secretsPath: join(folder, 'secrets.json'),
      dataDir: join(folder, 'data'),
      runWorker: false,
    },
    silentLogger,
  );
  server = createServeServer({
    webhook: app.webhook,
    logger: silentLogger,
    limits: {
      headersTimeoutMs: 600,
      requestTimeoutMs: 1_200,
      connectionsCheckingIntervalMs: 100,
      maxConnections: MAX_CONNECTIONS,
    },
  });
  port = Number(new URL(await listen(server, 0, '127.0.0.1')).port);
});
afterAll(async () => {
  for (const timer of timers) clearInterval(timer);
  for (const socket of sockets) socket.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await app?.close();
});

/** Opens a connection that sends `head` and then one more byte of `trickle` every 50 ms. */
const trickle = (
  head: string,
  drip: string,
): Promise<{ socket: Socket; closed: Promise<string> }> =>
  new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    const closed = new Promise<string>((done) => socket.once('close', () => done(answer)));
    socket.once('connect', () => {
      socket.write(head);
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(drip);
      }, 50);
      timers.push(timer);
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });

describe('promoter serve connection bounds', () => {
  it('uses bounded defaults', () => {
    // Prepare
    const defaults = createServeServer({ webhook: app.webhook, logger: silentLogger });

    // Act
    const bounds = {
      headersTimeout: defaults.headersTimeout,
      requestTimeout: defaults.requestTimeout,
      keepAliveTimeout: defaults.keepAliveTimeout,
      maxHeadersCount: defaults.maxHeadersCount,
      maxRequestsPerSocket: defaults.maxRequestsPerSocket,
      maxConnections: defaults.maxConnections,
    };

    // Assess
    expect(bounds).toEqual({
      headersTimeout: SERVE_LIMITS.headersTimeoutMs,
      requestTimeout: SERVE_LIMITS.requestTimeoutMs,
      keepAliveTimeout: SERVE_LIMITS.keepAliveTimeoutMs,
      maxHeadersCount: SERVE_LIMITS.maxHeadersCount,
      maxRequestsPerSocket: SERVE_LIMITS.maxRequestsPerSocket,
      maxConnections: SERVE_LIMITS.maxConnections,
    });
    expect(SERVE_LIMITS.requestTimeoutMs).toBeGreaterThanOrEqual(SERVE_LIMITS.headersTimeoutMs);
  });

  it('closes trickling connections within their time, refuses those past the bound, and /healthz answers', async () => {
    // Prepare: a third trickle their headers, a third their body, a third send nothing at all.
    const path = '/promotion/flux-system/podinfo/dev';
    const connections = await Promise.all(
      Array.from({ length: TRICKLERS }, (_, index) =>
        index % 3 === 0
          ? trickle(`POST ${path} HTTP/1.1\r\nHost: serve\r\nX-Padding: `, 'a')
          : index % 3 === 1
            ? trickle(
                `POST ${path} HTTP/1.1\r\nHost: serve\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
                ' ',
              )
            : trickle('', ''),
      ),
    );

    let dropped = 0;
    server.on('drop', () => {
      dropped += 1;
    });

    // Act
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    const extra = await Promise.all(
      Array.from({ length: 8 }, () =>
        trickle(`GET /healthz HTTP/1.1\r\nHost: serve\r\nX-A: `, 'a'),
      ),
    );
    const answers = await Promise.all(connections.map((connection) => connection.closed));
    const extraAnswers = await Promise.all(extra.map((connection) => connection.closed));
    const healthAfter = await fetch(`http://127.0.0.1:${port}/healthz`);

    // Assess
    expect(health.status).toBe(200);
    expect(connections.every((connection) => connection.socket.destroyed)).toBe(true);
    for (const [index, answer] of answers.entries()) {
      if (index % 3 === 1) expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    }
    expect(extraAnswers).toHaveLength(8);
    // 24 + 8 trickling connections and a health check against a bound of 28.
    expect(dropped).toBeGreaterThan(0);
    expect(healthAfter.status).toBe(200);
  }, 30_000);
});
