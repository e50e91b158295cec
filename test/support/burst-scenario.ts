import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { signBody } from '../../functions/core/signature.ts';
import { runGit } from './bare-repositories.ts';
import { type FakeGitHubEnterprise, startFakeGitHubEnterprise } from './fake-github-enterprise.ts';
import {
  type FaultProxy,
  type ProxyFault,
  type ProxyRule,
  startFaultProxy,
} from './fault-proxy.ts';
import { readFixture } from './fixtures.ts';
import { runPromoter } from './promoter-cli.ts';
import { fleetTree } from './promotion-harness.ts';
import { STAGING_TARGETS } from './staging-targets.ts';

/**
 * The burst of issue 8 against real components, shared by test/integration/durability.test.ts
 * (a small burst) and bench/burst.ts (1,000 events): a real `promoter serve` child process; the
 * fake GitHub Enterprise Server behind a fault-injecting proxy that both the API and git go
 * through (the pipelines' repository URLs name the proxy); copies of the podinfo fixture
 * pipeline, each with its own two repositories (the fleet fixture, markers renamed) and its own
 * tokens; signed Flux events with increasing revisions, some delivered out of order, some twice
 * (Flux's retries), some late and older. Staging has two targets (the fixture's podinfo-qa and
 * podinfo-perf): each revision promoted into prod is reported by both, since the default gate
 * `all` promotes only once every target of staging reported it.
 *
 * `verifyBurst` checks what the contract promises: every 202 either promotes the event's revision
 * or waits for the source env's other targets; every job answered 202 ends; one open PR per
 * (pipeline, env) whose title and branch hold the newest accepted revision, the branch one commit
 * on the base head; the branch's reflog (enabled in every repository) never goes back to an
 * older revision; the status API shows each env terminal at that revision.
 */

export const NAMESPACE = 'flux-system';
export const OWNER = 'example-org';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A promotion of every pipeline copy: the env its events come from, the one promoted into. */
interface Hop {
  readonly from: 'dev' | 'staging';
  readonly to: 'staging' | 'prod';
  /** The involvedObject namespaces of the source env's targets: each reports every revision. */
  readonly sourceNamespaces: readonly string[];
  readonly repoSuffix: string;
}

const HOPS: readonly Hop[] = [
  { from: 'dev', to: 'staging', sourceNamespaces: ['podinfo-dev'], repoSuffix: '-fleet' },
  { from: 'staging', to: 'prod', sourceNamespaces: STAGING_TARGETS, repoSuffix: '-fleet-prod' },
];

/** One (pipeline, target env): where its promotions land. */
export interface Target {
  readonly pipeline: string;
  readonly hop: Hop;
  readonly repo: string;
  readonly branch: string;
  /** `name/env` */
  readonly key: string;
}

export const targetsOf = (pipeline: string): Target[] =>
  HOPS.map((hop) => ({
    pipeline,
    hop,
    repo: `${pipeline}${hop.repoSuffix}`,
    branch: `promotion-${NAMESPACE}-${pipeline}-${hop.to}`,
    key: `${pipeline}/${hop.to}`,
  }));

