import type { PipelineStatus } from '../../functions/core/pipeline-status.ts';
import { readFixture } from './fixtures.ts';

/**
 * What the end-to-end tests of the gates (DESIGN.md section 11) hand `promoter serve`
 * (promoter-serve.ts): Pipelines with the gates' annotations, and Flux events from named targets
 * (`metadata.cluster`, as the leaf Alert's `eventMetadata` adds it) as Flux writes them.
 */
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

/** The promotion into `environment` in a pipeline's status (throws when there is none). */
export const promotionInto = (status: PipelineStatus, environment: string) => {
  const found = status.environments.find((candidate) => candidate.name === environment);
  if (found?.promotion == null) {
    throw new Error(`no promotion into ${environment} in ${JSON.stringify(status)}`);
  }
  return found.promotion;
};
