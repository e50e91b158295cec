import { parseArgs } from 'node:util';
import * as z from 'zod';
import { PROMOTION_STATUS_STATES } from '../core/pipeline-status.ts';
import {
  type ApiRequest,
  apiUrl,
  describeFailure,
  isLoopbackUrl,
  sendApiRequest,
  signingRegion,
} from './sync-command.ts';

export const STATUS_USAGE = `promoter status NAMESPACE/NAME --api URL [--region REGION] [--json]
  Prints where a pipeline's promotions stand: per environment, the revision deployed, the
  promotion into it (revision, state, pull request) and when it last changed, then the reasons
  of failed promotions. Signed with AWS SigV4 like sync, except on a loopback URL
  (promoter serve, e.g. --api http://127.0.0.1:8080).
  Exit status: 0 shown, 1 pipeline not found, 2 failed.`;

const promotionState = z.enum(PROMOTION_STATUS_STATES);

const statusAnswer = z.object({
  pipeline: z.string(),
  app: z.object({ apiVersion: z.string(), kind: z.string(), name: z.string() }),
  environments: z.array(
    z.object({
      name: z.string(),
      deployed: z
        .object({ revision: z.string(), eventTimestamp: z.string(), recordedAt: z.string() })
        .nullable(),
      promotion: z
        .object({
          revision: z.string(),
          state: promotionState,
          from: z.string(),
          pullRequest: z
            .object({
              number: z.number(),
              url: z.string(),
              state: z.enum(['open', 'merged', 'closed']),
              mergedAt: z.string().nullable(),
              mergeCommit: z.string().nullable(),
            })
            .nullable(),
          failure: z.object({ code: z.string(), message: z.string() }).nullable(),
          timeline: z.record(z.string(), z.string()),
          leadTimeMs: z.number().nullable(),
          eventTimestamp: z.string(),
          updatedAt: z.string(),
        })
        .nullable(),
    }),
  ),
});

export type StatusAnswer = z.infer<typeof statusAnswer>;

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

/** `1h 5m`, `42s`: a duration a person reads at a glance. */
export const shortDuration = (ms: number): string => {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
};

type EnvironmentAnswer = StatusAnswer['environments'][number];

/** One sentence per environment: what runs there and where its promotion stands. */
export const glanceLine = (environment: EnvironmentAnswer): string => {
  const runs =
    environment.deployed === null ? 'nothing seen yet' : `runs ${environment.deployed.revision}`;
  const promotion = environment.promotion;
  if (promotion === null) return `${environment.name}: ${runs}`;
  const pull =
    promotion.pullRequest === null
      ? ''
      : ` (PR #${promotion.pullRequest.number} ${promotion.pullRequest.state})`;
  const what: Record<string, string> = {
    queued: `${promotion.revision} from ${promotion.from} is queued`,
    pushing: `${promotion.revision} from ${promotion.from} is being pushed`,
    opened: `${promotion.revision} waits for its PR to be merged${pull}`,
    updated: `${promotion.revision} waits for its PR to be merged${pull}`,
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
  const widths = HEADERS.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ');
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
    ...status.environments.map(glanceLine),
    '',
    line(HEADERS),
    ...rows.map(line),
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