/** `burst-00`, `burst-01`, ... */
export const burstPipelines = (count: number, prefix = 'burst'): string[] =>
  Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(2, '0')}`);

const hmacKey = (pipeline: string): string =>
  createHash('sha256').update(`hmac-key/${pipeline}`).digest('hex').slice(0, 32);
const token = (pipeline: string, env: string): string =>
  `ghp_${createHash('sha256').update(`${pipeline}/${env}`).digest('hex').slice(0, 36)}`;

/** A serve log line: its JSON, and which serve process (0 for the first) wrote it. */
export type LogLine = Record<string, unknown> & { readonly serve: number };

export interface ServeProcess {
  readonly index: number;
  readonly url: string;
  /** Jobs the database held when it started (what a restart resumes). */
  readonly queuedAtStart: number;
  readonly exited: Promise<number | null>;
  /** `kill -9`, resolved once the process is gone. */
  kill9(): Promise<void>;
  /** One Ctrl-C, resolved once it has drained and exited. */
  stop(): Promise<void>;
}

export interface CommandRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface BurstWorld {
  readonly github: FakeGitHubEnterprise;
  readonly proxy: FaultProxy;
  readonly pipelines: readonly string[];
  readonly dataDir: string;
  readonly retryUnitMs: number;
  /** Every serve process's log lines, in the order written. */
  readonly logs: LogLine[];
  /** Event times of round `round` start here (epoch seconds), within the replay window. */
  readonly timeOrigin: number;
  startServe(): Promise<ServeProcess>;
  /** The `promoter` CLI as a user runs it. */
  promoter(args: readonly string[]): Promise<CommandRun>;
  close(): Promise<void>;
}

export interface BurstWorldOptions {
  readonly pipelines: readonly string[];
  /** serve's `--retry-unit-ms`: what one second of the 30 s × 2^(n−1) schedule lasts. */
  readonly retryUnitMs: number;
}

/** Runs `task` over `items`, `concurrency` at a time. */
export const pool = async <T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> => {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < items.length; index = next++) {
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
};

const pipelineManifest = (pipeline: string, origin: string): string =>
  readFixture('pipelines/podinfo.yaml')
    .replace('name: podinfo\n  namespace', `name: ${pipeline}\n  namespace`)
    .replaceAll(
      /https:\/\/github\.com\/example-org\/fleet(-prod)?$/gm,
      (_, prod: string | undefined) => `${origin}/${OWNER}/${pipeline}-fleet${prod ?? ''}`,
    )
    .replaceAll('name: prod-promotion-credentials', `name: ${pipeline}-prod-credentials`)
    .replaceAll('name: promotion-credentials', `name: ${pipeline}-credentials`);

export const startBurstWorld = async (options: BurstWorldOptions): Promise<BurstWorld> => {
  const { pipelines, retryUnitMs } = options;
  const folder = await mkdtemp(join(tmpdir(), 'burst-'));
  const github = await startFakeGitHubEnterprise({
    tokens: pipelines.flatMap((pipeline) => HOPS.map((hop) => token(pipeline, hop.to))),
  });
  const proxy = await startFaultProxy(github.url);
  const fleet = await fleetTree('before');
  await pool(pipelines.flatMap(targetsOf), 8, async (target) => {
    const files = Object.fromEntries(
      Object.entries(fleet).map(([path, text]) => [
        path,
        text.replaceAll(`${NAMESPACE}:podinfo:`, `${NAMESPACE}:${target.pipeline}:`),
      ]),
    );
    await github.createRepository(OWNER, target.repo, files);
    // Bare repositories keep no reflog by default: it is how the branch's history is read back.
    await github.git(OWNER, target.repo, ['config', 'core.logAllRefUpdates', 'true']);
  });
  const pipelinesFile = join(folder, 'pipelines.yaml');
  const secretsFile = join(folder, 'secrets.json');
  await writeFile(
    pipelinesFile,
    pipelines.map((pipeline) => pipelineManifest(pipeline, proxy.url)).join('\n---\n'),
  );
  await writeFile(
    secretsFile,
    JSON.stringify(
      Object.fromEntries(
        pipelines.flatMap((pipeline) => [
          [
            `${NAMESPACE}/${pipeline}-credentials`,
            { 'hmac-key': hmacKey(pipeline), token: token(pipeline, 'staging') },
          ],
          [
            `${NAMESPACE}/${pipeline}-prod-credentials`,
            { 'hmac-key': hmacKey(pipeline), token: token(pipeline, 'prod') },
          ],
        ]),
      ),
    ),
  );
  const dataDir = join(folder, 'data');
  const logs: LogLine[] = [];
  const running: ChildProcessWithoutNullStreams[] = [];
  let started = 0;

  const startServe = async (): Promise<ServeProcess> => {
    const index = started++;
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/promoter.ts',
        'serve',
        '--port',
        '0',
        '--pipelines',
        pipelinesFile,
        '--secrets',
        secretsFile,
        '--git-cache',
        join(folder, 'git-cache'),
        '--data',
        dataDir,
        '--retry-unit-ms',
        String(retryUnitMs),
      ],
      { cwd: ROOT },
    );
    running.push(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Powertools writes warnings and errors to stderr, the rest to stdout: read both.
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        try {
          logs.push({ ...JSON.parse(line), serve: index });
        } catch {
          logs.push({ text: line, serve: index });
        }
      });
    }
    const listening = await waitFor(`serve ${index} to listen`, logs, () => {
      if (child.exitCode !== null) throw new Error(`serve ${index} exited: ${tail(logs)}`);
      return logs.find(
        (line) => line.serve === index && line.message === 'promoter serve listening',
      );
    });
    const loaded = listening.pipelines as string[];
    const missing = pipelines.filter((pipeline) => !loaded.includes(`${NAMESPACE}/${pipeline}`));
    if (missing.length > 0) throw new Error(`serve did not load ${missing.join(', ')}`);
    return {
      index,
      url: listening.url as string,
      queuedAtStart: listening.queued as number,
      exited,
      async kill9() {
        child.kill('SIGKILL');
        await exited;
      },
      async stop() {
        child.kill('SIGINT');
        await exited;
      },
    };
  };

  return {
    github,
    proxy,
    pipelines,
    dataDir,
    retryUnitMs,
    logs,
    timeOrigin: Math.floor(Date.now() / 1000) - 600,
    startServe,
    promoter: (args) => runPromoter(args),
    async close() {
      for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
      await proxy.close();
      await github.close();
      await rm(folder, { recursive: true, force: true });
    },
  };
};

const tail = (logs: readonly LogLine[]): string =>
  `serve's last lines:\n${logs
    .slice(-40)
    .map((line) => JSON.stringify(line))
    .join('\n')}`;

/** Polls `probe` every 50 ms until it gives a value; after `ms`, throws with serve's last lines. */
export const waitFor = async <T>(
  what: string,
  logs: readonly LogLine[],
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 60_000,
): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${tail(logs)}`);
    await sleep(50);
  }
};

