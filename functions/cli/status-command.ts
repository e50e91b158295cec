import { parseArgs } from 'node:util';
import * as z from 'zod/mini';
import { shortDuration } from '../core/pipeline-status.ts';
import { pipelineStatusSchema } from '../core/pipeline-status-answer.ts';
import {
  type ApiRequest,
  apiUrl,
  describeFailure,
  isLoopbackUrl,
  sendApiRequest,
  signingRegion,
} from './aws-signed-client.ts';
import { textTable } from './text-table.ts';

export const STATUS_USAGE = `promoter status NAMESPACE/NAME --api URL [--region REGION] [--json]
  Prints where a pipeline's promotions stand: per environment, the revision deployed, the
  promotion into it (revision, state, pull request) and when it last changed, then the reasons
  of failed promotions. Signed with AWS SigV4 like sync, except on a loopback URL
  (promoter serve, e.g. --api http://127.0.0.1:8080).
  Exit status: 0 shown, 1 pipeline not found, 2 failed.`;

/** What a waiting promotion waits for, in words. */
export const waitingText = (gate: Gate): string => {
  if ('targets' in gate) {
    return `${gate.targets.ready} of ${gate.targets.needed} targets of the source report it`;
  }
  if ('soak' in gate) return `its soak, until ${shortTime(gate.soak.until)}`;
  if ('window' in gate) return `its window, which opens at ${shortTime(gate.window.opensAt)}`;
  const until = gate.freeze.until === undefined ? '' : ` until ${shortTime(gate.freeze.until)}`;
  return `a freeze by ${gate.freeze.by}${until}: ${gate.freeze.reason}`;
};

// `pipeline` names it: what --json prints leaves the answer's `namespace` and `name` out.
const statusAnswer = z.omit(pipelineStatusSchema, { namespace: true, name: true });

export type StatusAnswer = z.output<typeof statusAnswer>;

/** `2026-11-20T16:01:05Z`: ISO 8601 to the second, in UTC. */
const shortTime = (iso: string): string => {
  const time = Date.parse(iso);
  return Number.isNaN(time) ? iso : new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z');
};

const latest = (...isos: (string | undefined)[]): string | undefined =>
  isos
    .filter((iso): iso is string => iso !== undefined)
    .sort((a, b) => Date.parse(b) - Date.parse(a))[0];

const HEADERS = ['ENVIRONMENT', 'DEPLOYED', 'PROMOTION', 'STATE', 'PULL REQUEST', 'UPDATED'];

type EnvironmentAnswer = StatusAnswer['environments'][number];

type Gate = NonNullable<NonNullable<EnvironmentAnswer['promotion']>['waitingFor']>;

/** One sentence per environment: what runs there and where its promotion stands. */
export const glanceLine = (environment: EnvironmentAnswer, pipeline = 'NAMESPACE/NAME'): string => {
  const runs =
    environment.deployed === null ? 'nothing seen yet' : `runs ${environment.deployed.revision}`;
  const promotion = environment.promotion;
  if (promotion === null) return `${environment.name}: ${runs}`;
  const pull =
    promotion.pullRequest === null
      ? ''
      : ` (PR #${promotion.pullRequest.number} ${promotion.pullRequest.state})`;
  const what: Record<string, string> = {
    waiting: `${promotion.revision} from ${promotion.from} waits for ${promotion.waitingFor === null ? 'its gates' : waitingText(promotion.waitingFor)}`,
    'awaiting-approval': `${promotion.revision} from ${promotion.from} waits for approval: promoter approve ${pipeline} ${environment.name} --revision ${promotion.revision}`,
    cancelled: `${promotion.revision} was cancelled: ${promotion.failure?.message ?? 'its source failed'}`,
    queued: `${promotion.revision} from ${promotion.from} is queued`,
    pushing: `${promotion.revision} from ${promotion.from} is being pushed`,
    opened: `${promotion.revision} waits for its PR to be merged${pull}`,
    updated: `${promotion.revision} waits for its PR to be merged${pull}`,
    notified: `${promotion.revision} was handed over by notification, waiting for ${environment.name} to deploy it`,
    'up-to-date': `${promotion.revision} is on the base branch, waiting for ${environment.name} to deploy it`,
    merged: `${promotion.revision} was merged${pull}, waiting for ${environment.name} to deploy it`,
    closed: `${promotion.revision}'s PR was closed unmerged${pull}`,
    deployed: `${promotion.revision} promoted from ${promotion.from}${promotion.leadTimeMs === null ? '' : ` in ${shortDuration(promotion.leadTimeMs)}`}`,
    superseded: `${promotion.revision} was superseded by a later event`,
    failed: `${promotion.revision} failed: ${promotion.failure?.code ?? 'unknown'}`,
    'dead-lettered': `${promotion.revision} is dead-lettered: ${promotion.failure?.code ?? 'unknown'} (promoter dead-letters)`,
  };
  return `${environment.name}: ${runs}; ${what[promotion.state] ?? `${promotion.revision} ${promotion.state}`}`;
};

