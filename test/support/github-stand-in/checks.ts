import type { RestEndpointMethodTypes } from '@octokit/plugin-rest-endpoint-methods';
import { nodeId, timestamp } from './http.ts';
import {
  type MinimalRepositoryJson,
  minimalRepositoryJson,
  type RepositoryJson,
  type SimpleUserJson,
  type Urls,
} from './shapes.ts';
import type {
  CheckRunConclusion,
  CheckRunStatus,
  CommitCheck,
  CommitStatusState,
  StandInCheckRun,
  StandInCommitStatus,
} from './types.ts';

/**
 * Commit statuses and check runs per commit, as CI reports them, and what branch protection
 * makes of them: the latest status per context and the one check run per name count; a required
 * check is passed, pending (also when nothing reported it yet: GitHub's "expected") or failed.
 */

export type CombinedStatusJson =
  RestEndpointMethodTypes['repos']['getCombinedStatusForRef']['response']['data'];
export type CommitStatusJson =
  RestEndpointMethodTypes['repos']['createCommitStatus']['response']['data'];
export type CheckRunsJson = RestEndpointMethodTypes['checks']['listForRef']['response']['data'];
type CheckRunJson = CheckRunsJson['check_runs'][number];
type PullRequestMinimalJson = CheckRunJson['pull_requests'][number];

export type CheckOutcome = 'passed' | 'pending' | 'failed';

/** A required check and where it stands on one commit. */
export interface RequiredCheck {
  readonly name: string;
  /** `pending` also when nothing reported it yet. */
  readonly outcome: CheckOutcome;
}

const COMMIT_STATUS_STATES: readonly CommitStatusState[] = [
  'pending',
  'success',
  'failure',
  'error',
];
const CHECK_RUN_STATUSES: readonly CheckRunStatus[] = ['queued', 'in_progress', 'completed'];
const PASSING_CONCLUSIONS: readonly CheckRunConclusion[] = ['success', 'neutral', 'skipped'];

export const isCommitStatusState = (value: unknown): value is CommitStatusState =>
  COMMIT_STATUS_STATES.includes(value as CommitStatusState);

const statusOutcome = (state: CommitStatusState): CheckOutcome =>
  state === 'success' ? 'passed' : state === 'pending' ? 'pending' : 'failed';

const runOutcome = (run: StandInCheckRun): CheckOutcome => {
  if (run.status !== 'completed') return 'pending';
  return run.conclusion !== null && PASSING_CONCLUSIONS.includes(run.conclusion)
    ? 'passed'
    : 'failed';
};

const worst = (outcomes: readonly CheckOutcome[]): CheckOutcome | undefined => {
  if (outcomes.length === 0) return undefined;
  if (outcomes.includes('failed')) return 'failed';
  return outcomes.includes('pending') ? 'pending' : 'passed';
};

const commitKey = (repository: string, sha: string): string => `${repository}@${sha}`;

export class CommitChecks {
  /** Every status ever set, oldest first (GitHub keeps them all; the latest per context counts). */
  readonly #statuses = new Map<string, StandInCommitStatus[]>();
  readonly #runs = new Map<string, StandInCheckRun[]>();
  readonly #nextId: () => number;

  constructor(nextId: () => number) {
    this.#nextId = nextId;
  }

  /** Records a status or creates (or updates, by name) a check run on `sha` of `repository`. */
  set(repository: string, sha: string, check: CommitCheck, creator: string): void {
    if (check.kind === 'check-run') this.setCheckRun(repository, sha, check);
    else this.addStatus(repository, sha, check, creator);
  }

  addStatus(
    repository: string,
    sha: string,
    status: {
      readonly context: string;
      readonly state: CommitStatusState;
      readonly description?: string | null;
      readonly targetUrl?: string | null;
    },
    creator: string,
  ): StandInCommitStatus {
    if (!isCommitStatusState(status.state)) {
      throw new Error(
        `Commit status state ${String(status.state)} is not one of ${COMMIT_STATUS_STATES}`,
      );
    }
    const key = commitKey(repository, sha);
    const list = this.#statuses.get(key) ?? [];
    const now = timestamp();
    const record: StandInCommitStatus = {
      id: this.#nextId(),
      sha,
      context: status.context,
      state: status.state,
      description: status.description ?? null,
      targetUrl: status.targetUrl ?? null,
      creator,
      createdAt: now,
      updatedAt: now,
    };
    list.push(record);
    this.#statuses.set(key, list);
    return record;
  }

