import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PipelineStatus } from '../../functions/core/pipeline-status.ts';
import { signBody } from '../../functions/core/signature.ts';
import { FIXTURE_HMAC_KEY, readFixture } from './fixtures.ts';
import { PROMOTER_BIN } from './promoter-cli.ts';

/**
 * `promoter serve` as a user starts it (the installed `promoter` bundle, files on disk), for the
 * end-to-end tests of the gates (DESIGN.md section 11): Pipelines with the gates' annotations,
 * Flux events from named targets (`metadata.cluster`, as the leaf Alert's `eventMetadata` adds
 * it) signed as Flux signs them, and bounded polling of what serve does by itself.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const APP = {
  apiVersion: 'helm.toolkit.fluxcd.io/v2',
  kind: 'HelmRelease',
  name: 'podinfo',
};
export const NAMESPACE = 'flux-system';
export const CREDENTIALS = 'gates-credentials';

export interface GatedTarget {
  readonly namespace: string;
  readonly cluster?: string;
}

export interface GatedEnvironment {
  readonly name: string;
  readonly targets: readonly GatedTarget[];
  /** Weave's `manual: true` on the promotion into this environment. */
  readonly manual?: boolean;
}

/**
 * A Weave Pipeline (shipped shape) in `flux-system` whose promotions open PRs on `repositoryUrl`,
 * with `annotations` (the `pipeline-promoter/` settings) on its metadata.
 */
export const gatedPipeline = (options: {
  readonly name: string;
  readonly repositoryUrl: string;
  readonly environments: readonly GatedEnvironment[];
  readonly annotations?: Readonly<Record<string, string>>;
}): Record<string, unknown> => {
  const strategy = {
    'pull-request': {
      type: 'github',
      url: options.repositoryUrl,
      baseBranch: 'main',
      secretRef: { name: CREDENTIALS },
    },
    secretRef: { name: CREDENTIALS },
  };
  return {
    apiVersion: 'pipelines.weave.works/v1alpha1',
    kind: 'Pipeline',
    metadata: {
      name: options.name,
      namespace: NAMESPACE,
      ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    },
    spec: {
      appRef: APP,
      environments: options.environments.map((environment) => ({
        name: environment.name,
        targets: environment.targets.map((target) => ({
          namespace: target.namespace,
          ...(target.cluster === undefined
            ? {}
            : {
                clusterRef: { kind: 'GitopsCluster', name: target.cluster, namespace: NAMESPACE },
              }),
        })),
        ...(environment.manual === true ? { promotion: { manual: true, strategy } } : {}),
      })),
      promotion: { strategy },
    },
  };
};

/** The file path of `environment`'s HelmRelease in a fleet repository. */
export const releasePath = (environment: string): string =>
  `clusters/${environment}/podinfo/release.yaml`;

/** `environment`'s HelmRelease of pipeline `name`, its chart version marked for promotions. */
export const releaseFile = (name: string, environment: string, version: string): string =>
  [
    'apiVersion: helm.toolkit.fluxcd.io/v2',
    'kind: HelmRelease',
    'metadata:',
    '  name: podinfo',
    `  namespace: podinfo-${environment}`,
    'spec:',
    '  chart:',
    '    spec:',
    '      chart: podinfo',
    `      version: ${version} # {"$promotion": "${NAMESPACE}:${name}:${environment}"}`,
    '',
  ].join('\n');

/** Go's RFC 3339 as Flux writes event timestamps: whole seconds, UTC. */
export const fluxTimestamp = (at: Date): string => at.toISOString().replace(/\.\d{3}Z$/, 'Z');

const withTimestamp = (fixture: string, at: Date): string =>
  fixture.replace(/"timestamp":"[^"]+"/, `"timestamp":"${fluxTimestamp(at)}"`);

/**
 * The fixture's UpgradeSucceeded as the target (`namespace`, and `cluster` in `metadata` as the
 * leaf Alert's `eventMetadata: {cluster: NAME}` adds it) reports `revision` at `at`.
 */
export const upgradeSucceeded = (event: {
  readonly namespace: string;
  readonly revision: string;
  readonly at: Date;
  readonly cluster?: string;
}): string => {
  const body = withTimestamp(
    readFixture('flux-events/helmrelease-upgrade-succeeded.json'),
    event.at,
  )
    .replace('"namespace":"podinfo-dev"', `"namespace":"${event.namespace}"`)
    .replaceAll('6.5.0', event.revision);
  return event.cluster === undefined
    ? body
    : body.replace('"metadata":{', `"metadata":{"cluster":"${event.cluster}",`);
};

