import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../functions/core/logger.ts';
import { stalePullRequestComment } from '../../functions/core/promotion.ts';
import { signBody } from '../../functions/core/signature.ts';
import { createServeServer, listen } from '../../functions/serve/server.ts';
import { createServeApp, type ServeApp } from '../../functions/wiring/serve.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../support/fixtures.ts';
import {
  deployStagingFromBothTargets,
  STAGING_TARGETS,
  WAITING_FOR_THE_OTHER_STAGING_TARGET,
} from '../support/staging-targets.ts';

/**
 * The promotion lifecycle end to end in `promoter serve` (in process, on port 0): signed Flux
 * events in, the in-process worker on git http-backend and the GitHub stand-in, and the
 * stand-in's signed `pull_request` webhooks delivered to serve's `POST /webhooks/github`.
 * The reconcile timer is off (`reconcileIntervalSeconds: 0`): the test runs the sweeps.
 *
 * The steps tell one pipeline's story in order (each starts where the one before ended):
 * dev → staging PR → merged by a person → staging deployed (both its targets, the default gate
 * `all`) → prod PR → its merge webhook lost
 * and found by the sweep → prod deployed; then, in staging, a PR closed unmerged, a stale PR, a
 * forged delivery and a duplicated one.
 */
const OWNER = 'example-org';
const REF = { namespace: 'flux-system', name: 'podinfo' } as const;
const WEBHOOK_SECRET = 'the-github-webhook-secret-of-serve';
const PULL = '/repos/{owner}/{repo}/pulls/{pull_number}';
const STAGING_FILE = 'clusters/staging/podinfo/release.yaml';
const PROD_FILE = 'clusters/prod/podinfo/release.yaml';

const release = (namespace: string, environment: string, version: string): string =>
  [
    'apiVersion: helm.toolkit.fluxcd.io/v2',
    'kind: HelmRelease',
    'metadata:',
    '  name: podinfo',
    `  namespace: ${namespace}`,
    'spec:',
    '  chart:',
    '    spec:',
    '      chart: podinfo',
    `      version: ${version} # {"$promotion": "flux-system:podinfo:${environment}"}`,
    '',
  ].join('\n');

interface PromotionView {
  readonly revision: string;
  readonly state: string;
  readonly waitingFor: Record<string, unknown> | null;
  readonly from: string;
  readonly pullRequest: {
    readonly number: number;
    readonly url: string;
    readonly state: string;
    readonly mergedAt: string | null;
    readonly mergeCommit: string | null;
  } | null;
  readonly timeline: Record<string, string>;
  readonly leadTimeMs: number | null;
}

interface EnvironmentView {
  readonly name: string;
  readonly deployed: { readonly revision: string; readonly eventTimestamp: string } | null;
  readonly targets: readonly {
    readonly name: string;
    readonly cluster: string | null;
    readonly namespace: string;
    readonly revision: string | null;
    readonly at: string | null;
    readonly ok: boolean | null;
  }[];
  readonly promotion: PromotionView | null;
}

type MetricsView = Record<string, { sum: number; count: number; unit: string }>;

let github: FakeGitHubEnterprise;
let app: ServeApp;
let server: Server;
let url: string;

beforeAll(async () => {
  github = await startFakeGitHubEnterprise();
  await github.createRepository(OWNER, 'fleet', {
    [STAGING_FILE]: release('podinfo-qa', 'staging', '6.4.0'),
  });
  await github.createRepository(OWNER, 'fleet-prod', {
    [PROD_FILE]: release('podinfo-prod', 'prod', '6.4.0'),
  });
  const folder = await mkdtemp(join(tmpdir(), 'lifecycle-serve-'));
  await writeFile(
    join(folder, 'pipelines.yaml'),
    readFixture('pipelines/podinfo.yaml').replaceAll('https://github.com/', `${github.url}/`),
  );
  await writeFile(
    join(folder, 'secrets.json'),
    JSON.stringify({
      'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: github.token },
      'flux-system/prod-promotion-credentials': { token: github.token },
      'github-webhook': { secret: WEBHOOK_SECRET },
    }),
  );
  app = await createServeApp(
    {
      pipelinesPath: join(folder, 'pipelines.yaml'),
      secretsPath: join(folder, 'secrets.json'),
      gitCacheDir: join(folder, 'git-cache'),
      dataDir: join(folder, 'data'),
      retryUnitMs: 0.2,
      reconcileIntervalSeconds: 0,
      github: { spaceWrites: false, retryAfterBaseValue: 5 },
    },
    silentLogger,
  );
  // As `promoter serve` wires it (functions/cli/serve-command.ts).
  server = createServeServer({
    webhook: app.webhook,
    logger: silentLogger,
    metricsSnapshot: () => app.metrics.snapshot(),
    pipelinesApi: app.pipelinesApi,
    github: app.github,
  });
  url = await listen(server, 0, '127.0.0.1');
  await github.standIn.deliverWebhooksTo(`${url}/webhooks/github`, WEBHOOK_SECRET);
});

