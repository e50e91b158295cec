import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { build } from 'esbuild';
import {
  databaseFile,
  IN_MEMORY,
  openEmbeddedDatabase,
} from '../functions/adapters/embedded/embedded-database.ts';
import { EmbeddedJobQueue } from '../functions/adapters/embedded/embedded-job-queue.ts';
import { EmbeddedPromotionStateStore } from '../functions/adapters/embedded/embedded-promotion-state-store.ts';
import { MemoryMetricsSink } from '../functions/adapters/memory-metrics-sink.ts';
import { decisionSettings } from '../functions/core/decision.ts';
import { silentLogger } from '../functions/core/logger.ts';
import { parsePipelineManifests } from '../functions/core/pipeline-manifest.ts';
import { decodePipelineSecret } from '../functions/core/pipeline-secret.ts';
import { signBody } from '../functions/core/signature.ts';
import { handleWebhookRequest, type WebhookDependencies } from '../functions/core/webhook.ts';
import { ESM_REQUIRE_BANNER } from '../lib/constructs/promoter-function.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../test/support/fixtures.ts';
import { type BenchRow, median, printTable } from './support/report.ts';

/**
 * bench/webhook (issue 2): the shared request function against bare HMAC-SHA256 + JSON.parse of
 * the same bodies, and `promoter serve` over loopback HTTP against a bare Node server answering
 * 202; then the webhook Lambda bundle's size and cold import time.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PATH = '/promotion/flux-system/podinfo/dev';
const REVISIONS = 50;

const template = freshEvent('helmrelease-upgrade-succeeded.json');
const signed = (text: string) => ({
  text,
  bytes: Buffer.from(text),
  signature: signBody(text, FIXTURE_HMAC_KEY),
});

/** The request function's bodies: 50 revisions of one event (its table is in memory). */
const bodies = Array.from({ length: REVISIONS }, (_, index) =>
  template.replace('"revision":"6.5.0"', `"revision":"6.5.${index}"`),
).map(signed);

/**
 * serve's load: every request a distinct event (its own revision, event times one second apart
 * every 100 events, from 13 minutes ago: inside the 15-minute replay window and the 5-minute
 * clock skew for the whole run), signed here before any timed loop, so that each 202 commits a
 * new job row and a newer deployment row (a repeated event would be dropped as a duplicate and
 * write nothing). Enough for 6 s at 13,000 requests/s.
 */
const EVENTS = 80_000;
const eventsFrom = Date.now() - 13 * 60 * 1000;
const stamp = (index: number): string =>
  new Date(eventsFrom + Math.floor(index / 100) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const events = Array.from({ length: EVENTS }, (_, index) =>
  template
    .replace(/"timestamp":"[^"]+"/, `"timestamp":"${stamp(index)}"`)
    .replace('"revision":"6.5.0"', `"revision":"7.${Math.floor(index / 1000)}.${index % 1000}"`),
).map(signed);

const timePerOp = async (operations: number, run: (index: number) => unknown): Promise<number> => {
  const samples: number[] = [];
  for (let round = 0; round < 7; round += 1) {
    const started = process.hrtime.bigint();
    for (let index = 0; index < operations; index += 1) await run(index);
    samples.push(Number(process.hrtime.bigint() - started) / operations);
  }
  return median(samples.slice(2));
};

const requestFunction = async (): Promise<BenchRow> => {
  const pipelines = new Map(
    parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines.map((p) => [
      `${p.namespace}/${p.name}`,
      p,
    ]),
  );
  const secret = decodePipelineSecret(
    { namespace: 'flux-system', name: 'promotion-credentials' },
    { 'hmac-key': FIXTURE_HMAC_KEY },
  );
  // The request function alone: the database in memory (serve's disk is measured below).
  const db = openEmbeddedDatabase(IN_MEMORY);
  const deps: WebhookDependencies = {
    pipelines: { get: async (ref) => pipelines.get(`${ref.namespace}/${ref.name}`) },
    secrets: { get: async () => secret },
    queue: new EmbeddedJobQueue(db, { logger: silentLogger }),
    state: new EmbeddedPromotionStateStore(db),
    clock: { now: () => new Date() },
    metrics: new MemoryMetricsSink(),
    logger: silentLogger,
    settings: decisionSettings(),
  };
  const operations = 20_000;
  const bare = await timePerOp(operations, (index) => {
    const body = bodies[index % REVISIONS] as (typeof bodies)[0];
    createHmac('sha256', FIXTURE_HMAC_KEY).update(body.bytes).digest();
    return JSON.parse(body.text);
  });
  const ours = await timePerOp(operations, async (index) => {
    const body = bodies[index % REVISIONS] as (typeof bodies)[0];
    const result = await handleWebhookRequest(
      { method: 'POST', path: PATH, headers: { 'x-signature': body.signature }, body: body.bytes },
      deps,
    );
    if (result.status !== 202)
      throw new Error(`unexpected ${result.status}: ${JSON.stringify(result.body)}`);
  });
  return {
    figure: 'request function, µs per request',
    ours: (ours / 1000).toFixed(1),
    baseline: `${(bare / 1000).toFixed(1)} (HMAC-SHA256 + JSON.parse)`,
    ratio: ours / bare,
    target: '≤ 10x',
    met: ours / bare <= 10,
  };
};

interface BenchServer {
  readonly url: string;
  /** CPU time the server process has used so far (all its threads), µs; undefined off Linux. */
  cpuMicros(): number | undefined;
  stop(): Promise<void>;
}

const startServer = (args: string[]): Promise<BenchServer> =>
  new Promise((resolve, reject) => {
    // Its output (one log line a request) goes to /dev/null, as it would to a file; the URL
    // comes back over IPC.
    const devNull = openSync('/dev/null', 'w');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'bench/support/webhook-server.ts'), ...args],
      {
        cwd: ROOT,
        stdio: ['ignore', devNull, devNull, 'ipc'],
      },
    );
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.once('message', (url) =>
      resolve({
        url: String(url),
        cpuMicros: () => {
          try {
            // utime and stime, in clock ticks (100 a second on Linux).
            const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
            const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            return (Number(fields[11]) + Number(fields[12])) * 10_000;
          } catch {
            return undefined;
          }
        },
        stop: async () => {
          child.kill();
          await exited;
        },
      }),
    );
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });

/** Closed-loop clients of the serve load: each one posts to a pipeline of its own. */
const CONNECTIONS = 32;
/** Client `c`'s webhook path: `podinfo-{c}`, so that its events reach serve in its own order. */
const pathOf = (connection: number): string => `/promotion/flux-system/podinfo-${connection}/dev`;

/**
 * Closed-loop load: `connections` keep-alive clients, each sending the next event of `events`
 * as soon as it is answered, from `cursor.next` on (advanced: a later load on the same server
 * sends only events it has not seen; `wrap` starts over at the end of the pool, for the bare
 * server, which keeps nothing). Each client posts to its own pipeline: one client's events
 * arrive in the order they were sent, so none is a late event (an older one than its target
 * reported), which promotes nothing (DESIGN.md 7.10). Answers 202 and seconds taken.
 */
const load = async (
  url: string,
  seconds: number,
  cursor: { next: number },
  wrap: boolean,
  connections = CONNECTIONS,
): Promise<{ answered: number; seconds: number }> => {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const deadline = Date.now() + seconds * 1000;
  const started = performance.now();
  let answered = 0;
  const send = (body: (typeof events)[0], connection: number) =>
    new Promise<void>((resolve, reject) => {
      const outgoing = request(
        `${url}${pathOf(connection)}`,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'x-signature': body.signature,
            'content-length': body.bytes.length,
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode === 202) answered += 1;
            resolve();
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body.bytes);
    });
  await Promise.all(
    Array.from({ length: connections }, async (_, connection) => {
      while (Date.now() < deadline) {
        if (wrap && cursor.next >= EVENTS) cursor.next = 0;
        const body = events[cursor.next++];
        if (body === undefined) throw new Error(`all ${EVENTS} pre-signed events were sent`);
        await send(body, connection);
      }
    }),
  );
  agent.destroy();
  return { answered, seconds: (performance.now() - started) / 1000 };
};

/** Measured in alternating rounds, so that both meet the same moments of a noisy machine. */
const ROUNDS = 3;
const ROUND_SECONDS = 2;

