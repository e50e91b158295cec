import { hostname, userInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { PipelineStatus } from '../../functions/core/pipeline-status.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY } from '../support/fixtures.ts';
import {
  CREDENTIALS,
  fluxTimestamp,
  gatedPipeline,
  NAMESPACE,
  promotionInto,
  releaseFile,
  releasePath,
  upgradeFailed,
  upgradeSucceeded,
} from '../support/gates-serve.ts';
import { runPromoter } from '../support/promoter-cli.ts';
import { type RunningServe, startPromoterServe } from '../support/promoter-serve.ts';

/**
 * The gates of DESIGN.md section 11 end to end: `promoter serve` started as a user starts it
 * (the CLI, files on disk), the git server and the GitHub stand-in behind it, Pipelines that
 * carry the gates' annotations, Flux events signed as Flux signs them, and `promoter status`,
 * `approve`, `freeze` and `unfreeze` run as commands. One serve per describe: the first on the
 * system clock with no reconcile sweep (so that what opens a gate is serve's own timer or the
 * input under test), one whose clock starts just before a promotion window opens, one whose
 * sweep runs every second (auto-merge where GitHub's own is not allowed).
 */
const OWNER = 'example-org';
const WEBHOOK_SECRET = 'the-github-webhook-secret-of-the-gates';
/** Who serve says froze or approved on its loopback routes (functions/serve/server.ts). */
const LOCAL_CALLER = `${userInfo().username}@${hostname()} (promoter serve)`;
const MERGE_ROUTE = '/repos/{owner}/{repo}/pulls/{pull_number}/merge';
/** Commands on a busy machine take seconds to start. */
const COMMAND_TEST_MS = 90_000;

let github: FakeGitHubEnterprise;
/**
 * The sweep's serve starts with the first one, so that the two boots (seconds on a busy machine)
 * overlap; its clock and sweep have nothing to do until its own tests.
 */
let sweepServe: Promise<RunningServe>;

beforeAll(async () => {
  github = await startFakeGitHubEnterprise();
  sweepServe = startSweepServe();
  // Settled here too, so that a failed start is not an unhandled rejection before it is awaited.
  sweepServe.catch(() => undefined);
});

afterAll(async () => {
  await (await sweepServe?.catch(() => undefined))?.stop();
  await github?.standIn.deliveries.settled();
  await github?.close();
});

const repositoryUrl = (repo: string): string => `${github.url}/${OWNER}/${repo}`;

const secrets = () => ({
  [`${NAMESPACE}/${CREDENTIALS}`]: { 'hmac-key': FIXTURE_HMAC_KEY, token: github.token },
  'github-webhook': { secret: WEBHOOK_SECRET },
});

const pulls = (repo: string) => github.standIn.pullRequests(OWNER, repo);

const promotionBranch = (name: string, environment: string): string =>
  `promotion-${NAMESPACE}-${name}-${environment}`;

/**
 * Event times on the system clock: whole seconds (as Flux writes them), each of a pipeline later
 * than its one before (so that no event of it is older than the promotion it records).
 */
const lastEventAt = new Map<string, number>();
const eventTime = (pipeline: string): Date => {
  const at = Math.max(
    Math.floor(Date.now() / 1000) * 1000,
    (lastEventAt.get(pipeline) ?? 0) + 1000,
  );
  lastEventAt.set(pipeline, at);
  return new Date(at);
};

const environmentOf = (status: PipelineStatus, name: string) => {
  const found = status.environments.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no environment ${name} in the status`);
  return found;
};

/** Resolves once `time` (ms since the epoch, system clock) has passed. */
const after = (time: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, time - Date.now())));

describe('promoter serve on the system clock: targets, approval, soak, freeze, GitHub auto-merge', () => {
  let serve: RunningServe;

  beforeAll(async () => {
    await Promise.all([
      github.createRepository(OWNER, 'fleet-targets', {
        [releasePath('prod')]: releaseFile('targets', 'prod', '6.4.0'),
      }),
      github.createRepository(OWNER, 'fleet-approval', {
        [releasePath('prod')]: releaseFile('approval', 'prod', '6.4.0'),
      }),
      github.createRepository(OWNER, 'fleet-soak', {
        [releasePath('staging')]: releaseFile('soak', 'staging', '6.4.0'),
      }),
      github.createRepository(OWNER, 'fleet-freeze', {
        [releasePath('staging')]: releaseFile('freeze', 'staging', '6.4.0'),
      }),
      github.createRepository(
        OWNER,
        'fleet-automerge',
        { [releasePath('staging')]: releaseFile('automerge', 'staging', '6.4.0') },
        'main',
        { allowAutoMerge: true, requiredChecks: ['ci/test'] },
      ),
    ]);
    const dev = { name: 'dev', targets: [{ namespace: 'podinfo-dev' }] };
    const staging = { name: 'staging', targets: [{ namespace: 'podinfo-staging' }] };
    serve = await startPromoterServe({
      pipelines: [
        gatedPipeline({
          name: 'targets',
          repositoryUrl: repositoryUrl('fleet-targets'),
          environments: [
            dev,
            {
              name: 'staging',
              // Two clusters, one namespace: only metadata.cluster tells the targets apart.
              targets: [
                { namespace: 'podinfo-staging', cluster: 'staging-eu' },
                { namespace: 'podinfo-staging', cluster: 'staging-us' },
              ],
            },
            { name: 'prod', targets: [{ namespace: 'podinfo-prod', cluster: 'prod' }] },
          ],
          annotations: { 'pipeline-promoter/gate': 'all' },
        }),
        gatedPipeline({
          name: 'approval',
          repositoryUrl: repositoryUrl('fleet-approval'),
          environments: [
            dev,
            { name: 'prod', targets: [{ namespace: 'podinfo-prod' }], manual: true },
          ],
        }),
        gatedPipeline({
          name: 'soak',
          repositoryUrl: repositoryUrl('fleet-soak'),
          environments: [dev, staging],
          annotations: { 'pipeline-promoter/soak.staging': '3s' },
        }),
        gatedPipeline({
          name: 'freeze',
          repositoryUrl: repositoryUrl('fleet-freeze'),
          environments: [dev, staging],
        }),
        gatedPipeline({
          name: 'automerge',
          repositoryUrl: repositoryUrl('fleet-automerge'),
          environments: [dev, staging],
          annotations: { 'pipeline-promoter/auto-merge.staging': 'true' },
        }),
      ],
      secrets: secrets(),
      args: ['--reconcile-interval', '0'],
    });
    await github.standIn.deliverWebhooksTo(`${serve.url}/webhooks/github`, WEBHOOK_SECRET, {
      repository: `${OWNER}/fleet-automerge`,
    });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  const fromDev = (pipeline: string, revision: string, at = eventTime(pipeline)) =>
    serve.postSigned(
      `/promotion/${NAMESPACE}/${pipeline}/dev`,
      upgradeSucceeded({ namespace: 'podinfo-dev', revision, at }),
    );

  const promotionOnceIn = (pipeline: string, environment: string, states: readonly string[]) =>
    serve.waitFor(`${pipeline} into ${environment} in ${states.join(' or ')}`, async () => {
      const promotion = promotionInto(await serve.status(pipeline), environment);
      return states.includes(promotion.state) ? promotion : undefined;
    });

  it('targets: prod waits for the second staging cluster; an unlisted cluster is a 422 naming the targets', async () => {
    // Prepare
    const fromStaging = (cluster: string | undefined) =>
      serve.postSigned(
        `/promotion/${NAMESPACE}/targets/staging`,
        upgradeSucceeded({
          namespace: 'podinfo-staging',
          revision: '6.5.0',
          at: eventTime('targets'),
          ...(cluster === undefined ? {} : { cluster }),
        }),
      );

    // Act
    const first = await fromStaging('staging-eu');
    const pullsAfterFirst = pulls('fleet-targets').length;
    const held = promotionInto(await serve.status('targets'), 'prod');
    const second = await fromStaging('staging-us');
    const pull = await serve.waitFor('the prod PR', () => pulls('fleet-targets')[0]);
    const unlisted = await fromStaging('staging-ap');
    const unnamed = await fromStaging(undefined);
    const opened = await promotionOnceIn('targets', 'prod', ['opened']);
    const status = await serve.status('targets');

    // Assess
    expect(first).toEqual({
      status: 202,
      body: { promoted: false, waiting: { targets: { ready: 1, needed: 2 } } },
    });
    expect(pullsAfterFirst).toBe(0);
    expect(held).toMatchObject({
      revision: '6.5.0',
      state: 'waiting',
      waitingFor: { targets: { ready: 1, needed: 2 } },
      pullRequest: null,
    });
    expect(second).toMatchObject({
      status: 202,
      body: { promoted: true, promotion: { from: 'staging', to: 'prod', revision: '6.5.0' } },
    });
    expect(pull).toMatchObject({
      state: 'open',
      title: 'Promote flux-system/targets in prod to 6.5.0',
      head: promotionBranch('targets', 'prod'),
    });
    expect(
      (await github.readBranchFiles(OWNER, 'fleet-targets', pull.head))[releasePath('prod')],
    ).toBe(releaseFile('targets', 'prod', '6.5.0'));
    expect(unlisted.status).toBe(422);
    expect(unlisted.body.error).toBe(
      'metadata.cluster "staging-ap" with involvedObject.namespace "podinfo-staging" is not a target of environment staging (targets: cluster staging-eu namespace podinfo-staging, cluster staging-us namespace podinfo-staging)',
    );
    expect(unnamed.status).toBe(422);
    expect(unnamed.body.error).toMatch(
      /^metadata\.cluster: environment staging has several targets in namespace podinfo-staging .*eventMetadata: \{cluster: NAME\}/,
    );
    expect(pulls('fleet-targets')).toHaveLength(1);
    expect(opened).toMatchObject({
      revision: '6.5.0',
      waitingFor: null,
      pullRequest: { number: pull.number, state: 'open' },
    });
    expect(environmentOf(status, 'staging').targets).toEqual([
      expect.objectContaining({
        name: 'staging-eu/podinfo-staging',
        cluster: 'staging-eu',
        namespace: 'podinfo-staging',
        revision: '6.5.0',
        ok: true,
      }),
      expect.objectContaining({
        name: 'staging-us/podinfo-staging',
        cluster: 'staging-us',
        revision: '6.5.0',
        ok: true,
      }),
    ]);
  });

  it(
    'manual approval: awaiting-approval in the status; /approval refuses a bad signature (401) and a stale revision (422), then opens the PR; promoter approve approves the next revision',
    async () => {
      // Prepare
      const approval = (revision: string, key = FIXTURE_HMAC_KEY) =>
        serve.postSigned(`/approval/${NAMESPACE}/approval/prod/${revision}`, '', key);
      const asked = await fromDev('approval', '6.5.0');
      const awaiting = promotionInto(await serve.status('approval'), 'prod');
      const printed = await runPromoter(['status', 'flux-system/approval', '--api', serve.url]);

      // Act
      const forged = await approval('6.5.0', 'not-the-key-of-this-pipeline');
      const stale = await approval('6.4.9');
      const pullsBeforeApproval = pulls('fleet-approval').length;
      const approved = await approval('6.5.0');
      const pull = await serve.waitFor('the prod PR', () => pulls('fleet-approval')[0]);
      const opened = await promotionOnceIn('approval', 'prod', ['opened']);
      // A second revision waits, and a third replaces it before anyone approves.
      const second = await fromDev('approval', '6.6.0');
      const third = await fromDev('approval', '6.7.0');
      const replaced = await serve.postJson(
        `/pipelines/${NAMESPACE}/approval/environments/prod/approval`,
        { revision: '6.6.0' },
      );
      const approvedByCommand = await runPromoter([
        'approve',
        'flux-system/approval',
        'prod',
        '--api',
        serve.url,
      ]);
      const updated = await promotionOnceIn('approval', 'prod', ['opened', 'updated']);
      const branch = await github.readBranchFiles(OWNER, 'fleet-approval', pull.head);

      // Assess
      expect(asked).toEqual({
        status: 202,
        body: { promoted: false, waiting: { approval: { requestedAt: expect.any(String) } } },
      });
      expect(awaiting).toMatchObject({
        revision: '6.5.0',
        state: 'awaiting-approval',
        approval: { requestedAt: expect.any(String), approvedAt: null, approvedBy: null },
        pullRequest: null,
      });
      expect(printed.code).toBe(0);
      expect(printed.stdout).toContain('prod: nothing seen yet; 6.5.0 from dev waits for approval');
      expect(printed.stdout).toMatch(/^prod\s+-\s+6\.5\.0\s+awaiting-approval\s+-\s+/m);

      expect(forged.status).toBe(401);
      expect(forged.body.error).toMatch(/^signature /);
      expect(stale).toEqual({
        status: 422,
        body: {
          error:
            'the promotion of flux-system/approval into prod waits for approval at 6.5.0, not 6.4.9: a newer revision replaced it',
        },
      });
      expect(pullsBeforeApproval).toBe(0);
      expect(approved).toMatchObject({
        status: 202,
        body: {
          approved: { pipeline: 'flux-system/approval', environment: 'prod', revision: '6.5.0' },
          promoted: true,
        },
      });
      expect(pull).toMatchObject({
        state: 'open',
        title: 'Promote flux-system/approval in prod to 6.5.0',
      });
      expect(opened).toMatchObject({
        revision: '6.5.0',
        approval: { approvedBy: 'hmac', approvedAt: expect.any(String) },
        pullRequest: { number: pull.number },
      });

      const approvalAsked = {
        status: 202,
        body: { promoted: false, waiting: { approval: { requestedAt: expect.any(String) } } },
      };
      expect(second).toEqual(approvalAsked);
      expect(third).toEqual(approvalAsked);
      expect(replaced).toEqual({
        status: 422,
        body: {
          error:
            'the promotion of flux-system/approval into prod waits for approval at 6.7.0, not 6.6.0: a newer revision replaced it',
        },
      });
      expect(approvedByCommand).toMatchObject({
        code: 0,
        stdout: 'approved flux-system/approval into prod at 6.7.0: promotion queued\n',
      });
      expect(updated).toMatchObject({
        revision: '6.7.0',
        approval: { approvedBy: LOCAL_CALLER },
        pullRequest: { number: pull.number, state: 'open' },
      });
      expect(pulls('fleet-approval')).toHaveLength(1);
      expect(branch[releasePath('prod')]).toBe(releaseFile('approval', 'prod', '6.7.0'));
    },
    COMMAND_TEST_MS,
  );

  it('soak: the PR opens when the soak ends, with no further event; a failure from dev at the next revision cancels its soak for good', async () => {
    // Prepare
    const at = eventTime('soak');

    // Act
    const soaking = await fromDev('soak', '6.5.0', at);
    const pullsWhileSoaking = pulls('fleet-soak').length;
    const held = promotionInto(await serve.status('soak'), 'staging');
    const pull = await serve.waitFor('the PR after the soak', () => pulls('fleet-soak')[0]);
    const opened = await promotionOnceIn('soak', 'staging', ['opened']);

    const nextAt = eventTime('soak');
    const next = await fromDev('soak', '6.6.0', nextAt);
    const failed = await serve.postSigned(
      `/promotion/${NAMESPACE}/soak/dev`,
      upgradeFailed({ namespace: 'podinfo-dev', revision: '6.6.0', at: eventTime('soak') }),
    );
    const cancelled = promotionInto(await serve.status('soak'), 'staging');
    // Absence cannot be polled for: look again once serve's timer was due for that soak.
    await after(nextAt.getTime() + 3_000 + 1_000);
    const later = promotionInto(await serve.status('soak'), 'staging');
    const branch = await github.readBranchFiles(OWNER, 'fleet-soak', pull.head);

    // Assess
    expect(soaking).toEqual({
      status: 202,
      body: {
        promoted: false,
        waiting: { soak: { until: new Date(at.getTime() + 3_000).toISOString() } },
      },
    });
    expect(pullsWhileSoaking).toBe(0);
    expect(held).toMatchObject({
      revision: '6.5.0',
      state: 'waiting',
      waitingFor: soaking.body.waiting,
    });
    expect(pull).toMatchObject({
      state: 'open',
      title: 'Promote flux-system/soak in staging to 6.5.0',
    });
    expect(opened).toMatchObject({ revision: '6.5.0', pullRequest: { number: pull.number } });

    expect(next).toEqual({
      status: 202,
      body: {
        promoted: false,
        waiting: { soak: { until: new Date(nextAt.getTime() + 3_000).toISOString() } },
      },
    });
    expect(failed).toEqual({
      status: 200,
      body: { promoted: false, reason: 'not-a-promoting-event' },
    });
    expect(cancelled).toMatchObject({
      revision: '6.6.0',
      state: 'cancelled',
      waitingFor: null,
      failure: { code: 'SOURCE_FAILED' },
    });
    expect(later).toEqual(cancelled);
    expect(github.standIn.pullRequest(OWNER, 'fleet-soak', pull.number)).toMatchObject({
      state: 'open',
      title: 'Promote flux-system/soak in staging to 6.5.0',
      headSha: pull.headSha,
    });
    expect(pulls('fleet-soak')).toHaveLength(1);
    expect(branch[releasePath('staging')]).toBe(releaseFile('soak', 'staging', '6.5.0'));
  });

  it(
    'freeze: promoter freeze --env staging holds the promotion with its reason and who froze; promoter unfreeze releases it',
    async () => {
      // Prepare
      onTestFinished(async () => {
        // A freeze left behind would hold the staging promotions of the tests after this one.
        await serve.postJson('/unfreeze', { environment: 'staging' });
      });
      const froze = await runPromoter([
        'freeze',
        '--env',
        'staging',
        '--reason',
        'INC-1',
        '--api',
        serve.url,
      ]);
      const freezes = (await (await fetch(`${serve.url}/freezes`)).json()) as unknown;

      // Act
      const held = await fromDev('freeze', '6.5.0');
      const status = promotionInto(await serve.status('freeze'), 'staging');
      const pullsWhileFrozen = pulls('fleet-freeze').length;
      const unfroze = await runPromoter(['unfreeze', '--env', 'staging', '--api', serve.url]);
      const pull = await serve.waitFor('the PR after unfreeze', () => pulls('fleet-freeze')[0]);
      const opened = await promotionOnceIn('freeze', 'staging', ['opened']);

      // Assess
      expect(froze).toMatchObject({
        code: 0,
        stdout: 'froze promotions of every pipeline in staging\n',
      });
      expect(freezes).toEqual({
        freezes: [
          { environment: 'staging', reason: 'INC-1', by: LOCAL_CALLER, at: expect.any(String) },
        ],
      });
      const waiting = { freeze: { reason: 'INC-1', by: LOCAL_CALLER } };
      expect(held).toEqual({ status: 202, body: { promoted: false, waiting } });
      expect(status).toMatchObject({ revision: '6.5.0', state: 'waiting', waitingFor: waiting });
      expect(pullsWhileFrozen).toBe(0);
      expect(unfroze).toMatchObject({
        code: 0,
        stdout: 'unfroze every pipeline in staging: 1 promotion(s) released\n',
      });
      expect(pull).toMatchObject({
        state: 'open',
        title: 'Promote flux-system/freeze in staging to 6.5.0',
      });
      expect(opened).toMatchObject({ revision: '6.5.0', waitingFor: null });
    },
    COMMAND_TEST_MS,
  );

  it("auto-merge where the repository allows it: GitHub's auto-merge is on, waits for the required check, merges, and the webhook records merged", async () => {
    // Prepare
    const promoted = await fromDev('automerge', '6.5.0');
    const pull = await serve.waitFor('the PR with auto-merge on', () => {
      const found = pulls('fleet-automerge')[0];
      return found?.autoMerge == null ? undefined : found;
    });
    await promotionOnceIn('automerge', 'staging', ['opened']);

    // Act
    await github.standIn.setCommitCheck(OWNER, 'fleet-automerge', pull.headSha, {
      context: 'ci/test',
      state: 'pending',
    });
    const whilePending = github.standIn.pullRequest(OWNER, 'fleet-automerge', pull.number);
    await github.standIn.deliveries.settled();
    const recordWhilePending = promotionInto(await serve.status('automerge'), 'staging');
    await github.standIn.setCommitCheck(OWNER, 'fleet-automerge', pull.headSha, {
      context: 'ci/test',
      state: 'success',
    });
    await github.standIn.deliveries.settled();
    const merged = await promotionOnceIn('automerge', 'staging', ['merged']);

    // Assess
    expect(promoted.body).toMatchObject({ promoted: true });
    expect(pull.autoMerge).toMatchObject({ enabledBy: 'promoter-bot', mergeMethod: 'merge' });
    expect(whilePending).toMatchObject({ state: 'open', merged: false });
    expect(recordWhilePending).toMatchObject({ state: 'opened', pullRequest: { state: 'open' } });
    const done = github.standIn.pullRequest(OWNER, 'fleet-automerge', pull.number);
    expect(done).toMatchObject({ state: 'closed', merged: true, mergedBy: 'promoter-bot' });
    const delivery = github.standIn.deliveries
      .list({ event: 'pull_request', action: 'closed' })
      .at(-1);
    expect(delivery).toMatchObject({ outcome: 'sent', status: 200 });
    expect(JSON.parse(delivery?.response ?? '{}')).toEqual({
      pipeline: 'flux-system/automerge',
      environment: 'staging',
      state: 'merged',
    });
    expect(merged).toMatchObject({
      revision: '6.5.0',
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: done?.mergeCommitSha },
    });
    expect(
      (await github.readBranchFiles(OWNER, 'fleet-automerge', 'main'))[releasePath('staging')],
    ).toBe(releaseFile('automerge', 'staging', '6.5.0'));
  });

  it('counts each held promotion in PromotionsWaiting by the gate that held it', async () => {
    // Prepare, Act: the promotions of the tests before, each held by one gate.
    const metrics = (await (await fetch(`${serve.url}/metrics`)).json()) as Record<
      string,
      { readonly count: number }
    >;

    // Assess
    const waiting = (pipeline: string, environment: string, gate: string) =>
      metrics[
        `PromotionsWaiting{Application=podinfo,Environment=${environment},Gate=${gate},Pipeline=flux-system/${pipeline}}`
      ]?.count;
    expect(waiting('targets', 'prod', 'targets')).toBe(1);
    // 6.5.0, then 6.6.0 and 6.7.0 (the newer replaced the one waiting).
    expect(waiting('approval', 'prod', 'approval')).toBe(3);
    expect(waiting('soak', 'staging', 'soak')).toBe(2);
    expect(waiting('freeze', 'staging', 'freeze')).toBe(1);
  });
});

describe('promoter serve whose clock starts just before a promotion window opens', () => {
  /** A Monday, four seconds before 09:00 UTC (serve's clock starts when it reads its flags). */
  const CLOCK_START = Date.parse('2026-11-30T08:59:56Z');
  let serve: RunningServe;
  let listeningAt: number;

  beforeAll(async () => {
    await github.createRepository(OWNER, 'fleet-window', {
      [releasePath('staging')]: releaseFile('window', 'staging', '6.4.0'),
    });
    serve = await startPromoterServe({
      pipelines: [
        gatedPipeline({
          name: 'window',
          repositoryUrl: repositoryUrl('fleet-window'),
          environments: [
            { name: 'dev', targets: [{ namespace: 'podinfo-dev' }] },
            { name: 'staging', targets: [{ namespace: 'podinfo-staging' }] },
          ],
          annotations: { 'pipeline-promoter/window.staging': 'Mon-Fri 09:00-17:00 UTC' },
        }),
      ],
      secrets: secrets(),
      args: ['--reconcile-interval', '0', '--clock-start', new Date(CLOCK_START).toISOString()],
    });
    listeningAt = Date.now();
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('waits with opensAt 09:00:00Z and opens the PR once the window opens, with no further event', async () => {
    // Prepare: an event of serve's clock (a little behind it: serve's clock started before it
    // listened), else the webhook refuses it as a replay.
    const at = new Date(Math.floor((CLOCK_START + Date.now() - listeningAt) / 1000) * 1000);

    // Act
    const held = await serve.postSigned(
      `/promotion/${NAMESPACE}/window/dev`,
      upgradeSucceeded({ namespace: 'podinfo-dev', revision: '6.5.0', at }),
    );
    const pullsBeforeOpening = pulls('fleet-window').length;
    const waiting = promotionInto(await serve.status('window'), 'staging');
    const pull = await serve.waitFor(
      'the PR once the window opens',
      () => pulls('fleet-window')[0],
    );
    const opened = await serve.waitFor('the promotion opened', async () => {
      const promotion = promotionInto(await serve.status('window'), 'staging');
      return promotion.state === 'opened' ? promotion : undefined;
    });

    // Assess
    const gate = { window: { opensAt: '2026-11-30T09:00:00.000Z' } };
    expect(held).toEqual({ status: 202, body: { promoted: false, waiting: gate } });
    expect(pullsBeforeOpening).toBe(0);
    expect(waiting).toMatchObject({ revision: '6.5.0', state: 'waiting', waitingFor: gate });
    expect(pull).toMatchObject({
      state: 'open',
      title: 'Promote flux-system/window in staging to 6.5.0',
    });
    expect(opened).toMatchObject({ revision: '6.5.0', waitingFor: null });
    // Queued on serve's clock, inside the window.
    expect(Date.parse(opened.timeline.queuedAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(gate.window.opensAt),
    );
  });

  it("judges an event's age on serve's clock: one stamped with the system's time is from its future", async () => {
    // Prepare
    const now = new Date();

    // Act
    const refused = await serve.postSigned(
      `/promotion/${NAMESPACE}/window/dev`,
      upgradeSucceeded({ namespace: 'podinfo-dev', revision: '6.6.0', at: now }),
    );

    // Assess
    expect(refused).toEqual({
      status: 422,
      body: { error: `timestamp ${fluxTimestamp(now)} is more than 300s in the future` },
    });
  });
});

const startSweepServe = async (): Promise<RunningServe> => {
  await github.createRepository(
    OWNER,
    'fleet-sweep',
    { [releasePath('staging')]: releaseFile('sweep', 'staging', '6.4.0') },
    'main',
    { allowAutoMerge: false, requiredChecks: ['ci/test'] },
  );
  // No webhook to this serve: only its sweep can learn of the merge.
  return startPromoterServe({
    pipelines: [
      gatedPipeline({
        name: 'sweep',
        repositoryUrl: repositoryUrl('fleet-sweep'),
        environments: [
          { name: 'dev', targets: [{ namespace: 'podinfo-dev' }] },
          { name: 'staging', targets: [{ namespace: 'podinfo-staging' }] },
        ],
        annotations: { 'pipeline-promoter/auto-merge.staging': 'true' },
      }),
    ],
    secrets: secrets(),
    args: ['--reconcile-interval', '1'],
  });
};

describe('promoter serve with a reconcile sweep every second: auto-merge where GitHub does not allow it', () => {
  let serve: RunningServe;

  beforeAll(async () => {
    serve = await sweepServe;
  });

  const sweepsThatRead = () =>
    serve.logs.filter(
      (line) => line.message === 'reconcile sweep finished' && Number(line.read) >= 1,
    ).length;

  it('the sweep merges the PR with the expected head once its required check passes, and records merged', async () => {
    // Prepare: the stand-in's requests from here on are this serve's (the others have stopped).
    const firstRequest = github.standIn.requests.length;
    const requests = () => github.standIn.requests.slice(firstRequest);
    const promoted = await serve.postSigned(
      `/promotion/${NAMESPACE}/sweep/dev`,
      upgradeSucceeded({ namespace: 'podinfo-dev', revision: '6.5.0', at: eventTime('sweep') }),
    );
    const pull = await serve.waitFor('the PR', () => pulls('fleet-sweep')[0]);
    await serve.waitFor('the promotion opened', async () => {
      const promotion = promotionInto(await serve.status('sweep'), 'staging');
      return promotion.state === 'opened' ? promotion : undefined;
    });
    await github.standIn.setCommitCheck(OWNER, 'fleet-sweep', pull.headSha, {
      context: 'ci/test',
      state: 'pending',
    });

    // Act: two sweeps read the PR while its check is pending, then the check passes.
    const sweepsBefore = sweepsThatRead();
    await serve.waitFor('two sweeps', () =>
      sweepsThatRead() >= sweepsBefore + 2 ? true : undefined,
    );
    const whilePending = github.standIn.pullRequest(OWNER, 'fleet-sweep', pull.number);
    const mergesWhilePending = requests().filter((request) => request.route === MERGE_ROUTE).length;
    await github.standIn.setCommitCheck(OWNER, 'fleet-sweep', pull.headSha, {
      context: 'ci/test',
      state: 'success',
    });
    const merged = await serve.waitFor('the merge', () => {
      const found = github.standIn.pullRequest(OWNER, 'fleet-sweep', pull.number);
      return found?.merged === true ? found : undefined;
    });
    const recorded = await serve.waitFor('merged in the status', async () => {
      const promotion = promotionInto(await serve.status('sweep'), 'staging');
      return promotion.state === 'merged' ? promotion : undefined;
    });
    // The sweep logs its counts once it has looked at every PR.
    const sweep = await serve.waitFor('the sweep that merged', () =>
      serve.logs.find(
        (line) => line.message === 'reconcile sweep finished' && Number(line.merged) >= 1,
      ),
    );

    // Assess
    expect(promoted.body).toMatchObject({ promoted: true });
    // The repository refuses GitHub's auto-merge: the worker asked, and left it to the sweep.
    expect(
      requests().some((request) => request.path === '/graphql' && request.status === 200),
    ).toBe(true);
    expect(pull.autoMerge).toBeNull();
    expect(whilePending).toMatchObject({ state: 'open', merged: false, autoMerge: null });
    expect(mergesWhilePending).toBe(0);
    const merges = requests().filter((request) => request.route === MERGE_ROUTE);
    expect(merges).toEqual([
      expect.objectContaining({
        method: 'PUT',
        status: 200,
        body: expect.objectContaining({ sha: pull.headSha, merge_method: 'merge' }),
      }),
    ]);
    expect(merged).toMatchObject({ state: 'closed', mergedBy: 'promoter-bot' });
    expect(recorded).toMatchObject({
      revision: '6.5.0',
      pullRequest: { number: pull.number, state: 'merged', mergeCommit: merged.mergeCommitSha },
    });
    expect(sweep).toMatchObject({ read: 1, merged: 1, autoMerged: 1, failed: 0 });
    expect(
      (await github.readBranchFiles(OWNER, 'fleet-sweep', 'main'))[releasePath('staging')],
    ).toBe(releaseFile('sweep', 'staging', '6.5.0'));
  });
});
