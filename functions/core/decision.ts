import { apiGroup, eventRevisionField, type FluxEvent } from './flux-event.ts';
import { hasControlCharacter } from './names.ts';
import { findEnvironment, nextEnvironment, type Pipeline } from './pipeline.ts';
import { type PromotionJob, promotionJobId } from './promotion-job.ts';
import { resolveTarget, targetName } from './targets.ts';

/*
 * Whether a valid, signed Flux event promotes anything (DESIGN.md section 5, after the
 * signature and body checks). Pure: the caller supplies the time.
 */

export const DEFAULT_PROMOTING_REASONS = [
  'InstallSucceeded',
  'UpgradeSucceeded',
  'TestSucceeded',
  'ReconciliationSucceeded',
  // Flux before v2.0 sent the severity as the reason.
  'info',
] as const;

/** Reasons that report a deployment going backwards or away: never promoted, whatever is set. */
export const NEVER_PROMOTING_REASONS: ReadonlySet<string> = new Set([
  'RollbackSucceeded',
  'UninstallSucceeded',
]);

/**
 * The event message travels in the job and into the PR body; Kustomization messages can list
 * every applied object. A PR body over GitHub's 65,536 characters would fail the promotion.
 */
export const MAX_JOB_MESSAGE_CHARS = 2048;

const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

/** Events older than this are refused as replays, unless the settings say otherwise. */
export const DEFAULT_MAX_EVENT_AGE_SECONDS = 15 * 60;

export interface DecisionSettings {
  readonly maxEventAgeMs: number;
  readonly maxClockSkewMs: number;
  readonly promotingReasons: ReadonlySet<string>;
}

export const decisionSettings = (
  options: { maxEventAgeSeconds?: number; promotingReasons?: readonly string[] | undefined } = {},
): DecisionSettings => ({
  maxEventAgeMs: (options.maxEventAgeSeconds ?? DEFAULT_MAX_EVENT_AGE_SECONDS) * 1000,
  maxClockSkewMs: 5 * 60 * 1000,
  promotingReasons: new Set(
    (options.promotingReasons ?? DEFAULT_PROMOTING_REASONS).filter(
      (reason) => !NEVER_PROMOTING_REASONS.has(reason),
    ),
  ),
});

export interface Deployment {
  readonly environment: string;
  /** The target the event came from (core/targets.ts). */
  readonly target: string;
  readonly revision: string;
  readonly eventTimestamp: string;
}

/**
 * Old helm-controllers sent the severity `info` as the reason, for "upgrade has started" as
 * well as for "upgrade succeeded": only the second is a deployment.
 */
const LEGACY_REASON = 'info';
const SUCCEEDED = /\bsucceeded\b/i;

export type Decision =
  | { readonly kind: 'invalid'; readonly error: string; readonly replay?: true }
  | {
      readonly kind: 'ignore';
      readonly reason: 'not-a-promoting-event';
      /** What the event reports, for the lifecycle (a failed deployment at a revision). */
      readonly deployment?: Deployment;
    }
  | { readonly kind: 'final'; readonly deployment: Deployment }
  | { readonly kind: 'promote'; readonly deployment: Deployment; readonly job: PromotionJob };

export const decide = (
  pipeline: Pipeline,
  environmentName: string,
  event: FluxEvent,
  now: Date,
  settings: DecisionSettings,
): Decision => {
  const environment = findEnvironment(pipeline, environmentName);
  if (environment === undefined) {
    const known = pipeline.environments.map((candidate) => candidate.name).join(', ');
    return {
      kind: 'invalid',
      error: `environment ${JSON.stringify(environmentName)} is not in pipeline ${pipeline.namespace}/${pipeline.name} (environments: ${known})`,
    };
  }
  const object = event.involvedObject;
  const app = pipeline.app;
  if (
    object.kind !== app.kind ||
    object.name !== app.name ||
    apiGroup(object.apiVersion) !== apiGroup(app.apiVersion)
  ) {
    return {
      kind: 'invalid',
      error: `involvedObject ${object.kind}/${object.name} (${object.apiVersion}) is not the pipeline's app ${app.kind}/${app.name} (${app.apiVersion})`,
    };
  }
  const target = resolveTarget(environment, object.namespace, event.metadata?.cluster);
  if (target.kind === 'invalid') return target;
  const found = eventRevisionField(event);
  if (found === undefined) {
    return {
      kind: 'invalid',
      error: `metadata.revision: expected the deployed revision (in metadata.revision or metadata["${apiGroup(object.apiVersion)}/revision"])`,
    };
  }
  // The revision becomes a commit message, a PR title and a branch's content: a newline would
  // let an event write trailers or lines of its own there.
  if (hasControlCharacter(found.value)) {
    return {
      kind: 'invalid',
      error: `${found.field}: expected a revision without newlines or control characters`,
    };
  }
  const revision = found.value;
  const age = now.getTime() - Date.parse(event.timestamp);
  if (age > settings.maxEventAgeMs) {
    return {
      kind: 'invalid',
      replay: true,
      error: `timestamp ${event.timestamp} is older than the maximum event age (${settings.maxEventAgeMs / 1000}s)`,
    };
  }
  if (-age > settings.maxClockSkewMs) {
    return {
      kind: 'invalid',
      replay: true,
      error: `timestamp ${event.timestamp} is more than ${settings.maxClockSkewMs / 1000}s in the future`,
    };
  }
  const deployment = {
    environment: environment.name,
    target: targetName(target.target),
    revision,
    // Normalised to UTC so that records order by plain string comparison.
    eventTimestamp: new Date(event.timestamp).toISOString(),
  };
  if (
    event.severity !== 'info' ||
    !settings.promotingReasons.has(event.reason) ||
    (event.reason === LEGACY_REASON && !SUCCEEDED.test(event.message))
  ) {
    return { kind: 'ignore', reason: 'not-a-promoting-event', deployment };
  }
  const next = nextEnvironment(pipeline, environment.name);
  if (next === undefined) return { kind: 'final', deployment };
  const ref = { namespace: pipeline.namespace, name: pipeline.name };
  return {
    kind: 'promote',
    deployment,
    job: {
      version: 1,
      id: promotionJobId(ref, next.name, revision, event.timestamp),
      pipeline: ref,
      from: environment.name,
      to: next.name,
      revision,
      event: {
        timestamp: event.timestamp,
        reason: event.reason,
        message: truncate(event.message, MAX_JOB_MESSAGE_CHARS),
        involvedObject: {
          kind: object.kind,
          namespace: object.namespace,
          name: object.name,
          apiVersion: object.apiVersion,
          ...(object.uid === undefined ? {} : { uid: object.uid }),
        },
      },
      receivedAt: now.toISOString(),
    },
  };
};
