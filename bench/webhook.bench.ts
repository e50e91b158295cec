import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, openSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import {
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
import { FIXTURE_HMAC_KEY, FIXTURES, freshEvent, readFixture } from '../test/support/fixtures.ts';
import { type BenchRow, median, printTable } from './support/report.ts';

/**
 * bench/webhook (issue 2): the shared request function against bare HMAC-SHA256 + JSON.parse of
 * the same bodies, and `promoter serve` over loopback HTTP against a bare Node server answering
 * 202; then the webhook Lambda bundle's size and cold import time.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PATH = '/promotion/flux-system/podinfo/dev';
const REVISIONS = 50;

const bodies = Array.from({ length: REVISIONS }, (_, index) =>
  freshEvent('helmrelease-upgrade-succeeded.json').replace(
    '"revision":"6.5.0"',
    `"revision":"6.5.${index}"`,
  ),
).map((text) => ({ text, bytes: Buffer.from(text), signature: signBody(text, FIXTURE_HMAC_KEY) }));

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

const startServer = (args: string[]): Promise<{ url: string; stop: () => void }> =>
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
    child.once('message', (url) => resolve({ url: String(url), stop: () => child.kill() }));
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });

/** Closed-loop load: `connections` keep-alive clients, each sending as soon as it is answered. */
const load = async (url: string, seconds: number, connections = 32): Promise<number> => {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const deadline = Date.now() + seconds * 1000;
  let answered = 0;
  const send = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const body = bodies[index % REVISIONS] as (typeof bodies)[0];
      const outgoing = request(
        `${url}${PATH}`,
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
      for (let index = connection; Date.now() < deadline; index += connections) await send(index);
    }),
  );
  agent.destroy();
  return answered / seconds;
};

const serveThroughput = async (): Promise<BenchRow> => {
  const folder = mkdtempSync(join(tmpdir(), 'bench-webhook-'));
  const secrets = join(folder, 'secrets.json');
  writeFileSync(
    secrets,
    JSON.stringify({
      'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: 'unused' },
    }),
  );
  const measure = async (args: string[]) => {
    const server = await startServer(args);
    try {
      await load(server.url, 1);
      return await load(server.url, 5);
    } finally {
      server.stop();
    }
  };
  const bare = await measure(['bare']);
  const ours = await measure([
    'serve',
    join(FIXTURES, 'pipelines/podinfo.yaml'),
    secrets,
    join(folder, 'data'),
  ]);
  return {
    figure: 'serve over loopback HTTP, requests/s',
    ours: ours.toFixed(0),
    baseline: `${bare.toFixed(0)} (bare Node server answering 202)`,
    ratio: ours / bare,
    target: '≥ 0.5x',
    met: ours / bare >= 0.5,
  };
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

const rows = [await requestFunction(), await serveThroughput(), ...(await lambdaBundle())];
printTable(rows);
process.exit(rows.some((row) => row.met === false) ? 1 : 0);