afterAll(async () => {
  await github?.standIn.deliveries.settled();
  await app?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await github?.close();
});

/** Event times: whole seconds (as Flux writes them), each one later than the one before. */
let lastEventAt = 0;
const eventTime = (agoMs = 0): Date => {
  const at = Math.max(Math.floor((Date.now() - agoMs) / 1000) * 1000, lastEventAt + 1000);
  lastEventAt = at;
  return new Date(at);
};

/** The fixture's UpgradeSucceeded, from `namespace` at `revision`, signed as Flux signs it. */
const fluxEvent = async (environment: string, namespace: string, revision: string, at: Date) => {
  const body = freshEvent('helmrelease-upgrade-succeeded.json', at)
    .replace('"namespace":"podinfo-dev"', `"namespace":"${namespace}"`)
    .replaceAll('6.5.0', revision);
  const response = await fetch(`${url}/promotion/${REF.namespace}/${REF.name}/${environment}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-signature': signBody(body, FIXTURE_HMAC_KEY),
    },
    body,
  });
  const answer = (await response.json()) as Record<string, unknown>;
  await app.queue.drain();
  return { status: response.status, answer };
};

const fromDev = (revision: string, at = eventTime()) =>
  fluxEvent('dev', 'podinfo-dev', revision, at);

const environment = async (name: string): Promise<EnvironmentView> => {
  const response = await fetch(`${url}/pipelines/${REF.namespace}/${REF.name}`);
  expect(response.status).toBe(200);
  const { environments } = (await response.json()) as { environments: EnvironmentView[] };
  const found = environments.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no environment ${name} in the status`);
  return found;
};

const metrics = async (): Promise<MetricsView> =>
  (await (await fetch(`${url}/metrics`)).json()) as MetricsView;

/** A lifecycle metric's key in `/metrics`: its dimensions in name order. */
const lifecycleMetric = (name: string, env: string): string =>
  `${name}{Application=podinfo,Environment=${env},Pipeline=flux-system/podinfo}`;

const openPulls = (repo: string) =>
  github.standIn.pullRequests(OWNER, repo).filter((pull) => pull.state === 'open');

/** The last `pull_request closed` delivery's answer. */
const lastClosedDelivery = () => {
  const delivery = github.standIn.deliveries
    .list({ event: 'pull_request', action: 'closed' })
    .at(-1);
  if (delivery === undefined) throw new Error('no closed delivery');
  return delivery;
};

const iso = (value: string | Date | null | undefined): string =>
  new Date(value ?? 'missing').toISOString();