// ---- events ----------------------------------------------------------------------------------

export interface Delivery {
  readonly target: Target;
  /** The source env's target that reports it (its involvedObject namespace). */
  readonly sourceNamespace: string;
  readonly revision: string;
  /** The event's timestamp (RFC 3339, whole seconds, as Flux writes it). */
  readonly timestamp: string;
  /** The exact bytes sent and signed. */
  readonly body: string;
  /** `event`: first delivery; `retry`: Flux sending the same bytes again; `late`: an older revision reported after a newer one. */
  readonly kind: 'event' | 'retry' | 'late';
}

export interface RoundPlan {
  /** Revisions of round r are `7.r.k`, its event times after those of every earlier round. */
  readonly round: number;
  /**
   * Per pipeline: revisions promoted into staging (one event each, from dev) and into prod (one
   * event from each staging target).
   */
  readonly staging: number;
  readonly prod: number;
  /** Per pipeline: events delivered a second time, later. */
  readonly retries: number;
  /** Per pipeline: older revisions reported again (a later timestamp, still older than the newest), last. */
  readonly late: number;
  readonly seed: number;
}

/** Seconds between two rounds' event times; revision k of a round is 6k seconds in. */
const ROUND_SECONDS = 100;
const REVISION_SECONDS = 6;

/**
 * Where in its revision's 6 seconds an event is, so that no two events of a pipeline share a
 * timestamp (which names the job): dev's at 0 and its late one at 2; staging's targets at 3 and
 * 4, and their late one at 5.
 */
const secondsIn = (hop: Hop, sourceNamespace: string, kind: 'event' | 'late'): number =>
  3 * HOPS.indexOf(hop) + (kind === 'late' ? 2 : hop.sourceNamespaces.indexOf(sourceNamespace));

/** mulberry32: a small seeded generator, so that a failing plan can be replayed. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const FIXTURE_EVENT = readFixture('flux-events/helmrelease-upgrade-succeeded.json');

const rfc3339 = (seconds: number): string =>
  new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

const eventBody = (sourceNamespace: string, revision: string, timestamp: string): string =>
  FIXTURE_EVENT.replace('"namespace":"podinfo-dev"', `"namespace":"${sourceNamespace}"`)
    .replace(/"timestamp":"[^"]+"/, `"timestamp":"${timestamp}"`)
    .replace('"revision":"6.5.0"', `"revision":"${revision}"`)
    .replace('podinfo@6.5.0', `podinfo@${revision}`);

const delivery = (
  target: Target,
  sourceNamespace: string,
  revision: string,
  seconds: number,
  kind: Delivery['kind'],
): Delivery => {
  const timestamp = rfc3339(seconds);
  return {
    target,
    sourceNamespace,
    revision,
    timestamp,
    body: eventBody(sourceNamespace, revision, timestamp),
    kind,
  };
};

/**
 * One round of events for `pipelines`, interleaved across pipelines. Within a pipeline, each
 * source target's newest event is sent before the one just older (out of order), the targets'
 * events interleaved, the retries come after the event they repeat, and the late older events
 * (of one target each) come last.
 */