const serveThroughput = async (): Promise<BenchRow[]> => {
  const folder = mkdtempSync(join(tmpdir(), 'bench-webhook-'));
  const secrets = join(folder, 'secrets.json');
  writeFileSync(
    secrets,
    JSON.stringify({
      'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: 'unused' },
    }),
  );
  const dataDir = join(folder, 'data');
  // The fixture pipeline once per client (podinfo-0 ... podinfo-31), the same app and keys.
  const pipelines = join(folder, 'pipelines.yaml');
  const fixture = readFixture('pipelines/podinfo.yaml');
  writeFileSync(
    pipelines,
    Array.from({ length: CONNECTIONS }, (_, connection) =>
      fixture.replace('name: podinfo\n  namespace', `name: podinfo-${connection}\n  namespace`),
    ).join('\n---\n'),
  );
  const servers = {
    bare: { server: await startServer(['bare']), cursor: { next: 0 }, wrap: true },
    ours: {
      server: await startServer(['serve', pipelines, secrets, dataDir]),
      cursor: { next: 0 },
      wrap: false,
    },
  };
  const totals = {
    bare: { answered: 0, seconds: 0, cpu: 0, client: 0 },
    ours: { answered: 0, seconds: 0, cpu: 0, client: 0 },
  };
  try {
    for (const { server, cursor, wrap } of Object.values(servers)) {
      await load(server.url, 1, cursor, wrap);
    }
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const [name, { server, cursor, wrap }] of Object.entries(servers)) {
        const total = totals[name as keyof typeof totals];
        const cpuBefore = server.cpuMicros();
        const clientBefore = process.cpuUsage();
        const ran = await load(server.url, ROUND_SECONDS, cursor, wrap);
        const cpuAfter = server.cpuMicros();
        const client = process.cpuUsage(clientBefore);
        total.client += client.user + client.system;
        total.answered += ran.answered;
        total.seconds += ran.seconds;
        total.cpu +=
          cpuBefore === undefined || cpuAfter === undefined ? Number.NaN : cpuAfter - cpuBefore;
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map(({ server }) => server.stop()));
  }
  const rate = (name: keyof typeof totals) => totals[name].answered / totals[name].seconds;
  const cpuPerRequest = (name: keyof typeof totals) =>
    (totals[name].cpu / totals[name].answered).toFixed(0);
  const clientPerRequest = (name: keyof typeof totals) =>
    (totals[name].client / totals[name].answered).toFixed(0);
  // What the load wrote: one job row per event sent (none dropped as a duplicate).
  const db = new Database(databaseFile(dataDir), { readonly: true });
  const jobs = (db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;
  db.close();
  const sent = servers.ours.cursor.next;
  return [
    {
      figure: 'serve over loopback HTTP (each 202 once its job is fsynced), requests/s',
      ours: rate('ours').toFixed(0),
      baseline: `${rate('bare').toFixed(0)} (bare Node server answering 202)`,
      ratio: rate('ours') / rate('bare'),
      target: '≥ 0.5x',
      met: rate('ours') / rate('bare') >= 0.5,
    },
    {
      figure: 'serve: server CPU per request (all threads), µs',
      ours: cpuPerRequest('ours'),
      baseline: `${cpuPerRequest('bare')} (bare Node server)`,
      target: 'reported',
    },
    {
      figure: "serve: load client CPU per request, µs (the bare server's bound)",
      ours: clientPerRequest('ours'),
      baseline: `${clientPerRequest('bare')} (against the bare server)`,
      target: 'reported',
    },
    {
      figure: 'serve: job rows written / distinct events sent',
      ours: `${jobs} / ${sent}`,
      baseline: '',
      target: 'equal',
      met: jobs === sent,
    },
  ];
};

const lambdaBundle = async (): Promise<BenchRow[]> => {
  const outfile = join(mkdtempSync(join(tmpdir(), 'bench-bundle-')), 'index.mjs');
  // As lib/constructs/promoter-function.ts bundles it: everything, the AWS SDK included.
  await build({
    entryPoints: [join(ROOT, 'functions/handlers/webhook-lambda.ts')],
    mainFields: ['module', 'main'],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    outfile,
    banner: { js: ESM_REQUIRE_BANNER },
    sourcemap: true,
    logLevel: 'error',
  });
  const size = statSync(outfile).size;
  const env = {
    ...process.env,
    PROMOTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo',
    PROMOTER_TABLE_NAME: 'promoter',
    AWS_REGION: 'us-east-1',
    // The SDK's warning about Node 20 (Lambda runs 22) would only add noise here.
    NODE_NO_WARNINGS: '1',
  };
  const importMs = (file: string) => {
    const script = `const t=performance.now();await import(${JSON.stringify(file)});console.log(performance.now()-t)`;
    const samples = Array.from({ length: 5 }, () => {
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env,
        encoding: 'utf8',
      });
      if (run.status !== 0) throw new Error(run.stderr);
      return Number(run.stdout.trim());
    });
    return median(samples);
  };
  const emptyFile = join(mkdtempSync(join(tmpdir(), 'bench-empty-')), 'empty.mjs');
  writeFileSync(emptyFile, 'export {};\n');
  const ours = importMs(outfile);
  const bare = importMs(emptyFile);
  return [
    {
      figure: 'webhook Lambda bundle (esbuild, minified, AWS SDK included), KB',
      ours: (size / 1024).toFixed(0),
      baseline: '',
      target: '< 500 KB',
      met: size < 500 * 1024,
    },
    {
      figure: 'webhook bundle cold import, ms',
      ours: ours.toFixed(1),
      baseline: `${bare.toFixed(1)} (importing an empty module)`,
      ratio: ours / bare,
      target: 'reported',
    },
  ];
};

const rows = [await requestFunction(), ...(await serveThroughput()), ...(await lambdaBundle())];
printTable(rows);
process.exit(rows.some((row) => row.met === false) ? 1 : 0);
