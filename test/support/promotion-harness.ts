import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  IN_MEMORY,
  openEmbeddedDatabase,
} from '../../functions/adapters/embedded/embedded-database.ts';
import { EmbeddedJobQueue } from '../../functions/adapters/embedded/embedded-job-queue.ts';
import { EmbeddedPromotionStateStore } from '../../functions/adapters/embedded/embedded-promotion-state-store.ts';
import { SmartHttpConfigRepository } from '../../functions/adapters/git/smart-http-config-repository.ts';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { createOctokitPullRequests } from '../../functions/adapters/octokit-pull-requests.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { type Pipeline, pipelineId } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import {
  type PromotionDependencies,
  type PromotionOutcome,
  runPromotion,
} from '../../functions/core/promotion.ts';
import { type PromotionJob, promotionJobId } from '../../functions/core/promotion-job.ts';
import type { FakeGitHubEnterprise } from './fake-github-enterprise.ts';
import { FIXTURES, readFixture } from './fixtures.ts';
import { memorySecrets } from './webhook-harness.ts';

/** The worker's core on its real adapters (git over smart HTTP, Octokit) against the fake GHE. */

/** Every file of the fleet fixture's `before/` or `after/` tree, by path. */
export const fleetTree = async (which: 'before' | 'after'): Promise<Record<string, string>> => {
  const root = join(FIXTURES, 'fleet-repo', which);
  const files: Record<string, string> = {};
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else files[relative(root, path)] = await readFile(path, 'utf8');
    }
  };
  await walk(root);
  return files;
};

/** The podinfo fixture pipeline, its repositories moved to the fake server. */
export const podinfoPipeline = (server: FakeGitHubEnterprise, name = 'podinfo'): Pipeline => {
  const text = readFixture('pipelines/podinfo.yaml')
    .replaceAll('https://github.com/', `${server.url}/`)
    .replace('name: podinfo\n  namespace', `name: ${name}\n  namespace`);
  const [pipeline] = parsePipelineManifests(text).pipelines;
  if (pipeline === undefined) throw new Error('fixture pipeline did not parse');
  return pipeline;
};

export const promotionJob = (
  pipeline: Pipeline,
  from: string,
  to: string,
  revision: string,
  timestamp = new Date(),
): PromotionJob => ({
  version: 1,
  id: promotionJobId(pipeline, to, revision, timestamp.toISOString()),
  pipeline: { namespace: pipeline.namespace, name: pipeline.name },
  from,
  to,
  revision,
  event: {
    timestamp: timestamp.toISOString(),
    reason: 'UpgradeSucceeded',
    message: `Helm upgrade succeeded with chart podinfo@${revision}`,
    involvedObject: {
      kind: 'HelmRelease',
      namespace: 'podinfo-qa',
      name: 'podinfo',
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
    },
  },
  receivedAt: new Date().toISOString(),
});

export interface PromotionHarness {
  readonly deps: PromotionDependencies;
  readonly state: EmbeddedPromotionStateStore;
  readonly metrics: MemoryMetricsSink;
  /** serve's queue on an in-memory database, its retry schedule in milliseconds. */
  readonly queue: EmbeddedJobQueue;
  readonly outcomes: PromotionOutcome[];
  run(job: PromotionJob): Promise<PromotionOutcome>;
}

export const promotionHarness = async (
  server: FakeGitHubEnterprise,
  pipelines: Pipeline[],
  token = server.token,
): Promise<PromotionHarness> => {
  const byId = new Map(pipelines.map((pipeline) => [pipelineId(pipeline), pipeline]));
  const db = openEmbeddedDatabase(IN_MEMORY);
  const state = new EmbeddedPromotionStateStore(db);
  const metrics = new MemoryMetricsSink();
  const credentials = { 'hmac-key': 'unused-hmac-key-for-tests', token };
  const deps: PromotionDependencies = {
    pipelines: { get: async (ref) => byId.get(pipelineId(ref)) },
    secrets: memorySecrets({
      'flux-system/promotion-credentials': credentials,
      'flux-system/prod-promotion-credentials': credentials,
    }),
    state,
    repository: new SmartHttpConfigRepository({
      cacheDir: await mkdtemp(join(tmpdir(), 'promoter-git-')),
    }),
    pullRequests: createOctokitPullRequests({ spaceWrites: false, retryAfterBaseValue: 5 }),
    clock: { now: () => new Date() },
    metrics,
    logger: silentLogger,
  };
  const outcomes: PromotionOutcome[] = [];
  const queue = new EmbeddedJobQueue(db, { logger: silentLogger, retryUnitMs: 0.2 });
  queue.process(async (job) => {
    outcomes.push(await runPromotion(job, deps));
  });
  return { deps, state, metrics, queue, outcomes, run: (job) => runPromotion(job, deps) };
};