export const planRound = (
  world: Pick<BurstWorld, 'timeOrigin'>,
  pipelines: readonly string[],
  plan: RoundPlan,
): Delivery[] => {
  const random = seededRandom(plan.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const base = world.timeOrigin + plan.round * ROUND_SECONDS;
  const sequences = pipelines.map((pipeline) => {
    const perSource = targetsOf(pipeline).flatMap((target) =>
      target.hop.sourceNamespaces.map((namespace) => {
        const count = target.hop.to === 'staging' ? plan.staging : plan.prod;
        const events = Array.from({ length: count }, (_, k) =>
          delivery(
            target,
            namespace,
            `7.${plan.round}.${k + 1}`,
            base + REVISION_SECONDS * (k + 1) + secondsIn(target.hop, namespace, 'event'),
            'event',
          ),
        );
        if (events.length >= 2) events.push(events.splice(events.length - 2, 1)[0] as Delivery);
        return events;
      }),
    );
    const sequence: Delivery[] = [];
    while (perSource.some((events) => events.length > 0)) {
      sequence.push(pick(perSource.filter((events) => events.length > 0)).shift() as Delivery);
    }
    for (let retry = 0; retry < plan.retries; retry++) {
      const at = Math.floor(random() * sequence.length);
      const original = sequence[at] as Delivery;
      const later = at + 1 + Math.floor(random() * (sequence.length - at));
      sequence.splice(later, 0, { ...original, kind: 'retry' });
    }
    for (let late = 0; late < plan.late; late++) {
      const target = pick(targetsOf(pipeline));
      const count = target.hop.to === 'staging' ? plan.staging : plan.prod;
      if (count < 2) continue;
      const k = 1 + Math.floor(random() * (count - 1));
      const namespace = pick(target.hop.sourceNamespaces);
      sequence.push(
        delivery(
          target,
          namespace,
          `7.${plan.round}.${k}`,
          base + REVISION_SECONDS * k + secondsIn(target.hop, namespace, 'late'),
          'late',
        ),
      );
    }
    return sequence;
  });
  const deliveries: Delivery[] = [];
  while (sequences.some((sequence) => sequence.length > 0)) {
    deliveries.push(pick(sequences.filter((sequence) => sequence.length > 0)).shift() as Delivery);
  }
  return deliveries;
};

export interface Answer {
  readonly delivery: Delivery;
  /** The HTTP status; undefined when no answer came (Flux would deliver the event again). */
  readonly status: number | undefined;
  /** The job id of a 202 that promoted (none when it waits for the source env's other targets). */
  readonly jobId?: string;
  /** The answer's body, or the request's error. */
  readonly body: unknown;
}

export interface DeliverOptions {
  readonly concurrency: number;
  /** Before sending delivery `index` (fault injection). */
  readonly before?: (index: number) => void;
  /** Once delivery `index` is answered or failed. */
  readonly after?: (answer: Answer, index: number) => void;
}

interface WebhookAnswer {
  readonly promoted?: boolean;
  readonly promotion?: { readonly id?: string; readonly revision?: string };
  readonly waiting?: { readonly targets?: { readonly ready: number; readonly needed: number } };
}

/**
 * Why a 202 is not one the contract allows for `item`, if it is not: it names the promotion at
 * the item's revision, or (from an env of several targets) it waits for the others to report.
 */
const unexpected202 = (item: Delivery, body: WebhookAnswer): string | undefined => {
  if (body.promoted === true) {
    return body.promotion?.revision === item.revision
      ? undefined
      : `names ${JSON.stringify(body.promotion)}`;
  }
  const targets = body.waiting?.targets;
  const needed = item.target.hop.sourceNamespaces.length;
  return needed > 1 && targets?.needed === needed && targets.ready < needed
    ? undefined
    : `is ${JSON.stringify(body)}`;
};

/** Posts each delivery to serve's webhook, signed like Flux's generic-hmac Provider. */
export const deliver = (
  url: string,
  deliveries: readonly Delivery[],
  options: DeliverOptions,
): Promise<Answer[]> =>
  pool(deliveries, options.concurrency, async (item, index) => {
    options.before?.(index);
    const { target } = item;
    let answer: Answer;
    try {
      const response = await fetch(
        `${url}/promotion/${NAMESPACE}/${target.pipeline}/${target.hop.from}`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'X-Signature': signBody(item.body, hmacKey(target.pipeline)),
          },
          body: item.body,
        },
      );
      const body = (await response.json()) as WebhookAnswer;
      const jobId = response.status === 202 ? body.promotion?.id : undefined;
      answer = { delivery: item, status: response.status, body, ...(jobId ? { jobId } : {}) };
    } catch (error) {
      answer = { delivery: item, status: undefined, body: String(error) };
    }
    options.after?.(answer, index);
    return answer;
  });