/** The fixture's UpgradeFailed (severity error) from `namespace` at `revision`. */
export const upgradeFailed = (event: {
  readonly namespace: string;
  readonly revision: string;
  readonly at: Date;
}): string =>
  withTimestamp(readFixture('flux-events/helmrelease-upgrade-failed.json'), event.at)
    .replace('"namespace":"podinfo-dev"', `"namespace":"${event.namespace}"`)
    .replaceAll('6.5.1', event.revision);

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface RunningServe {
  readonly url: string;
  /** Every line serve printed (JSON lines parsed; others as `{text}`). */
  readonly logs: readonly Record<string, unknown>[];
  /** `value` or, when it stays undefined past `ms`, an error that shows serve's log. */
  waitFor<T>(
    what: string,
    probe: () => T | undefined | Promise<T | undefined>,
    ms?: number,
  ): Promise<T>;
  /** `POST path` with `body` signed with `key` (default the tests' key), as Flux sends it. */
  postSigned(path: string, body: string, key?: string, signature?: string): Promise<Answer>;
  /** `POST path` with a JSON body and no signature (serve's loopback control routes). */
  postJson(path: string, body: unknown): Promise<Answer>;
  /** `GET /pipelines/flux-system/{name}`. */
  status(name: string): Promise<PipelineStatus>;
  stop(): Promise<void>;
}

const answerOf = async (response: Response): Promise<Answer> => ({
  status: response.status,
  body: (await response.json()) as Record<string, unknown>,
});

/**
 * Writes `pipelines` (one YAML stream of JSON documents) and `secrets` to a temporary folder and
 * starts `promoter serve --port 0` on them with `args`; resolves once it listens.
 */
export const startPromoterServe = async (options: {
  readonly pipelines: readonly Record<string, unknown>[];
  readonly secrets: Readonly<Record<string, unknown>>;
  readonly args?: readonly string[];
}): Promise<RunningServe> => {
  const folder = await mkdtemp(join(tmpdir(), 'gates-serve-'));
  const pipelinesPath = join(folder, 'pipelines.yaml');
  await writeFile(
    pipelinesPath,
    options.pipelines.map((pipeline) => JSON.stringify(pipeline)).join('\n---\n'),
  );
  await writeFile(join(folder, 'secrets.json'), JSON.stringify(options.secrets));
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [
      PROMOTER_BIN,
      'serve',
      '--port',
      '0',
      '--pipelines',
      pipelinesPath,
      '--secrets',
      join(folder, 'secrets.json'),
      '--git-cache',
      join(folder, 'git-cache'),
      '--data',
      join(folder, 'data'),
      ...(options.args ?? []),
    ],
    { cwd: ROOT },
  );
  const logs: Record<string, unknown>[] = [];
  // Powertools writes warnings and errors to stderr, the rest to stdout: read both.
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ text: line });
      }
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitFor: RunningServe['waitFor'] = async (what, probe, ms = 20_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(
          `timed out waiting for ${what}; serve logged:\n${logs.map((line) => JSON.stringify(line)).join('\n')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const url = await waitFor(
    'serve to listen',
    () =>
      logs.find((line) => line.message === 'promoter serve listening')?.url as string | undefined,
    30_000,
  );
  return {
    url,
    logs,
    waitFor,
    postSigned: async (path, body, key = FIXTURE_HMAC_KEY, signature = signBody(body, key)) =>
      answerOf(
        await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-signature': signature },
          body,
        }),
      ),
    postJson: async (path, body) =>
      answerOf(
        await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ),
    status: async (name) => {
      const response = await fetch(`${url}/pipelines/${NAMESPACE}/${name}`);
      if (response.status !== 200) {
        throw new Error(`status of ${name}: ${response.status} ${await response.text()}`);
      }
      return (await response.json()) as PipelineStatus;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
};

/** The promotion into `environment` in a pipeline's status (throws when there is none). */
export const promotionInto = (status: PipelineStatus, environment: string) => {
  const found = status.environments.find((candidate) => candidate.name === environment);
  if (found?.promotion == null) {
    throw new Error(`no promotion into ${environment} in ${JSON.stringify(status)}`);
  }
  return found.promotion;
};
