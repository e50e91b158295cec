import {
  type Environment,
  nextEnvironment,
  type Pipeline,
  promotionSettings,
  type Target,
  type TargetsGate,
} from './pipeline.ts';
import type { DeploymentRecord } from './ports.ts';

/**
 * The targets of an environment (DESIGN.md section 11): a target is its `clusterRef.name` and
 * its `namespace`; a Flux event names them in `metadata.cluster` (set by the leaf's Alert with
 * `eventMetadata: {cluster: NAME}`) and `involvedObject.namespace`.
 */

/** A target's name in records and status: `cluster/namespace`, or the namespace alone. */
export const targetName = (target: Target): string =>
  target.clusterRef === undefined
    ? target.namespace
    : `${target.clusterRef.name}/${target.namespace}`;

export type TargetMatch =
  | { readonly kind: 'target'; readonly target: Target }
  | { readonly kind: 'invalid'; readonly error: string };

const listed = (environment: Environment): string =>
  environment.targets
    .map((target) =>
      target.clusterRef === undefined
        ? `namespace ${target.namespace}`
        : `cluster ${target.clusterRef.name} namespace ${target.namespace}`,
    )
    .join(', ');

/**
 * The target of `environment` an event comes from. A target without `clusterRef` accepts any
 * cluster; when several targets share the namespace, the event must name its cluster.
 *
 * @example
 * resolveTarget(staging, 'podinfo-qa', 'staging-eu'); // { kind: 'target', target: {...} }
 */
export const resolveTarget = (
  environment: Environment,
  namespace: string,
  cluster: string | undefined,
): TargetMatch => {
  const inNamespace = environment.targets.filter((target) => target.namespace === namespace);
  const candidates =
    cluster === undefined
      ? inNamespace
      : inNamespace.filter(
          (target) => target.clusterRef === undefined || target.clusterRef.name === cluster,
        );
  const exact =
    cluster === undefined ? [] : candidates.filter((target) => target.clusterRef?.name === cluster);
  const [only] = exact.length === 1 ? exact : candidates;
  if (only !== undefined && (exact.length === 1 || candidates.length === 1)) {
    return { kind: 'target', target: only };
  }
  if (candidates.length > 1) {
    return {
      kind: 'invalid',
      error: `metadata.cluster: environment ${environment.name} has several targets in namespace ${namespace} (${listed(environment)}): set eventMetadata: {cluster: NAME} on the leaf cluster's Alert`,
    };
  }
  const what =
    cluster === undefined
      ? `involvedObject.namespace ${JSON.stringify(namespace)}`
      : `metadata.cluster ${JSON.stringify(cluster)} with involvedObject.namespace ${JSON.stringify(namespace)}`;
  return {
    kind: 'invalid',
    error: `${what} is not a target of environment ${environment.name} (targets: ${listed(environment)})`,
  };
};

/** How many of `count` targets the gate needs. */
export const targetsNeeded = (gate: TargetsGate, count: number): number => {
  if (gate.kind === 'any') return Math.min(1, count);
  if (gate.kind === 'count') return Math.min(gate.count, count);
  return count;
};

/**
 * The rule that says when `environment` runs a revision: the gate of the promotion out of it
 * (`pipeline-promoter/gate.{next}` or `gate`), and for the last environment `gate`.
 */
export const targetsGateOf = (pipeline: Pipeline, environment: string): TargetsGate => {
  const next = nextEnvironment(pipeline, environment);
  return next === undefined
    ? (pipeline.settings?.all.gate ?? { kind: 'all' })
    : promotionSettings(pipeline, next.name).gate;
};

export interface TargetReadiness {
  readonly ready: number;
  readonly needed: number;
}

/**
 * The last report of each target of `environment`, by target name. A record without a target
 * (written before targets were told apart) stands for the only target of a one-target
 * environment.
 */
export const reportsByTarget = (
  environment: Environment,
  deployments: readonly DeploymentRecord[],
): Map<string, DeploymentRecord> => {
  const [only, ...others] = environment.targets;
  const legacy = only !== undefined && others.length === 0 ? targetName(only) : undefined;
  const reports = new Map<string, DeploymentRecord>();
  for (const record of deployments) {
    if (record.environment !== environment.name) continue;
    const name = record.target ?? legacy;
    if (name !== undefined) reports.set(name, record);
  }
  return reports;
};

/**
 * How many targets of `environment` last reported a successful deployment at `revision`, and how
 * many its gate needs.
 *
 * @example
 * targetReadiness(pipeline, staging, deployments, '6.5.0'); // { ready: 1, needed: 2 }
 */
export const targetReadiness = (
  pipeline: Pipeline,
  environment: Environment,
  deployments: readonly DeploymentRecord[],
  revision: string,
): TargetReadiness => {
  const reports = reportsByTarget(environment, deployments);
  const ready = environment.targets.filter((target) => {
    const record = reports.get(targetName(target));
    return record !== undefined && record.revision === revision && record.ok !== false;
  }).length;
  return {
    ready,
    needed: targetsNeeded(targetsGateOf(pipeline, environment.name), environment.targets.length),
  };
};