// ---- faults ----------------------------------------------------------------------------------

const API = /^\/api\/v3\/repos\//;
const UPLOAD_ADVERTISEMENT = /\/info\/refs\?service=git-upload-pack$/;
const FETCH = /\/git-upload-pack$/;
const PUSH = /\/git-receive-pack$/;
const SECONDARY_MESSAGE =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';

const github = (
  status: number,
  message: string,
  headers: Record<string, string> = {},
): ProxyFault => ({
  kind: 'status',
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify({ message, documentation_url: 'https://docs.github.com/rest' }),
});

export interface LabelledRule extends ProxyRule {
  readonly label: string;
}

/**
 * One of each fault the burst meets. Those the clients retry in process (Octokit after 1 s, git
 * reads after 250 ms) cost real time; the others go through serve's queue at its scaled schedule.
 */
export const BURST_FAULTS: readonly LabelledRule[] = [
  {
    label: 'API: the answer to opening a PR is lost (the PR exists)',
    method: 'POST',
    path: /\/pulls$/,
    fault: { kind: 'drop', after: true },
  },
  { label: 'API: 500', path: API, fault: github(500, 'Server Error') },
  { label: 'API: 502', path: API, fault: { kind: 'status', status: 502, body: 'Bad Gateway' } },
  { label: 'API: connection reset', path: API, fault: { kind: 'drop', reset: true } },
  {
    label: 'API: the answer to a PR update is lost',
    method: 'PATCH',
    path: /\/pulls\/\d+$/,
    fault: { kind: 'drop', after: true },
  },
  {
    label: 'API: 429 with Retry-After 1',
    path: API,
    fault: github(429, 'Too Many Requests', { 'retry-after': '1' }),
  },
  {
    label: 'API: 429 with Retry-After 45',
    path: API,
    fault: github(429, 'Too Many Requests', { 'retry-after': '45' }),
  },
  { label: 'API: 429 without Retry-After', path: API, fault: github(429, 'Too Many Requests') },
  {
    label: 'API: 403 secondary rate limit without Retry-After',
    path: API,
    fault: github(403, SECONDARY_MESSAGE),
  },
  {
    label: 'API: 403 secondary rate limit with Retry-After 1',
    path: API,
    fault: github(403, SECONDARY_MESSAGE, { 'retry-after': '1' }),
  },
  {
    label: 'git: 503 on the ref advertisement',
    path: UPLOAD_ADVERTISEMENT,
    fault: { kind: 'status', status: 503 },
  },
  {
    label: 'git: 429 with Retry-After 45 on the ref advertisement',
    path: UPLOAD_ADVERTISEMENT,
    fault: { kind: 'status', status: 429, headers: { 'retry-after': '45' } },
  },
  {
    label: 'git: fetch connection reset',
    method: 'POST',
    path: FETCH,
    fault: { kind: 'drop', reset: true },
  },
  {
    label: 'git: fetch answer cut short',
    method: 'POST',
    path: FETCH,
    fault: { kind: 'truncate', bytes: 64 },
  },
  { label: 'git: 500 on push', method: 'POST', path: PUSH, fault: { kind: 'status', status: 500 } },
  {
    label: 'git: push connection reset',
    method: 'POST',
    path: PUSH,
    fault: { kind: 'drop', reset: true },
  },
  {
    label: 'git: the answer to a push is lost (the push landed)',
    method: 'POST',
    path: PUSH,
    fault: { kind: 'drop', after: true },
  },
];

/**
 * `copies` of every BURST_FAULTS rule spread evenly over the first 70 % of `count` deliveries
 * (the promotions they meet run a while after the last event): the rules to inject before each.
 */
export const faultSchedule = (count: number, copies: number): Map<number, LabelledRule[]> => {
  const rules = Array.from({ length: copies }, () => BURST_FAULTS).flat();
  const schedule = new Map<number, LabelledRule[]>();
  rules.forEach((rule, index) => {
    const at = Math.floor((index * 0.7 * count) / rules.length);
    schedule.set(at, [...(schedule.get(at) ?? []), rule]);
  });
  return schedule;
};

/**
 * The next push to any repository first gets a commit on that repository's `main` (another
 * person merging there at that moment). Resolves with the repository's name.
 */
