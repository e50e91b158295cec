import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GitFetch } from '../functions/adapters/git/smart-http.ts';
import { SmartHttpConfigRepository } from '../functions/adapters/git/smart-http-config-repository.ts';
import { createGuardedAgents, guardedFetch } from '../functions/adapters/guarded-http.ts';
import { SELF_HOSTED_ADDRESS_POLICY } from '../functions/core/http.ts';
import type { PromotionBranchRequest } from '../functions/core/ports.ts';
import {
  editMarkers,
  isPromotableFile,
  type MarkerTarget,
  markerFor,
  needle,
} from '../functions/core/promotion-markers.ts';
import { runGit, startGitServer } from '../test/support/git-server.ts';
import { appName, fleetFiles } from './support/fleet-repository.ts';

/**
 * The pull-request promotion's git work (DESIGN.md section 7.3), from job start to "branch
 * pushed" plus one PR API call, through SmartHttpConfigRepository and, in the same run,
 * through the git CLI doing the same work (`clone --depth 1 --single-branch`, `git grep` the
 * marker, patch, commit, `push --force`), on fleet repositories of 6,000 and 60,000 YAML files
 * served by a loopback `git http-backend`.
 *
 * - cold: a fresh child process and an empty cache for each measurement (its peak RSS is the
 *   child's `process.resourceUsage().maxRSS`); the git CLI clones into an empty directory.
 * - warm: the same process, the repository seen before, one new upstream commit; the git CLI
 *   keeps its clone and runs `fetch --depth 1` + `reset --hard` instead of cloning.
 *
 * Figures are medians. Exits 1 when a target is missed.
 */

const SIZES = [
  { label: '6,000', apps: 500, coldRuns: 3, warmRuns: 9 },
  { label: '60,000', apps: 5_000, coldRuns: 2, warmRuns: 5 },
] as const;
const BRANCH = 'promotion-fleet-app-prod';
const AUTHOR = { name: 'Pipeline Promoter', email: 'promoter@example.com' };

/** The one PR API call both flows make: a POST to a tiny local server. */
const openPullRequest = (url: string, title: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const body = JSON.stringify({ title, head: BRANCH, base: 'main', body: 'promotion' });
    const request = httpRequest(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (response) => {
        response.resume();
        response.on('end', () =>
          response.statusCode === 201 ? resolve() : reject(new Error(`PR ${response.statusCode}`)),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });

interface Job {
  readonly cloneUrl: string;
  readonly prUrl: string;
  readonly target: MarkerTarget;
}

const promotionRequest = (job: Job, revision: string): PromotionBranchRequest => ({
  repository: {
    provider: 'github',
    cloneUrl: job.cloneUrl,
    apiBaseUrl: '',
    owner: 'fleet',
    repo: 'config',
  },
  credentials: { username: 'x-access-token', password: 'bench-token' },
  baseBranch: 'main',
  branch: BRANCH,
  includePath: isPromotableFile,
  needle,
  edit: (_path, content) => editMarkers(content, job.target, revision),
  commit: { message: `Promote fleet/${job.target.name} in prod to ${revision}`, author: AUTHOR },
});

// ───────────────────────────── child process side ─────────────────────────────

type ChildTask =
  | { readonly kind: 'cold'; readonly job: Job; readonly cacheDir: string }
  | { readonly kind: 'warm'; readonly job: Job; readonly cacheDir: string; readonly runs: number };

type ChildMessage =
  | { readonly kind: 'upstream' }
  | {
      readonly kind: 'done';
      readonly ms: number[];
      /** Per promotion: the time spent waiting on git HTTP requests (server and network). */
      readonly requestMs: number[];
      readonly maxRssKiB: number;
    };

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

const nextMessage = (): Promise<unknown> =>
  new Promise((resolve) => process.once('message', resolve));

/**
 * The adapter's default fetch, timing each request from its start to the last chunk the adapter
 * read: the part of a promotion spent waiting on the git server.
 */
const timedFetch = (): { fetch: GitFetch; spent: () => number } => {
  const fetch = guardedFetch(createGuardedAgents(SELF_HOSTED_ADDRESS_POLICY));
  let total = 0;
  return {
    spent: () => {
      const spent = total;
      total = 0;
      return spent;
    },
    fetch: async (url, init) => {
      const started = performance.now();
      const response = await fetch(url, init);
      const body = response.body;
      if (body === null) {
        total += performance.now() - started;
        return response;
      }
      let last = performance.now();
      const timed = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            last = performance.now();
            controller.enqueue(chunk);
          },
          flush() {
            total += last - started;
          },
        }),
      );
      return new Response(timed, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    },
  };
};

const promoteOnce = async (
  repository: SmartHttpConfigRepository,
  job: Job,
  revision: string,
): Promise<number> => {
  const started = performance.now();
  const result = await repository.preparePromotionBranch(promotionRequest(job, revision));
  if (result.status !== 'pushed') throw new Error(`expected a push, got ${result.status}`);
  await openPullRequest(job.prUrl, `Promote to ${revision}`);
  return performance.now() - started;
};