  setCheckRun(
    repository: string,
    sha: string,
    run: {
      readonly name: string;
      readonly status: CheckRunStatus;
      readonly conclusion?: CheckRunConclusion;
    },
  ): StandInCheckRun {
    if (!CHECK_RUN_STATUSES.includes(run.status)) {
      throw new Error(`Check run status ${String(run.status)} is not one of ${CHECK_RUN_STATUSES}`);
    }
    const key = commitKey(repository, sha);
    const list = this.#runs.get(key) ?? [];
    const index = list.findIndex((existing) => existing.name === run.name);
    const now = timestamp();
    const completed = run.status === 'completed';
    const record: StandInCheckRun = {
      id: list[index]?.id ?? this.#nextId(),
      sha,
      name: run.name,
      status: run.status,
      conclusion: completed ? (run.conclusion ?? 'success') : null,
      startedAt: list[index]?.startedAt ?? now,
      completedAt: completed ? now : null,
    };
    if (index < 0) list.push(record);
    else list[index] = record;
    this.#runs.set(key, list);
    return record;
  }

  /** The latest status of each context on the commit, most recent first (as GitHub lists them). */
  latestStatuses(repository: string, sha: string): StandInCommitStatus[] {
    const latest = new Map<string, StandInCommitStatus>();
    for (const status of this.#statuses.get(commitKey(repository, sha)) ?? []) {
      latest.set(status.context, status);
    }
    return [...latest.values()].sort((a, b) => b.id - a.id);
  }