export const moveBaseDuringNextPush = (world: Pick<BurstWorld, 'github'>): Promise<string> =>
  new Promise((resolve, reject) => {
    const { github } = world;
    github.beforeReceivePack = async (urlPath) => {
      github.beforeReceivePack = undefined;
      const [, owner = '', repo = ''] = /^\/([^/]+)\/(.+)\.git$/.exec(urlPath) ?? [];
      try {
        await github.commitOnBranch(owner, repo, 'main', {
          'README.md': 'A change merged on main while a promotion was being pushed.\n',
        });
        resolve(repo);
      } catch (error) {
        reject(error);
      }
    };
  });

/**
 * Everything answers 503 for `ms` milliseconds, then the proxy forgets its rules and requests.
 * Resolves with how many requests met the outage (start it with no other fault recorded).
 */
export const outage = async (proxy: FaultProxy, ms: number): Promise<number> => {
  proxy.inject({
    times: Number.POSITIVE_INFINITY,
    fault: { kind: 'status', status: 503, body: 'GitHub is down for maintenance\n' },
  });
  await sleep(ms);
  const met = proxy.requests.filter((request) => request?.fault === 'status').length;
  proxy.reset();
  return met;
};

// ---- what came of it -------------------------------------------------------------------------

/** `7.2.10` after `7.2.9`: revisions compared part by part, as numbers. */
export const compareRevisions = (a: string, b: string): number => {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
};

const ENDED = new Set(['promotion finished', 'promotion dead-lettered']);

/** Job ids answered 202 for which no serve process logged an end (finished or dead-lettered). */
export const unfinishedJobs = (answers: readonly Answer[], logs: readonly LogLine[]): string[] => {
  const ended = new Set(
    logs.filter((line) => ENDED.has(line.message as string)).map((line) => line.jobId),
  );
  const accepted = new Set(answers.flatMap((answer) => answer.jobId ?? []));
  return [...accepted].filter((id) => !ended.has(id));
};

/**
 * Resolves when every job answered 202 has ended and each restarted serve has ended every job
 * it resumed (a job that had ended before a kill may run again after it).
 */
export const waitForDrain = (
  world: Pick<BurstWorld, 'logs'>,
  answers: readonly Answer[],
  serves: readonly ServeProcess[],
  ms = 120_000,
): Promise<true> =>
  waitFor(
    `the jobs answered 202 to end`,
    world.logs,
    () => {
      if (unfinishedJobs(answers, world.logs).length > 0) return undefined;
      for (const serve of serves.filter((process) => process.queuedAtStart > 0)) {
        const mine = world.logs.filter((line) => line.serve === serve.index);
        const queuedHere = new Set(
          mine.filter((line) => line.message === 'promotion queued').map((line) => line.jobId),
        );
        const resumed = new Set(
          mine
            .filter((line) => ENDED.has(line.message as string) && !queuedHere.has(line.jobId))
            .map((line) => line.jobId),
        );
        if (resumed.size < serve.queuedAtStart) return undefined;
      }
      return true;
    },
    ms,
  );

/**
 * The newest accepted event (by event time, as the contract orders them) per target key, of
 * the revisions that every target of the source env was accepted at: under the gate `all`, a
 * revision that only some of them reported is not promoted.
 */
export const newestAccepted = (answers: readonly Answer[]): Map<string, Delivery> => {
  const reportedBy = new Map<string, Set<string>>();
  for (const { delivery: item, status } of answers) {
    if (status !== 202) continue;
    const key = `${item.target.key}@${item.revision}`;
    reportedBy.set(key, (reportedBy.get(key) ?? new Set()).add(item.sourceNamespace));
  }
  const newest = new Map<string, Delivery>();
  for (const { delivery: item, status } of answers) {
    if (status !== 202) continue;
    const reported = reportedBy.get(`${item.target.key}@${item.revision}`);
    if (!item.target.hop.sourceNamespaces.every((namespace) => reported?.has(namespace))) continue;
    const current = newest.get(item.target.key);
    if (current === undefined || Date.parse(item.timestamp) > Date.parse(current.timestamp)) {
      newest.set(item.target.key, item);
    }
  }
  return newest;
};

const markerOf = (target: Target): string => `${NAMESPACE}:${target.pipeline}:${target.hop.to}`;