const runChild = async (task: ChildTask): Promise<void> => {
  const timing = timedFetch();
  const repository = new SmartHttpConfigRepository({
    cacheDir: task.cacheDir,
    fetch: timing.fetch,
  });
  const ms: number[] = [];
  const requestMs: number[] = [];
  const measure = async (revision: string): Promise<void> => {
    timing.spent();
    ms.push(await promoteOnce(repository, task.job, revision));
    requestMs.push(timing.spent());
  };
  if (task.kind === 'cold') {
    await measure('2.0.0');
  } else {
    await promoteOnce(repository, task.job, '2.1.0');
    for (let run = 1; run <= task.runs; run++) {
      send({ kind: 'upstream' });
      await nextMessage();
      await measure(`2.1.${run}`);
    }
  }
  send({ kind: 'done', ms, requestMs, maxRssKiB: process.resourceUsage().maxRSS });
};

// ───────────────────────────── git CLI baseline ─────────────────────────────

const git = async (cwd: string, args: readonly string[]): Promise<string> => {
  const result = await runGit(cwd, args);
  if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.toString('utf8');
};

/** grep the marker, patch the files, commit, push --force, open the PR. */
const cliPromote = async (work: string, job: Job, revision: string): Promise<void> => {
  const marker = markerFor(job.target.namespace, job.target.name, job.target.environment);
  const listed = await runGit(work, ['grep', '-l', '-F', '-e', marker, '--', '*.yaml', '*.yml']);
  const paths = listed.stdout.toString('utf8').split('\n').filter(Boolean);
  for (const path of paths) {
    const file = join(work, path);
    const edit = editMarkers(await readFile(file, 'utf8'), job.target, revision);
    if (edit.markers > 0) await writeFile(file, edit.content);
  }
  await git(work, [
    'commit',
    '-q',
    '-a',
    '-m',
    `Promote fleet/${job.target.name} in prod to ${revision}`,
  ]);
  await git(work, ['push', '-q', '--force', 'origin', `HEAD:refs/heads/${BRANCH}`]);
  await openPullRequest(job.prUrl, `Promote to ${revision}`);
};

const cliCold = async (job: Job, revision: string): Promise<{ ms: number; work: string }> => {
  const parent = await mkdtemp(join(tmpdir(), 'bench-cli-'));
  const work = join(parent, 'work');
  const started = performance.now();
  await git(parent, [
    'clone',
    '-q',
    '--depth',
    '1',
    '--single-branch',
    '--branch',
    'main',
    job.cloneUrl,
    work,
  ]);
  await cliPromote(work, job, revision);
  return { ms: performance.now() - started, work: parent };
};

const cliWarm = async (parent: string, job: Job, revision: string): Promise<number> => {
  const work = join(parent, 'work');
  const started = performance.now();
  await git(work, ['fetch', '-q', '--depth', '1', 'origin', 'main']);
  await git(work, ['reset', '-q', '--hard', 'FETCH_HEAD']);
  await cliPromote(work, job, revision);
  return performance.now() - started;
};

// ───────────────────────────── the run ─────────────────────────────

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

