import { freshEvent } from './fixtures.ts';

/**
 * The two targets of staging in the fixture pipeline (pipelines/podinfo.yaml): one cluster,
 * `staging`, so their events are told apart by `involvedObject.namespace` alone. Under the
 * default gate `all` (DESIGN.md section 11), staging counts as deployed at a revision, and
 * promotes into prod, only once both reported a promoting event at it.
 */
export const STAGING_TARGETS = ['podinfo-qa', 'podinfo-perf'] as const;

export type StagingTarget = (typeof STAGING_TARGETS)[number];

/** The webhook's answer to the first staging target's event: the gate waits for the other. */
export const WAITING_FOR_THE_OTHER_STAGING_TARGET = {
  promoted: false,
  waiting: { targets: { ready: 1, needed: 2 } },
} as const;

/**
 * The fixture's UpgradeSucceeded (exact bytes) as `namespace` reports it at `revision`, its
 * timestamp `at` (default now).
 */
export const upgradeSucceededFrom = (
  namespace: string,
  options: { readonly at?: Date; readonly revision?: string } = {},
): string =>
  freshEvent('helmrelease-upgrade-succeeded.json', options.at)
    .replace('"namespace":"podinfo-dev"', `"namespace":"${namespace}"`)
    .replaceAll('6.5.0', options.revision ?? '6.5.0');

/**
 * Staging deployed from both its targets: `send` delivers one target's event (the caller's
 * transport: serve, a Lambda handler), first podinfo-qa, then podinfo-perf. Resolves with the
 * two answers in that order: the first waits for the other target, the second opens the gate.
 */
export const deployStagingFromBothTargets = async <Answer>(
  send: (namespace: StagingTarget) => Promise<Answer>,
): Promise<[waiting: Answer, promoting: Answer]> => {
  const [first, second] = STAGING_TARGETS;
  const waiting = await send(first);
  const promoting = await send(second);
  return [waiting, promoting];
};