/** The values of the lines of `text` that carry `marker`'s comment. */
const markerValues = (text: string, marker: string): string[] =>
  text.split('\n').flatMap((line) => {
    const hash = line.indexOf('#');
    if (hash < 0) return [];
    try {
      const comment = JSON.parse(line.slice(hash + 1).trim()) as Record<string, unknown>;
      if (comment.$promotion !== marker) return [];
    } catch {
      return [];
    }
    const value = line.slice(line.indexOf(':') + 1, hash).trim();
    return [value.replace(/^(['"])(.*)\1$/, '$2')];
  });

const isYaml = (path: string): boolean => /\.ya?ml$/.test(path);

/** The revision each entry of `branch`'s reflog held in `path`, oldest first. */
const branchHistory = async (
  world: Pick<BurstWorld, 'github'>,
  target: Target,
  path: string,
): Promise<{ commit: string; revisions: string[] }[]> => {
  const repository = world.github.repositoryPath(OWNER, target.repo);
  const listed = await runGit(repository, [
    'log',
    '-g',
    '--format=%H',
    `refs/heads/${target.branch}`,
  ]);
  const commits = listed.stdout.toString('utf8').split('\n').filter(Boolean).reverse();
  const batch = await runGit(
    repository,
    ['cat-file', '--batch'],
    commits.map((commit) => `${commit}:${path}\n`).join(''),
  );
  let offset = 0;
  return commits.map((commit) => {
    const headerEnd = batch.stdout.indexOf(0x0a, offset);
    const [, type, size] = batch.stdout.subarray(offset, headerEnd).toString('latin1').split(' ');
    if (type !== 'blob') {
      offset = headerEnd + 1;
      return { commit, revisions: [] };
    }
    const text = batch.stdout.subarray(headerEnd + 1, headerEnd + 1 + Number(size)).toString();
    offset = headerEnd + 1 + Number(size) + 1;
    return { commit, revisions: markerValues(text, markerOf(target)) };
  });
};

interface StatusBody {
  readonly environments?: readonly {
    readonly name: string;
    readonly promotion: {
      readonly state: string;
      readonly revision: string;
      readonly pullRequest: { readonly number: number } | null;
      readonly failure: { readonly code: string; readonly message: string } | null;
    } | null;
  }[];
}

/** `GET /pipelines/{ns}/{name}` on serve. */
export const pipelineStatus = async (url: string, pipeline: string): Promise<StatusBody> => {
  const response = await fetch(`${url}/pipelines/${NAMESPACE}/${pipeline}`);
  return (await response.json()) as StatusBody;
};

export interface BurstReport {
  /** Answers 202, retries and late events included. */
  readonly accepted: number;
  /** Distinct jobs answered 202. */
  readonly jobs: number;
  readonly unfinished: readonly string[];
  readonly environments: number;
  /** Environments whose PR, branch, history and status are all as promised. */
  readonly exact: number;
  /** Environments whose branch history or finished log lines went back to an older revision. */
  readonly rolledBack: number;
  /** `promotion dead-lettered` lines of these pipelines. */
  readonly deadLetters: number;
  /** Every broken promise, one line each, naming the environment. */
  readonly problems: readonly string[];
}

/**
 * Checks each (pipeline, env) of `pipelines` against the newest revision `answers` accepted for
 * it, through the stand-in, the bare repositories, serve's logs and its status API at `url`, and
 * each 202 of theirs against what the webhook may answer.
 */
export const verifyBurst = async (
  world: Pick<BurstWorld, 'github' | 'logs'>,
  url: string,
  answers: readonly Answer[],
  pipelines: readonly string[],
): Promise<BurstReport> => {
  const newest = newestAccepted(answers);
  const problems: string[] = [];
  let exact = 0;
  let rolledBack = 0;
  const targets = pipelines.flatMap(targetsOf);
  const statuses = new Map(
    await pool(pipelines, 8, async (pipeline) => [pipeline, await pipelineStatus(url, pipeline)]),
  );
  await pool(targets, 8, async (target) => {
    const found: string[] = [];
    let wentBack = false;
    const expected = newest.get(target.key);
    if (expected === undefined) {
      problems.push(`${target.key}: no event was accepted`);
      return;
    }
    const revision = expected.revision;

    const open = world.github.standIn
      .pullRequests(OWNER, target.repo)
      .filter((pull) => pull.state === 'open' && pull.head === target.branch);
    const title = `Promote ${NAMESPACE}/${target.pipeline} in ${target.hop.to} to ${revision}`;
    if (open.length !== 1) found.push(`${open.length} open PRs instead of one`);
    const pull = open[0];
    if (pull !== undefined && pull.title !== title) found.push(`PR titled "${pull.title}"`);
    if (pull !== undefined && !pull.body?.includes(`\`${revision}\``)) {
      found.push(`PR body does not name ${revision}`);
    }

    const [base, branch] = await Promise.all([
      world.github.readBranchFiles(OWNER, target.repo, 'main'),
      world.github.readBranchFiles(OWNER, target.repo, target.branch).catch(() => undefined),
    ]);
    const markerFiles = Object.keys(base).filter(
      (path) => isYaml(path) && markerValues(base[path] ?? '', markerOf(target)).length > 0,
    );
    if (branch === undefined) {
      found.push(`no branch ${target.branch}`);
    } else {
      for (const path of new Set([...Object.keys(base), ...Object.keys(branch)])) {
        if (markerFiles.includes(path)) {
          const values = markerValues(branch[path] ?? '', markerOf(target));
          if (values.length === 0 || values.some((value) => value !== revision)) {
            found.push(`branch's ${path} holds ${values.join(', ') || 'no marker'}`);
          }
        } else if (branch[path] !== base[path]) {
          found.push(`branch changed ${path}, which has no marker for ${target.hop.to}`);
        }
      }
      const [parent, head] = await Promise.all([
        world.github.git(OWNER, target.repo, ['rev-parse', `refs/heads/${target.branch}^`]),
        world.github.branchHead(OWNER, target.repo, 'main'),
      ]);
      if (parent !== head) found.push(`branch is not one commit on main's head`);
    }

    const history = await branchHistory(world, target, markerFiles[0] ?? '');
    if (history.length === 0) found.push('no reflog for the branch');
    let highest: string | undefined;
    for (const [index, entry] of history.entries()) {
      const [held] = entry.revisions;
      if (held === undefined) continue;
      if (highest !== undefined && compareRevisions(held, highest) < 0) {
        wentBack = true;
        found.push(`push ${index + 1} rolled the branch back from ${highest} to ${held}`);
      }
      if (highest === undefined || compareRevisions(held, highest) > 0) highest = held;
    }

    let logged: string | undefined;
    for (const line of world.logs) {
      if (line.message !== 'promotion finished') continue;
      if (line.status !== 'opened' && line.status !== 'updated') continue;
      if (line.pipeline !== `${NAMESPACE}/${target.pipeline}`) continue;
      if (line.environment !== target.hop.to) continue;
      const held = line.revision as string;
      if (logged !== undefined && compareRevisions(held, logged) < 0) {
        wentBack = true;
        found.push(`serve logged the PR ${line.status} at ${held} after ${logged}`);
      }
      if (logged === undefined || compareRevisions(held, logged) > 0) logged = held;
    }

    const status = statuses
      .get(target.pipeline)
      ?.environments?.find((environment) => environment.name === target.hop.to)?.promotion;
    if (status?.state !== 'opened' && status?.state !== 'updated') {
      found.push(`status ${status?.state ?? 'missing'}`);
    }
    if (status?.revision !== revision) found.push(`status at ${status?.revision}`);
    if (pull !== undefined && status?.pullRequest?.number !== pull.number) {
      found.push(`status names PR ${status?.pullRequest?.number}, not #${pull.number}`);
    }

    if (wentBack) rolledBack += 1;
    if (found.length === 0) exact += 1;
    for (const problem of found) problems.push(`${target.key} (newest ${revision}): ${problem}`);
  });

  const names = new Set(pipelines.map((pipeline) => `${NAMESPACE}/${pipeline}`));
  for (const { delivery: item, status, body } of answers) {
    if (status !== 202 || !names.has(`${NAMESPACE}/${item.target.pipeline}`)) continue;
    const refused = unexpected202(item, body as WebhookAnswer);
    if (refused !== undefined) {
      problems.push(
        `${item.target.key}: 202 for ${item.revision} at ${item.timestamp} from ${item.sourceNamespace} ${refused}`,
      );
    }
  }
  const unfinished = unfinishedJobs(answers, world.logs);
  for (const id of unfinished) problems.push(`job ${id} was answered 202 and never ended`);
  return {
    accepted: answers.filter((answer) => answer.status === 202).length,
    jobs: new Set(answers.flatMap((answer) => answer.jobId ?? [])).size,
    unfinished,
    environments: targets.length,
    exact,
    rolledBack,
    deadLetters: world.logs.filter(
      (line) => line.message === 'promotion dead-lettered' && names.has(line.pipeline as string),
    ).length,
    problems: problems.sort(),
  };
};

/** The faults the proxy answered, by kind and status: what the run met. */
export const faultsAnswered = (proxy: FaultProxy): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const request of proxy.requests.filter((entry) => entry?.fault !== undefined)) {
    const key = `${request.fault} ${request.status || '-'}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
};