/** `staging-eu/podinfo 6.5.0, staging-us/podinfo 6.4.9 (failed)`: what each target runs. */
const targetsText = (environment: EnvironmentAnswer): string =>
  environment.targets
    .map(
      (target) =>
        `${target.name} ${target.revision ?? '-'}${target.ok === false ? ' (failed)' : ''}`,
    )
    .join(', ');

/** The status as a table, one row per environment, then the failures' reasons. */
export const formatStatusTable = (status: StatusAnswer): string => {
  const rows = status.environments.map((environment) => {
    const { deployed, promotion } = environment;
    const updated = latest(deployed?.recordedAt, promotion?.updatedAt);
    return [
      environment.name,
      deployed?.revision ?? '-',
      promotion?.revision ?? '-',
      promotion?.state ?? '-',
      promotion?.pullRequest?.url ?? '-',
      updated === undefined ? '-' : shortTime(updated),
    ];
  });
  const failures = status.environments.flatMap((environment) =>
    environment.promotion?.failure == null
      ? []
      : [
          `${environment.name}: ${environment.promotion.state} ${environment.promotion.failure.code}: ${environment.promotion.failure.message}`,
        ],
  );
  return [
    `${status.pipeline} (${status.app.kind} ${status.app.name})`,
    '',
    ...status.environments.flatMap((environment) => [
      glanceLine(environment, status.pipeline),
      ...(environment.targets.length > 1 ? [`  targets: ${targetsText(environment)}`] : []),
    ]),
    '',
    ...textTable(HEADERS, rows),
    ...(failures.length === 0 ? [] : ['', ...failures]),
  ].join('\n');
};

/** `promoter status`: resolves to the exit status (0 shown, 1 not found). */
export const statusCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      region: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [id, ...extra] = positionals;
  const [namespace, name, ...rest] = (id ?? '').split('/');
  if (extra.length > 0 || rest.length > 0 || !namespace || !name) {
    throw new Error('expected one pipeline as NAMESPACE/NAME');
  }
  if (values.api === undefined) throw new Error('--api URL is required');
  const url = apiUrl(
    values.api,
    `/pipelines/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`,
  );
  const request: ApiRequest = {
    method: 'GET',
    url,
    headers: { accept: 'application/json' },
    region: isLoopbackUrl(url) ? undefined : signingRegion(url, values.region),
  };
  const response = await sendApiRequest(request);
  if (
    response.status === 404 &&
    response.text.includes(`pipeline ${namespace}/${name} not found`)
  ) {
    process.stderr.write(
      `promoter status: pipeline ${namespace}/${name} not found at ${values.api}\n`,
    );
    return 1;
  }
  if (response.status !== 200) throw new Error(describeFailure(request, response));
  let status: StatusAnswer;
  try {
    status = statusAnswer.parse(JSON.parse(response.text));
  } catch {
    throw new Error(
      `${url.href} answered 200 with something that is not a pipeline status: ${response.text.slice(0, 200)}`,
    );
  }
  process.stdout.write(
    `${values.json ? JSON.stringify(status, null, 2) : formatStatusTable(status)}\n`,
  );
  return 0;
};