  checkRuns(repository: string, sha: string): StandInCheckRun[] {
    return [...(this.#runs.get(commitKey(repository, sha)) ?? [])];
  }

  /** What each reported check (status context or check run name) says about the commit. */
  outcomes(repository: string, sha: string): Map<string, CheckOutcome> {
    const byName = new Map<string, CheckOutcome[]>();
    const add = (name: string, outcome: CheckOutcome) =>
      byName.set(name, [...(byName.get(name) ?? []), outcome]);
    for (const status of this.latestStatuses(repository, sha)) {
      add(status.context, statusOutcome(status.state));
    }
    for (const run of this.checkRuns(repository, sha)) add(run.name, runOutcome(run));
    const outcomes = new Map<string, CheckOutcome>();
    for (const [name, list] of byName) outcomes.set(name, worst(list) ?? 'pending');
    return outcomes;
  }

  required(repository: string, sha: string, names: readonly string[]): RequiredCheck[] {
    const outcomes = this.outcomes(repository, sha);
    return names.map((name) => ({ name, outcome: outcomes.get(name) ?? 'pending' }));
  }

  clear(): void {
    this.#statuses.clear();
    this.#runs.clear();
  }
}

// ---- shapes -------------------------------------------------------------------------------

const statusUrl = (urls: Urls, repository: RepositoryJson, sha: string) =>
  `${urls.api}/repos/${repository.full_name}/statuses/${sha}`;

export const commitStatusJson = (
  status: StandInCommitStatus,
  repository: RepositoryJson,
  creator: SimpleUserJson,
  urls: Urls,
): CommitStatusJson => ({
  url: statusUrl(urls, repository, status.sha),
  avatar_url: creator.avatar_url,
  id: status.id,
  node_id: nodeId('SC', status.id),
  state: status.state,
  description: status.description,
  target_url: status.targetUrl,
  context: status.context,
  created_at: status.createdAt,
  updated_at: status.updatedAt,
  creator,
});

/** GitHub's combined state: failure when any status failed, pending when any is (or none is). */
const combinedState = (statuses: readonly StandInCommitStatus[]): string => {
  if (statuses.some((status) => status.state === 'failure' || status.state === 'error')) {
    return 'failure';
  }
  if (statuses.length === 0 || statuses.some((status) => status.state === 'pending')) {
    return 'pending';
  }
  return 'success';
};

/**
 * The combined status of `sha`: its state and count over `all` the latest statuses, the
 * statuses of one `page`.
 */
export const combinedStatusJson = (
  sha: string,
  statuses: {
    readonly all: readonly StandInCommitStatus[];
    readonly page: readonly StandInCommitStatus[];
  },
  facts: {
    readonly repository: RepositoryJson;
    readonly creatorAvatar: (login: string) => string;
    readonly required: readonly string[];
  },
  urls: Urls,
): CombinedStatusJson => {
  const { repository } = facts;
  const api = `${urls.api}/repos/${repository.full_name}`;
  const minimal: MinimalRepositoryJson = minimalRepositoryJson(repository);
  return {
    state: combinedState(statuses.all),
    statuses: statuses.page.map((status) => ({
      url: statusUrl(urls, repository, status.sha),
      avatar_url: facts.creatorAvatar(status.creator),
      id: status.id,
      node_id: nodeId('SC', status.id),
      state: status.state,
      description: status.description,
      target_url: status.targetUrl,
      context: status.context,
      required: facts.required.includes(status.context),
      created_at: status.createdAt,
      updated_at: status.updatedAt,
    })),
    sha,
    total_count: statuses.all.length,
    repository: minimal,
    commit_url: `${api}/commits/${sha}`,
    url: `${api}/commits/${sha}/status`,
  };
};

/** The app the check runs come from: GitHub Actions, as on GitHub Enterprise Server. */
const actionsApp = (owner: SimpleUserJson, urls: Urls): NonNullable<CheckRunJson['app']> => ({
  id: 15368,
  slug: 'github-actions',
  node_id: nodeId('A', 15368),
  owner,
  name: 'GitHub Actions',
  description: 'Automate your workflow from idea to production',
  external_url: `${urls.web}/features/actions`,
  html_url: `${urls.web}/apps/github-actions`,
  created_at: '2018-07-30T09:30:17Z',
  updated_at: '2024-01-01T00:00:00Z',
  permissions: { checks: 'write', contents: 'write', metadata: 'read', pull_requests: 'write' },
  events: ['check_run', 'check_suite', 'pull_request', 'push', 'status'],
});

export const checkRunsJson = (
  runs: readonly StandInCheckRun[],
  facts: {
    readonly repository: RepositoryJson;
    readonly owner: SimpleUserJson;
    /** The open PRs whose head is the commit (`pull_requests` of each run). */
    readonly pullRequests: readonly {
      number: number;
      id: number;
      head: string;
      base: string;
      baseSha: string;
    }[];
  },
  urls: Urls,
): CheckRunsJson => {
  const { repository } = facts;
  const api = `${urls.api}/repos/${repository.full_name}`;
  const repo = { id: repository.id, url: api, name: repository.name };
  return {
    total_count: runs.length,
    check_runs: runs.map((run) => {
      const url = `${api}/check-runs/${run.id}`;
      const html = `${urls.web}/${repository.full_name}/runs/${run.id}`;
      const pullRequests: PullRequestMinimalJson[] = facts.pullRequests.map((pull) => ({
        id: pull.id,
        number: pull.number,
        url: `${api}/pulls/${pull.number}`,
        head: { ref: pull.head, sha: run.sha, repo },
        base: { ref: pull.base, sha: pull.baseSha, repo },
      }));
      return {
        id: run.id,
        head_sha: run.sha,
        node_id: nodeId('CR', run.id),
        external_id: '',
        url,
        html_url: html,
        details_url: html,
        status: run.status,
        conclusion: run.conclusion,
        started_at: run.startedAt,
        completed_at: run.completedAt,
        output: {
          title: null,
          summary: null,
          text: null,
          annotations_count: 0,
          annotations_url: `${url}/annotations`,
        },
        name: run.name,
        check_suite: { id: run.id + 1 },
        app: actionsApp(facts.owner, urls),
        pull_requests: pullRequests,
      };
    }),
  };
};