describe('promoter serve: the promotion lifecycle, GitHub webhooks and the reconcile sweep', () => {
  let devAt: Date;
  let stagingAt: Date;

  it("answers the stand-in's ping when the webhook is created", () => {
    // Prepare, Act: beforeAll created the hook, which GitHub pings.

    // Assess
    const [ping] = github.standIn.deliveries.list({ event: 'ping' });
    expect(ping).toMatchObject({ outcome: 'sent', status: 200 });
    expect(JSON.parse(ping?.response ?? '{}')).toEqual({ pong: true });
  });

  it('dev → staging PR → merged by a person (webhook) → staging deployed once both targets reported, with its lead time, and the prod PR opened', async () => {
    // Prepare
    devAt = eventTime(5 * 60_000);
    const promoted = await fromDev('6.5.0', devAt);
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    const opened = await environment('staging');

    // Act: a person merges; GitHub tells serve.
    const merge = await github.standIn.mergePullRequest(OWNER, 'fleet', pull.number);
    await github.standIn.deliveries.settled();
    const merged = await environment('staging');
    // Staging's targets report 6.5.0, podinfo-qa first: the gate `all` waits for podinfo-perf.
    const [firstTarget, lastTarget] = STAGING_TARGETS;
    const firstTargetAt = eventTime();
    const firstTargetEvent = await fluxEvent('staging', firstTarget, '6.5.0', firstTargetAt);
    const halfDeployed = await environment('staging');
    const prodWhileWaiting = await environment('prod');
    const prodPullsWhileWaiting = openPulls('fleet-prod');
    stagingAt = eventTime();
    const deployedEvent = await fluxEvent('staging', lastTarget, '6.5.0', stagingAt);
    const staging = await environment('staging');
    const prod = await environment('prod');
    const figures = await metrics();

    // Assess
    expect(promoted).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { from: 'dev', to: 'staging', revision: '6.5.0' } },
    });
    expect(pull.title).toBe('Promote flux-system/podinfo in staging to 6.5.0');
    expect(opened.promotion).toMatchObject({ revision: '6.5.0', state: 'opened' });
    expect(lastClosedDelivery()).toMatchObject({ outcome: 'sent', status: 200, forged: false });
    expect(JSON.parse(lastClosedDelivery().response ?? '{}')).toEqual({
      pipeline: 'flux-system/podinfo',
      environment: 'staging',
      state: 'merged',
    });
    const mergedAt = iso(github.standIn.pullRequest(OWNER, 'fleet', pull.number)?.mergedAt);
    expect(merged.promotion).toMatchObject({
      state: 'merged',
      pullRequest: {
        number: pull.number,
        url: `${github.url}/${OWNER}/fleet/pull/${pull.number}`,
        state: 'merged',
        mergedAt,
        mergeCommit: merge.sha,
      },
    });
    expect((await github.readBranchFiles(OWNER, 'fleet', 'main'))[STAGING_FILE]).toBe(
      release('podinfo-qa', 'staging', '6.5.0'),
    );

    expect(firstTargetEvent).toEqual({ status: 202, answer: WAITING_FOR_THE_OTHER_STAGING_TARGET });
    expect(halfDeployed.promotion).toMatchObject({ revision: '6.5.0', state: 'merged' });
    expect(prodWhileWaiting.promotion).toMatchObject({
      revision: '6.5.0',
      state: 'waiting',
      from: 'staging',
      waitingFor: { targets: { ready: 1, needed: 2 } },
      pullRequest: null,
    });
    expect(prodPullsWhileWaiting).toEqual([]);

    expect(deployedEvent).toMatchObject({
      status: 202,
      answer: { promoted: true, promotion: { from: 'staging', to: 'prod', revision: '6.5.0' } },
    });
    const leadTimeMs = stagingAt.getTime() - devAt.getTime();
    expect(staging.deployed).toMatchObject({ revision: '6.5.0', eventTimestamp: iso(stagingAt) });
    expect(staging.targets).toEqual([
      {
        name: `staging/${firstTarget}`,
        cluster: 'staging',
        namespace: firstTarget,
        revision: '6.5.0',
        at: iso(firstTargetAt),
        ok: true,
      },
      {
        name: `staging/${lastTarget}`,
        cluster: 'staging',
        namespace: lastTarget,
        revision: '6.5.0',
        at: iso(stagingAt),
        ok: true,
      },
    ]);
    expect(staging.promotion).toMatchObject({
      revision: '6.5.0',
      state: 'deployed',
      from: 'dev',
      leadTimeMs,
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: merge.sha },
      timeline: {
        sourceDeployedAt: iso(devAt),
        queuedAt: expect.any(String),
        pullRequestAt: expect.any(String),
        mergedAt,
        deployedAt: iso(stagingAt),
      },
    });
    const { timeline } = staging.promotion as PromotionView;
    expect(Date.parse(timeline.queuedAt as string)).toBeLessThanOrEqual(
      Date.parse(timeline.pullRequestAt as string),
    );
    expect(figures[lifecycleMetric('PromotionLeadTime', 'staging')]).toEqual({
      sum: leadTimeMs,
      count: 1,
      unit: 'Milliseconds',
    });
    expect(figures[lifecycleMetric('MergeToDeployTime', 'staging')]).toEqual({
      sum: stagingAt.getTime() - Date.parse(mergedAt),
      count: 1,
      unit: 'Milliseconds',
    });
    expect(figures[lifecycleMetric('PullRequestMergeTime', 'staging')]?.count).toBe(1);

    const [prodPull] = openPulls('fleet-prod');
    expect(prodPull?.title).toBe('Promote flux-system/podinfo in prod to 6.5.0');
    expect(prod.promotion).toMatchObject({
      revision: '6.5.0',
      state: 'opened',
      from: 'staging',
      pullRequest: { number: prodPull?.number, state: 'open' },
      timeline: { sourceDeployedAt: iso(stagingAt), releaseStartedAt: iso(devAt) },
    });
  });

  it('prod: an unchanged open PR costs the sweep one 304; a lost merge webhook is found by the sweep; prod deployed', async () => {
    // Prepare: the prod PR of the step before, open.
    const [pull] = openPulls('fleet-prod');
    if (pull === undefined) throw new Error('no prod pull request');
    const first = await app.reconcile();
    github.standIn.clearRequests();
    const unchanged = await app.reconcile();
    const unchangedCost = github.standIn.apiUsage({ route: PULL });

    // Act: the merge's webhook is lost; the sweep reads the PR.
    github.standIn.deliveries.loseNext(1, { event: 'pull_request', action: 'closed' });
    const merge = await github.standIn.mergePullRequest(OWNER, 'fleet-prod', pull.number);
    await github.standIn.deliveries.settled();
    const beforeSweep = await environment('prod');
    github.standIn.clearRequests();
    const found = await app.reconcile();
    const foundCost = github.standIn.apiUsage({ route: PULL });
    const merged = await environment('prod');
    github.standIn.clearRequests();
    const nothingOpen = await app.reconcile();
    const prodAt = eventTime();
    const final = await fluxEvent('prod', 'podinfo-prod', '6.5.0', prodAt);
    const prod = await environment('prod');
    const figures = await metrics();

    // Assess
    const sweep = { read: 1, notModified: 0, merged: 0, closed: 0, failed: 0, autoMerged: 0 };
    expect(first).toEqual(sweep);
    expect(unchanged).toEqual({ ...sweep, notModified: 1 });
    expect(unchangedCost).toEqual({ requests: 1, notModified: 1, counted: 0 });

    expect(lastClosedDelivery()).toMatchObject({ outcome: 'lost', status: undefined });
    expect(beforeSweep.promotion).toMatchObject({
      state: 'opened',
      pullRequest: { state: 'open' },
    });
    expect(found).toEqual({ ...sweep, merged: 1 });
    expect(foundCost).toEqual({ requests: 1, notModified: 0, counted: 1 });
    const mergedAt = iso(github.standIn.pullRequest(OWNER, 'fleet-prod', pull.number)?.mergedAt);
    expect(merged.promotion).toMatchObject({
      state: 'merged',
      pullRequest: { number: pull.number, state: 'merged', mergedAt, mergeCommit: merge.sha },
      timeline: { mergedAt },
    });
    // Nothing is open any more: the sweep asks GitHub nothing.
    expect(nothingOpen).toEqual({ ...sweep, read: 0 });
    expect(github.standIn.requests).toEqual([]);

    expect(final).toEqual({
      status: 200,
      answer: { promoted: false, reason: 'final-environment' },
    });
    expect(prod.promotion).toMatchObject({
      state: 'deployed',
      leadTimeMs: prodAt.getTime() - stagingAt.getTime(),
      timeline: { mergedAt, deployedAt: iso(prodAt) },
    });
    expect(figures[lifecycleMetric('ReleaseLeadTime', 'prod')]).toEqual({
      sum: prodAt.getTime() - devAt.getTime(),
      count: 1,
      unit: 'Milliseconds',
    });
    expect(figures[lifecycleMetric('PullRequestMergeTime', 'prod')]?.count).toBe(1);
  });

  it('staging: a PR closed unmerged ends its revision (not reopened by the same event again); a newer revision opens a new PR', async () => {
    // Prepare
    await fromDev('6.6.0');
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');

    // Act
    await github.standIn.closePullRequest(OWNER, 'fleet', pull.number);
    await github.standIn.deliveries.settled();
    const closed = await environment('staging');
    const again = await fromDev('6.6.0');
    const pullsAfterAgain = github.standIn.pullRequests(OWNER, 'fleet').length;
    const afterAgain = await environment('staging');
    const newer = await fromDev('6.7.0');
    const reopened = await environment('staging');

    // Assess
    expect(pull.title).toBe('Promote flux-system/podinfo in staging to 6.6.0');
    expect(JSON.parse(lastClosedDelivery().response ?? '{}')).toEqual({
      pipeline: 'flux-system/podinfo',
      environment: 'staging',
      state: 'closed',
    });
    expect(closed.promotion).toMatchObject({
      revision: '6.6.0',
      state: 'closed',
      pullRequest: { number: pull.number, state: 'closed', mergedAt: null, mergeCommit: null },
    });

    // The same revision's event again is accepted (a deployment of dev) but promotes nothing.
    expect(again.status).toBe(202);
    expect(pullsAfterAgain).toBe(2);
    expect(github.standIn.pullRequest(OWNER, 'fleet', pull.number)?.state).toBe('closed');
    expect(afterAgain.promotion).toMatchObject({ revision: '6.6.0', state: 'closed' });
    expect((await metrics())[lifecycleMetric('PromotionsSettled', 'staging')]?.count).toBe(1);

    expect(newer.status).toBe(202);
    const [next, ...others] = openPulls('fleet');
    expect(others).toEqual([]);
    expect(next).toMatchObject({ title: 'Promote flux-system/podinfo in staging to 6.7.0' });
    expect(next?.number).not.toBe(pull.number);
    expect(reopened.promotion).toMatchObject({
      revision: '6.7.0',
      state: 'opened',
      pullRequest: { number: next?.number, state: 'open' },
    });
  });

  it('staging: a stale PR (the base got a newer revision another way) is closed with a comment that says why', async () => {
    // Prepare: the 6.7.0 PR of the step before is open; someone puts 6.8.0 on main by hand.
    const [stale] = openPulls('fleet');
    if (stale === undefined) throw new Error('no open staging pull request');
    await github.commitOnBranch(
      OWNER,
      'fleet',
      'main',
      { [STAGING_FILE]: release('podinfo-qa', 'staging', '6.8.0') },
      'Hotfix: podinfo 6.8.0 in staging',
    );
    const pullCount = github.standIn.pullRequests(OWNER, 'fleet').length;

    // Act
    const event = await fromDev('6.8.0');
    await github.standIn.deliveries.settled();
    const staging = await environment('staging');

    // Assess
    expect(event.status).toBe(202);
    expect(github.standIn.pullRequest(OWNER, 'fleet', stale.number)).toMatchObject({
      state: 'closed',
      merged: false,
    });
    expect(github.standIn.pullRequestComments(OWNER, 'fleet', stale.number)).toEqual([
      expect.objectContaining({
        user: 'promoter-bot',
        body: stalePullRequestComment({ pipeline: REF, to: 'staging', revision: '6.8.0' }, 'main'),
      }),
    ]);
    expect(github.standIn.pullRequests(OWNER, 'fleet')).toHaveLength(pullCount);
    expect(staging.promotion).toMatchObject({
      revision: '6.8.0',
      state: 'up-to-date',
      pullRequest: { number: stale.number, state: 'closed' },
    });
    // GitHub's report of that close names the older revision: it changes nothing.
    expect(JSON.parse(lastClosedDelivery().response ?? '{}')).toEqual({
      pipeline: 'flux-system/podinfo',
      environment: 'staging',
      ignored: 'older-revision',
    });
    expect((await metrics())['StalePullRequestsClosed{Environment=staging}']?.count).toBe(1);
  });

  it('staging: a forged delivery is refused with 401 and changes nothing (the sweep then finds the merge)', async () => {
    // Prepare
    await fromDev('6.9.0');
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    github.standIn.deliveries.forgeNext(1, { event: 'pull_request', action: 'closed' });

    // Act
    await github.standIn.mergePullRequest(OWNER, 'fleet', pull.number);
    await github.standIn.deliveries.settled();
    const afterForgery = await environment('staging');
    const figures = await metrics();
    const sweep = await app.reconcile();
    const afterSweep = await environment('staging');

    // Assess
    const forged = lastClosedDelivery();
    expect(forged).toMatchObject({ forged: true, outcome: 'sent', status: 401 });
    expect(JSON.parse(forged.response ?? '{}')).toEqual({
      error: 'X-Hub-Signature-256 does not match',
    });
    expect(afterForgery.promotion).toMatchObject({
      revision: '6.9.0',
      state: 'opened',
      pullRequest: { number: pull.number, state: 'open', mergeCommit: null },
    });
    expect(figures['GitHubWebhookRequests{Outcome=rejected-signature}']?.count).toBe(1);
    expect(sweep).toMatchObject({ read: 1, merged: 1, failed: 0 });
    expect(afterSweep.promotion).toMatchObject({ revision: '6.9.0', state: 'merged' });
  });

  it('staging: a duplicated delivery (the same X-GitHub-Delivery twice) has one effect', async () => {
    // Prepare
    await fromDev('7.0.0');
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    const before = await metrics();
    github.standIn.deliveries.duplicateNext({ event: 'pull_request', action: 'closed' });

    // Act
    await github.standIn.mergePullRequest(OWNER, 'fleet', pull.number);
    await github.standIn.deliveries.settled();
    const staging = await environment('staging');
    const after = await metrics();

    // Assess
    const [once, twice] = github.standIn.deliveries
      .list({ event: 'pull_request', action: 'closed' })
      .slice(-2);
    expect(once?.id).toBe(twice?.id);
    expect([once?.redelivery, twice?.redelivery]).toEqual([false, true]);
    expect([once?.status, twice?.status]).toEqual([200, 200]);
    expect(JSON.parse(once?.response ?? '{}')).toMatchObject({ state: 'merged' });
    expect(JSON.parse(twice?.response ?? '{}')).toEqual({ duplicate: true });
    expect(staging.promotion).toMatchObject({
      revision: '7.0.0',
      state: 'merged',
      pullRequest: { number: pull.number, state: 'merged' },
    });
    const samples = lifecycleMetric('PullRequestMergeTime', 'staging');
    expect((after[samples]?.count ?? 0) - (before[samples]?.count ?? 0)).toBe(1);
    expect(after['GitHubWebhookRequests{Outcome=duplicate}']?.count).toBe(1);
  });

  it('staging: merge webhook lost, then the deployment event: the sweep still records the merge', async () => {
    // Prepare
    await fromDev('7.1.0');
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    github.standIn.deliveries.loseNext(1, { event: 'pull_request', action: 'closed' });
    const before = await metrics();

    // Act: merged with the webhook lost; staging deploys 7.1.0 before any sweep.
    await github.standIn.mergePullRequest(OWNER, 'fleet', pull.number);
    await github.standIn.deliveries.settled();
    await deployStagingFromBothTargets((namespace) =>
      fluxEvent('staging', namespace, '7.1.0', eventTime()),
    );
    const deployedFirst = await environment('staging');
    const sweep = await app.reconcile();
    const staging = await environment('staging');
    const after = await metrics();

    // Assess: still deployed, now with the PR's merge.
    expect(deployedFirst.promotion).toMatchObject({
      state: 'deployed',
      pullRequest: { number: pull.number, state: 'open' },
    });
    expect(sweep).toMatchObject({ merged: 1, failed: 0 });
    expect(staging.promotion).toMatchObject({
      revision: '7.1.0',
      state: 'deployed',
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: expect.any(String) },
    });
    const samples = lifecycleMetric('PullRequestMergeTime', 'staging');
    expect((after[samples]?.count ?? 0) - (before[samples]?.count ?? 0)).toBe(1);
  });
});