const spawnChild = (
  task: ChildTask,
  onUpstream: () => Promise<void>,
): Promise<{ ms: number[]; requestMs: number[]; maxRssKiB: number }> =>
  new Promise((resolve, reject) => {
    const child: ChildProcess = fork(
      fileURLToPath(import.meta.url),
      ['--child', JSON.stringify(task)],
      {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    child.on('message', (message: ChildMessage) => {
      if (message.kind === 'upstream') {
        onUpstream().then(() => child.send('go'), reject);
      } else {
        resolve({ ms: message.ms, requestMs: message.requestMs, maxRssKiB: message.maxRssKiB });
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`bench child exited with ${code}`));
    });
  });

interface Row {
  readonly figure: string;
  readonly ours: number;
  readonly baseline: number | undefined;
  readonly unit: 'ms' | 'MiB';
  readonly target: string;
  readonly met: boolean;
}

const main = async (): Promise<void> => {
  const credentials = { username: 'x-access-token', password: 'bench-token' };
  const server = await startGitServer({ credentials });
  const pulls = createServer((request, response) => {
    request.resume();
    request.on('end', () =>
      response.writeHead(201, { 'content-type': 'application/json' }).end('{"number":1}'),
    );
  });
  await new Promise<void>((resolve) => pulls.listen(0, '127.0.0.1', resolve));
  const prUrl = `http://127.0.0.1:${(pulls.address() as AddressInfo).port}/api/v3/repos/fleet/config/pulls`;
  const scratch = await mkdtemp(join(tmpdir(), 'bench-promotion-'));
  const rows: Row[] = [];
  const waits: string[] = [];
  const started = performance.now();

  try {
    for (const size of SIZES) {
      const name = `fleet/config-${size.apps}`;
      const setup = performance.now();
      await server.createRepository(name, fleetFiles(size.apps), { repack: true });
      const url = new URL(server.repositoryUrl(name));
      url.username = credentials.username;
      url.password = credentials.password;
      const target = {
        namespace: 'fleet',
        name: appName(Math.floor(size.apps / 2)),
        environment: 'prod',
      };
      const job: Job = { cloneUrl: server.repositoryUrl(name), prUrl, target };
      const cliJob: Job = { ...job, cloneUrl: url.toString() };
      console.log(
        `${size.label} files: repository ready in ${((performance.now() - setup) / 1000).toFixed(1)} s`,
      );
      let upstreamCount = 0;
      const upstream = async (): Promise<void> => {
        upstreamCount += 1;
        const app = appName(upstreamCount % size.apps);
        await server.addCommit(name, 'main', {
          [`clusters/dev/${app}/values.yaml`]: `# upstream change ${upstreamCount}\nimage:\n  tag: v${upstreamCount}\n`,
        });
      };

      // Cold: alternate the two flows so that both see the same machine.
      const ours: number[] = [];
      const oursRequests: number[] = [];
      const cli: number[] = [];
      let rss = 0;
      let clone = '';
      for (let run = 0; run < size.coldRuns; run++) {
        const cacheDir = await mkdtemp(join(scratch, 'cache-'));
        const child = await spawnChild({ kind: 'cold', job, cacheDir }, upstream);
        ours.push(...child.ms);
        oursRequests.push(...child.requestMs);
        rss = Math.max(rss, child.maxRssKiB);
        await rm(cacheDir, { recursive: true, force: true });
        const baseline = await cliCold(cliJob, '2.0.0');
        cli.push(baseline.ms);
        if (clone !== '') await rm(clone, { recursive: true, force: true });
        clone = baseline.work;
      }
      const coldTarget = size.apps < 1000 ? 1.0 : 1.5;
      rows.push({
        figure: `cold, ${size.label} files`,
        ours: median(ours),
        baseline: median(cli),
        unit: 'ms',
        target: `≤ ${coldTarget.toFixed(1)}x`,
        met: median(ours) <= coldTarget * median(cli),
      });
      rows.push({
        figure: `peak RSS cold, ${size.label} files`,
        ours: rss / 1024,
        baseline: undefined,
        unit: 'MiB',
        target: '< 1024 MiB',
        met: rss / 1024 < 1024,
      });

      // Warm: ours in one child process (primed by one promotion); before each of its timed
      // promotions, one upstream commit lands and the git CLI does the same promotion in the
      // clone it kept, so that both flows see the same repository and the same machine.
      const cacheDir = await mkdtemp(join(scratch, 'cache-'));
      const cliWarmMs: number[] = [];
      const warm = await spawnChild(
        { kind: 'warm', job, cacheDir, runs: size.warmRuns },
        async () => {
          await upstream();
          cliWarmMs.push(await cliWarm(clone, cliJob, `2.2.${cliWarmMs.length + 1}`));
        },
      );
      await rm(clone, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
      rows.push({
        figure: `warm, ${size.label} files`,
        ours: median(warm.ms),
        baseline: median(cliWarmMs),
        unit: 'ms',
        target: '≤ 0.25x',
        met: median(warm.ms) <= 0.25 * median(cliWarmMs),
      });
      const list = (values: readonly number[]): string =>
        values.map((ms) => ms.toFixed(0)).join('/');
      console.log(
        `  cold: ours ${list(ours)} ms (git requests ${list(oursRequests)}), git CLI ${list(cli)} ms`,
      );
      console.log(
        `  warm: ours ${list(warm.ms)} ms (git requests ${list(warm.requestMs)}), git CLI ${list(cliWarmMs)} ms`,
      );
      waits.push(
        `${size.label} files: cold ${median(oursRequests).toFixed(0)} of ${median(ours).toFixed(0)} ms, warm ${median(warm.requestMs).toFixed(0)} of ${median(warm.ms).toFixed(0)} ms`,
      );
    }
  } finally {
    await server.close();
    await new Promise<void>((resolve) => pulls.close(() => resolve()));
    await rm(scratch, { recursive: true, force: true });
  }

  const format = (value: number, unit: Row['unit']): string =>
    unit === 'ms' ? `${value.toFixed(0)} ms` : `${value.toFixed(0)} MiB`;
  console.log('');
  console.log('| figure | ours | git CLI baseline | ratio | target | met |');
  console.log('|---|---:|---:|---:|---|---|');
  for (const row of rows) {
    const ratio = row.baseline === undefined ? '' : `${(row.ours / row.baseline).toFixed(2)}x`;
    const baseline = row.baseline === undefined ? '' : format(row.baseline, row.unit);
    console.log(
      `| ${row.figure} | ${format(row.ours, row.unit)} | ${baseline} | ${ratio} | ${row.target} | ${row.met ? 'yes' : 'NO'} |`,
    );
  }
  console.log('\nours, time spent waiting on git HTTP requests (medians):');
  for (const line of waits) console.log(`  ${line}`);
  console.log(`\nwhole bench: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (rows.some((row) => !row.met)) process.exitCode = 1;
};

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  const task = JSON.parse(process.argv[childIndex + 1] ?? '{}') as ChildTask;
  runChild(task).then(
    () => process.disconnect?.(),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
} else {
  await main();
}
